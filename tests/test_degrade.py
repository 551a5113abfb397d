"""Degradations: batched tensor code vs explicit per-image references, determinism, severity."""

import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from PIL import Image

from rlqlib import degrade
from rlqlib.tv import import_torchvision


def _images(b=6, h=48, w=24, seed=0):
    g = torch.Generator().manual_seed(seed)
    base = torch.rand(b, 3, h // 8, w // 8, generator=g)  # smooth-ish content, like a figure on a background
    x = F.interpolate(base, size=(h, w), mode="bilinear", align_corners=False)
    return (x * 255).round().to(torch.uint8)


@pytest.mark.parametrize("artifact", degrade.ARTIFACTS)
def test_shape_dtype_range_and_determinism(artifact):
    x = _images()
    for dtype in (torch.uint8, torch.float32):
        xi = x if dtype == torch.uint8 else x.float() / 255
        y1, info1 = degrade.degrade(xi, torch.Generator().manual_seed(3), artifacts=artifact)
        y2, info2 = degrade.degrade(xi, torch.Generator().manual_seed(3), artifacts=artifact)
        assert y1.shape == xi.shape and y1.dtype == dtype
        assert torch.equal(y1, y2) and torch.equal(info1["strength"], info2["strength"])
        assert float(y1.min()) >= 0 and float(y1.max()) <= (255 if dtype == torch.uint8 else 1.0 + 1e-6)
        assert (info1["artifact"] == degrade.ARTIFACTS.index(artifact)).all()


@pytest.mark.parametrize("artifact", degrade.ARTIFACTS)
def test_distortion_grows_with_severity(artifact):
    x = _images(b=8, h=96, w=48)
    errs = []
    for s in (0.0, 0.5, 1.0):
        y, info = degrade.degrade(x, torch.Generator().manual_seed(1), artifacts=artifact, severity=s)
        assert torch.allclose(info["strength"], torch.full((8,), s), atol=0.07)
        errs.append((y.float() - x.float()).abs().mean().item())
    assert errs[0] < errs[1] < errs[2]


def test_mix_frequencies_follow_reference():
    codes = degrade.choose_artifacts(30000, "ltcc", torch.Generator().manual_seed(0))
    freq = torch.bincount(codes, minlength=3).float() / codes.numel()
    # LTCC: u < 0.33 pixelation, 0.33 <= u <= 0.63 motion, u > 0.63 out-of-focus (spec §4)
    assert torch.allclose(freq, torch.tensor([0.33, 0.30, 0.37]), atol=0.01)
    codes = degrade.choose_artifacts(20000, "prcc", torch.Generator().manual_seed(0))
    assert (codes != degrade.ARTIFACTS.index("motion_blur")).all()
    with pytest.raises(ValueError, match="unknown degradation mix"):
        degrade.choose_artifacts(3, "market", torch.Generator())


def _motion_kernel_loop(k: int, angle: float) -> np.ndarray:
    """Explicit construction: rotate a k×k one-row kernel (bilinear, zero border) about ((k-1)/2, (k-1)/2)."""
    src = np.zeros((k, k))
    src[(k - 1) // 2, :] = 1.0
    c = (k - 1) / 2
    a, b = math.cos(math.radians(angle)), math.sin(math.radians(angle))
    out = np.zeros((k, k))
    for y in range(k):
        for x in range(k):
            sx = a * (x - c) - b * (y - c) + c
            sy = b * (x - c) + a * (y - c) + c
            x0, y0 = math.floor(sx), math.floor(sy)
            val = 0.0
            for yy, wy in ((y0, 1 - (sy - y0)), (y0 + 1, sy - y0)):
                for xx, wx in ((x0, 1 - (sx - x0)), (x0 + 1, sx - x0)):
                    if 0 <= yy < k and 0 <= xx < k:
                        val += wy * wx * src[yy, xx]
            out[y, x] = val
    return out / out.sum()


@pytest.mark.parametrize("k,angle", [(8, 0.0), (9, 90.0), (13, 37.0), (19, 145.0), (10, 179.0)])
def test_motion_kernel_matches_explicit_rotation(k, angle):
    ker = degrade.motion_kernels(torch.tensor([k]), torch.tensor([angle]))[0].numpy()
    ref = _motion_kernel_loop(k, angle)
    c, a = 19 // 2, k // 2  # canvas centre holds the kernel anchor k//2 (cv2.filter2D's default)
    window = ker[c - a : c - a + k, c - a : c - a + k]
    np.testing.assert_allclose(window, ref, atol=1e-5)
    assert abs(ker.sum() - window.sum()) < 1e-6  # nothing outside the k×k window


def test_gaussian_matches_torchvision_per_image():
    tv = import_torchvision()
    x = _images(b=4, h=64, w=32)
    k = torch.tensor([5, 9, 15, 21])
    sigma = torch.tensor([0.5, 1.0, 1.7, 2.0])
    y = degrade.gaussian_blur(x.float(), k, sigma)
    for i in range(4):
        ref = tv.transforms.functional.gaussian_blur(x[i].float(), [int(k[i])] * 2, [float(sigma[i])] * 2)
        torch.testing.assert_close(y[i], ref, atol=1e-3, rtol=0)


def test_pixelation_matches_pil_within_one_level():
    """Batched uint8 path vs the reference's PIL bicubic downsample + bilinear upsample, per image."""
    x = _images(b=3, h=128, w=64)
    r = torch.tensor([16, 31, 50])
    y = degrade.pixelate(x, r)
    for i in range(3):
        img = Image.fromarray(x[i].permute(1, 2, 0).numpy())
        scale = int(r[i]) / 64
        small = img.resize((round(64 * scale), round(128 * scale)), Image.BICUBIC)
        ref = np.asarray(small.resize((64, 128), Image.BILINEAR)).astype(int)
        diff = np.abs(y[i].permute(1, 2, 0).numpy().astype(int) - ref)
        assert diff.mean() < 1.0 and np.percentile(diff, 99) <= 3
    assert torch.equal(degrade.pixelate(x, torch.tensor([64, 70, 200])), x)  # r >= shorter side: unchanged
