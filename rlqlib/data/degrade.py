"""Synthetic low-quality artifacts: RLQ's three (docs/spec.md §4) plus JPEG and sensor noise for robustness curves.

Everything is batched tensor code on a (B, 3, H, W) uint8 or float batch, on whatever device the batch lives
on, with per-image random parameters drawn from an explicit ``torch.Generator``; the one exception is JPEG,
which is a Pillow round trip per image (torchvision's JPEG ops cannot load with our CPU torch). Float batches
are taken to be in [0, 1] where the scale matters (JPEG, noise); the other three are linear and scale-free.
Parameter ranges are the authors' code, in raw pixels of the image being degraded:

============== ============================================ ==========================================
artifact       parameter draw (reference, ``severity=None``) severity s in [0, 1] (curves)
============== ============================================ ==========================================
pixelation     shorter side r ~ U{16..63}                   r = round(63 - 47 s)
motion_blur    length k ~ U{8..19}, angle ~ U{0..179} deg   k = round(8 + 11 s), angle random
out_of_focus   odd kernel k ~ U{5..21}, sigma ~ U(0.1, 2.0) sigma = 0.1 + 1.9 s, k = 5 + 2 round(8 s)
jpeg (extra)   quality q ~ U{10..95}                        q = round(95 - 85 s)
noise (extra)  sigma ~ U(0, 40) grey levels                 sigma = 40 s
============== ============================================ ==========================================

The paper (§4) quotes the same ranges up to off-by-one upper bounds; the reference's Gaussian sigma is
torchvision's default U(0.1, 2.0), so blur strength is governed by sigma, not the kernel size (docs/spec.md §9.6).
Which artifact an image gets is one uniform draw against a per-target-dataset mix (:data:`MIXES`), always
among the paper's three. The outputs are within ±1 grey level of the reference's per-image PIL / OpenCV /
torchvision code with the same parameters (``tests/test_degrade.py``, ``bench/degrade.py``).

How it is fast: pixelation uses torch's uint8 resampling kernels on CPU (one call pair per distinct size) and
four batched resampling matmuls elsewhere; the Gaussian is two 1-D passes of a channels-last grouped
convolution; motion blur is an FFT correlation (cost independent of k, as in ``cv2.filter2D``); on CPU the
blurs take 8 images at a time so the working set stays in cache. An image's result can depend on its batch
only through float summation order (a ±1 flip on a rare pixel), never through its parameters.
"""

from __future__ import annotations

import io
import math
from collections.abc import Iterator, Sequence
from contextlib import contextmanager

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image
from torch import Tensor

ARTIFACTS = ("pixelation", "motion_blur", "out_of_focus")  # the paper's TAD artifacts (the mixes draw these)
EXTRA_ARTIFACTS = ("jpeg", "noise")  # robustness curves beyond the paper
ALL_ARTIFACTS = ARTIFACTS + EXTRA_ARTIFACTS  # ``degrade``'s artifact codes index this

# Reference mixes (docs/spec.md §4): a list of (artifact, upper bound of the uniform draw u), checked in order.
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
_CPU_CHUNK = 8  # images per FFT / convolution on CPU: data stays in cache (2-2.5× faster than 64 at once)
_NOISE_MAX = 40.0  # noise sigma at severity 1, grey levels
_Q_BEST, _Q_WORST = 95, 10  # JPEG quality at severity 0 and 1


def _check_name(artifact: str) -> None:
    if artifact not in ALL_ARTIFACTS:
        raise ValueError(f"unknown artifact {artifact!r}; expected one of {ALL_ARTIFACTS}")


