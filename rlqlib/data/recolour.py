"""Clothes recolouring (docs/spec.md §3.7): the colour tables, the masked blend and the synthetic clothes labels.

The blend runs batched on the training device; colours are drawn from an explicit ``torch.Generator`` on its own
device, so a seed gives the same colours on CPU and GPU. Images and masks are recoloured at model size (the
reference recolours the raw image and resizes afterwards). Images of the authors' faulty-silhouette lists take their
``_clothes`` mask for both parts and one colour (:func:`rlqlib.data.training.faulty_images`).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import torch
from torch import Tensor

from rlqlib.data.transforms import check_images

# matplotlib named colours as 0-255 RGB in the reference's order; a colour index is a position here.
COLOURS: dict[str, tuple[int, int, int]] = {
    "green": (0, 128, 0),
    "blue": (0, 0, 255),
    "purple": (128, 0, 128),
    "red": (255, 0, 0),
    "black": (0, 0, 0),
    "white": (255, 255, 255),
    "orange": (255, 165, 0),
    "yellow": (255, 255, 0),
    "pink": (255, 192, 203),
}
LAST_COLOURS: dict[str, tuple[int, int, int]] = {
    name: COLOURS[name] for name in ("green", "blue", "purple", "red", "yellow", "pink")
}


def colour_table(colours: Mapping[str, Sequence[int]] | Tensor) -> Tensor:
    """(C,3) float64 0-255 RGB from a name→RGB mapping (in its order) or a (C,3) tensor."""
    table = torch.as_tensor(list(colours.values()) if isinstance(colours, Mapping) else colours)
    if table.dim() != 2 or table.shape[1] != 3:
        raise ValueError(f"colours must be C RGB triples, got shape {tuple(table.shape)}")
    return table.to(torch.float64)


def recolour_clothes(
    x_uint8: Tensor,
    shirt_mask: Tensor,
    pant_mask: Tensor,
    shirt_colour_idx: Tensor,
    pant_colour_idx: Tensor,
    colours: Mapping[str, Sequence[int]] | Tensor,
    alpha: float = 0.7,
) -> Tensor:
    """docs/spec.md §3.7 blend, batched, with m = m_pant ∪ m_shirt:
    ``out = img·(1−m) + (1−α)·img·m + α·(m_pant·c_pant + m_shirt·c_shirt)``.

    Computed in float64 and truncated to uint8, bit-identical to the reference's numpy code. Its
    masks are disjoint by construction; where they overlap here, the pant colour wins (rather than
    adding both). For a "faulty" image pass the ``_clothes`` mask twice and one colour twice.

    Args:
        x_uint8: (B,3,H,W) images.
        shirt_mask, pant_mask: (B,1,H,W) bool.
        shirt_colour_idx, pant_colour_idx: (B,) indices into ``colours``.
        colours: name→RGB (0-255) mapping such as :data:`COLOURS`, or a (C,3) tensor.
        alpha: weight of the colour inside the mask.

    Returns:
        (B,3,H,W) uint8.
    """
    check_images(x_uint8)
    want = (x_uint8.shape[0], 1, *x_uint8.shape[2:])
    for name, m in (("shirt_mask", shirt_mask), ("pant_mask", pant_mask)):
        if m.dtype != torch.bool or tuple(m.shape) != want:
            raise ValueError(f"{name} must be bool {want}, got {m.dtype} {tuple(m.shape)}")
    table = colour_table(colours).to(x_uint8.device)  # (C,3)
    c_shirt = table[shirt_colour_idx].view(-1, 3, 1, 1)  # (B,3,1,1)
    c_pant = table[pant_colour_idx].view(-1, 3, 1, 1)  # (B,3,1,1)
    img = x_uint8.to(torch.float64)  # (B,3,H,W)
    layer = torch.where(pant_mask, c_pant, c_shirt)  # (B,3,H,W) colour under the masks
    out = torch.where(pant_mask | shirt_mask, img * (1 - alpha) + alpha * layer, img)
    return out.floor_().clamp_(0, 255).to(torch.uint8)


def sample_recolour(
    pids: Tensor, generator: torch.Generator, num_colours: int
) -> tuple[Tensor, Tensor]:
    """Uniform, independent shirt and pant colour indices, one pair per entry of ``pids``.

    Draws: one (2,B) ``randint`` on the generator's device (row 0 shirt, row 1 pant).

    Returns:
        (shirt_idx, pant_idx), each (B,) long on ``pids.device``.
    """
    shape = (2, pids.shape[0])
    draws = torch.randint(num_colours, shape, generator=generator, device=generator.device)
    draws = draws.to(pids.device)
    return draws[0], draws[1]


def synthetic_clothes_labels(
    pids: Tensor, shirt_idx: Tensor, pant_idx: Tensor, num_orig_clothes: int, num_colours: int
) -> Tensor:
    """Synthetic clothes class of a recoloured replica: ``N_orig + pid·C² + pant·C + shirt``.

    The combination index follows the reference, whose table is built as
    ``(top, bottom) → top·C + bottom`` but looked up with ``(pant, shirt)``: the *pant* colour is
    the major digit. A single-colour ("faulty") replica of colour c gets ``c·C + c``.
    """
    c = int(num_colours)
    return num_orig_clothes + pids * (c * c) + pant_idx * c + shirt_idx


def extended_pid2clothes(pid2clothes: np.ndarray, num_colours: int) -> np.ndarray:
    """Append each identity's own C² synthetic clothes classes, marked positive.

    Args:
        pid2clothes: (N_id, N_orig) bool or 0/1 matrix of the train set.
        num_colours: C.

    Returns:
        (N_id, N_orig + C²·N_id) bool; LTCC: 256 + 81·77 = 6,493 columns.
    """
    n_id, n_orig = pid2clothes.shape
    block = num_colours * num_colours
    out = np.zeros((n_id, n_orig + block * n_id), dtype=bool)
    out[:, :n_orig] = pid2clothes.astype(bool)
    for pid in range(n_id):
        out[pid, n_orig + pid * block : n_orig + (pid + 1) * block] = True
    return out
