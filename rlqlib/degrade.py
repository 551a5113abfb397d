"""Synthetic low-quality artifacts of RLQ's TAD (spec §4): pixelation, motion blur, out-of-focus blur.

Everything is batched tensor code on a (B, 3, H, W) uint8 or float batch, on whatever device the batch lives
on, with per-image random parameters drawn from an explicit ``torch.Generator``. The parameter ranges are the
authors' code (in raw pixels of the image being degraded, as the reference applies them to the raw image):

============== ============================================ ==========================================
artifact       parameter draw (reference, ``severity=None``) severity s in [0, 1] (curves)
============== ============================================ ==========================================
pixelation     shorter side r ~ U{16..63}                   r = round(63 - 47 s)
motion_blur    length k ~ U{8..19}, angle ~ U{0..179} deg   k = round(8 + 11 s), angle random
out_of_focus   odd kernel k ~ U{5..21}, sigma ~ U(0.1, 2.0) sigma = 0.1 + 1.9 s, k = 5 + 2 round(8 s)
============== ============================================ ==========================================

The paper (§4) quotes the same ranges up to off-by-one upper bounds; the reference's Gaussian sigma is
torchvision's default U(0.1, 2.0), so blur strength is governed by sigma, not the kernel size (spec §9.6).
Which artifact an image gets is one uniform draw against a per-target-dataset mix (:data:`MIXES`).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import Tensor

ARTIFACTS = ("pixelation", "motion_blur", "out_of_focus")

# Reference mixes (spec §4): a list of (artifact, upper bound of the uniform draw u), checked in order.
# LTCC/LaST: u < 0.33 pixelation, 0.33 <= u <= 0.63 motion blur, u > 0.63 out-of-focus.
MIXES: dict[str, tuple[tuple[str, float], ...]] = {
    "ltcc": (("pixelation", 0.33), ("motion_blur", 0.63), ("out_of_focus", 1.0)),
    "last": (("pixelation", 0.33), ("motion_blur", 0.63), ("out_of_focus", 1.0)),
    "prcc": (("out_of_focus", 0.5), ("pixelation", 1.0)),
    "deepchange": (("out_of_focus", 0.5), ("pixelation", 1.0)),
    "generic": (("motion_blur", 0.5), ("pixelation", 1.0)),
}
MIXES["synthcc"] = MIXES["ltcc"]

_MAX_GAUSS = 21  # widest Gaussian kernel (taps)
_MAX_MOTION = 19  # widest motion kernel (taps)


def _severity(severity: float | Tensor, n: int, device: torch.device) -> Tensor:
    s = torch.as_tensor(severity, dtype=torch.float32, device=device).flatten()
    if s.numel() == 1:
        s = s.expand(n)
    if s.numel() != n or bool(((s < 0) | (s > 1)).any()):
        raise ValueError(f"severity must be one value or {n} values in [0, 1], got {severity!r}")
    return s


def sample_params(
    artifact: str,
    n: int,
    generator: torch.Generator,
    severity: float | Tensor | None = None,
) -> dict[str, Tensor]:
    """Draw per-image parameters of one artifact.

    Args:
        artifact: one of :data:`ARTIFACTS`.
        n: number of images.
        generator: the RNG (its device decides where the tensors live).
        severity: None for the reference's uniform draw, else one value or n values in [0, 1].

    Returns:
        pixelation ``{"r"}``; motion_blur ``{"k", "angle"}``; out_of_focus ``{"k", "sigma"}``; each shape (n,).
    """
    dev = generator.device
    if artifact == "pixelation":
        if severity is None:
            r = torch.randint(16, 64, (n,), generator=generator, device=dev)
        else:
            r = torch.round(63 - 47 * _severity(severity, n, dev)).long()
        return {"r": r}
    if artifact == "motion_blur":
        angle = torch.randint(0, 180, (n,), generator=generator, device=dev).float()
        if severity is None:
            k = torch.randint(8, 20, (n,), generator=generator, device=dev)
        else:
            k = torch.round(8 + 11 * _severity(severity, n, dev)).long()
        return {"k": k, "angle": angle}
    if artifact == "out_of_focus":
        if severity is None:
            k = 5 + 2 * torch.randint(0, 9, (n,), generator=generator, device=dev)
            sigma = 0.1 + 1.9 * torch.rand(n, generator=generator, device=dev)
        else:
            s = _severity(severity, n, dev)
            k, sigma = 5 + 2 * torch.round(8 * s).long(), 0.1 + 1.9 * s
        return {"k": k, "sigma": sigma}
    raise ValueError(f"unknown artifact {artifact!r}; expected one of {ARTIFACTS}")


def strength(artifact: str, params: dict[str, Tensor]) -> Tensor:
    """Severity in [0, 1] implied by drawn parameters (the inverse of the severity mapping)."""
    if artifact == "pixelation":
        return ((63 - params["r"].float()) / 47).clamp(0, 1)
    if artifact == "motion_blur":
        return ((params["k"].float() - 8) / 11).clamp(0, 1)
    if artifact == "out_of_focus":
        return ((params["sigma"].float() - 0.1) / 1.9).clamp(0, 1)
    raise ValueError(f"unknown artifact {artifact!r}; expected one of {ARTIFACTS}")


def _to_float(x: Tensor) -> Tensor:
    return x.float() if x.dtype == torch.uint8 else x


def _like(y: Tensor, x: Tensor) -> Tensor:
    if x.dtype == torch.uint8:
        return y.round().clamp(0, 255).to(torch.uint8)
    return y.to(x.dtype)


def pixelate(x: Tensor, r: Tensor) -> Tensor:
    """Downsample so the shorter side is ``r`` pixels (bicubic, antialiased), then bilinear back to H×W.

    The reference resizes the raw PIL image with its default bicubic filter and lets the train transform's
    bilinear resize bring it back (spec §4). Images whose shorter side is already <= r are left unchanged.

    Args:
        x: (B, 3, H, W) uint8 or float.
        r: (B,) target shorter side in pixels.
    """
    b, _, h, w = x.shape
    out = x.clone()
    short = min(h, w)
    uint8_path = x.dtype == torch.uint8 and x.device.type == "cpu"  # exact-rounding uint8 kernels on CPU
    for rv in torch.unique(r).tolist():  # one group per distinct size (at most 48), not per image
        if rv >= short:
            continue
        idx = (r == rv).nonzero().flatten()
        scale = rv / short
        size = (max(1, round(h * scale)), max(1, round(w * scale)))
        src = x[idx] if uint8_path else _to_float(x[idx])
        small = F.interpolate(src, size=size, mode="bicubic", antialias=True, align_corners=False)
        if not uint8_path:
            small = small.clamp(0, 255) if x.dtype == torch.uint8 else small
        big = F.interpolate(small, size=(h, w), mode="bilinear", antialias=False, align_corners=False)
        out[idx] = big if uint8_path else _like(big, x)
    return out


def _depthwise(x: Tensor, weight: Tensor, pad: tuple[int, int, int, int]) -> Tensor:
    """Per-image kernels as one grouped convolution: x (B,C,H,W), weight (B,1,kh,kw) → (B,C,H,W)."""
    b, c, h, w = x.shape
    xp = F.pad(_to_float(x).reshape(1, b * c, h, w), pad, mode="reflect")  # reflect-101, like cv2/torchvision
    wt = weight.repeat_interleave(c, dim=0)  # (B*C, 1, kh, kw)
    return F.conv2d(xp, wt, groups=b * c).reshape(b, c, h, w)


def gaussian_blur(x: Tensor, k: Tensor, sigma: Tensor) -> Tensor:
    """Out-of-focus blur: separable Gaussian of odd size ``k`` and std ``sigma`` per image.

    Same kernel as torchvision's ``GaussianBlur`` (taps at integer offsets, normalised), zero-padded to 21 taps so
    one grouped convolution serves every kernel size; reflect padding as torchvision.

    Args:
        x: (B, 3, H, W) uint8 or float.
        k: (B,) odd kernel sizes in [1, 21]; sigma: (B,) standard deviations.
    """
    half = _MAX_GAUSS // 2
    t = torch.arange(-half, half + 1, device=x.device, dtype=torch.float32)  # (21,)
    g = torch.exp(-0.5 * (t[None, :] / sigma.float()[:, None]) ** 2)  # (B, 21)
    g = g * (t[None, :].abs() <= (k[:, None] - 1) / 2)  # zero taps beyond each image's kernel
    g = g / g.sum(dim=1, keepdim=True)
    y = _depthwise(x, g[:, None, :, None], (0, 0, half, half))  # vertical pass
    y = _depthwise(y, g[:, None, None, :], (half, half, 0, 0))  # horizontal pass
    return _like(y, x)


def motion_kernels(k: Tensor, angle: Tensor) -> Tensor:
    """Rotated line kernels (B, 19, 19), each summing to 1, anchored at the centre tap.

    The reference builds a k×k zero kernel whose middle row ((k-1)//2) is ones, rotates it by ``angle`` degrees
    about ((k-1)/2, (k-1)/2) with a bilinear affine warp (zero border, k×k output) and normalises it (spec §4).
    Bilinear sampling of that indicator row has a closed form, so all kernels are built at once here.
    """
    n, c = k.numel(), _MAX_MOTION // 2
    kf = k.float()[:, None, None]
    v, u = torch.meshgrid(
        torch.arange(_MAX_MOTION, device=k.device, dtype=torch.float32),
        torch.arange(_MAX_MOTION, device=k.device, dtype=torch.float32),
        indexing="ij",
    )
    x = u[None] - c + torch.div(k, 2, rounding_mode="floor").float()[:, None, None]  # kernel coords of canvas
    y = v[None] - c + torch.div(k, 2, rounding_mode="floor").float()[:, None, None]  # (anchor = k//2, as cv2)
    centre = (kf - 1) / 2
    theta = torch.deg2rad(angle.float())[:, None, None]
    cos, sin = torch.cos(theta), torch.sin(theta)
    sx = cos * (x - centre) - sin * (y - centre) + centre  # inverse rotation: source position
    sy = sin * (x - centre) + cos * (y - centre) + centre
    row = torch.div(k - 1, 2, rounding_mode="floor").float()[:, None, None]
    wy = (1 - (sy - row).abs()).clamp(min=0)
    wx = torch.minimum(sx + 1, kf - sx).clamp(0, 1)
    inside = (x >= 0) & (x <= kf - 1) & (y >= 0) & (y <= kf - 1)
    ker = wx * wy * inside
    return ker / ker.sum(dim=(1, 2), keepdim=True).clamp(min=1e-12).reshape(n, 1, 1)


def motion_blur(x: Tensor, k: Tensor, angle: Tensor) -> Tensor:
    """Linear motion blur of length ``k`` pixels at ``angle`` degrees, per image (reflect-101 border).

    Args:
        x: (B, 3, H, W) uint8 or float.
        k: (B,) kernel lengths in [1, 19]; angle: (B,) degrees.
    """
    c = _MAX_MOTION // 2
    y = _depthwise(x, motion_kernels(k, angle)[:, None], (c, c, c, c))
    return _like(y, x)


def apply(images: Tensor, artifact: str, params: dict[str, Tensor]) -> Tensor:
    """Apply one artifact with given per-image parameters; returns the same shape and dtype."""
    if artifact == "pixelation":
        return pixelate(images, params["r"].to(images.device))
    if artifact == "motion_blur":
        return motion_blur(images, params["k"].to(images.device), params["angle"].to(images.device))
    if artifact == "out_of_focus":
        return gaussian_blur(images, params["k"].to(images.device), params["sigma"].to(images.device))
    raise ValueError(f"unknown artifact {artifact!r}; expected one of {ARTIFACTS}")


def choose_artifacts(n: int, mix: str, generator: torch.Generator) -> Tensor:
    """One uniform draw per image against a dataset mix; returns (n,) indices into :data:`ARTIFACTS`."""
    if mix not in MIXES:
        raise ValueError(f"unknown degradation mix {mix!r}; expected one of {sorted(MIXES)}")
    u = torch.rand(n, generator=generator, device=generator.device)
    codes = torch.empty(n, dtype=torch.long, device=u.device)
    lower = -math.inf
    for name, upper in MIXES[mix]:
        sel = (u > lower) & (u <= upper) if math.isfinite(lower) else (u <= upper)
        codes[sel] = ARTIFACTS.index(name)
        lower = upper
    return codes


def degrade(
    images: Tensor,
    generator: torch.Generator,
    mix: str = "ltcc",
    severity: float | Tensor | None = None,
    artifacts: Sequence[str] | None = None,
) -> tuple[Tensor, dict[str, Tensor]]:
    """Give every image exactly one artifact (the reference's per-image draw, spec §4).

    Args:
        images: (B, 3, H, W) uint8 or float, any device.
        generator: RNG for the artifact choice and its parameters.
        mix: target-dataset mix name in :data:`MIXES` (ignored when ``artifacts`` is given).
        severity: None for the reference's draw, or a value in [0, 1] for severity curves.
        artifacts: force these artifacts (one name per image, or one name for all).

    Returns:
        (degraded images, info) where info holds ``artifact`` (B,) codes into :data:`ARTIFACTS` and
        ``strength`` (B,) in [0, 1].
    """
    b = images.shape[0]
    if artifacts is None:
        codes = choose_artifacts(b, mix, generator)
    else:
        names = [artifacts] * b if isinstance(artifacts, str) else list(artifacts)
        if len(names) != b or any(a not in ARTIFACTS for a in names):
            raise ValueError(f"artifacts must be {b} names from {ARTIFACTS}, got {artifacts!r}")
        codes = torch.tensor([ARTIFACTS.index(a) for a in names], device=generator.device)
    out = images.clone()
    level = torch.zeros(b, device=generator.device)
    for code, name in enumerate(ARTIFACTS):
        idx = (codes == code).nonzero().flatten()
        if idx.numel() == 0:
            continue
        sev = None if severity is None else _severity(severity, b, generator.device)[idx]
        params = sample_params(name, idx.numel(), generator, sev)
        out[idx.to(images.device)] = apply(images[idx.to(images.device)], name, params)
        level[idx] = strength(name, params)
    return out, {"artifact": codes, "strength": level}
