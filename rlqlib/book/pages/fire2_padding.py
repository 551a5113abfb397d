"""The kNN padding question of FIRe²'s reference code, measured three ways for the FIRe² page.

FFM's Jaccard distance (docs/fire2-spec.md §8-P1) asks for k1 nearest neighbours inside one identity; with fewer
than k1 images the reference pads the lists with the identity's last image (``knn_padding="reference"``), the fix
cuts them (``"fixed"``, :func:`rlqlib.methods.fire2.ffm.jaccard_distance`). This module measures what that does:

* :func:`worked_example` — two hand-made identities of 2-D unit features, one smaller than k1;
* :func:`small_identities` — how many training identities of a dataset are smaller than k1;
* :func:`cluster_both` — a trained model's training features clustered under both paddings;
* :func:`padding_verdicts` — whether fixing it changes a trained model's accuracy.

Each returns tables (and the glue values the page quotes); the figures are drawn by the ``*_figure`` functions.
"""

from __future__ import annotations

from collections.abc import Mapping

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import torch

from rlqlib.book import checks as K
from rlqlib.book import experiments as X
from rlqlib.book import plots
from rlqlib.book.names import LABELS
from rlqlib.engine import presets as Pr
from rlqlib.engine import runs as R
from rlqlib.methods.fire2 import ffm as FFM


def _example_angles(k1: int) -> dict[str, tuple[list[int], list[int]]]:
    """Identity A: 7 images in two "outfits" (0–20° and 160–190°), fewer than k1; identity B: the same two groups
    with k1 + 2 images in all."""
    half = k1 // 2 + 1
    return {"A": ([0, 10, 20], [160, 170, 180, 190]),
            "B": ([5 * i for i in range(half)], [150 + 5 * i for i in range(half)])}


def worked_example(k1: int, k2: int, eps: float) -> tuple[pd.DataFrame, dict[str, pd.DataFrame], dict]:
    """Both identities through :func:`~rlqlib.methods.fire2.ffm.jaccard_distance` in one padded batch, once per
    padding, then DBSCAN (``eps``, min_samples = 1).

    Returns:
        Per identity: images, whether fewer than k1, the mean distance of an image to itself / to its outfit / to
        the other outfit and the number of clusters under each padding, the largest |reference − fixed|;
        identity A's distance matrices (``reference``, ``fixed``, ``reference − fixed``; rows and columns labelled
        by angle); glue values ``f2a_ex_*``.
    """
    example = _example_angles(k1)
    m = max(len(g0) + len(g1) for g0, g1 in example.values())
    angles = torch.zeros(len(example), m)  # (P, M) degrees
    valid = torch.zeros(len(example), m, dtype=torch.bool)  # (P, M)
    for p, (g0, g1) in enumerate(example.values()):
        angles[p, : len(g0) + len(g1)] = torch.tensor(g0 + g1, dtype=torch.float32)
        valid[p, : len(g0) + len(g1)] = True
    x = torch.stack([angles.deg2rad().cos(), angles.deg2rad().sin()], dim=2)  # (P, M, 2) unit vectors
    dist = {pad: FFM.jaccard_distance(x, valid, k1, k2, pad) for pad in FFM.PADDINGS}  # (P, M, M) each
    labels = {pad: FFM.dbscan_min_samples_1(d, valid, eps) for pad, d in dist.items()}  # (P, M) each
    rows = []
    for p, (g0, g1) in enumerate(example.values()):
        n = len(g0) + len(g1)
        outfit = torch.tensor([0] * len(g0) + [1] * len(g1))
        same = outfit[:, None] == outfit[None, :]  # (n, n)
        off = same & ~torch.eye(n, dtype=torch.bool)
        row = {"images": n, "fewer than k1": n < k1}
        for pad in FFM.PADDINGS:
            d = dist[pad][p, :n, :n]  # (n, n)
            row[f"self ({pad})"] = float(d.diagonal().mean())
            row[f"same outfit ({pad})"] = float(d[off].mean())
            row[f"other outfit ({pad})"] = float(d[~same].mean())
            row[f"clusters ({pad})"] = int(labels[pad][p, :n].max()) + 1
        row["max |reference − fixed|"] = float((dist["reference"][p, :n, :n] - dist["fixed"][p, :n, :n]).abs().max())
        rows.append(row)
    table = pd.DataFrame(rows, index=pd.Index(list(example), name="identity"))
    n_a = int(table.loc["A", "images"])
    ticks = [f"{v:.0f}°" for v in angles[0, :n_a].tolist()]
    mats = {pad: pd.DataFrame(dist[pad][0, :n_a, :n_a].numpy(), index=ticks, columns=ticks) for pad in FFM.PADDINGS}
    mats["reference − fixed"] = mats["reference"] - mats["fixed"]
    return table, mats, _example_glue(table)