def _check_range(what: str, v: Tensor, lo: float, hi: float) -> None:
    if v.numel() and (float(v.min()) < lo or float(v.max()) > hi):
        raise ValueError(f"{what} must lie in [{lo}, {hi}], got values from {float(v.min())} to {float(v.max())}")


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
        artifact: one of :data:`ALL_ARTIFACTS`.
        n: number of images.
        generator: the RNG (its device decides where the tensors live).
        severity: None for the reference's uniform draw, else one value or n values in [0, 1].

    Returns:
        pixelation ``{"r"}``; motion_blur ``{"k", "angle"}``; out_of_focus ``{"k", "sigma"}``; jpeg ``{"q"}``;
        noise ``{"sigma"}`` (grey levels); each shape (n,).
    """
    _check_name(artifact)
    dev = generator.device
    s = None if severity is None else _severity(severity, n, dev)
    if artifact == "pixelation":
        r = torch.randint(16, 64, (n,), generator=generator, device=dev) if s is None else torch.round(63 - 47 * s)
        return {"r": r.long()}
    if artifact == "motion_blur":
        angle = torch.randint(0, 180, (n,), generator=generator, device=dev).float()
        k = torch.randint(8, 20, (n,), generator=generator, device=dev) if s is None else torch.round(8 + 11 * s)
        return {"k": k.long(), "angle": angle}
    if artifact == "out_of_focus":
        if s is None:
            k = 5 + 2 * torch.randint(0, 9, (n,), generator=generator, device=dev)
            sigma = 0.1 + 1.9 * torch.rand(n, generator=generator, device=dev)
        else:
            k, sigma = 5 + 2 * torch.round(8 * s).long(), 0.1 + 1.9 * s
        return {"k": k, "sigma": sigma}
    if artifact == "jpeg":
        q = torch.randint(_Q_WORST, _Q_BEST + 1, (n,), generator=generator, device=dev) if s is None else (
            torch.round(_Q_BEST - (_Q_BEST - _Q_WORST) * s))
        return {"q": q.long()}
    sigma = _NOISE_MAX * (torch.rand(n, generator=generator, device=dev) if s is None else s)
    return {"sigma": sigma}


def strength(artifact: str, params: dict[str, Tensor]) -> Tensor:
    """Severity in [0, 1] implied by drawn parameters (the inverse of the severity mapping)."""
    _check_name(artifact)
    if artifact == "pixelation":
        s = (63 - params["r"].float()) / 47
    elif artifact == "motion_blur":
        s = (params["k"].float() - 8) / 11
    elif artifact == "out_of_focus":
        s = (params["sigma"].float() - 0.1) / 1.9
    elif artifact == "jpeg":
        s = (_Q_BEST - params["q"].float()) / (_Q_BEST - _Q_WORST)
    else:
        s = params["sigma"].float() / _NOISE_MAX
    return s.clamp(0, 1)


def _like(y: Tensor, x: Tensor) -> Tensor:
    """Cast a float result back to x's dtype (uint8: round half to even and saturate, like PIL/cv2)."""
    if x.dtype == torch.uint8:
        return y.round_().clamp_(0, 255).to(torch.uint8)
    return y.to(x.dtype)


def _check_border(n: int, pad: int) -> None:
    if pad >= n:
        raise ValueError(f"image side of {n} px is too small for a {pad} px reflect border (the kernel's "
                         f"half-width); degrade images larger than {pad} px")


def _reflect_index(n: int, pad_lo: int, pad_hi: int, device: torch.device) -> Tensor:
    """Source indices of a reflect-101 padded axis (cv2's BORDER_REFLECT_101, torch's "reflect")."""
    _check_border(n, max(pad_lo, pad_hi))
    i = torch.arange(-pad_lo, n + pad_hi, device=device).abs()
    return torch.where(i > n - 1, 2 * (n - 1) - i, i)


def _planes(x: Tensor, pad: tuple[int, int, int, int]) -> Tensor:
    """(B, C, H, W) → float planes (1, B*C, H+top+bottom, W+left+right), reflect-padded, channels_last memory.

    ``pad`` is (top, bottom, left, right).
    Channels-last depthwise convolution vectorises over the B*C planes (2-4× faster on CPU than NCHW); the
    uint8 → float conversion happens after the cheap uint8 gather that does the reflect padding.
    """
    b, c, h, w = x.shape
    top, bottom, left, right = pad
    t = x.permute(2, 3, 0, 1)  # (H, W, B, C) view
    t = t[_reflect_index(h, top, bottom, x.device)][:, _reflect_index(w, left, right, x.device)]  # copy
    t = t.float() if not t.is_floating_point() else t
    return t.reshape(1, t.shape[0], t.shape[1], b * c).permute(0, 3, 1, 2)  # channels_last strides (N's too)


