"""Fig. 6: do low-quality features form their own cluster? HQ images of the external set's test identities and their
synthetic LQ twins, embedded by every model, scored with :func:`rlqlib.book.analysis.lq_cluster_score`::

    pairs = lq_pairs(s, runs, "BM+TAD")            # images, artifacts, each model's (HQ, LQ) features
    sc = lq_scores(pairs.features, MODELS)         # 1-NN and 10-NN scores per model
    sc.table(); sc.claims()                        # the score table; the paper's claims with verdicts
    sc.explorer(pairs, tsne_maps(pairs.features))  # the maps to point at (kernel-free widget)
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import torch
from torch import Tensor

from rlqlib.book import experiments as X
from rlqlib.book.analysis import (LQClusterScore, external_sample, fixed_degrade, image_tag, lq_cluster_score,
                                  tad_mix, tsne_pairs)
from rlqlib.book.explorers import TsneExplorer, tsne_explorer
from rlqlib.book.verdicts import claims, one_run
from rlqlib.data.degrade import ALL_ARTIFACTS
from rlqlib.data.images import load_images
from rlqlib.engine.runs import Run


@dataclass(frozen=True)
class LQPairs:
    """External HQ images, their LQ twins and every model's features of both.

    Attributes:
        images: ``path, pid`` of the HQ images (:func:`rlqlib.book.analysis.external_sample`).
        hq, lq: (N,3,H,W) uint8 images at the models' input size.
        artifacts: (N,) the artifact each LQ twin got.
        features: model → ((N, D) HQ features, (N, D) LQ features).
    """

    images: pd.DataFrame
    hq: Tensor
    lq: Tensor
    artifacts: pd.Series
    features: dict[str, tuple[Tensor, Tensor]]

    def figure(self, n: int = 8) -> plt.Figure:
        """``n`` pairs spread over the sample: HQ images on top, their LQ twins (titled by artifact) below."""
        fig, axes = plt.subplots(2, n, figsize=(n, 3.6))
        for j, i in enumerate(np.linspace(0, len(self.images) - 1, n).astype(int)):
            for row, (imgs, label) in enumerate(((self.hq, "HQ"), (self.lq, self.artifacts[i]))):
                axes[row, j].imshow(imgs[i].permute(1, 2, 0).numpy())
                axes[row, j].set_title(label, fontsize=7)
                axes[row, j].axis("off")
        fig.tight_layout()
        return fig

    def glue(self) -> dict:
        """The page's glue values: pairs, identities, artifact counts."""
        return {"fig6_pairs": len(self.images), "fig6_ids": int(self.images["pid"].nunique()),
                "fig6_mix": ", ".join(f"{k} {v}" for k, v in self.artifacts.value_counts().items())}


def lq_pairs(s: X.Setting, runs: Mapping[str, Sequence[Run]], mix_of: str, max_pairs: int = 600,
             seed: int = 0) -> LQPairs:
    """Up to ``max_pairs`` external test images, each degraded once with an artifact of the TAD mix of
    ``runs[mix_of]`` (fixed generator ``seed``), embedded by every model's first run (features cached per run).
    """
    cfg = runs[mix_of][0].config
    size, mix = tuple(cfg.data.image_size), tad_mix(cfg)
    ext = external_sample(cfg, max_pairs, seed=seed)
    hq = load_images(ext["path"].tolist(), size)  # (N,3,H,W) uint8
    lq, info = fixed_degrade(hq, seed=seed, mix=mix)
    tag = image_tag(ext["path"], "external-test", f"{size[0]}x{size[1]}", mix, f"seed{seed}")
    feats = {name: (X.embed(r[0], hq, s, f"hq-{tag}"), X.embed(r[0], lq, s, f"lq-{tag}")) for name, r in runs.items()}
    return LQPairs(ext, hq, lq, pd.Series(np.array(ALL_ARTIFACTS)[info["artifact"].numpy()]), feats)


def _mean_se(x: np.ndarray) -> tuple[float, float]:
    return float(x.mean()), float(x.std(ddof=1) / np.sqrt(len(x)))