def _example_glue(table: pd.DataFrame) -> dict:
    a, b = table.loc["A"], table.loc["B"]
    n_ref, n_fix = int(a["clusters (reference)"]), int(a["clusters (fixed)"])
    return {
        "f2a_ex_n": int(a["images"]), "f2a_ex_big_n": int(b["images"]),
        "f2a_ex_self_ref": float(a["self (reference)"]),
        "f2a_ex_within_ref": float(a["same outfit (reference)"]),
        "f2a_ex_within_fixed": float(a["same outfit (fixed)"]),
        "f2a_ex_across_ref": float(a["other outfit (reference)"]),
        "f2a_ex_across_fixed": float(a["other outfit (fixed)"]),
        "f2a_ex_big_maxdiff": float(b["max |reference − fixed|"]),
        "f2a_ex_clusters": (f"DBSCAN finds {n_ref} cluster{'s' if n_ref != 1 else ''} in identity A under the "
                            f"reference padding and {n_fix} under the fixed one"
                            + (": the bug changes the pseudo labels of this identity" if n_ref != n_fix
                               else ": here the bug leaves the pseudo labels unchanged")),
    }


def example_figure(mats: Mapping[str, pd.DataFrame]) -> plt.Figure:
    """Identity A's distance matrices side by side (:func:`worked_example`)."""
    fig, axes = plt.subplots(1, len(mats), figsize=(5 * len(mats), 4.4))
    for ax, (title, mat) in zip(axes, mats.items()):
        plots.crosstab_heatmap(mat, title=f"identity A: {title}", fmt="{:.2f}", ax=ax)
    fig.tight_layout()
    return fig


def preset_k1(preset: str) -> int:
    """FFM's k1 at a preset (``fire2`` variant)."""
    return Pr.make(preset, "fire2").fire2.k1


def small_identities(sizes: pd.Series, k1s: Mapping[str, int]) -> tuple[pd.DataFrame, dict]:
    """How many identities (``sizes``: images per training identity) have fewer than each k1 (``k1s``: where it
    comes from → k1; duplicates dropped); glue ``f2a_n_ids``, ``f2a_small_ids``, ``f2a_small_share``,
    ``f2a_size_range`` for the first k1."""
    table = pd.DataFrame([{"k1 of": where, "k1": k, "train identities": len(sizes),
                           "with fewer than k1 images": int((sizes < k).sum()),
                           "share (%)": 100 * float((sizes < k).mean()),
                           "their images": int(sizes[sizes < k].sum())}
                          for where, k in k1s.items()]).drop_duplicates(subset="k1").set_index("k1 of")
    k1 = next(iter(k1s.values()))
    glue = {"f2a_n_ids": len(sizes), "f2a_small_ids": int((sizes < k1).sum()),
            "f2a_small_share": 100 * float((sizes < k1).mean()),
            "f2a_size_range": f"{sizes.min()}–{sizes.max()} (median {sizes.median():g})"}
    return table, glue


def size_figure(sizes: pd.Series, k1: int, title: str) -> plt.Figure:
    """Histogram of the training identities' sizes with the k1 line."""
    fig, ax = plt.subplots(figsize=(6, 3.2))
    ax.hist(sizes, bins=np.arange(sizes.min(), sizes.max() + 2) - 0.5, color="0.7", edgecolor="0.3")
    ax.axvline(k1 - 0.5, color="tab:red", ls="--", label=f"k1 = {k1}: smaller identities left of the line")
    ax.set(xlabel="training images of the identity", ylabel="identities", title=title)
    ax.legend(fontsize=8)
    fig.tight_layout()
    return fig


def cluster_both(run: R.Run, s: X.Setting, train_labels: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame, dict]:
    """A trained FIRe² run's final model embeds the training set the way FFM does (eval mode, post-BN features, no
    flip); :func:`~rlqlib.methods.fire2.ffm.cluster_identities` clusters every identity under each padding.

    Returns:
        Per identity: images, outfits, clusters under each padding, whether both split it the same way; a summary
        per group (fewer than k1 images / at least k1 / all); glue ``f2a_fg_ref``, ``f2a_fg_fixed``,
        ``f2a_ids_changed``, ``f2a_ids_changed_small``.
    """
    f2 = run.config.fire2
    dev = torch.device(s.device or run.config.runtime.device)
    size = tuple(run.config.data.image_size)
    feats = FFM.train_features(run.load_model(dev), X.split_images(s, "train", size),
                               run.config.runtime.eval_batch_size, dev)  # (N, D)
    pid_col = train_labels["pid"].to_numpy()
    sizes = train_labels.groupby("pid").size()
    pids = torch.tensor(pid_col, dtype=torch.long)  # (N,)
    fg = {pad: FFM.cluster_identities(feats, pids, len(sizes), f2.k1, f2.k2, f2.eps, pad) for pad in FFM.PADDINGS}
    local = {pad: (g.fgids.cpu() - (g.per_id.cpu().cumsum(0) - g.per_id.cpu())[pids]).numpy()  # (N,) label in identity
             for pad, g in fg.items()}
    same_partition = pd.Series(local["reference"] == local["fixed"]).groupby(pid_col).all()
    per_id = pd.DataFrame({"images": sizes.to_numpy(),
                           "outfits": train_labels.groupby("pid")["clothes_id"].nunique().to_numpy(),
                           "clusters (reference)": fg["reference"].per_id.cpu().numpy(),
                           "clusters (fixed)": fg["fixed"].per_id.cpu().numpy(),
                           "same partition": same_partition.to_numpy()})
    per_id["group"] = np.where(per_id["images"] < f2.k1, f"fewer than k1 = {f2.k1} images", f"at least k1 = {f2.k1}")
    summary = per_id.groupby("group").agg(identities=("images", "size"), images=("images", "mean"),
                                         outfits=("outfits", "mean"),
                                         clusters_reference=("clusters (reference)", "mean"),
                                         clusters_fixed=("clusters (fixed)", "mean"),
                                         split_differently=("same partition", lambda v: int((~v).sum())))
    summary.loc["all"] = [len(per_id), per_id["images"].mean(), per_id["outfits"].mean(),
                          per_id["clusters (reference)"].mean(), per_id["clusters (fixed)"].mean(),
                          int((~per_id["same partition"]).sum())]
    changed = ~per_id["same partition"]
    glue = {"f2a_fg_ref": fg["reference"].num_classes, "f2a_fg_fixed": fg["fixed"].num_classes,
            "f2a_ids_changed": int(changed.sum()),
            "f2a_ids_changed_small": int((changed & (per_id["images"] < f2.k1)).sum())}
    return per_id, summary, glue


