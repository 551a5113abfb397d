"""LQ images made where the authors make them (difference N1): degrade the stored image at its own size, then resize
to the model input; checked against PIL per image and against degrading at the input size."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from PIL import Image

from rlqlib.data import degrade as D
from rlqlib.data.images import load_images
from rlqlib.data.lq import LQSource, dataset_mix, lq_source
from random_tensors import generator as _gen


def _smooth(b: int, h: int, w: int, seed: int) -> torch.Tensor:
    """(b,3,h,w) uint8 images with structure (resampling tests need more than pixel noise)."""
    g = torch.Generator().manual_seed(seed)
    x = torch.rand(b, 3, h // 8, w // 8, generator=g) * 255
    return F.interpolate(x, size=(h, w), mode="bicubic", align_corners=False).clamp(0, 255).round().to(torch.uint8)


def _pil(x: torch.Tensor) -> Image.Image:
    return Image.fromarray(x.permute(1, 2, 0).numpy())


def _tensor(im: Image.Image) -> torch.Tensor:
    return torch.from_numpy(np.array(im)).permute(2, 0, 1)


@pytest.mark.parametrize("size", [(384, 192), (100, 50), (256, 128)])
def test_resize_is_pils_bilinear(size):
    x = _smooth(3, 256, 128, seed=1)
    want = torch.stack([_tensor(_pil(im).resize((size[1], size[0]), Image.BILINEAR)) for im in x])
    assert (D.resize(x, size).int() - want.int()).abs().max() <= 1  # uint8 CPU kernels: Pillow-SIMD's arithmetic
    assert (D.resize(x.float(), size).round().int() - want.int()).abs().max() <= 1  # the matmul path (GPU, floats)


def test_pixelation_to_the_input_size_goes_straight_back_up_as_the_reference():
    # the reference: raw → (round(W·r/short), round(H·r/short)) bicubic → the train transform's bilinear 192×384
    x, r = _smooth(5, 256, 128, seed=2), torch.tensor([16, 20, 33, 63, 128])
    # uint8 CPU kernels: within 1 grey level; the float matmul path (GPU): within 2 on the 12× upscale of r = 16
    for out, tol in ((D.pixelate(x, r, (384, 192)), 1), (D._pixelate_matmul(x, r, (384, 192)), 2)):
        for im, rv, got in zip(x, r.tolist(), out):
            pim = _pil(im)
            w, h = pim.size
            small = pim.resize((round(w * rv / min(w, h)), round(h * rv / min(w, h)))) if rv < min(w, h) else pim
            want = _tensor(small.resize((192, 384), Image.BILINEAR))
            assert (got.int() - want.int()).abs().max() <= tol, rv


@pytest.mark.parametrize("artifact", ["motion_blur", "out_of_focus"])
def test_blurs_at_the_stored_size_then_resized(artifact):
    x = _smooth(4, 256, 128, seed=3)
    got, info = D.degrade(x, _gen(5), artifacts=artifact, size=(384, 192))
    raw, same = D.degrade(x, _gen(5), artifacts=artifact)  # the same draws: size does not enter them
    assert torch.equal(info["strength"], same["strength"])
    want = torch.stack([_tensor(_pil(im).resize((192, 384), Image.BILINEAR)) for im in raw])
    assert got.shape == (4, 3, 384, 192) and (got.int() - want.int()).abs().max() <= 1


def test_motion_blur_on_the_raw_image_is_longer_on_the_input_than_blurring_the_input():
    # a one-pixel vertical line; a horizontal motion blur of length k at 128 px width becomes ~1.5k px at 192 px
    x = torch.zeros(1, 3, 256, 128, dtype=torch.uint8)
    x[..., 64] = 255
    k, angle = torch.tensor([15]), torch.tensor([0.0])
    raw_first = D.resize(D.motion_blur(x, k, angle), (384, 192))
    input_first = D.motion_blur(D.resize(x, (384, 192)), k, angle)

    def width(img):  # columns of the middle row touched by the blur
        return int((img[0, 0, 192] > 0).sum())

    assert width(raw_first) >= 1.4 * 15 and width(input_first) <= 15 + 2


def test_same_size_is_the_input_path_bit_for_bit():
    x = _smooth(6, 64, 32, seed=4)
    a, _ = D.degrade(x, _gen(9), "ltcc", size=(64, 32))
    b, _ = D.degrade(x, _gen(9), "ltcc")
    assert torch.equal(a, b)


def _write(folder: Path, images: torch.Tensor, start: int) -> list[str]:
    paths = []
    for i, im in enumerate(images):
        p = folder / f"{start + i:03d}.png"
        _pil(im).save(p)
        paths.append(str(p))
    return paths


def test_lq_source_groups_raw_sizes_and_degrades_each_at_its_own(tmp_path):
    big, small = _smooth(3, 96, 48, seed=5), _smooth(2, 48, 24, seed=6)
    paths = _write(tmp_path, big, 0) + _write(tmp_path, small, 3)
    inputs = load_images(paths, (64, 32))
    src = lq_source(paths, inputs, "ltcc", "raw", workers=1)
    assert src.at == "raw" and [tuple(t.shape) for t in src.raw[0]] == [(2, 3, 48, 24), (3, 3, 96, 48)]
    index = torch.tensor([4, 0, 3, 2])
    got = src.make(index, _gen(7))
    # explicit: ascending stored size, one draw per group, from the same generator
    g = _gen(7)
    want = torch.empty_like(got)
    want[[0, 2]] = D.degrade(small[[1, 0]], g, "ltcc", size=(64, 32))[0]
    want[[1, 3]] = D.degrade(big[[0, 2]], g, "ltcc", size=(64, 32))[0]
    assert got.shape == (4, 3, 64, 32) and torch.equal(got, want)
    # "input": the stored images at the input size are degraded, as before the difference was fixed
    flat = lq_source(paths, inputs, "ltcc", "input")
    assert flat.at == "input" and torch.equal(flat.make(index, _gen(7)), D.degrade(inputs[index], _gen(7), "ltcc")[0])


def test_lq_source_keeps_no_copy_when_files_are_stored_at_the_input_size(tmp_path):
    imgs = _smooth(3, 64, 32, seed=8)
    paths = _write(tmp_path, imgs, 0)
    src = lq_source(paths, load_images(paths, (64, 32)), "prcc", "raw")
    assert src.at == "input" and src.raw is None  # SynthCC at the smoke/cpu presets: raw = input
    with pytest.raises(ValueError, match="mix"):
        LQSource(imgs, "nope")
    with pytest.raises(ValueError, match="made at"):
        lq_source(paths, imgs, "ltcc", "somewhere")
    assert dataset_mix("prcc") == "prcc" and dataset_mix("celebreid") == "generic"