def _depthwise(planes: Tensor, weight: Tensor, channels: int) -> Tensor:
    """One grouped convolution with one kernel per image: weight (B, 1, kh, kw), shared by the C channels."""
    wt = weight.to(planes.dtype).repeat_interleave(channels, dim=0)  # (B*C, 1, kh, kw)
    return F.conv2d(planes, wt, groups=planes.shape[1])


def _uint8_kernels(x: Tensor) -> bool:
    """Whether F.interpolate's uint8 kernels (ported from Pillow-SIMD, PIL's fixed-point arithmetic) serve x."""
    return x.dtype == torch.uint8 and x.device.type == "cpu"


def _filter(kind: str, t: Tensor) -> Tensor:
    """PIL's (and torch's antialiased) interpolation filters: bicubic with a = -0.5, or the triangle."""
    t = t.abs()
    if kind == "bilinear":
        return (1 - t).clamp(min=0)
    a = -0.5
    near = ((a + 2) * t - (a + 3)) * t * t + 1
    far = ((a * t - 5 * a) * t + 8 * a) * t - 4 * a
    return torch.where(t < 1, near, torch.where(t < 2, far, torch.zeros_like(t)))


def _resample_matrices(n_in: Tensor, n_out: Tensor, in_max: int, out_max: int, kind: str) -> Tensor:
    """Antialiased 1-D resampling as matrices (V, out_max, in_max), zero-padded beyond each (n_out, n_in).

    PIL's ``ImagingResample`` weights, which torch's ``antialias=True`` kernels copy: output i is centred at
    (i + 0.5) * scale with scale = n_in / n_out, the filter is stretched by max(scale, 1), clipped to the image
    and normalised. Computed in float64 for all V sizes at once.
    """
    n_in, n_out = n_in.to(torch.float64)[:, None, None], n_out.to(torch.float64)[:, None, None]  # (V, 1, 1)
    i = torch.arange(out_max, device=n_in.device, dtype=torch.float64)[None, :, None]  # (1, O, 1)
    j = torch.arange(in_max, device=n_in.device, dtype=torch.float64)[None, None, :]  # (1, 1, I)
    scale = n_in / n_out
    stretch = scale.clamp(min=1)
    support = (2.0 if kind == "bicubic" else 1.0) * stretch
    centre = scale * (i + 0.5)  # (V, O, 1)
    lo = torch.trunc(centre - support + 0.5).clamp(min=0)
    hi = torch.minimum(torch.trunc(centre + support + 0.5), n_in)
    wgt = _filter(kind, (j - centre + 0.5) / stretch) * ((j >= lo) & (j < hi) & (i < n_out))  # (V, O, I)
    return wgt / wgt.sum(dim=2, keepdim=True).clamp(min=1e-300)


@contextmanager
def full_fp32_matmul() -> Iterator[None]:
    """Float32 matmuls in full precision inside the block (no TF32 on CUDA), the previous setting restored after.

    Used where results must match a reference exactly: ±1 grey levels here, exact ranks in :mod:`rlqlib.engine.evaluate`.
    """
    previous = torch.get_float32_matmul_precision()
    if previous != "highest":
        torch.set_float32_matmul_precision("highest")
    try:
        yield
    finally:
        if torch.get_float32_matmul_precision() != previous:
            torch.set_float32_matmul_precision(previous)


