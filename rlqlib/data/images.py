"""Decoding images and clothes masks into memory, once, at the model input size.

Images are decoded with Pillow into a uint8 tensor at the model input size (:func:`load_images`) and kept in memory,
so neither decoding nor a per-image Python loop sits in the training hot path. Masks are stored at model size too
(resized with nearest neighbour; the reference resizes after recolouring the raw image, docs/spec.md §3.7).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import torch
from PIL import Image
from torch import Tensor

from rlqlib.data.datasets import DatasetError


def _read_rgb(path: str, size: tuple[int, int]) -> np.ndarray:
    with Image.open(path) as im:
        im = im.convert("RGB")
        if im.size != (size[1], size[0]):
            im = im.resize((size[1], size[0]), Image.BILINEAR)  # as T.Resize on a PIL image
        return np.array(im).transpose(2, 0, 1)  # (3,H,W)


def _read_mask(path: str, size: tuple[int, int]) -> np.ndarray:
    with Image.open(path) as im:
        im = im.convert("RGB")
        if im.size != (size[1], size[0]):
            im = im.resize((size[1], size[0]), Image.NEAREST)
        return np.array(im).any(axis=2)[None]  # (1,H,W): any non-zero channel (reference: sil != 0)


def _load_many(
    paths: Sequence[str],
    read: Callable[[str], np.ndarray],
    out: Tensor,
    workers: int,
    progress: bool,
    what: str,
) -> Tensor:
    if workers < 1:
        raise ValueError(f"workers must be >= 1, got {workers}")

    def work(i: int) -> None:
        try:
            arr = read(paths[i])
        except (OSError, ValueError, Image.DecompressionBombError) as err:
            raise DatasetError(
                f"cannot read {what} {paths[i]!r} ({type(err).__name__}: {err}); re-create or "
                "replace the file, or drop it from the annotation that lists it"
            ) from err
        out[i] = torch.from_numpy(arr)

    pool = ThreadPoolExecutor(max_workers=workers)
    try:
        done = pool.map(work, range(len(paths)))
        if progress:
            from tqdm.auto import tqdm

            done = tqdm(done, total=len(paths), desc=f"decoding {what}s", unit="img")
        for _ in done:
            pass
    finally:
        pool.shutdown(wait=True, cancel_futures=True)
    return out


def _check_size(size: tuple[int, int]) -> tuple[int, int]:
    if len(size) != 2 or min(size) < 1:
        raise ValueError(f"size must be (height, width) with positive ints, got {size!r}")
    return int(size[0]), int(size[1])


def load_images(
    paths: Sequence[str], size: tuple[int, int], workers: int = 2, progress: bool = False
) -> Tensor:
    """Decode images as RGB with Pillow and resize them bilinearly to ``size``, in a thread pool.

    Args:
        paths: image files.
        size: (height, width) of the model input, e.g. (384, 192).
        workers: decoding threads (Pillow releases the GIL while decoding and resizing).
        progress: show a tqdm bar.

    Returns:
        (N,3,H,W) uint8 tensor in the order of ``paths``.

    Raises:
        DatasetError: a file is missing or cannot be decoded; the message names it.
    """
    h, w = _check_size(size)
    out = torch.empty((len(paths), 3, h, w), dtype=torch.uint8)
    return _load_many(paths, lambda p: _read_rgb(p, (h, w)), out, workers, progress, "image")


def load_masks(
    paths: Sequence[str], size: tuple[int, int], workers: int = 2, progress: bool = False
) -> Tensor:
    """Decode 0/255 mask PNGs (any mode) to boolean masks at ``size`` (nearest-neighbour resize).

    A pixel is in the mask when any channel is non-zero.

    Returns:
        (N,1,H,W) bool tensor.

    Raises:
        DatasetError: a file is missing or cannot be decoded; the message names it.
    """
    h, w = _check_size(size)
    out = torch.empty((len(paths), 1, h, w), dtype=torch.bool)
    return _load_many(paths, lambda p: _read_mask(p, (h, w)), out, workers, progress, "mask")
