"""Decoding images and clothes masks into memory, once, at the model input size.

Images are decoded with Pillow into a uint8 tensor at the model input size (:func:`load_images`) and kept in memory,
so neither decoding nor a per-image Python loop sits in the training hot path. Masks are stored at model size too
(resized with nearest neighbour; the reference resizes after recolouring the raw image, docs/spec.md §3.7).

**Decoded-image cache** (optional): with the environment variable ``RLQ_IMAGE_CACHE`` set to a folder (``make`` sets
it to ``data/.image-cache``), :func:`load_images` stores each list of images it decodes there as one uint8 tensor
file, keyed by the size and every file's path, byte size and modification time, and later calls read it back (a
SynthCC-cpu run decodes its 4,766 images in about 3 s at one thread; the tensor loads in a fraction of that);
:func:`load_masks` does the same for masks (bool; a Base Model run's 6,616 SynthCC-cpu masks take 2.6 s). A
changed, added or removed file changes the key. A cache that cannot be written is skipped with a warning.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import tempfile
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from torch import Tensor

from rlqlib.data.datasets import DatasetError

log = logging.getLogger(__name__)

CACHE_ENV = "RLQ_IMAGE_CACHE"  # folder of decoded-image tensors (unset or empty: no cache)


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

    With ``$RLQ_IMAGE_CACHE`` set, the images are read from (or, decoded, written to) the decoded-image cache (see
    the module docstring).

    Raises:
        DatasetError: a file is missing or cannot be decoded; the message names it.
    """
    h, w = _check_size(size)
    return _load_cached(paths, "images", torch.empty((len(paths), 3, h, w), dtype=torch.uint8),
                        lambda p: _read_rgb(p, (h, w)), workers, progress, "image")


def _load_cached(paths: Sequence[str], kind: str, out: Tensor, read: Callable[[str], np.ndarray], workers: int,
                 progress: bool, what: str) -> Tensor:
    """``out`` filled from the cache file of ``paths`` if there is a usable one, else decoded (and then cached)."""
    cache = _cache_file(paths, tuple(out.shape[-2:]), kind)
    if cache is not None and cache.is_file():
        cached = _cached(cache, tuple(out.shape), out.dtype)
        if cached is not None:
            return cached
    decoded = _load_many(paths, read, out, workers, progress, what)
    if cache is not None:
        _store(decoded, cache)
    return decoded


def _cache_file(paths: Sequence[str], size: tuple[int, int], kind: str = "images") -> Path | None:
    """The cache file of these images (or masks: ``kind``) at ``size`` under ``$RLQ_IMAGE_CACHE`` (None: no cache, or
    a file is missing, which decoding then reports)."""
    folder = os.environ.get(CACHE_ENV, "")
    if not folder or not paths:
        return None
    entries = []
    for p in paths:
        try:
            st = os.stat(p)
        except OSError:
            return None
        entries.append((os.path.abspath(p), st.st_size, st.st_mtime_ns))
    key = hashlib.sha256(json.dumps([list(size), entries]).encode()).hexdigest()[:20]
    return Path(folder) / f"{kind}-{size[0]}x{size[1]}-{len(paths)}-{key}.pt"


def _cached(cache: Path, shape: tuple[int, ...], dtype: torch.dtype = torch.uint8) -> Tensor | None:
    """The tensor of ``cache`` if it holds ``shape`` and ``dtype``; None (with a warning) if it cannot be read or does
    not."""
    try:
        images = torch.load(cache, weights_only=True)
    except Exception as err:  # noqa: BLE001 (a truncated or foreign file fails in many ways; decoding is the remedy)
        log.warning("cannot read the decoded-image cache %s (%s); decoding again", cache, err)
        return None
    if not isinstance(images, Tensor) or images.shape != shape or images.dtype != dtype:
        log.warning("the decoded-image cache %s does not hold a %s %s tensor; decoding again", cache, shape, dtype)
        return None
    return images


def _store(images: Tensor, cache: Path) -> None:
    """Write ``images`` to ``cache`` atomically (a concurrent reader sees the whole file or none)."""
    tmp = None
    try:
        cache.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=cache.parent, prefix=cache.name, suffix=".tmp")
        os.close(fd)
        torch.save(images, tmp)
        os.replace(tmp, cache)
    except (OSError, RuntimeError) as err:  # torch.save reports a failed write (e.g. a full disk) as RuntimeError
        log.warning("cannot write the decoded-image cache %s (%s); set %s to a writable folder or unset it",
                    cache, err, CACHE_ENV)
        if tmp is not None and os.path.exists(tmp):
            os.remove(tmp)


def load_masks(
    paths: Sequence[str], size: tuple[int, int], workers: int = 2, progress: bool = False
) -> Tensor:
    """Decode 0/255 mask PNGs (any mode) to boolean masks at ``size`` (nearest-neighbour resize).

    A pixel is in the mask when any channel is non-zero.

    Returns:
        (N,1,H,W) bool tensor.

    With ``$RLQ_IMAGE_CACHE`` set, the masks are read from (or, decoded, written to) the cache like images.

    Raises:
        DatasetError: a file is missing or cannot be decoded; the message names it.
    """
    h, w = _check_size(size)
    return _load_cached(paths, "masks", torch.empty((len(paths), 1, h, w), dtype=torch.bool),
                        lambda p: _read_mask(p, (h, w)), workers, progress, "mask")
