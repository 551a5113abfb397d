"""rlqlib.data.transforms: normalisation and the batched train augmentation (tiny, CPU)."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from PIL import Image

from rlqlib.data.transforms import ERASE_FILL, IMAGENET_MEAN, IMAGENET_STD, eval_transform, normalize, train_augment
from random_tensors import generator as _gen, random_images as _images

MEAN = torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1)
STD = torch.tensor(IMAGENET_STD).view(1, 3, 1, 1)




def test_normalize_values():
    x = torch.tensor([0, 255, 51], dtype=torch.uint8).view(1, 3, 1, 1)
    want = [(0 - 0.485) / 0.229, (1 - 0.456) / 0.224, (0.2 - 0.406) / 0.225]
    assert torch.allclose(normalize(x).flatten(), torch.tensor(want), atol=1e-6)
    assert torch.equal(eval_transform(x), normalize(x))
    with pytest.raises(TypeError, match="uint8"):
        train_augment(x.float(), _gen(0))


def test_augment_shape_range_determinism():
    x = _images()
    out = train_augment(x, _gen(1))
    assert out.shape == x.shape and out.dtype == torch.float32
    assert ((out >= -MEAN / STD - 1e-5) & (out <= (1 - MEAN) / STD + 1e-5)).all()
    assert torch.equal(out, train_augment(x, _gen(1)))
    assert not torch.equal(out, train_augment(x, _gen(2)))


def test_augment_identity_and_flip():
    x = _images()
    none = train_augment(x, _gen(0), crop_p=0, flip_p=0, erase_p=0)
    assert torch.equal(none, normalize(x))
    flipped = train_augment(x, _gen(0), crop_p=0, flip_p=1, erase_p=0)
    assert torch.equal(flipped, normalize(x).flip(-1))


def _draws(seed: int, b: int) -> dict[str, torch.Tensor]:
    """Replay train_augment's documented draw order from a fresh generator."""
    g = _gen(seed)

    def r(*shape):
        return torch.rand(shape, generator=g, dtype=torch.float64)

    return dict(crop_u=r(b), crop_off=r(b, 2), flip_u=r(b),
                erase_u=r(b), area=r(b, 100), aspect=r(b, 100), pos=r(b, 2))


@pytest.mark.parametrize("b,h,w,retries", [(8, 24, 12, False), (16, 40, 4, True), (64, 2, 2, True)])
def test_erasing_matches_per_image_reference_loop(b, h, w, retries):
    x = _images(b, h, w, seed=4)
    out = train_augment(x, _gen(5), crop_p=0, flip_p=0, erase_p=1)
    d = _draws(5, b)
    ref = normalize(x)
    fill = torch.tensor(ERASE_FILL).view(3, 1, 1)
    tries = []
    for i in range(b):  # the reference algorithm, one image at a time
        for t in range(100):
            target = (0.02 + (0.4 - 0.02) * d["area"][i, t].item()) * h * w
            aspect = 0.3 + (1 / 0.3 - 0.3) * d["aspect"][i, t].item()
            bh = int(round(math.sqrt(target * aspect)))
            bw = int(round(math.sqrt(target / aspect)))
            if bw < w and bh < h:
                top = int(d["pos"][i, 0].item() * (h - bh + 1))
                left = int(d["pos"][i, 1].item() * (w - bw + 1))
                if h > 2:  # box area in [0.02, 0.4] of the image, up to the rounding of h and w
                    assert 0.02 * h * w - (bh + bw) <= bh * bw <= 0.4 * h * w + (bh + bw) + 1
                ref[i, :, top : top + bh, left : left + bw] = fill
                tries.append(t)
                break
    assert len(tries) == b
    assert (max(tries) > 0) == retries  # thin images need more than one candidate
    assert torch.equal(out, ref)
    if h > 2:  # every image got a box holding exactly the fill values
        assert (out == fill.view(1, 3, 1, 1)).all(dim=1).any(dim=(1, 2)).all()


def test_erasing_skips_when_no_candidate_fits():
    x = _images(3, 1, 64)  # one row: every candidate has h >= 1 = H, so none fits
    out = train_augment(x, _gen(0), crop_p=0, flip_p=0, erase_p=1)
    assert torch.equal(out, normalize(x))


def test_crop_is_shifted_pil_upscale():
    b, h, w = 8, 16, 8
    x = _images(b, h, w, seed=9)
    out = train_augment(x, _gen(11), crop_p=1, flip_p=0, erase_p=0)
    assert out.shape == x.shape
    pixels = (out * STD + MEAN) * 255  # back to 0-255
    d = _draws(11, b)
    h2, w2 = round(h * 1.125), round(w * 1.125)  # 18, 9
    offsets, bias = set(), []
    for i in range(b):
        top = round(d["crop_off"][i, 0].item() * (h2 - h))
        left = round(d["crop_off"][i, 1].item() * (w2 - w))
        pil = Image.fromarray(x[i].permute(1, 2, 0).numpy()).resize((w2, h2), Image.BILINEAR)
        want = torch.from_numpy(np.array(pil)).permute(2, 0, 1)[:, top : top + h, left : left + w]
        diff = pixels[i] - want.float()
        assert diff.abs().max() <= 1.001  # PIL rounds after its horizontal pass: ±1 level
        bias.append(diff.mean().item())
        offsets.add((top, left))
    assert len(offsets) > 1 and abs(np.mean(bias)) < 0.2, bias  # rounded (truncation: -0.5)
