"""rlqlib.data.images: decoding images and masks at model size, and naming a bad file."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image

from rlqlib.data.datasets import DatasetError
from rlqlib.data.images import load_images, load_masks


def test_load_images_and_masks(tmp_path):
    rng = np.random.default_rng(0)
    arrays = [rng.integers(0, 256, shape, dtype=np.uint8) for shape in ((10, 6, 3), (8, 4, 3))]
    paths = [str(tmp_path / f"img{i}.png") for i in range(2)]
    for path, a in zip(paths, arrays):
        Image.fromarray(a).save(path)
    grey = str(tmp_path / "grey.png")
    Image.fromarray(arrays[0][..., 0]).save(grey)
    out = load_images(paths + [grey], (8, 4), workers=2)
    assert out.shape == (3, 3, 8, 4) and out.dtype == torch.uint8
    want0 = np.asarray(Image.fromarray(arrays[0]).resize((4, 8), Image.BILINEAR))
    assert np.array_equal(out[0].permute(1, 2, 0).numpy(), want0)
    assert np.array_equal(out[1].permute(1, 2, 0).numpy(), arrays[1])  # already at size
    assert torch.equal(out[2][0], out[2][1])  # grey expanded to RGB

    m = np.zeros((10, 6, 3), dtype=np.uint8)
    m[2:7, 1:4] = 255
    mpath = str(tmp_path / "m_shirt.png")
    Image.fromarray(m).save(mpath)
    masks = load_masks([mpath], (5, 3))
    want = np.asarray(Image.fromarray(m[..., 0]).resize((3, 5), Image.NEAREST)) > 0
    assert masks.shape == (1, 1, 5, 3) and masks.dtype == torch.bool
    assert np.array_equal(masks[0, 0].numpy(), want) and want.any() and not want.all()


def test_load_images_names_bad_file(tmp_path):
    good = tmp_path / "good.png"
    Image.fromarray(np.zeros((4, 4, 3), np.uint8)).save(good)
    bad = tmp_path / "broken_0042.png"
    bad.write_bytes(b"definitely not a png")
    with pytest.raises(DatasetError, match="broken_0042.png"):
        load_images([str(good), str(bad)], (4, 4))
    with pytest.raises(DatasetError, match="missing_7.png"):
        load_images([str(tmp_path / "missing_7.png")], (4, 4))