def _pixelate_matmul(x: Tensor, r: Tensor, size: tuple[int, int] | None = None) -> Tensor:
    """Pixelation as four batched 1-D resampling matmuls (horizontal then vertical, down then up, like PIL).

    A fixed number of kernels whatever the mix of sizes (GPU-friendly). uint8 levels are rounded half up and
    clipped after every pass, as PIL stores each pass as uint8 (its fixed-point sums round half up). Images
    with r >= the shorter side are returned unchanged (resized to ``size`` when given: the identity down-pass
    then the bilinear up-pass is that resize).
    """
    _, _, h, w = x.shape
    oh, ow = size or (h, w)
    short = min(h, w)
    keep = r >= short
    rr = torch.where(keep, torch.full_like(r, short), r)  # unchanged images: identity resampling
    sh = (h * rr / short).round().clamp(min=1).long()  # (B,) small height, as round(h * r / short)
    sw = (w * rr / short).round().clamp(min=1).long()
    hm, wm = int(sh.max()), int(sw.max())
    full_h, full_w = torch.full_like(sh, h), torch.full_like(sw, w)
    down_w = _resample_matrices(full_w, sw, w, wm, "bicubic").float()[:, None]  # (B, 1, wm, W)
    down_h = _resample_matrices(full_h, sh, h, hm, "bicubic").float()[:, None]  # (B, 1, hm, H)
    up_w = _resample_matrices(sw, torch.full_like(sw, ow), wm, ow, "bilinear").float()[:, None]  # (B, 1, OW, wm)
    up_h = _resample_matrices(sh, torch.full_like(sh, oh), hm, oh, "bilinear").float()[:, None]  # (B, 1, OH, hm)
    levels = x.dtype == torch.uint8

    def store(t: Tensor) -> Tensor:
        return t.add_(0.5).floor_().clamp_(0, 255) if levels else t

    with full_fp32_matmul():
        t = store(x.float() @ down_w.transpose(2, 3))  # (B, 3, H, wm)
        t = store(down_h @ t)  # (B, 3, hm, wm)
        t = store(t @ up_w.transpose(2, 3))  # (B, 3, hm, W)
        t = store(up_h @ t)  # (B, 3, OH, OW)
    if (oh, ow) != (h, w):
        return _like(t, x)
    return torch.where(keep[:, None, None, None], x, _like(t, x))


def _out_size(x: Tensor, size: tuple[int, int] | None) -> tuple[int, int] | None:
    """``size`` as ints, or None when it is the batch's own size (the unchanged path)."""
    if size is None:
        return None
    size = (int(size[0]), int(size[1]))
    return None if size == tuple(x.shape[2:]) else size


def resize(x: Tensor, size: tuple[int, int]) -> Tensor:
    """PIL's bilinear resize (``T.Resize`` on a PIL image: antialiased when shrinking) of a batch to (H, W).

    uint8 on CPU: torch's uint8 kernels (Pillow-SIMD's fixed-point arithmetic); elsewhere two 1-D resampling
    matmuls with PIL's weights, rounded half up per pass as PIL stores uint8 (within 1 grey level of PIL).
    """
    size = _out_size(x, size)
    if size is None:
        return x.clone()
    if _uint8_kernels(x):
        src = x.contiguous(memory_format=torch.channels_last)
        return F.interpolate(src, size=size, mode="bilinear", antialias=True, align_corners=False).contiguous()
    (_, _, h, w), (oh, ow) = x.shape, size
    one = torch.ones(1, dtype=torch.long, device=x.device)
    mw = _resample_matrices(one * w, one * ow, w, ow, "bilinear").float()[0]  # (OW, W)
    mh = _resample_matrices(one * h, one * oh, h, oh, "bilinear").float()[0]  # (OH, H)
    levels = x.dtype == torch.uint8
    with full_fp32_matmul():
        t = x.float() @ mw.t()  # (B, 3, H, OW)
        t = t.add_(0.5).floor_().clamp_(0, 255) if levels else t
        t = mh @ t  # (B, 3, OH, OW)
    return _like(t.add_(0.5).floor_() if levels else t, x)


def pixelate(x: Tensor, r: Tensor, size: tuple[int, int] | None = None) -> Tensor:
    """Downsample so the shorter side is ``r`` pixels (bicubic, antialiased), then bilinear back to H×W (or to
    ``size``).

    The reference resizes the raw PIL image with its default bicubic filter and lets the train transform's
    bilinear resize bring it back (docs/spec.md §4): with ``size`` the way back goes straight to the model input
    size, as there. Images whose shorter side is already <= r are left unchanged (only resized to ``size``).
    uint8 on CPU uses torch's uint8 kernels (PIL's fixed-point arithmetic, ported from Pillow-SIMD) in
    channels_last memory, one group per distinct r; everything else (GPU, float input) uses
    :func:`_pixelate_matmul`.

    Args:
        x: (B, 3, H, W) uint8 or float.
        r: (B,) target shorter side in pixels.
        size: (H', W') of the output; None = (H, W).
    """
    _check_range("pixelation size r", r, 1, math.inf)
    size = _out_size(x, size)
    if not _uint8_kernels(x):
        return _pixelate_matmul(x, r, size)
    _, _, h, w = x.shape
    out = x.clone() if size is None else resize(x, size)
    short = min(h, w)
    src = x.contiguous(memory_format=torch.channels_last)
    for rv in torch.unique(r).tolist():  # one group per distinct size (at most 48), not per image
        if rv >= short:
            continue
        idx = (r == rv).nonzero().flatten()
        small_size = (max(1, round(h * rv / short)), max(1, round(w * rv / short)))
        small = F.interpolate(src[idx], size=small_size, mode="bicubic", antialias=True, align_corners=False)
        out[idx] = F.interpolate(small, size=size or (h, w), mode="bilinear", antialias=size is not None,
                                 align_corners=False)
    return out


