"""The reference's image transforms (docs/spec.md §3.5), batched on the training device: normalise, crop, flip, erase.

Everything random runs **batched on the training device** (CPU or GPU) on images already stored at model size
(:mod:`rlqlib.data.images`). Random numbers come from an explicit ``torch.Generator``, drawn on *its* device and
then moved to the data, so a seed gives the same crops, flips and boxes on CPU and GPU. Each random step draws the
same numbers whatever its probability, so the stream never depends on the settings.

Deliberate difference from the reference: the 1.125× crop upscale is PyTorch's bilinear (PIL's sampling grid,
rounded to uint8; within 1 grey level of PIL, which also rounds between passes).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import Tensor

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
ERASE_FILL = (0.4914, 0.4822, 0.4465)  # written into the *normalised* tensor, as in the reference
CROP_SCALE = 1.125


def check_images(x: Tensor) -> None:
    """Raise unless ``x`` is a (B,3,H,W) uint8 batch (the stored images; transforms start from uint8)."""
    if x.dim() != 4 or x.shape[1] != 3:
        raise ValueError(f"expected images of shape (B,3,H,W), got {tuple(x.shape)}")
    if x.dtype != torch.uint8:
        raise TypeError(f"expected uint8 images, got {x.dtype}; keep the stored images as uint8")


def _rand(generator: torch.Generator, shape: tuple[int, ...], device: torch.device) -> Tensor:
    """Uniform [0,1) float64 draws on the generator's device, moved to ``device``."""
    u = torch.rand(shape, generator=generator, device=generator.device, dtype=torch.float64)
    return u.to(device)


def _per_channel(values: Sequence[float], like: Tensor) -> Tensor:
    return torch.tensor(values, dtype=like.dtype, device=like.device).view(1, -1, 1, 1)


def normalize(x_uint8: Tensor) -> Tensor:
    """ToTensor + ImageNet Normalize: (B,3,H,W) uint8 → float32 ``(x/255 − mean)/std``."""
    check_images(x_uint8)
    out = x_uint8.float().div_(255)  # (B,3,H,W)
    return out.sub_(_per_channel(IMAGENET_MEAN, out)).div_(_per_channel(IMAGENET_STD, out))


def eval_transform(x_uint8: Tensor) -> Tensor:
    """The reference's test transform on already-resized images: normalise only."""
    return normalize(x_uint8)


def random_crop(x: Tensor, generator: torch.Generator, p: float = 0.5) -> Tensor:
    """The reference's RandomCroping, batched: with probability ``p`` per image, upscale by 1.125
    (bilinear) and crop back to H×W at offset (round(U(0, H'−H)), round(U(0, W'−W))).

    Draws: B apply-uniforms, then B×2 offset uniforms (row, column).

    Args:
        x: (B,3,H,W) images; uint8 input is rounded back to uint8 after the upscale, as PIL does.
    """
    b, _, h, w = x.shape
    apply = _rand(generator, (b,), x.device) < p  # (B,)
    offsets = _rand(generator, (b, 2), x.device)  # (B,2)
    h2, w2 = int(round(h * CROP_SCALE)), int(round(w * CROP_SCALE))
    top = torch.round(offsets[:, 0] * (h2 - h)).long()  # (B,)
    left = torch.round(offsets[:, 1] * (w2 - w)).long()  # (B,)
    sel = apply.nonzero().squeeze(1)  # (S,)
    if sel.numel() == 0:
        return x
    up = F.interpolate(x[sel].float(), size=(h2, w2), mode="bilinear", align_corners=False)
    rows = top[sel, None] + torch.arange(h, device=x.device)  # (S,H)
    cols = left[sel, None] + torch.arange(w, device=x.device)  # (S,W)
    item = torch.arange(sel.numel(), device=x.device)[:, None, None]  # (S,1,1)
    crop = up[item, :, rows[:, :, None], cols[:, None, :]].permute(0, 3, 1, 2)  # (S,3,H,W)
    if x.dtype == torch.uint8:
        crop = crop.round_().clamp_(0, 255)
    out = x.clone()
    out[sel] = crop.to(x.dtype)
    return out


