"""Faulty silhouettes (difference N3) on a tiny LTCC-layout tree: images of the authors' ``*_faulty.csv`` lists are
recoloured with their ``_clothes`` mask, both parts in one colour, clothes label N_orig + pid·C² + c·C + c."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from rlqlib.data import training as TD
from rlqlib.data.config import DataConfig
from rlqlib.data.datasets import load_ltcc
from rlqlib.data.recolour import COLOURS
from rlqlib.data.sampler import PKSampler
from rlqlib.data.images import load_images

H, W = 16, 8
TRAIN = ["000_1_c1_000001", "000_1_c2_000002", "001_1_c1_000003", "001_2_c3_000004"]
FAULTY = {"000_1_c2_000002", "001_2_c3_000004"}  # one from each list
ROWS = {"shirt": (2, 6), "pant": (8, 12), "clothes": (2, 14)}  # mask rows of every image


def _png(path: Path, value, size=(W, H)) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new("RGB", size, value).save(path)


def _mask(path: Path, rows: tuple[int, int]) -> None:
    a = np.zeros((H, W, 3), np.uint8)
    a[rows[0]:rows[1]] = 255
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(a).save(path)


@pytest.fixture
def ltcc_tree(tmp_path: Path) -> Path:
    base = tmp_path / "LTCC_ReID"
    for stem in TRAIN:
        _png(base / "train" / f"{stem}.png", (100, 100, 100))
        for part, rows in ROWS.items():
            _mask(tmp_path / "masks" / f"{stem}_{part}.png", rows)
    _png(base / "query" / "100_1_c1_000010.png", (50, 50, 50))
    _png(base / "test" / "100_2_c3_000012.png", (50, 50, 50))
    (tmp_path / "masks" / "LTCC_Pant_faulty.csv").write_text("000_1_c2_000002\n\n")
    (tmp_path / "masks" / "LTCC_Shirt_faulty.csv").write_text("001_2_c3_000004\n")
    return tmp_path


def _data(root: Path, **kw) -> DataConfig:
    return DataConfig(dataset="ltcc", root=str(root), mask_root=str(root / "masks"), image_size=(H, W), p=2, k=2,
                      colours="all", degrade_at="raw", **kw)


def _rows_changed(original: torch.Tensor, replica: torch.Tensor) -> list[int]:
    return torch.nonzero((original != replica).any(0).any(1)).flatten().tolist()


def test_faulty_images_get_the_clothes_mask_in_one_colour(ltcc_tree):
    data = _data(ltcc_tree)
    ds = load_ltcc(ltcc_tree)
    stems = [Path(s.path).stem for s in ds.train]
    faulty = TD.faulty_images(data, ds)
    assert [stems[i] for i in np.flatnonzero(faulty)] == sorted(FAULTY)
    shirt, pant = TD.clothes_masks(data, ds, 1, faulty)
    for i, stem in enumerate(stems):
        part = ("clothes", "clothes") if stem in FAULTY else ("shirt", "pant")
        for m, name in zip((shirt[i, 0], pant[i, 0]), part):
            assert torch.nonzero(m.any(1)).flatten().tolist() == list(range(*ROWS[name]))
    images = load_images([s.path for s in ds.train], (H, W), 1)
    pids = np.array([s.pid for s in ds.train])
    clothes = np.array([s.clothes_id for s in ds.train])
    n_orig = int(ds.pid2clothes.shape[1])
    batches, p2c = TD.train_batches(data, ds, images, clothes, ds.pid2clothes, PKSampler(pids, 2, 2, seed=0),
                                    torch.Generator().manual_seed(0), torch.device("cpu"), {}, 1)
    assert p2c.shape == (2, n_orig + 2 * 81)
    batches.augment = dict(crop_p=0, flip_p=0, erase_p=0)
    seen = set()
    for _ in range(8):  # several epochs: both faulty images, several colours
        for batch in batches:
            for j in range(0, batch["images"].shape[0], 2):
                i = int(batch["index"][j])
                x, rep = batch["images"][j], batch["images"][j + 1]
                combo = int(batch["clothes_ids"][j + 1]) - n_orig - int(batch["pids"][j + 1]) * 81
                pant_c, shirt_c = divmod(combo, 9)  # the pant colour is the major digit
                if stems[i] in FAULTY:
                    seen.add(stems[i])
                    assert _rows_changed(x, rep) == list(range(*ROWS["clothes"]))  # the _clothes mask only
                    assert pant_c == shirt_c  # one colour: label c·C + c
                    colour = list(COLOURS.values())[shirt_c]
                    want = [np.floor(100 * 0.3 + 0.7 * v) for v in colour]  # the reference's blend, truncated
                    got = (rep * torch.tensor([0.229, 0.224, 0.225])[:, None, None]
                           + torch.tensor([0.485, 0.456, 0.406])[:, None, None]) * 255
                    assert np.allclose(got[:, 2:14, :].reshape(3, -1).numpy().T, want, atol=1e-3)
                else:
                    assert _rows_changed(x, rep) == [*range(*ROWS["shirt"]), *range(*ROWS["pant"])]
    assert seen == FAULTY


def test_faulty_lists_switch_and_errors(ltcc_tree, tmp_path):
    ds = load_ltcc(ltcc_tree)
    assert not TD.faulty_images(_data(ltcc_tree, faulty_masks=False), ds).any()
    named = _data(ltcc_tree, faulty_csvs=(str(ltcc_tree / "masks" / "LTCC_Shirt_faulty.csv"),))
    assert [Path(ds.train[i].path).stem for i in np.flatnonzero(TD.faulty_images(named, ds))] == ["001_2_c3_000004"]
    for csv in (ltcc_tree / "masks").glob("*_faulty.csv"):
        csv.unlink()
    with pytest.raises(ValueError, match=r"no \*_faulty.csv in .*masks.*data.faulty_masks=false"):
        TD.faulty_images(_data(ltcc_tree), ds)
    bad = tmp_path / "bad_faulty.csv"
    bad.write_text("000_1_c1_000001,extra\n")
    with pytest.raises(ValueError, match="bad_faulty.csv, line 1: expected one image identifier"):
        TD.faulty_images(replace(_data(ltcc_tree), faulty_csvs=(str(bad),)), ds)