def gaussian_blur(x: Tensor, k: Tensor, sigma: Tensor) -> Tensor:
    """Out-of-focus blur: separable Gaussian of odd size ``k`` and std ``sigma`` per image.

    Same kernel as torchvision's ``GaussianBlur`` (taps at integer offsets, normalised), zero-padded to the
    widest kernel of a chunk of images so one grouped convolution serves every size; reflect padding as
    torchvision. The reference applies the k×k outer product in one 2-D pass; two 1-D passes give the same sum
    up to float rounding, at 2k instead of k² multiply-adds per pixel. On CPU, 8 images at a time.

    Args:
        x: (B, 3, H, W) uint8 or float.
        k: (B,) odd kernel sizes in [1, 21]; sigma: (B,) standard deviations.
    """
    _check_range("Gaussian kernel size k", k, 1, _MAX_GAUSS)
    _check_range("Gaussian sigma", sigma, 1e-6, math.inf)
    if bool((k % 2 == 0).any()):
        raise ValueError(f"Gaussian kernel sizes must be odd, got {k.tolist()}")
    step = _CPU_CHUNK if x.device.type == "cpu" else x.shape[0]
    out = torch.empty_like(x)
    for i in range(0, x.shape[0], step):  # chunks of images, not single images
        xs, ks = x[i : i + step], k[i : i + step]
        half = int(ks.max()) // 2  # the chunk's widest kernel (at most 21 taps)
        t = torch.arange(-half, half + 1, device=x.device, dtype=torch.float32)  # (T,)
        g = torch.exp(-0.5 * (t[None, :] / sigma[i : i + step].float()[:, None]) ** 2)  # (b, T)
        g = g * (t[None, :].abs() <= (ks[:, None] - 1) / 2)  # zero taps beyond each image's kernel
        g = g / g.sum(dim=1, keepdim=True)
        planes = _planes(xs, (half, half, half, half))  # (1, b*C, H+2h, W+2h)
        y = _depthwise(planes, g[:, None, :, None], x.shape[1])  # vertical pass → (1, b*C, H, W+2h)
        y = _depthwise(y, g[:, None, None, :], x.shape[1])  # horizontal pass → (1, b*C, H, W)
        out[i : i + step] = _like(y, x).reshape(xs.shape)  # channels_last planes back to (b, C, H, W)
    return out


def _source_position(m_x: Tensor, m_y: Tensor, m_c: Tensor, pos: Tensor) -> Tensor:
    """One source coordinate of cv2.warpAffine's inverse map, as OpenCV computes it, in 1/32 px units.

    OpenCV evaluates ``m_x*x + m_y*y + m_c`` in 1/1024 fixed point (the y and constant terms rounded together,
    the x term separately, plus half a 1/32 step) and floors it to its 1/32 px interpolation grid.

    Args:
        m_x, m_y, m_c: (B,) one row of the inverse affine matrix; pos: (B, S) kernel coordinates of the canvas.

    Returns:
        (B, S, S) integer-valued float64, indexed [y, x].
    """
    along_y = torch.round((m_y[:, None] * pos + m_c[:, None]) * 1024) + 16  # (B, S)
    along_x = torch.round(m_x[:, None] * pos * 1024)  # (B, S)
    return torch.div(along_y[:, :, None] + along_x[:, None, :], 32, rounding_mode="floor")


