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


def _pngs(folder, n=3, seed=0):
    rng = np.random.default_rng(seed)
    paths = [str(folder / f"img{i}.png") for i in range(n)]
    for p in paths:
        Image.fromarray(rng.integers(0, 256, (8, 4, 3), dtype=np.uint8)).save(p)
    return paths


def test_the_image_cache_stores_and_returns_the_decoded_images(tmp_path, monkeypatch):
    from rlqlib.data import images as I

    paths = _pngs(tmp_path)
    want = load_images(paths, (8, 4))  # no cache: RLQ_IMAGE_CACHE unset
    cache = tmp_path / "cache"
    monkeypatch.setenv("RLQ_IMAGE_CACHE", str(cache))
    assert torch.equal(load_images(paths, (8, 4)), want)
    files = list(cache.glob("*.pt"))
    assert len(files) == 1 and not list(cache.glob("*.tmp"))

    def no_decoding(path, size):
        raise AssertionError(f"decoded {path} although it is cached")

    monkeypatch.setattr(I, "_read_rgb", no_decoding)
    assert torch.equal(load_images(paths, (8, 4)), want)  # read back from the cache
    with pytest.raises(AssertionError, match="decoded"):
        load_images(paths, (4, 2))  # another size is another key
    with pytest.raises(AssertionError, match="decoded"):
        load_images(paths[:2], (8, 4))  # another list is another key


def test_a_changed_file_is_decoded_again(tmp_path, monkeypatch):
    monkeypatch.setenv("RLQ_IMAGE_CACHE", str(tmp_path / "cache"))
    paths = _pngs(tmp_path)
    first = load_images(paths, (8, 4))
    Image.fromarray(np.full((8, 4, 3), 7, np.uint8)).save(paths[1])  # new content, new size and time
    second = load_images(paths, (8, 4))
    assert torch.equal(second[0], first[0]) and torch.equal(second[1], torch.full((3, 8, 4), 7, dtype=torch.uint8))
    assert len(list((tmp_path / "cache").glob("*.pt"))) == 2


def test_an_unusable_cache_is_skipped_with_a_warning(tmp_path, monkeypatch, caplog):
    paths = _pngs(tmp_path)
    want = load_images(paths, (8, 4))
    blocker = tmp_path / "not_a_folder"
    blocker.write_text("a file where the cache folder should be")
    monkeypatch.setenv("RLQ_IMAGE_CACHE", str(blocker))
    with caplog.at_level("WARNING", logger="rlqlib.data.images"):
        assert torch.equal(load_images(paths, (8, 4)), want)
    assert "cannot write the decoded-image cache" in caplog.text
    # a write that fails half-way (torch.save raises RuntimeError on a full disk): warned, no file left behind
    from rlqlib.data import images as I

    def full_disk(obj, f):
        open(f, "wb").write(b"partial")
        raise RuntimeError("unexpected pos 832 vs 726")

    caplog.clear()
    with monkeypatch.context() as m, caplog.at_level("WARNING", logger="rlqlib.data.images"):
        m.setenv("RLQ_IMAGE_CACHE", str(tmp_path / "full"))
        m.setattr(I.torch, "save", full_disk)
        assert torch.equal(load_images(paths, (8, 4)), want)
    assert "cannot write the decoded-image cache" in caplog.text and not list((tmp_path / "full").iterdir())
    # a corrupt cache file: read, refused, decoded again and replaced
    monkeypatch.setenv("RLQ_IMAGE_CACHE", str(tmp_path / "cache"))
    load_images(paths, (8, 4))
    (cached,) = (tmp_path / "cache").glob("*.pt")
    cached.write_bytes(b"truncated")
    caplog.clear()
    with caplog.at_level("WARNING", logger="rlqlib.data.images"):
        assert torch.equal(load_images(paths, (8, 4)), want)
    assert "cannot read the decoded-image cache" in caplog.text
    assert torch.equal(torch.load(cached, weights_only=True), want)


def test_masks_are_cached_apart_from_images_of_the_same_files(tmp_path, monkeypatch):
    from rlqlib.data import images as I

    paths = _pngs(tmp_path)
    half = np.zeros((8, 4, 3), np.uint8)
    half[:4] = 255
    Image.fromarray(half).save(paths[0])  # a mask: the top half
    want_masks, want_images = load_masks(paths, (8, 4)), load_images(paths, (8, 4))  # no cache
    assert want_masks.any() and not want_masks.all()
    monkeypatch.setenv("RLQ_IMAGE_CACHE", str(tmp_path / "cache"))
    assert torch.equal(load_masks(paths, (8, 4)), want_masks)
    assert torch.equal(load_images(paths, (8, 4)), want_images)  # same files and size: another file, not the masks
    assert sorted(f.name.split("-")[0] for f in (tmp_path / "cache").glob("*.pt")) == ["images", "masks"]

    def no_decoding(path, size):
        raise AssertionError(f"decoded {path} although it is cached")

    monkeypatch.setattr(I, "_read_mask", no_decoding)
    cached = load_masks(paths, (8, 4))
    assert torch.equal(cached, want_masks) and cached.dtype == torch.bool and cached.shape == (3, 1, 8, 4)
