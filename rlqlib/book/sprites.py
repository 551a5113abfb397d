"""Sprite sheets: many small images in one JPEG, for the book's kernel-free explorers (:mod:`rlqlib.book.explorers`).

A widget that must work in the static HTML book carries its images in its saved state. One JPEG of fixed-size cells
is far smaller than one data URI per image (one header, one Huffman table), and the page shows a cell as the
background of a ``width × height`` box at offset ``(-x, -y)`` with ``x, y =`` :meth:`Sprite.offset`.
"""

from __future__ import annotations

import base64
import io
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from PIL import Image

#: Largest side of a JPEG in pixels (libjpeg's limit).
JPEG_MAX = 65_500


@dataclass(frozen=True)
class Sprite:
    """A grid of equal cells in one JPEG.

    Attributes:
        uri: ``data:image/jpeg;base64,...`` of the whole sheet.
        columns: cells per row; cell ``i`` is at row ``i // columns``, column ``i % columns``.
        cell: (height, width) of a cell in pixels.
        count: cells in use.
    """

    uri: str
    columns: int
    cell: tuple[int, int]
    count: int

    def offset(self, i: int) -> tuple[int, int]:
        """(x, y) pixel position of cell ``i``'s top-left corner."""
        return (i % self.columns) * self.cell[1], (i // self.columns) * self.cell[0]

    def state(self) -> dict:
        """The JSON a widget's front-end reads: ``uri``, ``columns``, ``cell`` = [h, w], ``count``."""
        return {"uri": self.uri, "columns": self.columns, "cell": list(self.cell), "count": self.count}


def _as_pil(image: str | Path | Image.Image | torch.Tensor | np.ndarray) -> Image.Image:
    """A PIL RGB image from a path, a PIL image, a (3, H, W) uint8 tensor or an (H, W, 3) uint8 array."""
    if isinstance(image, (str, Path)):
        try:
            return Image.open(image).convert("RGB")
        except (OSError, ValueError) as exc:
            raise ValueError(f"cannot read image {image} ({exc}); check the labels' `path` column") from exc
    if isinstance(image, Image.Image):
        return image.convert("RGB")
    if isinstance(image, torch.Tensor):
        if image.dim() != 3 or image.shape[0] != 3 or image.dtype != torch.uint8:
            raise ValueError(f"a tensor image must be (3, H, W) uint8, got {image.dtype} {tuple(image.shape)}")
        image = image.permute(1, 2, 0).cpu().numpy()
    array = np.asarray(image)
    if array.ndim != 3 or array.shape[2] != 3 or array.dtype != np.uint8:
        raise ValueError(f"an array image must be (H, W, 3) uint8, got {array.dtype} {array.shape}")
    return Image.fromarray(array)


def sprite_sheet(images: Sequence[str | Path | Image.Image | torch.Tensor | np.ndarray], height: int = 80,
                 width: int | None = None, columns: int = 32, quality: int = 80) -> Sprite:
    """Every image resized to one ``height × width`` cell (default width: height / 2, a person crop), in order.

    Args:
        images: paths, PIL images, (3, H, W) uint8 tensors or (H, W, 3) uint8 arrays.
        height, width: the cell size in pixels.
        columns: cells per row (fewer when there are fewer images).
        quality: JPEG quality (1–95).
    """
    width = width or max(1, height // 2)
    if height < 1 or width < 1 or not 1 <= quality <= 95 or columns < 1:
        raise ValueError(f"sprite cell {height}×{width}, quality {quality}, columns {columns}: need positive sizes, "
                         "columns ≥ 1 and quality in 1..95")
    n = len(images)
    cols = max(1, min(columns, n))
    rows = max(1, -(-n // cols))
    if rows * height > JPEG_MAX or cols * width > JPEG_MAX:
        raise ValueError(f"{n} cells of {height}×{width} in {cols} columns exceed a JPEG's {JPEG_MAX} pixels; "
                         "raise `columns` or lower `height`")
    sheet = Image.new("RGB", (cols * width, rows * height), (255, 255, 255))
    for i, image in enumerate(images):
        cell = _as_pil(image).resize((width, height), Image.Resampling.BILINEAR)
        sheet.paste(cell, ((i % cols) * width, (i // cols) * height))
    buf = io.BytesIO()
    sheet.save(buf, format="JPEG", quality=quality, optimize=True)
    return Sprite("data:image/jpeg;base64," + base64.b64encode(buf.getvalue()).decode("ascii"), cols,
                  (height, width), n)