def random_flip(x: Tensor, generator: torch.Generator, p: float = 0.5) -> Tensor:
    """Horizontal flip with probability ``p`` per image. Draws: B uniforms."""
    flip = _rand(generator, (x.shape[0],), x.device) < p  # (B,)
    return torch.where(flip.view(-1, 1, 1, 1), x.flip(-1), x)


def random_erase(
    x: Tensor,
    generator: torch.Generator,
    p: float = 0.5,
    area: tuple[float, float] = (0.02, 0.4),
    min_aspect: float = 0.3,
    attempts: int = 100,
    fill: Sequence[float] = ERASE_FILL,
    inplace: bool = False,
) -> Tensor:
    """The reference's RandomErasing, batched, on normalised float images (B,3,H,W).

    Per image, with probability ``p``: draw ``attempts`` candidate boxes (area fraction U(area),
    aspect r ~ U(min_aspect, 1/min_aspect), ``h = round(sqrt(A·r))``, ``w = round(sqrt(A/r))``),
    take the first with ``h < H`` and ``w < W`` (if none fits, the image is unchanged), place it
    uniformly (top ∈ [0, H−h], left ∈ [0, W−w]) and write ``fill`` into it.

    Draws: B apply-uniforms, B×attempts area, B×attempts aspect, B×2 position (row, column).
    """
    b, _, h, w = x.shape
    dev = x.device
    apply = _rand(generator, (b,), dev) < p  # (B,)
    frac = area[0] + (area[1] - area[0]) * _rand(generator, (b, attempts), dev)  # (B,A)
    aspect = min_aspect + (1 / min_aspect - min_aspect) * _rand(generator, (b, attempts), dev)
    pos = _rand(generator, (b, 2), dev)  # (B,2)
    target = frac * (h * w)  # (B,A)
    bh = torch.round(torch.sqrt(target * aspect)).long()  # (B,A)
    bw = torch.round(torch.sqrt(target / aspect)).long()  # (B,A)
    fits = (bh < h) & (bw < w)  # (B,A)
    first = fits.to(torch.uint8).argmax(dim=1, keepdim=True)  # (B,1) first fitting candidate
    bh, bw = bh.gather(1, first).squeeze(1), bw.gather(1, first).squeeze(1)  # (B,)
    apply &= fits.any(dim=1)
    top = torch.floor(pos[:, 0] * (h - bh + 1)).long()  # (B,) uniform integer in [0, H-h]
    left = torch.floor(pos[:, 1] * (w - bw + 1)).long()  # (B,)
    r, q = torch.arange(h, device=dev), torch.arange(w, device=dev)
    in_rows = (r >= top[:, None]) & (r < (top + bh)[:, None])  # (B,H)
    in_cols = (q >= left[:, None]) & (q < (left + bw)[:, None])  # (B,W)
    box = in_rows[:, :, None] & in_cols[:, None, :] & apply[:, None, None]  # (B,H,W)
    out = x if inplace else x.clone()
    for channel, value in enumerate(fill):
        out[:, channel].masked_fill_(box, value)
    return out


def train_augment(
    x: Tensor,
    generator: torch.Generator,
    *,
    crop_p: float = 0.5,
    flip_p: float = 0.5,
    erase_p: float = 0.5,
) -> Tensor:
    """The reference's train transform (docs/spec.md §3.5) on already-resized images, per-image random.

    RandomCroping(crop_p) → RandomHorizontalFlip(flip_p) → ToTensor → Normalize →
    RandomErasing(erase_p). Crop and flip run on uint8, so only one float copy is made.

    Args:
        x: (B,3,H,W) uint8 images on any device.
        generator: source of all randomness (drawn on its own device).

    Returns:
        (B,3,H,W) float32 normalised images on ``x.device``.
    """
    check_images(x)
    x = random_flip(random_crop(x, generator, crop_p), generator, flip_p)
    return random_erase(normalize(x), generator, erase_p, inplace=True)