@dataclass(frozen=True)
class LQScores:
    """Every model's LQ-clustering score at 1 and ``k_wide`` neighbours.

    Attributes:
        scores: model → {k: :class:`rlqlib.book.analysis.LQClusterScore`} for k = 1 and ``k_wide``.
        models: display name → variant (glue keys use the variant).
        k_wide: the wider neighbourhood.
    """

    scores: dict[str, dict[int, LQClusterScore]]
    models: dict[str, str]
    k_wide: int

    def table(self) -> pd.DataFrame:
        """One row per model: 1-NN score and its SE (over pairs), the ``k_wide``-NN score, twin cosine, pairs."""
        return pd.DataFrame({
            name: {"LQ neighbour (%)": sc[1].rate, "± SE": sc[1].per_item.std(ddof=1) / np.sqrt(sc[1].n),
                   f"LQ in {self.k_wide}-NN (%)": sc[self.k_wide].rate, "twin cosine": sc[1].twin_cosine,
                   "pairs": sc[1].n}
            for name, sc in self.scores.items()}).T

    def subtitles(self) -> dict[str, str]:
        """Model → a t-SNE panel's second title line."""
        return {name: f"LQ neighbour {sc[1].rate:.0f} %, twin cos {sc[1].twin_cosine:.2f}"
                for name, sc in self.scores.items()}

    def claims(self) -> pd.DataFrame:
        """The paper's claims: CAL and BM cluster LQ features (score − 50), BM + TAD and RLQ have fewer LQ
        clusters than BM (paired over the same LQ images); ``ours (points)``, ``SE`` and the verdict."""
        name = {v: n for n, v in self.models.items()}
        per_item = {v: self.scores[name[v]][1].per_item for v in ("cal", "bm", "tad", "rlq")}
        rows = [{"claim": f"{name[v]} clusters LQ features (LQ neighbour > 50 %)", "paper": "yes (lumps of red dots)",
                 **dict(zip(("ours (points)", "SE"), _mean_se(per_item[v] - 50.0)))} for v in ("cal", "bm")]
        rows += [{"claim": f"{name[v]} has fewer LQ clusters than {name['bm']} (LQ neighbour drops)",
                  "paper": "yes (TAD reduces them)",
                  **dict(zip(("ours (points)", "SE"), _mean_se(per_item["bm"] - per_item[v])))} for v in ("tad", "rlq")]
        out = pd.DataFrame(rows)
        out["verdict"] = [one_run(r["ours (points)"], r["SE"], 1.0) for _, r in out.iterrows()]
        return out

    def record(self) -> pd.DataFrame:
        """:meth:`claims` as the page's claims record (:func:`rlqlib.book.verdicts.claims`)."""
        c = self.claims()
        return claims(c["claim"], c["ours (points)"], c["paper"], c["verdict"], se=c["SE"])

    def explorer(self, pairs: LQPairs, maps: Mapping[str, np.ndarray]) -> TsneExplorer:
        """The t-SNE maps to point at (:func:`rlqlib.book.explorers.tsne_explorer`): a point's image, its HQ/LQ
        twin, whether the LQ twin's nearest neighbour is LQ, and the model's scores."""
        twin = {name: torch.nn.functional.cosine_similarity(h.float(), q.float(), dim=1).numpy()
                for name, (h, q) in pairs.features.items()}
        return tsne_explorer(
            hq=pairs.hq, lq=pairs.lq, pids=pairs.images["pid"].tolist(), artifacts=pairs.artifacts.tolist(),
            maps=maps, lq_nearest={name: sc[1].per_item > 0 for name, sc in self.scores.items()},
            twin_cosine=twin, scores={name: {"rate": sc[1].rate, "rate_wide": sc[self.k_wide].rate,
                                             "k_wide": self.k_wide, "twin": sc[1].twin_cosine}
                                      for name, sc in self.scores.items()})

    def glue(self) -> dict:
        """The page's glue values, keyed by variant: scores, twin cosines, claim differences and verdicts."""
        out: dict = {"fig6_k_wide": self.k_wide}
        for name, sc in self.scores.items():
            v = self.models[name]
            out.update({f"fig6_rate_{v}": sc[1].rate, f"fig6_rate10_{v}": sc[self.k_wide].rate,
                        f"fig6_twin_{v}": float(sc[1].twin_cosine)})
        for v, r in zip(("cal", "bm", "tad", "rlq"), self.claims().itertuples()):
            out.update({f"fig6_d_{v}": float(r[3]), f"fig6_v_{v}": f"**{r.verdict}**"})
        return out


def lq_scores(features: Mapping[str, tuple[Tensor, Tensor]], models: Mapping[str, str], k_wide: int = 10
              ) -> LQScores:
    """LQ-clustering scores of every model's (HQ, LQ) features at 1 and ``k_wide`` (at most 2N − 2) neighbours."""
    n = len(next(iter(features.values()))[0])
    k_wide = min(k_wide, 2 * n - 2)
    scores = {name: {k: lq_cluster_score(h, l, k) for k in (1, k_wide)} for name, (h, l) in features.items()}
    return LQScores(scores, dict(models), k_wide)


def tsne_maps(features: Mapping[str, tuple[Tensor, Tensor]], seed: int = 0) -> dict[str, np.ndarray]:
    """Model → (2N, 2) t-SNE of its pooled HQ and LQ features (:func:`rlqlib.book.analysis.tsne_pairs`)."""
    return {name: tsne_pairs(h, l, seed=seed) for name, (h, l) in features.items()}