def motion_kernels(k: Tensor, angle: Tensor) -> Tensor:
    """Rotated line kernels (B, 19, 19), each summing to 1, anchored at the centre tap.

    The reference builds a k×k zero kernel whose middle row ((k-1)//2) is ones, rotates it by ``angle`` degrees
    about ((k-1)/2, (k-1)/2) with ``cv2.warpAffine`` (bilinear, zero border) and normalises it (docs/spec.md §4). This
    reproduces OpenCV's arithmetic (equal to ~1e-16 for every k in 2..19 and integer angle, see the tests):
    the matrix from ``getRotationMatrix2D``, inverted as ``warpAffine`` does, source positions on its 1/32 px
    grid, bilinear weights from that grid; sampling a row of ones then has a closed form, so all kernels are
    built at once. Canvas tap (9, 9) holds the kernel's anchor (k//2, k//2), where ``cv2.filter2D`` puts it.
    """
    n = k.numel()
    kd = k.to(torch.float64)
    centre = kd / 2 - 0.5  # (B,)
    rad = angle.to(torch.float64) * (math.pi / 180)
    a, b = torch.cos(rad), torch.sin(rad)
    m02, m12 = (1 - a) * centre - b * centre, b * centre + (1 - a) * centre  # getRotationMatrix2D's offsets
    d = a * a + b * b  # warpAffine inverts [[a, b, m02], [-b, a, m12]] (same operation order as OpenCV)
    d = torch.where(d != 0, 1 / d, torch.zeros_like(d))
    i00, i01, i10, i11 = a * d, b * -d, b * d, a * d
    i02, i12 = -i00 * m02 - i01 * m12, -i10 * m02 - i11 * m12
    shift = torch.div(k, 2, rounding_mode="floor")[:, None] - _MAX_MOTION // 2  # (B, 1)
    pos = (torch.arange(_MAX_MOTION, device=k.device)[None, :] + shift).to(torch.float64)  # (B, 19)
    sx, sy = _source_position(i00, i01, i02, pos), _source_position(i10, i11, i12, pos)  # (B, 19, 19)
    x0, y0 = torch.div(sx, 32, rounding_mode="floor"), torch.div(sy, 32, rounding_mode="floor")  # whole px
    fx, fy = (sx - 32 * x0) / 32, (sy - 32 * y0) / 32  # fractions on the 1/32 grid
    kk, line = kd[:, None, None], torch.div(k - 1, 2, rounding_mode="floor").to(torch.float64)[:, None, None]
    wy = (1 - fy) * (y0 == line) + fy * (y0 + 1 == line)  # the source is one row of ones...
    wx = (1 - fx) * ((x0 >= 0) & (x0 < kk)) + fx * ((x0 + 1 >= 0) & (x0 + 1 < kk))  # ...k columns wide
    inside = (pos >= 0) & (pos < kd[:, None])  # (B, 19): canvas rows/columns within the k×k output
    ker = wx * wy * (inside[:, :, None] & inside[:, None, :])  # (B, 19, 19)
    return (ker / ker.sum(dim=(1, 2), keepdim=True).clamp(min=1e-12)).reshape(n, _MAX_MOTION, _MAX_MOTION)


def _fft_size(n: int) -> int:
    """The smallest even length >= n with no prime factor above 7 (fast for pocketfft/MKL and cuFFT)."""
    m = n + n % 2
    while True:
        rest = m
        for p in (2, 3, 5, 7):
            while rest % p == 0:
                rest //= p
        if rest == 1:
            return m
        m += 2


