"""Degradations: batched tensor code vs explicit per-image references, parameter draws, determinism, severity."""

import io
import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from PIL import Image

from rlqlib.data import degrade
from rlqlib.methods.tv import import_torchvision

cv2 = pytest.importorskip("cv2")
from bench import reference_degrade as rd  # noqa: E402 (needs cv2)


def _images(b=6, h=48, w=24, seed=0):
    g = torch.Generator().manual_seed(seed)
    base = torch.rand(b, 3, h // 8, w // 8, generator=g)  # smooth-ish content, like a figure on a background
    x = F.interpolate(base, size=(h, w), mode="bilinear", align_corners=False)
    return (x * 255).round().to(torch.uint8)


def _batch(n, h=384, w=192):
    arrays = np.stack([rd.scene(i, h, w) for i in range(n)])  # (B, H, W, 3)
    return arrays, torch.from_numpy(arrays).permute(0, 3, 1, 2).contiguous()  # (B, 3, H, W)


# the reference's per-image code (docs/spec.md §4), one image at a time, shared with the benchmark
REFERENCE = {"pixelation": (rd.pixelate, ("r",)), "motion_blur": (rd.motion, ("k", "angle")),
             "out_of_focus": (rd.gauss, ("k", "sigma"))}
# parameter extremes of the reference draw and of the severity mapping, appended to random draws
EXTREMES = {
    "pixelation": {"r": [16, 63, 17]},
    "motion_blur": {"k": [8, 19, 8, 13], "angle": [0.0, 90.0, 45.0, 179.0]},
    "out_of_focus": {"k": [5, 21, 9], "sigma": [0.1, 2.0, 1.3]},
}


def _fidelity(artifact, arrays, x, params):
    fn, keys = REFERENCE[artifact]
    y = degrade.apply(x, artifact, params).permute(0, 2, 3, 1).numpy().astype(int)
    diffs = []
    for i in range(len(arrays)):
        args = [float(params[key][i]) if key in ("sigma", "angle") else int(params[key][i]) for key in keys]
        diffs.append(np.abs(y[i] - fn(arrays[i], *args).astype(int)))
    return np.stack(diffs)


def _params(artifact, n_random, seed=0):
    drawn = degrade.sample_params(artifact, n_random, torch.Generator().manual_seed(seed))
    extra = {key: torch.tensor(v, dtype=drawn[key].dtype) for key, v in EXTREMES[artifact].items()}
    return {key: torch.cat([drawn[key], extra[key]]) for key in drawn}


@pytest.mark.parametrize("draw", ["reference", "severity"])
@pytest.mark.parametrize("artifact", degrade.ARTIFACTS)
def test_batched_within_one_level_of_per_image_reference(artifact, draw):
    """384×192 SynthCC-like images, same parameters: ±1 grey level everywhere, exact almost everywhere.

    The reference draw plus the range's extremes (widest kernels; more than one CPU chunk of 8 images), or
    mild severities (narrow kernels, so the motion window is cropped and the Gaussian padded less).
    """
    if draw == "reference":
        params = _params(artifact, 7, seed=degrade.ARTIFACTS.index(artifact))
    else:
        severity = torch.tensor([0.0, 0.1, 0.3])
        params = degrade.sample_params(artifact, 3, torch.Generator().manual_seed(0), severity)
    n = len(next(iter(params.values())))
    arrays, x = _batch(n)
    d = _fidelity(artifact, arrays, x, params)
    assert d.max() <= 1
    assert d.mean() < {"pixelation": 0.02, "motion_blur": 0.002, "out_of_focus": 0.002}[artifact]


def test_pixelation_matmul_path_replays_pil(monkeypatch):
    """The path taken off the CPU (no uint8 kernels): PIL's four rounded 1-D passes as matmuls, ±1 level."""
    monkeypatch.setattr(degrade, "_uint8_kernels", lambda x: False)
    params = _params("pixelation", 4)
    arrays, x = _batch(len(params["r"]))
    d = _fidelity("pixelation", arrays, x, params)
    assert d.max() <= 1 and d.mean() < 0.02


def test_pixelation_matmul_equals_interpolate_on_float_input():
    """Float input: the resampling matrices are F.interpolate's antialiased weights (PIL's), per image."""
    x = _images(b=4, h=96, w=48).float() / 255
    r = torch.tensor([7, 16, 30, 60])  # 60 >= the shorter side: unchanged
    y = degrade.pixelate(x, r)
    for i in range(4):
        size = (round(96 * int(r[i]) / 48), round(48 * int(r[i]) / 48))
        small = F.interpolate(x[i : i + 1], size=size, mode="bicubic", antialias=True, align_corners=False)
        ref = F.interpolate(small, size=(96, 48), mode="bilinear", align_corners=False)
        torch.testing.assert_close(y[i : i + 1], ref if r[i] < 48 else x[i : i + 1], atol=1e-5, rtol=0)


def _motion_kernel_loop(k: int, angle: float) -> np.ndarray:
    """Explicit cv2.warpAffine arithmetic: inverse map in 1/1024 fixed point, 1/32 px positions, bilinear."""
    rad = angle * (math.pi / 180)
    a, b, c = math.cos(rad), math.sin(rad), k / 2 - 0.5
    m = [a, b, (1 - a) * c - b * c, -b, a, b * c + (1 - a) * c]  # cv2.getRotationMatrix2D
    d = 1 / (m[0] * m[4] - m[1] * m[3])
    i00, i01, i10, i11 = m[4] * d, m[1] * -d, m[3] * -d, m[0] * d
    i02, i12 = -i00 * m[2] - i01 * m[5], -i10 * m[2] - i11 * m[5]
    out = np.zeros((k, k))
    for y in range(k):
        for x in range(k):
            sx = (round((i01 * y + i02) * 1024) + 16 + round(i00 * x * 1024)) >> 5  # in 1/32 px
            sy = (round((i11 * y + i12) * 1024) + 16 + round(i10 * x * 1024)) >> 5
            x0, y0, fx, fy = sx >> 5, sy >> 5, (sx & 31) / 32, (sy & 31) / 32
            for yy, wy in ((y0, 1 - fy), (y0 + 1, fy)):
                for xx, wx in ((x0, 1 - fx), (x0 + 1, fx)):
                    if yy == (k - 1) // 2 and 0 <= xx < k:  # the source: k×k zeros, middle row ones
                        out[y, x] += wy * wx
    return out / out.sum()


def _window(canvas: np.ndarray, k: int) -> np.ndarray:
    c, a = 19 // 2, k // 2  # canvas centre holds the kernel anchor k//2 (cv2.filter2D's default)
    return canvas[c - a : c - a + k, c - a : c - a + k]


@pytest.mark.parametrize("k,angle", [(8, 0.0), (9, 90.0), (13, 37.0), (19, 145.0), (10, 179.0)])
def test_motion_kernel_matches_explicit_rotation(k, angle):
    ker = degrade.motion_kernels(torch.tensor([k]), torch.tensor([angle]))[0].numpy()
    np.testing.assert_allclose(_window(ker, k), _motion_kernel_loop(k, angle), atol=1e-12)
    assert abs(ker.sum() - _window(ker, k).sum()) < 1e-12  # nothing outside the k×k window


def test_motion_kernels_equal_cv2_for_every_size_and_angle():
    ks, angles = torch.meshgrid(torch.arange(2, 20), torch.arange(0, 180), indexing="ij")
    kers = degrade.motion_kernels(ks.flatten(), angles.flatten().float()).numpy()  # (18*180, 19, 19)
    for ker, k, angle in zip(kers, ks.flatten().tolist(), angles.flatten().tolist()):
        ref = rd.motion_kernel(k, angle)
        np.testing.assert_allclose(_window(ker, k), ref, atol=1e-12, err_msg=f"k={k} angle={angle}")


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
        ref = rd.pixelate(x[i].permute(1, 2, 0).numpy(), int(r[i])).astype(int)
        diff = np.abs(y[i].permute(1, 2, 0).numpy().astype(int) - ref)
        assert diff.max() <= 1 and diff.mean() < 0.05
    assert torch.equal(degrade.pixelate(x, torch.tensor([64, 70, 200])), x)  # r >= shorter side: unchanged


def test_bad_input_is_a_clear_error():
    x = torch.zeros(1, 3, 8, 8, dtype=torch.uint8)
    with pytest.raises(ValueError, match="too small"):
        degrade.motion_blur(x, torch.tensor([19]), torch.tensor([30.0]))
    with pytest.raises(ValueError, match="motion blur length k must lie in"):
        degrade.motion_blur(_images(b=1), torch.tensor([25]), torch.tensor([30.0]))  # wider than the canvas
    with pytest.raises(ValueError, match="must be odd"):
        degrade.gaussian_blur(_images(b=1), torch.tensor([6]), torch.tensor([1.0]))
    with pytest.raises(ValueError, match="JPEG quality"):
        degrade.apply(_images(b=1), "jpeg", {"q": torch.tensor([0])})
    with pytest.raises(ValueError, match=r"\(B, 3, H, W\) batch"):
        degrade.apply(torch.zeros(3, 8, 8, dtype=torch.uint8), "pixelation", {"r": torch.tensor([4])})
    with pytest.raises(ValueError, match="unknown artifact"):
        degrade.sample_params("blur", 2, torch.Generator())


# ------------------------------------------------------------------------------------- parameter draws


def _assert_uniform(values: torch.Tensor, support: list, tol: float = 0.15):
    """Every value in the support, nothing outside it, each within ±tol of its expected count."""
    vals, counts = torch.unique(values, return_counts=True)
    assert vals.tolist() == support
    expected = values.numel() / len(support)
    assert ((counts - expected).abs() < tol * expected).all(), counts


def test_reference_draws_cover_the_reference_ranges():
    g = torch.Generator().manual_seed(0)
    _assert_uniform(degrade.sample_params("pixelation", 48_000, g)["r"], list(range(16, 64)))
    p = degrade.sample_params("motion_blur", 54_000, g)
    _assert_uniform(p["k"], list(range(8, 20)))
    _assert_uniform(p["angle"], [float(a) for a in range(180)], tol=0.25)
    p = degrade.sample_params("out_of_focus", 30_000, g)
    _assert_uniform(p["k"], list(range(5, 22, 2)))
    assert 0.1 <= float(p["sigma"].min()) and float(p["sigma"].max()) <= 2.0
    _assert_uniform(((p["sigma"] - 0.1) / 0.19).floor().long(), list(range(10)))  # 10 equal bins of U(0.1, 2)
    _assert_uniform(degrade.sample_params("jpeg", 43_000, g)["q"], list(range(10, 96)))
    sigma = degrade.sample_params("noise", 20_000, g)["sigma"]
    assert 0 <= float(sigma.min()) and float(sigma.max()) <= 40
    _assert_uniform((sigma / 4).floor().long(), list(range(10)))


def test_severity_maps_to_hand_computed_parameters():
    g, s = torch.Generator().manual_seed(0), torch.tensor([0.0, 0.5, 1.0])
    assert degrade.sample_params("pixelation", 3, g, s)["r"].tolist() == [63, 40, 16]  # 63 - 23.5 -> 40 (even)
    assert degrade.sample_params("motion_blur", 3, g, s)["k"].tolist() == [8, 14, 19]  # 8 + 5.5 -> 14 (even)
    p = degrade.sample_params("out_of_focus", 3, g, s)
    assert p["k"].tolist() == [5, 13, 21] and torch.allclose(p["sigma"], torch.tensor([0.1, 1.05, 2.0]))
    assert degrade.sample_params("jpeg", 3, g, s)["q"].tolist() == [95, 52, 10]  # 95 - 42.5 -> 52 (even)
    assert degrade.sample_params("noise", 3, g, s)["sigma"].tolist() == [0.0, 20.0, 40.0]
    for name in degrade.ALL_ARTIFACTS:
        level = degrade.strength(name, degrade.sample_params(name, 3, g, s))
        torch.testing.assert_close(level, s, atol=0.05, rtol=0)
    with pytest.raises(ValueError, match="severity"):
        degrade.sample_params("jpeg", 3, g, 1.5)


def _spec_choice(mix: str, u: float) -> str:
    """The reference's if-chain on one uniform draw (docs/spec.md §4)."""
    if mix in ("ltcc", "last", "synthcc"):
        return "pixelation" if u < 0.33 else "motion_blur" if u <= 0.63 else "out_of_focus"
    if mix in ("prcc", "deepchange"):
        return "pixelation" if u > 0.5 else "out_of_focus"
    return "pixelation" if u > 0.5 else "motion_blur"  # generic


@pytest.mark.parametrize("mix", sorted(degrade.MIXES))
def test_mix_follows_the_reference_if_chain(mix):
    codes = degrade.choose_artifacts(20_000, mix, torch.Generator().manual_seed(5))
    u = torch.rand(20_000, generator=torch.Generator().manual_seed(5))  # the same draws
    assert [degrade.ARTIFACTS[c] for c in codes.tolist()] == [_spec_choice(mix, v) for v in u.tolist()]


def test_mix_frequencies_follow_reference():
    codes = degrade.choose_artifacts(30000, "ltcc", torch.Generator().manual_seed(0))
    freq = torch.bincount(codes, minlength=3).float() / codes.numel()
    # LTCC: u < 0.33 pixelation, 0.33 <= u <= 0.63 motion, u > 0.63 out-of-focus (docs/spec.md §4)
    assert torch.allclose(freq, torch.tensor([0.33, 0.30, 0.37]), atol=0.01)
    codes = degrade.choose_artifacts(20000, "prcc", torch.Generator().manual_seed(0))
    assert (codes != degrade.ARTIFACTS.index("motion_blur")).all()
    with pytest.raises(ValueError, match="unknown degradation mix"):
        degrade.choose_artifacts(3, "market", torch.Generator())


# ------------------------------------------------------------------------ whole-batch behaviour, all five


@pytest.mark.parametrize("artifact", degrade.ALL_ARTIFACTS)
def test_shape_dtype_range_and_determinism(artifact):
    x = _images()
    for dtype in (torch.uint8, torch.float32):
        xi = x if dtype == torch.uint8 else x.float() / 255
        y1, info1 = degrade.degrade(xi, torch.Generator().manual_seed(3), artifacts=artifact)
        y2, info2 = degrade.degrade(xi, torch.Generator().manual_seed(3), artifacts=artifact)
        assert y1.shape == xi.shape and y1.dtype == dtype and y1.is_contiguous()
        assert torch.equal(y1, y2) and torch.equal(info1["strength"], info2["strength"])
        assert float(y1.min()) >= 0 and float(y1.max()) <= (255 if dtype == torch.uint8 else 1.0 + 1e-6)
        assert (info1["artifact"] == degrade.ALL_ARTIFACTS.index(artifact)).all()


@pytest.mark.parametrize("artifact", degrade.ALL_ARTIFACTS)
def test_distortion_grows_with_severity(artifact):
    x = _images(b=8, h=96, w=48)
    errs = []
    for s in (0.0, 0.5, 1.0):
        y, info = degrade.degrade(x, torch.Generator().manual_seed(1), artifacts=artifact, severity=s)
        assert torch.allclose(info["strength"], torch.full((8,), s), atol=0.07)
        errs.append((y.float() - x.float()).abs().mean().item())
    assert errs[0] < errs[1] < errs[2]


def test_degrade_mixes_paper_and_extra_artifacts_per_image():
    x = _images(b=5)
    names = ["jpeg", "noise", "pixelation", "motion_blur", "out_of_focus"]
    y, info = degrade.degrade(x, torch.Generator().manual_seed(0), artifacts=names)
    assert info["artifact"].tolist() == [degrade.ALL_ARTIFACTS.index(n) for n in names]
    assert ((info["strength"] >= 0) & (info["strength"] <= 1)).all() and not torch.equal(y, x)
    with pytest.raises(ValueError, match="artifacts must be"):
        degrade.degrade(x, torch.Generator(), artifacts="snow")


def test_jpeg_is_a_pillow_round_trip_per_image():
    x = _images(b=3, h=64, w=32)
    q = torch.tensor([10, 50, 95])
    y = degrade.jpeg(x, q)
    errs = []
    for i in range(3):
        buf = io.BytesIO()
        Image.fromarray(x[i].permute(1, 2, 0).numpy()).save(buf, format="JPEG", quality=int(q[i]))
        ref = np.asarray(Image.open(buf).convert("RGB"))
        assert np.array_equal(y[i].permute(1, 2, 0).numpy(), ref)
        errs.append(np.abs(ref.astype(int) - x[i].permute(1, 2, 0).numpy()).mean())
    assert errs[0] > errs[1] > errs[2]
    yf = degrade.jpeg(x.float() / 255, q)  # float in [0, 1]: the same round trip on its uint8 levels
    assert yf.dtype == torch.float32 and torch.equal((yf * 255).round().to(torch.uint8), y)


def test_noise_has_the_drawn_sigma_per_image_and_clips():
    x = torch.full((4, 3, 64, 64), 128, dtype=torch.uint8)
    sigma = torch.tensor([0.0, 5.0, 10.0, 20.0])
    y = degrade.apply(x, "noise", {"sigma": sigma}, torch.Generator().manual_seed(0))
    d = (y.float() - 128).flatten(1)  # (4, 12288)
    assert torch.equal(y[0], x[0])
    torch.testing.assert_close(d.std(dim=1)[1:], sigma[1:], rtol=0.04, atol=0)  # rounding adds 1/12 variance
    assert (d.mean(dim=1).abs() < 4 * sigma / math.sqrt(d.shape[1]) + 1e-6).all()
    assert abs(float(torch.corrcoef(torch.stack([d[2], d[3]]))[0, 1])) < 0.05  # independent across images
    white = torch.full((1, 3, 32, 32), 255, dtype=torch.uint8)
    white = degrade.apply(white, "noise", {"sigma": torch.tensor([20.0])}, torch.Generator().manual_seed(0))
    assert int(white.max()) == 255 and float(white.float().mean()) < 250  # clipped at the top, not wrapped
    yf = degrade.apply(x.float() / 255, "noise", {"sigma": sigma}, torch.Generator().manual_seed(0))
    torch.testing.assert_close((yf.flatten(1) - 128 / 255).std(dim=1)[1:], sigma[1:] / 255, rtol=0.04, atol=0)
    with pytest.raises(ValueError, match="needs a generator"):
        degrade.apply(x, "noise", {"sigma": sigma})


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_cuda_matches_cpu_within_one_level():
    arrays, x = _batch(4)
    for name in ("pixelation", "motion_blur", "out_of_focus", "jpeg"):
        params = degrade.sample_params(name, 4, torch.Generator().manual_seed(0))
        cpu = degrade.apply(x, name, params).int()
        gpu = degrade.apply(x.cuda(), name, params).cpu().int()
        assert (gpu - cpu).abs().max() <= (2 if name == "pixelation" else 1), name
