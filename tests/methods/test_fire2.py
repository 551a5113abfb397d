"""FIRe²: Jaccard distance vs a per-element loop (both kNN paddings), DBSCAN = connected components vs scikit-learn,
FAR statistics swap, the attribute-aware and triplet losses vs loops, schedule and transform, FFM re-clustering
on SynthCC-smoke, an end-to-end smoke run through the run cache and CLI, and resume equivalence."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from rlqlib import cli
from rlqlib.engine import config as C
from rlqlib.engine import hashing as H
from rlqlib.engine import overrides as Ov
from rlqlib.engine import presets as Pr
from rlqlib.engine import teacher as Tc
from rlqlib.methods.fire2 import method as FM
from rlqlib.methods.fire2 import model as F2
from rlqlib.methods.fire2 import ffm as FFM
from rlqlib.engine import runs as R
from rlqlib.engine import train as T
from rlqlib.data.transforms import normalize


def _snapshot(module: torch.nn.Module) -> dict[str, torch.Tensor]:
    return {k: v.detach().clone() for k, v in module.state_dict().items()}


# ------------------------------------------------------------------------------------------ Jaccard


def _loop_jaccard(x: np.ndarray, k1: int, k2: int, padding: str) -> np.ndarray:
    """The SpCL/FIRe² Jaccard distance one element at a time; "reference" pads the kNN lists with −1 like faiss and
    lets Python/numpy read −1 as the last image."""
    n = len(x)
    d = 2 - 2 * (x @ x.T)
    ranks = []
    for i in range(n):
        row = [i] + sorted((j for j in range(n) if j != i), key=lambda j: (d[i, j], j))
        row = row[:k1]
        if padding == "reference":
            row += [-1] * (k1 - len(row))
        ranks.append(row)

    def reciprocal(i: int, k: int) -> list[int]:
        return [t for t in ranks[i][: k + 1] if i in ranks[t][: k + 1]]

    r1 = [reciprocal(i, k1) for i in range(n)]
    rh = [reciprocal(i, round(k1 / 2)) for i in range(n)]
    v = np.zeros((n, n))
    for i in range(n):
        expanded = list(r1[i])
        for c in r1[i]:
            if len(set(rh[c]) & set(r1[i])) > 2 / 3 * len(rh[c]):
                expanded += rh[c]
        tokens = sorted(set(expanded))  # −1 (if any) first: its weight is overwritten by n−1's
        logits = np.array([-d[i, t] for t in tokens])
        w = np.exp(logits - logits.max())
        w /= w.sum()
        for t, wt in zip(tokens, w):
            v[i, t] = wt
    vq = np.stack([v[ranks[i][:k2]].mean(axis=0) for i in range(n)])
    out = np.zeros((n, n))
    for i in range(n):
        for j in range(n):
            m = sum(min(vq[i, k], vq[j, k]) for k in range(n))
            out[i, j] = max(0.0, 1 - m / (2 - m))
    return out


SIZES = (1, 2, 4, 9, 13)  # k1 = 6: the first three identities have fewer than k1 images


def _padded(sizes, dim=8, seed=0):
    g = torch.Generator().manual_seed(seed)
    m = max(sizes)
    feats = F.normalize(torch.randn(len(sizes), m, dim, generator=g), dim=2)
    valid = torch.arange(m)[None, :] < torch.tensor(sizes)[:, None]
    return feats, valid


@pytest.mark.parametrize("padding", FFM.PADDINGS)
def test_jaccard_matches_the_per_element_loop(padding):
    feats, valid = _padded(SIZES)
    got = FFM.jaccard_distance(feats, valid, k1=6, k2=3, padding=padding)
    assert got.shape == (len(SIZES), 13, 13)
    for p, n in enumerate(SIZES):
        expect = _loop_jaccard(feats[p, :n].double().numpy(), 6, 3, padding)
        assert np.allclose(got[p, :n, :n].numpy(), expect, atol=2e-5), (padding, n)
        assert torch.isinf(got[p, n:]).all() and torch.isinf(got[p, :, n:]).all()


def test_the_two_paddings_differ_only_below_k1():
    feats, valid = _padded(SIZES, seed=3)
    ref = FFM.jaccard_distance(feats, valid, k1=6, k2=3, padding="reference")
    fixed = FFM.jaccard_distance(feats, valid, k1=6, k2=3, padding="fixed")
    for p, n in enumerate(SIZES):
        diff = (ref[p, :n, :n] - fixed[p, :n, :n]).abs().max().item()
        if 2 <= n < 6:
            assert diff > 1e-2, n  # the −1 padding makes the last image count twice (docs/fire2-spec.md §8-P1)
        elif n >= 6:
            assert diff == 0.0, n
    # below k1 the reference's V rows sum to less than 1, so even an image's distance to itself is above 0
    for p, n in enumerate(SIZES):
        assert torch.allclose(fixed[p, :n, :n].diagonal(), torch.zeros(n), atol=1e-6)
        assert bool((ref[p, :n, :n].diagonal() > 1e-3).all()) == (n < 6), n


# ------------------------------------------------------------------------------------------ DBSCAN


def test_dbscan_min_samples_1_is_connected_components_like_sklearn():
    from sklearn.cluster import DBSCAN

    rng = np.random.default_rng(0)
    eps = 0.375  # exactly representable, like the grid values: D == eps must join (inclusive)
    sizes = [1, 5, 9, 12, 12]
    for trial in range(6):
        m = max(sizes)
        dist = torch.full((len(sizes), m, m), float("inf"))
        valid = torch.arange(m)[None, :] < torch.tensor(sizes)[:, None]
        mats = []
        for p, n in enumerate(sizes):
            a = rng.integers(16, 64, size=(n, n)) / 64.0 * (0.5 + trial / 10)
            a = np.triu(a, 1)
            a = a + a.T  # symmetric, zero diagonal
            mats.append(a)
            dist[p, :n, :n] = torch.from_numpy(a).float()
        labels = FFM.dbscan_min_samples_1(dist, valid, eps)
        for p, (n, a) in enumerate(zip(sizes, mats)):
            expect = DBSCAN(eps=eps, min_samples=1, metric="precomputed").fit_predict(a)
            assert labels[p, :n].tolist() == expect.tolist(), (trial, n)
            assert (labels[p, n:] == -1).all()


def test_connected_components_chain_needs_many_hops():
    m = 9  # a path 8-7-…-0 plus an isolated node order: labels by first member
    adj = torch.eye(m, dtype=torch.bool)
    for i in range(m - 2):
        adj[i, i + 1] = adj[i + 1, i] = True
    labels = FFM.connected_components(adj[None])
    assert labels.tolist() == [[0] * (m - 1) + [1]]


# ------------------------------------------------------------------------------------------ FAR


def _stripe_stats(x: torch.Tensor, parts: int):
    b, c, hh, w = x.shape
    s = x[:, :, : parts * (hh // parts)].reshape(b, c, parts, -1)
    return s.mean(3), s.var(3)  # (B, C, P) each, unbiased


def test_far_swaps_stripe_statistics_with_another_cluster():
    g = torch.Generator().manual_seed(0)
    fmap = (torch.randn(6, 3, 5, 3, generator=g) * torch.rand(6, 3, 1, 1, generator=g) * 3
            + torch.randn(6, 3, 1, 1, generator=g)).requires_grad_(True)
    fgids = torch.tensor([0, 0, 1, 1, 2, 3])
    out, alone = F2.recompose(fmap, fgids, parts=2, times=1, generator=torch.Generator().manual_seed(1))
    assert out.shape == (6, 3, 4, 3) and int(alone) == 0  # 5 rows → 2 stripes of 2 rows; the 5th row is dropped
    mu_in, var_in = _stripe_stats(fmap.detach(), 2)
    mu_out, var_out = _stripe_stats(out.detach(), 2)
    sig_in = (var_in + 1e-6).sqrt()
    grad = torch.autograd.grad(out.sum(), fmap)[0]
    for b in range(6):
        for p in range(2):
            donors = [d for d in range(6) if fgids[d] != fgids[b]
                      and torch.allclose(mu_out[b, :, p], mu_in[d, :, p], atol=1e-5)]
            assert len(donors) == 1, (b, p)
            d = donors[0]
            # the output stripe carries the donor's statistics ...
            assert torch.allclose(var_out[b, :, p].sqrt(), sig_in[d, :, p], rtol=1e-3)
            # ... and is exactly (X − μ_b)/σ_b · σ_d + μ_d, with μ, σ detached (dOut/dX = σ_d / σ_b)
            x = fmap.detach()[b, :, 2 * p:2 * p + 2]
            expect = (x - mu_in[b, :, p, None, None]) / sig_in[b, :, p, None, None] * sig_in[d, :, p, None, None] \
                + mu_in[d, :, p, None, None]
            assert torch.allclose(out.detach()[b, :, 2 * p:2 * p + 2], expect, atol=1e-5)
            ratio = (sig_in[d, :, p] / sig_in[b, :, p])[:, None, None].expand(3, 2, 3)
            assert torch.allclose(grad[b, :, 2 * p:2 * p + 2], ratio, rtol=1e-5)
    assert (grad[:, :, 4] == 0).all()  # the dropped row


def test_far_copies_without_replacement_and_lonely_batches():
    g = torch.Generator().manual_seed(2)
    fmap = torch.randn(4, 2, 4, 2, generator=g)
    fgids = torch.tensor([0, 1, 2, 3])
    out, _ = F2.recompose(fmap, fgids, parts=2, times=3, generator=torch.Generator().manual_seed(3))
    assert out.shape == (12, 2, 4, 2)
    mu_in, _ = _stripe_stats(fmap, 2)
    mu_out, _ = _stripe_stats(out, 2)
    for b in range(4):
        for p in range(2):
            donor = [int((mu_in[:, :, p] - mu_out[k * 4 + b, :, p]).abs().sum(1).argmin()) for k in range(3)]
            assert sorted(donor) == sorted(set(range(4)) - {b}), (b, p, donor)  # copy-major, 3 distinct others
    same, alone = F2.recompose(fmap, torch.zeros(4, dtype=torch.long), 2, 1, torch.Generator().manual_seed(0))
    assert int(alone) == 4 and torch.allclose(same, fmap, atol=1e-5)  # no other cluster: own statistics, counted
    with pytest.raises(ValueError, match="fire2.times"):
        F2.recompose(fmap, fgids, 2, 4, torch.Generator().manual_seed(0))


# ------------------------------------------------------------------------------------------ losses


def test_attr_aware_loss_matches_a_loop():
    g = torch.Generator().manual_seed(4)
    pid2fg = torch.tensor([[1, 1, 1, 0, 0, 0, 0], [0, 0, 0, 1, 0, 0, 0], [0, 0, 0, 0, 1, 1, 1]], dtype=torch.bool)
    pids = torch.tensor([0, 0, 1, 2, 2])
    fgids = torch.tensor([0, 2, 3, 6, 4])
    cos = torch.rand(5, 7, generator=g) * 2 - 1
    got = F2.attr_aware_loss(cos, fgids, pid2fg[pids], scale=16.0, eps=0.1)
    total = 0.0
    for i in range(5):
        z = [16.0 * float(cos[i, j]) for j in range(7)]
        lse = math.log(sum(math.exp(v) for v in z))
        own = [j for j in range(7) if pid2fg[pids[i], j]]
        for j in range(7):
            q = (0.9 if j == fgids[i] else 0.0) + (0.1 / len(own) if j in own else 0.0)
            total -= q * (z[j] - lse)
    assert got.item() == pytest.approx(total / 5, rel=1e-5)
    with pytest.raises(ValueError, match="not among its identity"):
        F2.attr_aware_loss(cos, torch.tensor([0, 2, 3, 6, 0]), pid2fg[pids])


def test_triplet_euclidean_matches_a_loop():
    g = torch.Generator().manual_seed(5)
    feat, pids = torch.randn(6, 4, generator=g), torch.tensor([0, 0, 1, 1, 2, 2])
    total = 0.0
    for i in range(6):
        d = [max(float((feat[i] - feat[j]).pow(2).sum()), 1e-12) ** 0.5 for j in range(6)]
        d_ap = max(d[j] for j in range(6) if pids[j] == pids[i])
        d_an = min(d[j] for j in range(6) if pids[j] != pids[i])
        total += max(0.0, d_ap - d_an + 0.3)
    assert F2.triplet_euclidean(feat, pids, 0.3).item() == pytest.approx(total / 6, rel=1e-5)


def test_schedule_is_the_reference_warmup_multistep():
    cfg = Pr.make("paper", "fire2")
    lr = [FM.lr_at(e, cfg.schedule, cfg.fire2) for e in range(80)]
    assert lr[0] == pytest.approx(3.5e-6) and lr[9] == pytest.approx(3.5e-4 * 0.901)  # 1-based epochs 1, 10
    assert lr[10] == lr[19] == pytest.approx(3.5e-4) and lr[20] == lr[39] == pytest.approx(3.5e-5)
    assert lr[40] == pytest.approx(3.5e-6) and lr[60] == lr[79] == pytest.approx(3.5e-7)
    assert cfg.fire2.fg_start_epoch(80) == 25 and (cfg.data.p, cfg.data.k) == (4, 8)
    assert cfg.schedule.eval_every == 5 and cfg.model.pretrained and cfg.data.image_size == (384, 192)
    scratch = Pr.make("cpu-scratch", "fire2")  # 15 epochs from scratch: the scratch fractions
    assert scratch.fire2.fg_start_epoch(15) == 8 and scratch.schedule.milestone_epochs() == [10, 14]
    cpu = Pr.make("cpu", "fire2")  # 2-epoch fine-tuning: stage 2 from epoch 1, where CAL's clothes step starts
    assert cpu.fire2.fg_start_epoch(2) == cpu.schedule.cc_start_epoch() == 1 and cpu.model.init == "synthcc"


def test_augment_is_a_window_of_the_zero_padded_image():
    g = torch.Generator().manual_seed(6)
    x = torch.randint(0, 256, (5, 3, 8, 6), dtype=torch.uint8, generator=g)
    out = F2.fire2_augment(x, torch.Generator().manual_seed(7), pad=2, flip_p=0.0, erase_p=0.0)
    assert out.shape == (5, 3, 8, 6) and out.dtype == torch.float32
    padded = normalize(F.pad(x, (2, 2, 2, 2)))
    for b in range(5):
        hits = [(i, j) for i in range(5) for j in range(5) if torch.equal(out[b], padded[b, :, i:i + 8, j:j + 6])]
        assert len(hits) == 1, b


# ------------------------------------------------------------------------------------------ config


def test_fire2_variants_and_hash():
    for v in ("fire2", "fire2-ffm-only", "fire2-far-only"):
        cfg = Pr.make("smoke", v)
        assert cfg.model.variant == "fire2" and cfg.terms == () and not cfg.data.cloth_aug
        assert C.from_dict(C.to_dict(cfg)) == cfg
    assert Pr.make("cpu", "fire2-ffm-only").fire2.far is False
    assert Pr.make("cpu", "fire2-far-only").fire2.attr_loss is False
    base = Pr.make("cpu", "fire2")
    assert base.fire2.knn_padding == "reference"  # faithful to the code by default
    fixed = Pr.make("cpu", "fire2", **{"fire2.knn_padding": "fixed"})
    assert H.config_hash(base) != H.config_hash(fixed)
    # other runs do not hash (or need) the section: configs written before it existed still load
    cal = Pr.make("cpu", "cal")
    assert "fire2" not in H.hashed_dict(cal)
    assert H.config_hash(cal) == H.config_hash(Ov.with_overrides(cal, **{"fire2.eps": 0.9}))
    old = C.to_dict(cal)
    del old["fire2"]
    assert C.from_dict(old) == cal
    with pytest.raises(ValueError, match="knn_padding"):
        Pr.make("cpu", "fire2", **{"fire2.knn_padding": "clamp"})
    with pytest.raises(ValueError, match="cloth_aug"):
        Pr.make("cpu", "fire2", **{"data.cloth_aug": True})


# ------------------------------------------------------------------------------------------ harness


def test_ffm_reclustering_on_smoke(smoke_config):
    tr = T.Trainer(Tc.resolve(smoke_config("fire2")))
    method = tr.method
    assert isinstance(tr.model, F2.FIRe2Net) and tr.model.bottleneck.bias.requires_grad is False
    record = tr.method.train_pass(0)  # stage 1: identity loss only
    assert set(record) == {"id", "steps", "seconds"} and record["steps"] > 0
    first = method.mine()
    pids = method.pids
    n = pids.numel()
    assert first.fgids.shape == (n,) and bool(first.pid2fg[pids, first.fgids].all())
    assert int(first.per_id.sum()) == first.num_classes and bool((first.per_id >= 1).all())
    feats = FFM.train_features(tr.model, tr.images, 64, tr.device)  # what mine() clustered
    x = F.normalize(feats, dim=1)
    for p in range(method.num_ids):  # per identity: Jaccard (reference padding) + sklearn DBSCAN, dataset order
        from sklearn.cluster import DBSCAN

        idx = (pids == p).nonzero().flatten()
        dist = FFM.jaccard_distance(x[idx][None], torch.ones(1, len(idx), dtype=torch.bool), 20, 6, "reference")
        expect = DBSCAN(eps=0.4, min_samples=1, metric="precomputed").fit_predict(dist[0].numpy())
        offset = int(first.per_id[:p].sum())
        assert (first.fgids[idx] - offset).tolist() == expect.tolist()
    for c in range(first.num_classes):
        assert torch.allclose(first.centres[c], x[first.fgids == c].mean(0), atol=1e-6)
    assert torch.equal(method.fg_classifier.weight.detach(), first.centres)
    head_params = {id(p) for p in method.fg_classifier.parameters()}
    assert head_params <= {id(p) for g in method.opt.param_groups for p in g["params"]} and not method.opt.state
    stage2 = tr.method.train_pass(1)  # re-clusters at its start, then trains with all four terms
    assert {"id", "triplet", "attr", "far", "fg_classes", "far_self_donors", "ffm_seconds"} <= set(stage2)
    assert all(math.isfinite(v) for v in stage2.values())
    assert method.fg is not first and stage2["fg_classes"] == method.fg.num_classes


def test_nonfinite_term_stops_with_a_clear_error(smoke_config):
    from rlqlib.methods.base import NonFiniteLossError

    tr = T.Trainer(Tc.resolve(smoke_config("fire2")))
    with torch.no_grad():
        tr.model.bottleneck.weight.fill_(float("nan"))
    with pytest.raises(NonFiniteLossError, match=r"FIRe2 loss term\(s\) \['id'\] became non-finite at epoch 0, step 0"):
        tr.method.train_pass(0)


def test_smoke_run_through_the_run_cache_and_cli(smoke_config, synthcc_smoke, tmp_path):
    run = R.run_or_load(smoke_config("fire2"), tmp_path)
    assert run.trained and run.dir.name.startswith("fire2-")
    ev = run.metrics["eval"]
    assert set(ev) == {"general", "cc", "sc"}
    assert all(math.isfinite(v) for proto in ev.values() for v in proto.values())
    assert {"id", "triplet", "attr", "far", "steps", "fg_classes"} <= set(run.metrics["train"]["cap"])
    assert not any(k.endswith("seconds") for k in run.metrics["train"]["cap"])
    hist = run.history()
    assert "triplet" not in hist[0]["cap"] and "ffm_seconds" in hist[1]["cap"]  # stage 1, then stage 2
    model = run.load_model()
    assert isinstance(model, F2.FIRe2Net) and not model.training
    again = T.evaluate_run(run.dir, run.config)
    assert again["cc"]["top1"] == pytest.approx(ev["cc"]["top1"])
    args = ["train", "--variant", "fire2", "--preset", "smoke", "--root", str(synthcc_smoke), "--out", str(tmp_path)]
    assert cli.main(args) == 0  # same config: loaded from the cache
    assert R.load_run(run.dir).metrics == run.metrics


@pytest.mark.parametrize("cut", [1, 3])  # after a stage-1 epoch (Adam restored) / a stage-2 epoch (rebuilt)
def test_resume_gives_the_same_run(smoke_config, tmp_path, cut):
    cfg = Tc.resolve(smoke_config("fire2", epochs=4, **{"fire2.fg_start": 0.5}))  # stage 2 from epoch 2
    full = T.Trainer(cfg, tmp_path / "full")
    m_full = full.fit()
    with pytest.raises(T.TrainingInterrupted):
        T.fit(cfg, tmp_path / "cut", stop_after_epoch=cut)
    resumed = T.Trainer(cfg, tmp_path / "cut")
    m_resumed = resumed.fit(resume=True)
    assert resumed.history[0]["cap"]["id"] == full.history[0]["cap"]["id"]
    assert m_resumed["eval"] == m_full["eval"] and m_resumed["train"] == m_full["train"]
    assert all(torch.equal(a, b) for a, b in zip(_snapshot(full.model).values(), _snapshot(resumed.model).values()))
