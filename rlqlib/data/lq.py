"""Synthetic low-quality copies of a stored image set, made where the authors' code makes them (docs/spec.md §4).

The authors degrade the **raw** image (pixelation radius, motion-blur length and Gaussian σ act on its own pixels)
and only then resize it to the model input with the train transform, both for TAD's LQ twins (docs/spec.md §3.6)
and for the "BM + LQ Aug." view. Images here live in memory at the model input size (:mod:`rlqlib.data.images`);
an :class:`LQSource` with ``at = "raw"`` keeps a second copy of the set at the files' own sizes (one tensor per
distinct size) and degrades that, resizing straight to the input size (:func:`rlqlib.data.degrade.degrade` with
``size``). Celeb-reID crops are 128×256, so degrading the 384×192 input instead makes motion blur and the Gaussian
σ 1.5× weaker relative to the person. ``at = "input"``, or a set whose files are all stored at the input size
(SynthCC at the smoke/cpu presets), degrades the input images: the same draws and, for such a set, the same
images either way.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import torch
from PIL import Image
from torch import Tensor

from rlqlib.data import degrade as D
from rlqlib.data.datasets import DatasetError
from rlqlib.data.images import load_images

WHERE = ("raw", "input")


def dataset_mix(dataset: str) -> str:
    """The degradation mix the authors' code uses for a target dataset (``--dataset-specific``): its own where it
    has one, else the generic 50/50 pixelation/motion-blur mix."""
    return dataset if dataset in D.MIXES else "generic"


def image_sizes(paths: Sequence[str], workers: int = 2) -> list[tuple[int, int]]:
    """(H, W) of every file, from its header."""
    def size(path: str) -> tuple[int, int]:
        try:
            with Image.open(path) as im:
                return im.size[1], im.size[0]
        except OSError as err:
            raise DatasetError(f"cannot read image {path!r} ({err}); re-create or replace the file") from err

    with ThreadPoolExecutor(max(1, workers)) as pool:
        return list(pool.map(size, paths))


class LQSource:
    """Degraded copies, at the model input size, of the images of a set, by index.

    Args:
        inputs: (N, 3, H, W) uint8 images at the model input size (used when ``raw`` is None).
        mix: degradation mix (:data:`rlqlib.data.degrade.MIXES`).
        raw: the set at the files' own sizes: (tensors, group, slot) with one (n_g, 3, h_g, w_g) uint8 tensor per
            distinct size and, per image, its tensor ``group[i]`` and row ``slot[i]`` ((N,) long each, on the
            tensors' device); None = degrade ``inputs``.
    """

    def __init__(self, inputs: Tensor, mix: str, raw: tuple[list[Tensor], Tensor, Tensor] | None = None) -> None:
        if mix not in D.MIXES:
            raise ValueError(f"unknown degradation mix {mix!r}; expected one of {sorted(D.MIXES)}")
        self.inputs, self.mix, self.raw = inputs, mix, raw
        self.size = tuple(inputs.shape[2:])

    @property
    def at(self) -> str:
        """``raw`` when the files' own sizes are degraded, else ``input``."""
        return "input" if self.raw is None else "raw"

    def make(self, index: Tensor, generator: torch.Generator) -> Tensor:
        """(B, 3, H, W) uint8: one artifact of the mix per image ``index`` (B,), drawn from ``generator``.

        With raw images: one :func:`~rlqlib.data.degrade.degrade` call per distinct stored size in the batch (in
        ascending group order), each degrading at that size and resizing to the input size.
        """
        if self.raw is None:
            return D.degrade(self.inputs[index.to(self.inputs.device)], generator, mix=self.mix)[0]
        tensors, group, slot = self.raw
        idx = index.to(group.device)
        g = group[idx]  # (B,)
        out = torch.empty((idx.numel(), 3, *self.size), dtype=torch.uint8, device=self.inputs.device)
        for gi in torch.unique(g).tolist():
            sel = (g == gi).nonzero().flatten()  # (b,)
            lq, _ = D.degrade(tensors[gi][slot[idx[sel]]], generator, mix=self.mix, size=self.size)
            out[sel.to(out.device)] = lq.to(out.device)
        return out


def lq_source(paths: Sequence[str], inputs: Tensor, mix: str, at: str, workers: int = 2) -> LQSource:
    """The :class:`LQSource` of the images ``paths`` (already loaded at the input size as ``inputs``).

    ``at = "raw"`` reads the files again at their own sizes, grouped by size, onto ``inputs``' device — unless
    every file is stored at the input size already (then nothing is read twice). ``at = "input"`` degrades
    ``inputs``.
    """
    if at not in WHERE:
        raise ValueError(f"LQ images are made at {WHERE}, not {at!r}")
    if len(paths) != inputs.shape[0]:
        raise ValueError(f"{len(paths)} paths for {inputs.shape[0]} images")
    if at == "input":
        return LQSource(inputs, mix)
    sizes = image_sizes(paths, workers)
    if all(s == tuple(inputs.shape[2:]) for s in sizes):
        return LQSource(inputs, mix)
    by_size: dict[tuple[int, int], list[int]] = defaultdict(list)
    for i, s in enumerate(sizes):
        by_size[s].append(i)
    group, slot = np.empty(len(paths), np.int64), np.empty(len(paths), np.int64)
    tensors = []
    for gi, (s, members) in enumerate(sorted(by_size.items())):
        tensors.append(load_images([paths[i] for i in members], s, workers).to(inputs.device))
        group[members], slot[members] = gi, np.arange(len(members))
    dev = inputs.device
    return LQSource(inputs, mix, (tensors, torch.from_numpy(group).to(dev), torch.from_numpy(slot).to(dev)))