def motion_blur(x: Tensor, k: Tensor, angle: Tensor) -> Tensor:
    """Linear motion blur of length ``k`` pixels at ``angle`` degrees, per image (reflect-101 border).

    Cross-correlation with each image's kernel through real FFTs, as ``cv2.filter2D`` itself does for kernels
    this size: the cost does not depend on k (a dense 19×19 grouped convolution was 1.5× slower on CPU). The
    kernel window is cropped to the rows and columns any kernel of the batch uses, which sets the padding.

    Args:
        x: (B, 3, H, W) uint8 or float.
        k: (B,) kernel lengths in [1, 19]; angle: (B,) degrees.
    """
    _check_range("motion blur length k", k, 1, _MAX_MOTION)
    c = _MAX_MOTION // 2
    ker = motion_kernels(k, angle)  # (B, 19, 19)
    rows = (ker != 0).any(dim=(0, 2)).nonzero().flatten().tolist() + [c]  # the anchor stays in the window
    cols = (ker != 0).any(dim=(0, 1)).nonzero().flatten().tolist() + [c]
    r0, r1, c0, c1 = min(rows), max(rows), min(cols), max(cols)
    _, _, h, w = x.shape
    _check_border(h, max(c - r0, r1 - c))
    _check_border(w, max(c - c0, c1 - c))
    size = (_fft_size(h + r1 - r0), _fft_size(w + c1 - c0))  # no wrap-around reaches the output
    window = ker[:, r0 : r1 + 1, c0 : c1 + 1].to(torch.float64 if x.dtype == torch.float64 else torch.float32)
    chunk = _CPU_CHUNK if x.device.type == "cpu" else x.shape[0]
    levels = x.dtype == torch.uint8
    out = torch.empty_like(x)
    for i in range(0, x.shape[0], chunk):  # chunks of images, not single images
        xf = x[i : i + chunk].to(window.dtype)
        xf = xf.sub_(128) if levels else xf  # centred levels: half the FFT's rounding error
        padded = F.pad(xf, (c - c0, c1 - c, c - r0, r1 - c), mode="reflect")  # (b, 3, H+r1-r0, W+c1-c0)
        kernel_ft = torch.fft.rfft2(window[i : i + chunk], s=size).conj()  # conjugate: correlation
        y = torch.fft.irfft2(torch.fft.rfft2(padded, s=size) * kernel_ft[:, None], s=size)[..., :h, :w]
        out[i : i + chunk] = _snap_levels(y.add(128)) if levels else y.to(x.dtype)
    return out


def _snap_levels(y: Tensor) -> Tensor:
    """Round FFT sums to uint8 as cv2.filter2D's direct sums round: half to even on exact ties.

    Kernels with simple weights (k taps of 1/k at 0° and 90°) give exact .5 sums for many pixels, which the
    FFT's error (< 7e-5 level on centred 384×192 images) would round at random; snapping to 1/4096 of a level
    first makes them exact halves again.
    """
    return y.mul_(4096).round_().div_(4096).round_().clamp_(0, 255).to(torch.uint8)


def jpeg(x: Tensor, q: Tensor) -> Tensor:
    """JPEG round trip at quality ``q`` per image (Pillow's encoder, its default 4:2:0 chroma subsampling).

    The one per-image Python loop of this module: torchvision's ``encode_jpeg``/``v2.JPEG`` cannot load with the
    CPU torch build, so each image goes through Pillow on the CPU and back to x's device and dtype.

    Args:
        x: (B, 3, H, W) uint8, or float in [0, 1].
        q: (B,) qualities in [1, 100] (Pillow advises at most 95).
    """
    _check_range("JPEG quality q", q, 1, 100)
    u8 = x if x.dtype == torch.uint8 else (x.float() * 255).round().clamp(0, 255).to(torch.uint8)
    arrays = u8.permute(0, 2, 3, 1).cpu().numpy()  # (B, H, W, 3)
    out = np.empty_like(arrays)
    for i, quality in enumerate(q.tolist()):
        buf = io.BytesIO()
        Image.fromarray(arrays[i]).save(buf, format="JPEG", quality=int(quality))
        out[i] = np.asarray(Image.open(buf).convert("RGB"))
    y = torch.from_numpy(out).permute(0, 3, 1, 2).contiguous().to(x.device)  # (B, 3, H, W) uint8
    return y if x.dtype == torch.uint8 else (y.float() / 255).to(x.dtype)


def add_noise(x: Tensor, sigma: Tensor, generator: torch.Generator) -> Tensor:
    """Additive white Gaussian noise of std ``sigma`` grey levels per image, then rounded/clipped to the range.

    Args:
        x: (B, 3, H, W) uint8, or float in [0, 1] (sigma is then divided by 255).
        sigma: (B,) standard deviations in grey levels.
        generator: draws the per-pixel noise (on its own device; one on x's device avoids a copy).
    """
    _check_range("noise sigma", sigma, 0, math.inf)
    z = torch.randn(x.shape, generator=generator, device=generator.device).to(x.device)  # (B, 3, H, W)
    s = sigma.to(x.device, torch.float32)[:, None, None, None]  # (B, 1, 1, 1)
    if x.dtype == torch.uint8:
        return _like(x.float() + s * z, x)
    return (x.float() + (s / 255) * z).clamp_(0, 1).to(x.dtype)