def clusters_figure(per_id: pd.DataFrame, k1: int, title: str) -> plt.Figure:
    """Clusters per identity against its size, under each padding (:func:`cluster_both`)."""
    fig, ax = plt.subplots(figsize=(6.5, 3.4))
    for pad, marker, shift in (("reference", "o", -0.12), ("fixed", "x", 0.12)):
        ax.scatter(per_id["images"] + shift, per_id[f"clusters ({pad})"], marker=marker, s=22, alpha=0.7, label=pad)
    ax.axvline(k1 - 0.5, color="tab:red", ls="--", lw=1, label=f"k1 = {k1}")
    ax.yaxis.get_major_locator().set_params(integer=True)
    ax.set(xlabel="training images of the identity", ylabel="FFM clusters", title=title)
    ax.legend(fontsize=8)
    fig.tight_layout()
    return fig


def logged_fg_classes(runs: Mapping[str, list[R.Run]]) -> pd.DataFrame:
    """The number of fine-grained classes each run logged per second-stage epoch: rows (padding, seed), columns
    epochs (1-based)."""
    logged = pd.DataFrame({(name, run.config.runtime.seed): {h["epoch"] + 1: h["cap"]["fg_classes"]
                                                             for h in run.history() if "fg_classes" in h.get("cap", {})}
                           for name, rs in runs.items() for run in rs}).T
    logged.index.names = ["padding", "seed"]
    logged.columns.name = "epoch"
    return logged


#: What a verdict on "fixed − reference > 0" says about the padding.
READING = {"agrees": "fixed padding better", "differs": "reference padding better",
           "inconclusive": "no difference beyond the noise"}


def padding_verdicts(long: pd.DataFrame, fixed: str, reference: str, sizes: pd.Series, k1: int,
                     seed_std: float = float("nan")) -> tuple[pd.DataFrame, dict]:
    """Fixed − reference padding, paired by seed, per protocol (CC, general) and metric, read against the
    hypothesis that the fix helps (:func:`rlqlib.book.checks.sign_checks`).

    Returns:
        The differences the dataset has (index protocol, metric); glue ``f2a_pad_<protocol>_<metric>`` and
        ``…_reading`` for both protocols, and ``f2a_pad_summary``.
    """
    checks = K.sign_checks([("pad", fixed, reference, 1.0)], long, ("cc", "general"), seed_std=seed_std)
    glue = {}
    for r in checks.itertuples():
        glue[f"f2a_pad_{r.protocol}_{r.metric}"] = r.text
        glue[f"f2a_pad_{r.protocol}_{r.metric}_reading"] = f"**{READING.get(r.verdict, r.verdict)}**"
    done = checks[checks["verdict"] != "n/a"]
    table = pd.DataFrame({"protocol": done["protocol"].map(LABELS), "metric": done["metric"].map(LABELS),
                          "fixed − reference (points)": done["text"], "n": done["n"],
                          "verdict (hypothesis: fixed > reference)": done["verdict"],
                          "reading": done["verdict"].map(READING)}).set_index(["protocol", "metric"])
    beyond = table[table["verdict (hypothesis: fixed > reference)"] != "inconclusive"]
    small = f"{int((sizes < k1).sum())} of the {len(sizes)} training identities have fewer than k1 = {k1} images"
    glue["f2a_pad_summary"] = (
        f"Here {small}, and none of the {len(table)} accuracy differences exceeds the noise: on this benchmark "
        "and preset the padding has no measurable effect on accuracy." if beyond.empty else
        f"Here {small}, and {len(beyond)} of the {len(table)} accuracy differences exceed the noise ("
        + "; ".join(f"{p} {m}: {r}" for (p, m), r in beyond["reading"].items()) + ").")
    return table, glue
