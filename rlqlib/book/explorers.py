"""The book's kernel-free explorers: `anywidget <https://anywidget.dev>`_ widgets whose front-end holds everything it
shows, so they are live in Jupyter and just as interactive in the static HTML book (no kernel, no CDN).

Python precomputes a JSON payload (rankings, attributes, distances, and the thumbnails as one JPEG sprite sheet,
:mod:`rlqlib.book.sprites`); the ES modules in ``rlqlib/book/js/`` filter, page and draw it in the browser. The
executed notebook saves the widget state, and the HTML book renders it with the vendored widget manager and
anywidget's front-end module (``scripts/vendor_assets.sh``).

- :func:`match_explorer` (:class:`MatchExplorer`): two models' top-k for every query (:func:`match_payload`).
- :func:`tsne_explorer` (:class:`TsneExplorer`): Fig. 6's t-SNE maps, a point's image and its HQ/LQ twin
  (:func:`tsne_payload`).
- :func:`identity_browser` (:class:`IdentityBrowser`): a SynthCC identity's images by outfit and camera
  (:func:`identity_payload`).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

import anywidget
import numpy as np
import pandas as pd
import torch
import traitlets

from rlqlib.book.matches import (BAD_COLOR, GOOD_COLOR, MatchExplorerError, Ranking, check_labels, example_queries,
                                 query_table, rank_matches)
from rlqlib.book.sprites import sprite_sheet

JS = Path(__file__).parent / "js"
#: Attributes shown and offered as filters when the labels have them (SynthCC's metadata).
SHOWN = ("gender", "pose_family", "view", "artifact")
HQ_COLOR, LQ_COLOR = "#3b6fb6", "#d7301f"


def esm(module: str) -> str:
    """The ES module source of ``js/<module>``: ``js/common.js`` (shared DOM and sprite helpers) then the module's
    own code; a module loaded from a ``blob:`` URL, as anywidget loads it, cannot import a sibling file."""
    return (JS / "common.js").read_text() + "\n" + (JS / module).read_text()


class MatchExplorer(anywidget.AnyWidget):
    """Two models' rankings, query by query (front-end: ``js/match_explorer.js``).

    Traits: ``data`` (:func:`match_payload`); ``selection`` (what the front-end shows: protocol, filters, query, k;
    set by the front-end in Jupyter, empty in the static book).
    """

    _esm = esm("match_explorer.js")
    _css = (JS / "explorers.css").read_text()
    data = traitlets.Dict().tag(sync=True)
    selection = traitlets.Dict().tag(sync=True)


class TsneExplorer(anywidget.AnyWidget):
    """Fig. 6's t-SNE maps with the image behind each point (front-end: ``js/tsne_explorer.js``).

    Traits: ``data`` (:func:`tsne_payload`).
    """

    _esm = esm("tsne_explorer.js")
    _css = (JS / "explorers.css").read_text()
    data = traitlets.Dict().tag(sync=True)


class IdentityBrowser(anywidget.AnyWidget):
    """A SynthCC identity's images, grouped by outfit and camera (front-end: ``js/identity_browser.js``).

    Traits: ``data`` (:func:`identity_payload`).
    """

    _esm = esm("identity_browser.js")
    _css = (JS / "explorers.css").read_text()
    data = traitlets.Dict().tag(sync=True)


def _columns(labels: pd.DataFrame, attributes: Sequence[str]) -> dict[str, list]:
    """The label columns the front-end shows: ``pid, camid, clothes_id`` and ``attributes`` (gender as text)."""
    out: dict[str, list] = {c: labels[c].astype(int).tolist() for c in ("pid", "camid", "clothes_id")}
    for c in attributes:
        values = labels[c]
        if c == "gender":
            values = values.map({1: "male", 0: "female"}).fillna("unknown")
        out[c] = values.astype(str).tolist()
    return out


def _model_ranks(r: Ranking, remap: np.ndarray, k: int) -> dict[str, list]:
    """One model's top-k with gallery rows renumbered to the payload's gallery list (-1 stays -1)."""
    top = np.where(r.index[:, :k] >= 0, remap[np.maximum(r.index[:, :k], 0)], -1)
    return {"top": top.tolist(), "dist": np.round(np.nan_to_num(r.dist[:, :k], nan=0.0), 4).tolist(),
            "ok": r.correct[:, :k].astype(int).tolist(), "rank": (r.first_hit + 1).tolist(),
            "ap": np.round(np.nan_to_num(100.0 * r.ap, nan=0.0), 2).tolist()}


def match_payload(query_labels: pd.DataFrame, gallery_labels: pd.DataFrame,
                  rankings: Mapping[str, tuple[Ranking, Ranking]], names: Sequence[str], k: int, protocol: str,
                  query: int, thumb_height: int = 80) -> dict:
    """Everything :class:`MatchExplorer` shows, as JSON values.

    Args:
        query_labels, gallery_labels: per-image tables (:data:`rlqlib.book.matches.REQUIRED` columns; the
            :data:`SHOWN` attributes when present).
        rankings: protocol → (A's, B's) :class:`~rlqlib.book.matches.Ranking` with at least ``k`` items.
        names: display names of A and B; k: items per model; protocol, query: the first view.
        thumb_height: thumbnail height in pixels (width: half of it).

    Returns:
        ``names, k, protocols, protocol, query, attributes, colors``; ``sprite`` (:meth:`Sprite.state`);
        ``queries`` and ``gallery`` (column lists, each with ``cell``: its sprite cell; the gallery holds only the
        images some top-k shows); ``ranks``: protocol → ``clothes`` and ``outcome`` per query
        (:func:`~rlqlib.book.matches.query_table`) and ``models``: [A, B], each ``top`` (Q, k) rows of ``gallery``,
        ``dist``, ``ok`` (0/1), ``rank`` (1-based first correct, 0: none) and ``ap`` (%).
    """
    attributes = [c for c in SHOWN if c in query_labels.columns and c in gallery_labels.columns]
    used = np.unique(np.concatenate([r.index[:, :k].ravel() for pair in rankings.values() for r in pair]))
    used = used[used >= 0]
    remap = np.full(len(gallery_labels), -1, np.int64)
    remap[used] = np.arange(len(used))
    gallery = gallery_labels.iloc[used]
    paths = query_labels["path"].astype(str).tolist() + gallery["path"].astype(str).tolist()
    sprite = sprite_sheet(paths, height=thumb_height)
    ranks = {}
    for p, (a, b) in rankings.items():
        t = query_table(query_labels, gallery_labels, a, b)
        ranks[p] = {"clothes": t["clothes"].tolist(), "outcome": t["outcome"].tolist(),
                    "models": [_model_ranks(a, remap, k), _model_ranks(b, remap, k)]}
    nq = len(query_labels)
    return {"names": list(names), "k": int(k), "protocols": list(rankings), "protocol": protocol, "query": int(query),
            "attributes": attributes, "colors": {"good": GOOD_COLOR, "bad": BAD_COLOR}, "sprite": sprite.state(),
            "queries": {**_columns(query_labels, attributes), "cell": list(range(nq))},
            "gallery": {**_columns(gallery, attributes), "cell": list(range(nq, nq + len(used)))},
            "ranks": ranks}


def match_explorer(query_labels: pd.DataFrame, gallery_labels: pd.DataFrame, dist_a: torch.Tensor | np.ndarray,
                   dist_b: torch.Tensor | np.ndarray, names: Sequence[str] = ("A", "B"), k: int = 5,
                   protocols: Sequence[str] = ("general", "cc"), protocol: str | None = None,
                   query: int | None = None, thumb_height: int = 80) -> MatchExplorer:
    """Pick a query (filters: camera, clothes of its correct matches, artifact, gender, pose family, top-1 outcome;
    a query list with previous/next; k) and see both models' top-k, in Jupyter and in the static HTML book.

    Each gallery thumbnail has a green (correct) or red (wrong) border, its rank, distance and attributes. The
    ranking drops the protocol's junk items (:func:`rlqlib.book.matches.rank_matches`).

    Args:
        query_labels, gallery_labels: per-image tables (:func:`rlqlib.book.experiments.labels`).
        dist_a, dist_b: (Q, G) distances of models A and B (:func:`rlqlib.book.matches.distances`).
        names: display names of A and B.
        k: the most gallery items shown per model.
        protocols: offered junk rules; ``protocol`` (default: the last) is shown first.
        query: the query shown first; default: the first of :func:`~rlqlib.book.matches.example_queries` (only A
            right at top-1, largest AP gain of A).
        thumb_height: thumbnail height in pixels.
    """
    if len(names) != 2:
        raise MatchExplorerError(f"names must name the two models, got {names!r}")
    protocol = protocol or protocols[-1]
    if protocol not in protocols:
        raise MatchExplorerError(f"protocol {protocol!r} is not among the offered protocols {list(protocols)}")
    check_labels(query_labels, "query_labels")  # the thumbnails need the image paths as well as the labels
    check_labels(gallery_labels, "gallery_labels")
    query_labels, gallery_labels = query_labels.reset_index(drop=True), gallery_labels.reset_index(drop=True)
    rankings = {p: (rank_matches(dist_a, query_labels, gallery_labels, p, k),
                    rank_matches(dist_b, query_labels, gallery_labels, p, k)) for p in protocols}
    if query is None:
        picks = example_queries(query_table(query_labels, gallery_labels, *rankings[protocol]), 1)
        query = picks[0][0] if picks else 0
    if not 0 <= query < len(query_labels):
        raise MatchExplorerError(f"query {query} is out of range (0..{len(query_labels) - 1})")
    return MatchExplorer(data=match_payload(query_labels, gallery_labels, rankings, names, k, protocol, query,
                                            thumb_height))


def tsne_payload(hq: torch.Tensor, lq: torch.Tensor, pids: Sequence[int], artifacts: Sequence[str],
                 maps: Mapping[str, np.ndarray], lq_nearest: Mapping[str, np.ndarray],
                 twin_cosine: Mapping[str, np.ndarray], scores: Mapping[str, Mapping[str, float]],
                 thumb_height: int = 64, size: int = 440) -> dict:
    """Everything :class:`TsneExplorer` shows, as JSON values.

    Args:
        hq, lq: (N, 3, H, W) uint8 HQ images and their LQ twins.
        pids, artifacts: (N,) identity and artifact of each pair.
        maps: model → (2N, 2) t-SNE coordinates, rows 0..N-1 HQ, N..2N-1 LQ (:func:`rlqlib.book.analysis.tsne_pairs`).
        lq_nearest: model → (N,) 1 where the LQ twin's nearest neighbour is LQ (the 1-NN LQ-clustering term).
        twin_cosine: model → (N,) cosine of each HQ feature and its LQ twin.
        scores: model → ``rate``, ``rate_wide``, ``k_wide``, ``twin`` (the page's score table).
        thumb_height: thumbnail height (width: half); size: the map's side in pixels.

    Returns:
        ``models, n, size, pid, artifact, colors, sprite`` (cells 0..N-1 HQ, N..2N-1 LQ), and per model
        ``points`` (2N, 2), ``lq_nn`` (N,), ``twin_cos`` (N,) and ``scores``.
    """
    n = hq.shape[0]
    if lq.shape != hq.shape or len(pids) != n or len(artifacts) != n:
        raise ValueError(f"hq {tuple(hq.shape)}, lq {tuple(lq.shape)}, {len(pids)} pids and {len(artifacts)} "
                         "artifacts must describe the same N pairs")
    bad = [m for m, xy in maps.items() if np.shape(xy) != (2 * n, 2)]
    if bad:
        raise ValueError(f"t-SNE maps of {bad} are not (2N, 2) = ({2 * n}, 2); pass rlqlib.book.analysis.tsne_pairs")
    sprite = sprite_sheet(list(hq) + list(lq), height=thumb_height)
    return {"models": list(maps), "n": n, "size": size, "pid": [int(p) for p in pids],
            "artifact": [str(a) for a in artifacts], "colors": {"hq": HQ_COLOR, "lq": LQ_COLOR},
            "sprite": sprite.state(), "points": {m: np.round(np.asarray(xy, float), 2).tolist() for m, xy in maps.items()},
            "lq_nn": {m: np.asarray(v).astype(int).tolist() for m, v in lq_nearest.items()},
            "twin_cos": {m: np.round(np.asarray(v, float), 3).tolist() for m, v in twin_cosine.items()},
            "scores": {m: {key: float(val) for key, val in sc.items()} for m, sc in scores.items()}}


def tsne_explorer(**payload) -> TsneExplorer:
    """:class:`TsneExplorer` of :func:`tsne_payload` (same arguments)."""
    return TsneExplorer(data=tsne_payload(**payload))


def identity_payload(root: str | Path, split: str = "train", max_images: int = 12, thumb_height: int = 64) -> dict:
    """Everything :class:`IdentityBrowser` shows: per identity of ``split``, up to ``max_images`` images sorted by
    outfit, camera and name, each captioned ``o<outfit> c<camera>`` and its artifact.

    Returns:
        ``split``, ``sprite``, and per identity (in pid order) ``ids``, ``gender``, ``outfits``, ``cameras``,
        ``total`` and ``shown`` (image counts), ``cells`` (sprite cells) and ``captions`` (lines per image).
    """
    root = Path(root)
    meta_file = root / "annotations" / "metadata.csv"
    if not meta_file.is_file():
        raise ValueError(f"{meta_file} not found: the identity browser needs a SynthCC folder (made by `rlq synth`)")
    meta = pd.read_csv(meta_file, dtype={"image": str})
    meta = meta[meta["split"] == split]
    if meta.empty:
        raise ValueError(f"{meta_file} has no rows for split {split!r}")
    out: dict = {"split": split, "ids": [], "gender": [], "outfits": [], "cameras": [], "total": [], "shown": [],
                 "cells": [], "captions": []}
    paths: list[Path] = []
    for pid, rows in meta.sort_values(["pid", "outfit", "camid", "image"]).groupby("pid", sort=True):
        shown = rows.head(max_images)
        out["ids"].append(int(pid))
        out["gender"].append("male" if int(rows["gender"].iloc[0]) == 1 else "female")
        out["outfits"].append(int(rows["outfit"].nunique()))
        out["cameras"].append(int(rows["camid"].nunique()))
        out["total"].append(len(rows))
        out["shown"].append(len(shown))
        out["cells"].append(list(range(len(paths), len(paths) + len(shown))))
        out["captions"].append([[f"o{r.outfit} c{r.camid + 1}", r.artifact] for r in shown.itertuples()])
        paths += [root / split / name for name in shown["image"]]
    out["sprite"] = sprite_sheet(paths, height=thumb_height).state()
    return out


def identity_browser(root: str | Path, split: str = "train", max_images: int = 12,
                     thumb_height: int = 64) -> IdentityBrowser:
    """Pick a SynthCC identity and see its images, grouped by outfit and camera, with the artifact of each
    (:func:`identity_payload`); works in Jupyter and in the static HTML book."""
    return IdentityBrowser(data=identity_payload(root, split, max_images, thumb_height))