def apply(
    images: Tensor,
    artifact: str,
    params: dict[str, Tensor],
    generator: torch.Generator | None = None,
    size: tuple[int, int] | None = None,
) -> Tensor:
    """Apply one artifact with given per-image parameters; returns the same shape (or (B, 3, *size)) and dtype.

    ``generator`` is needed by ``noise`` only (its per-pixel draw); the others are deterministic given params.
    ``size``: resize the result to (H', W') as the reference's train transform does after degrading the raw
    image (:func:`resize`; pixelation goes back up straight to it).
    """
    _check_name(artifact)
    if images.dim() != 4 or images.shape[1] != 3:
        raise ValueError(f"images must be a (B, 3, H, W) batch, got shape {tuple(images.shape)}")
    p = {name: v.to(images.device) for name, v in params.items()}
    size = _out_size(images, size)
    if artifact == "pixelation":
        return pixelate(images, p["r"], size)
    if artifact == "motion_blur":
        out = motion_blur(images, p["k"], p["angle"])
    elif artifact == "out_of_focus":
        out = gaussian_blur(images, p["k"], p["sigma"])
    elif artifact == "jpeg":
        out = jpeg(images, p["q"])
    elif generator is None:
        raise ValueError("apply(..., 'noise', ...) needs a generator for the per-pixel noise draw")
    else:
        out = add_noise(images, p["sigma"], generator)
    return out if size is None else resize(out, size)


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
    artifacts: str | Sequence[str] | None = None,
    size: tuple[int, int] | None = None,
) -> tuple[Tensor, dict[str, Tensor]]:
    """Give every image exactly one artifact (the reference's per-image draw, docs/spec.md §4).

    Args:
        images: (B, 3, H, W) uint8, or float in [0, 1]; any device.
        generator: RNG for the artifact choice and its parameters.
        mix: target-dataset mix name in :data:`MIXES` (ignored when ``artifacts`` is given).
        severity: None for the reference's draw, or a value in [0, 1] (or B values) for severity curves.
        artifacts: force these artifacts from :data:`ALL_ARTIFACTS` (one name per image, or one name for all).
        size: (H', W') of the result: degrade at the images' own size, then resize there (the reference degrades
            the raw image and its train transform resizes it, docs/spec.md §4); None = keep the size. The draws
            do not depend on it.

    Returns:
        (degraded images, info) where info holds ``artifact`` (B,) codes into :data:`ALL_ARTIFACTS` (the first
        three are :data:`ARTIFACTS`) and ``strength`` (B,) in [0, 1].
    """
    b = images.shape[0]
    if artifacts is None:
        codes = choose_artifacts(b, mix, generator)
    else:
        names = [artifacts] * b if isinstance(artifacts, str) else list(artifacts)
        if len(names) != b or any(a not in ALL_ARTIFACTS for a in names):
            raise ValueError(f"artifacts must be {b} names from {ALL_ARTIFACTS}, got {artifacts!r}")
        codes = torch.tensor([ALL_ARTIFACTS.index(a) for a in names], device=generator.device)
    sev_all = None if severity is None else _severity(severity, b, generator.device)
    size = _out_size(images, size)
    out = images.clone() if size is None else images.new_empty((b, images.shape[1], *size))
    level = torch.zeros(b, device=generator.device)
    for code, name in enumerate(ALL_ARTIFACTS):
        idx = (codes == code).nonzero().flatten()
        if idx.numel() == 0:
            continue
        params = sample_params(name, idx.numel(), generator, None if sev_all is None else sev_all[idx])
        on_dev = idx.to(images.device)
        out[on_dev] = apply(images[on_dev], name, params, generator, size)
        level[idx] = strength(name, params)
    return out, {"artifact": codes, "strength": level}
