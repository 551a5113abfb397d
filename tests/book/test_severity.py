"""The severity page's convention (rlqlib.book.pages.corruption) and sweep (rlqlib.book.pages.severity) on tiny
hand-made tables and fake models: mCE by hand, levels, draws, which side a condition corrupts, caching."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest
import torch

from rlqlib.book import experiments as X
from rlqlib.book.analysis import Top1
from rlqlib.book.pages import corruption as C
from rlqlib.book.pages import severity as S
from rlqlib.data import degrade as D

# ------------------------------------------------------------------------------------------ corruption errors


def _long(top1: dict[tuple[str, str], list[float]], clean: dict[str, float], spread: float = 0.0) -> pd.DataFrame:
    """One ``cc`` row per model × artifact × level × draw (two draws at top-1 ± spread) plus clean rows; mAP = top-1
    − 10."""
    rows = [{"model": m, "condition": "none", "artifact": "none", "level": 0, "draw": 0, "protocol": "cc",
             "top1": v, "mAP": v - 10} for m, v in clean.items()]
    for (m, a), values in top1.items():
        for level, v in zip(C.LEVELS, values):
            for draw, sign in enumerate((1, -1)):
                rows.append({"model": m, "condition": "query", "artifact": a, "level": level, "draw": draw,
                             "protocol": "cc", "top1": v + sign * spread, "mAP": v - 10 + sign * spread})
    return pd.DataFrame(rows)


HAND = {("CAL", "blur"): [90, 80, 70, 60, 50], ("RLQ", "blur"): [95, 85, 75, 65, 55],  # errors 150 and 125
        ("CAL", "pix"): [60] * 5, ("RLQ", "pix"): [50] * 5}  # errors 200 and 250


def test_corruption_errors_by_hand() -> None:
    long = _long(HAND, {"CAL": 95, "RLQ": 90}, spread=3.0)  # the draws average out
    ce = C.corruption_errors(long, "CAL")
    assert list(ce.index) == [("query", "CAL"), ("query", "RLQ")] and list(ce.columns) == ["blur", "pix", "mCE"]
    np.testing.assert_allclose(ce.loc[("query", "CAL")], [100, 100, 100])
    np.testing.assert_allclose(ce.loc[("query", "RLQ")], [100 * 125 / 150, 100 * 250 / 200,
                                                          (100 * 125 / 150 + 125) / 2])
    # relative: clean errors 5 (CAL) and 10 (RLQ) subtracted per level: blur 125 vs 75, pix 175 vs 200
    rel = C.corruption_errors(long, "CAL", relative=True)
    np.testing.assert_allclose(rel.loc[("query", "RLQ")], [60.0, 100 * 200 / 175, (60 + 100 * 200 / 175) / 2])
    # mAP = top-1 − 10: errors 200 / 175 (blur), 250 / 300 (pix)
    table = C.mce_table(long, "CAL")
    assert list(table.columns) == [("query", "CC top-1"), ("query", "CC mAP")]  # no general rows: no general mCE
    assert table.loc["RLQ", ("query", "CC mAP")] == pytest.approx((100 * 175 / 200 + 100 * 300 / 250) / 2)
    with pytest.raises(ValueError, match="reference model 'BM'"):
        C.corruption_errors(long, "BM")


def test_corruption_error_is_undefined_without_reference_error() -> None:
    perfect = {("CAL", "blur"): [100] * 5, ("RLQ", "blur"): [90] * 5}
    ce = C.corruption_errors(_long(perfect, {"CAL": 100, "RLQ": 100}), "CAL")
    assert ce["mCE"].isna().all()


# ------------------------------------------------------------------------------------------ levels and draws


def test_levels_span_the_paper_range_and_grow_in_strength() -> None:
    assert [C.level_severity(lv) for lv in C.LEVELS] == [0.2, 0.4, 0.6, 0.8, 1.0]
    g = torch.Generator().manual_seed(0)
    s = torch.tensor([C.level_severity(lv) for lv in C.LEVELS])
    params = {a: D.sample_params(a, 5, g, s) for a in D.ALL_ARTIFACTS}
    assert params["pixelation"]["r"].tolist() == [54, 44, 35, 25, 16]  # shorter side, px: smaller is stronger
    assert params["motion_blur"]["k"].tolist() == [10, 12, 15, 17, 19]  # 8 + 11 s, rounded half to even
    torch.testing.assert_close(params["out_of_focus"]["sigma"], torch.tensor([0.48, 0.86, 1.24, 1.62, 2.0]))
    assert params["jpeg"]["q"].tolist() == [78, 61, 44, 27, 10]
    assert params["noise"]["sigma"].tolist() == pytest.approx([8, 16, 24, 32, 40])
    for a in D.ALL_ARTIFACTS:  # strictly stronger at every level; level 5 is degrade's s = 1 (the paper's extreme)
        strength = D.strength(a, params[a])
        assert bool((strength.diff() > 0).all()) and float(strength[-1]) == pytest.approx(1.0)
    table = C.level_table()
    assert len(table) == 25 and table.loc[table["level"] == 5, "parameter"].tolist() == [
        "r=16 px", "k=19 px", "σ=2.00", "q=10", "σ=40"]
    with pytest.raises(ValueError, match="level must be one of"):
        C.level_severity(0)


def test_draws_are_reproducible_and_differ_only_where_random() -> None:
    x = torch.randint(0, 256, (4, 3, 64, 48), generator=torch.Generator().manual_seed(0), dtype=torch.uint8)
    seeds = [C.draw_seed(7, d, side) for d in range(3) for side in ("query", "gallery")]
    assert len(set(seeds)) == 6  # every draw and side its own generator
    for a in D.ALL_ARTIFACTS:
        first = C.corrupt(x, a, 3, seeds[0])
        assert torch.equal(first, C.corrupt(x, a, 3, seeds[0])) and not torch.equal(first, x)
        same = all(torch.equal(first, C.corrupt(x, a, 3, sd)) for sd in seeds[1:])
        assert same == (a not in C.STOCHASTIC), a  # only motion blur (angle) and noise change between draws
        assert C.effective_draw(a, 2) == (2 if a in C.STOCHASTIC else 0)
    with pytest.raises(ValueError, match="side must be"):
        C.draw_seed(0, 0, "both")


# ------------------------------------------------------------------------------------------ the sweep, fake models


N_Q, N_G = 6, 9


def _labels(split: str) -> pd.DataFrame:
    n = N_Q if split == "query" else N_G
    pid = np.arange(n) % 3
    return pd.DataFrame({"path": [f"{split}/{i}.png" for i in range(n)], "pid": pid, "camid": (np.arange(n) // 3) % 2,
                         "clothes_id": pid * 2 + (split == "gallery"),
                         "artifact": ["pixelation" if i == n - 1 else "none" for i in range(n)]})


def _images(split: str) -> torch.Tensor:
    n = N_Q if split == "query" else N_G
    gen = torch.Generator().manual_seed(len(split))
    return torch.randint(0, 256, (n, 3, 24, 16), generator=gen, dtype=torch.uint8)


def _feats(images: torch.Tensor) -> torch.Tensor:
    return images.float().flatten(1)[:, ::7]  # (N, D): changes whenever the pixels do


@pytest.fixture
def fake(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    """A page and two fake runs: features are pixels; embed caches per tag under ``<run>/features/`` as
    :func:`rlqlib.book.experiments.embed` does and counts what it computes."""
    computed: list[str] = []

    def embed(run, images, s, tag=None):
        path = run.dir / "features" / f"{tag}.pt"
        if path.is_file():
            return torch.load(path)
        computed.append(tag)
        path.parent.mkdir(parents=True, exist_ok=True)
        torch.save(_feats(images), path)
        return _feats(images)

    monkeypatch.setattr(X, "labels", lambda s, split: _labels(split))
    monkeypatch.setattr(X, "split_images", lambda s, split, size: _images(split))
    monkeypatch.setattr(X, "features", lambda run, s, split: _feats(_images(split)))
    monkeypatch.setattr(X, "embed", embed)
    runs = {m: [SimpleNamespace(dir=tmp_path / m, config=SimpleNamespace(data=SimpleNamespace(image_size=(24, 16))))]
            for m in ("CAL", "RLQ")}
    page = SimpleNamespace(setting=SimpleNamespace(), protocol="cc")
    return page, runs, computed


def test_conditions_corrupt_only_the_named_side(fake, monkeypatch: pytest.MonkeyPatch) -> None:
    page, runs, computed = fake
    clean_q, clean_g = _feats(_images("query")[:-1]), _feats(_images("gallery")[:-1])  # the HQ images

    def score(qf, gf, q, g, protocols):  # top1 = query corrupted, mAP = gallery corrupted (as 0/100)
        assert len(q) == N_Q - 1 and len(g) == N_G - 1  # the LQ images are left out
        return {"cc": {"top1": 0.0 if torch.equal(qf, clean_q) else 100.0,
                       "mAP": 0.0 if torch.equal(gf, clean_g) else 100.0, "valid": len(q)}}

    monkeypatch.setattr(S, "score", score)
    monkeypatch.setattr(S, "top1_matches", lambda qf, gf, q, g, protocol: Top1(
        np.zeros(len(q), int), np.ones(len(q), bool), np.ones(len(q), bool)))
    sw = S.severity_sweep(page, runs, artifacts=("motion_blur", "out_of_focus"), draws=3)
    corrupted = sw.long.groupby("condition")[["top1", "mAP"]].agg(["min", "max"])
    assert corrupted.loc["none"].tolist() == [0, 0, 0, 0]
    assert corrupted.loc["query"].tolist() == [100, 100, 0, 0]
    assert corrupted.loc["gallery"].tolist() == [0, 0, 100, 100]
    assert corrupted.loc["both"].tolist() == [100, 100, 100, 100]
    assert len(sw.long) == 2 * (1 + 2 * 5 * 3 * 3)  # models × (clean + artifacts × levels × draws × conditions)
    # two feature sets per (artifact, level, draw) and model; the deterministic artifact once for all draws
    assert len(computed) == 2 * 5 * 2 * (3 + 1)  # models × levels × sides × (3 draws + 1)
    # a rerun embeds nothing and corrupts nothing: every feature set is cached
    monkeypatch.setattr(S.C, "corrupt", lambda *a: pytest.fail("corrupted again") if a[0].shape[0] > 1 else a[0])
    again = S.severity_sweep(page, runs, artifacts=("motion_blur", "out_of_focus"), draws=3)
    assert len(computed) == 80 and again.long.equals(sw.long)


def test_sweep_means_stds_and_mce_on_fake_models(fake) -> None:
    page, runs, _ = fake
    sw = S.severity_sweep(page, runs, artifacts=("pixelation", "motion_blur"), draws=3, conditions=("query", "both"))
    st = sw.stats()
    blur = st[(st["artifact"] == "pixelation") & (st["condition"] == "query")]
    assert (blur["std"] == 0).all()  # deterministic: three identical draws
    assert set(sw.mce("CAL").columns.get_level_values(0)) == {"query", "both"}
    np.testing.assert_allclose(sw.mce("CAL").loc["CAL"].dropna(), 100.0)
    table = sw.table("both")
    assert table.index[0] == ("none", 0, "clean") and table.index[-1] == ("motion_blur", 5, "k=19 px")
    assert len(table) == 11 and all(" ± " in c for c in table.iloc[:, 0])
    fig = sw.curves_figure("both")
    assert len(fig.axes) == 2 * 2
    with pytest.raises(ValueError, match="was not swept"):
        sw.curves_figure("gallery")
    pooled = sw.pooled("RLQ", "query", "motion_blur", C.LEVELS)
    assert pooled.correct.dtype == float and 0 <= pooled.top1 <= 100


def test_identities_subset_is_seeded(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(X, "labels", lambda s, split: pd.DataFrame({"pid": [5, 1, 9, 1, 7, 3]}))
    assert S.pick_identities(None, None) is None and S.pick_identities(None, 5) is None  # 5 identities: all
    two = S.pick_identities(None, 2, seed=3)
    assert two == S.pick_identities(None, 2, seed=3) and len(two) == 2 and set(two) <= {1, 3, 5, 7, 9}
    with pytest.raises(ValueError, match="identities=0"):
        S.pick_identities(None, 0)


def test_robustness_claims_pool_levels_and_draws(fake) -> None:
    from rlqlib.book.analysis import paired_difference
    from rlqlib.book.pages.robustness import MEAN, robustness

    page, runs, _ = fake
    sw = S.severity_sweep(page, runs, artifacts=D.ARTIFACTS, draws=3, conditions=("query",))
    r = robustness(sw, {"CAL": "cal", "RLQ": "rlq"}, model="RLQ", bases=("CAL",))
    d, se, n = paired_difference(sw.pooled("RLQ", "query", "motion_blur", C.LEVELS),
                                 sw.pooled("CAL", "query", "motion_blur", C.LEVELS))
    assert r.versus.loc[("RLQ − CAL", "motion_blur"), MEAN] == pytest.approx(d) and n == N_Q - 1
    assert len(r.record()) == 2 + 3  # motion blur hardest per model; RLQ − CAL per paper artifact
    assert {"sev_d_cal_pixelation", "sev_v_cal_out_of_focus", "sev_v_mb", "sev_drop_rlq_motion_blur"} <= set(r.glue())
    with pytest.raises(ValueError, match="paper's three artifacts"):
        robustness(S.severity_sweep(page, runs, artifacts=("noise",), draws=1), {"CAL": "cal", "RLQ": "rlq"},
                   bases=("CAL",))
