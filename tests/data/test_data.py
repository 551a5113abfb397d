"""Dataset loaders on tiny trees with the real file-name patterns; expected values worked out by hand.

Every tree lives under a folder named ``my_cache_c1`` (docs/spec.md §9.10: the reference's regex on the full path
breaks there). Image files are empty unless a test says otherwise, so a loader that opened them would fail.
"""

from __future__ import annotations

import io
import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from rlqlib.data.datasets import (
    DATASETS,
    DatasetError,
    Sample,
    dataset_stats,
    load_celebreid,
    load_dataset,
    load_deepchange,
    load_last,
    load_ltcc,
    load_prcc,
    load_synthcc,
    load_synthcc_external,
    synthcc_manifest,
    synthcc_metadata,
)


def touch(root: Path, *relpaths: str, data: bytes = b"") -> None:
    for rel in relpaths:
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)


def png_bytes() -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", (4, 8), (10, 20, 30)).save(buf, "PNG")
    return buf.getvalue()


def rows(samples: list[Sample]) -> list[tuple[str, int, int, int]]:
    """(file name, pid, camid, clothes_id) of each sample."""
    return [(Path(s.path).name, s.pid, s.camid, s.clothes_id) for s in samples]


# ------------------------------------------------------------------------------------------------ LTCC

LTCC_TRAIN = ["001_1_c11_000001.png", "001_2_c3_000002.png", "000_1_c1_000003.png", "010_1_c2_000004.png",
              "001_10_c1_000005.png"]
LTCC_QUERY = ["100_1_c1_000010.png", "101_2_c2_000011.png"]
LTCC_TEST = ["100_2_c3_000012.png", "101_2_c4_000013.png", "100_1_c5_000014.png"]


def make_ltcc(base: Path) -> Path:
    touch(base, *(f"train/{n}" for n in LTCC_TRAIN), *(f"query/{n}" for n in LTCC_QUERY),
          *(f"test/{n}" for n in LTCC_TEST))
    return base


@pytest.fixture
def ltcc_root(tmp_path: Path) -> Path:
    make_ltcc(tmp_path / "my_cache_c1" / "LTCC_ReID")
    return tmp_path / "my_cache_c1"


def test_ltcc_relabelling_camids_clothes(ltcc_root: Path) -> None:
    ds = load_ltcc(ltcc_root)
    assert ds.name == "ltcc" and ds.root == ltcc_root / "LTCC_ReID"
    assert list(ds.splits) == ["train", "query", "gallery"]
    # files sorted by name ("001_10_..." < "001_1_..."); pids 0,1,10 -> 0,1,2; clothes keys sorted as strings:
    # 000_1:0, 001_1:1, 001_10:2, 001_2:3, 010_1:4; camid = KK - 1.
    assert rows(ds.train) == [
        ("000_1_c1_000003.png", 0, 0, 0),
        ("001_10_c1_000005.png", 1, 0, 2),
        ("001_1_c11_000001.png", 1, 10, 1),
        ("001_2_c3_000002.png", 1, 2, 3),
        ("010_1_c2_000004.png", 2, 1, 4),
    ]
    assert ds.train_pid_names == ["000", "001", "010"] and ds.num_train_pids == 3
    assert ds.num_train_clothes == 5
    np.testing.assert_array_equal(ds.pid2clothes, [[1, 0, 0, 0, 0], [0, 1, 1, 1, 0], [0, 0, 0, 0, 1]])
    assert ds.pid2clothes.dtype == bool
    # test: raw pids; clothes over query ∪ gallery: 100_1:0, 100_2:1, 101_2:2
    assert rows(ds.splits["query"]) == [("100_1_c1_000010.png", 100, 0, 0), ("101_2_c2_000011.png", 101, 1, 2)]
    assert rows(ds.splits["gallery"]) == [
        ("100_1_c5_000014.png", 100, 4, 0),
        ("100_2_c3_000012.png", 100, 2, 1),
        ("101_2_c4_000013.png", 101, 3, 2),
    ]
    assert ds.protocols == ("general", "cc", "sc")
    assert ds.query_sets == {p: ("query", "gallery") for p in ("general", "cc", "sc")}
    assert ds.eval_rules == {"general": "general", "cc": "cc", "sc": "sc"}
    assert ds.skipped == {}


def test_ltcc_accepts_dataset_folder_and_parent(ltcc_root: Path) -> None:
    a, b = load_ltcc(ltcc_root), load_ltcc(ltcc_root / "LTCC_ReID")
    assert a.splits == b.splits and a.train_pid_names == b.train_pid_names


def test_ltcc_stats(ltcc_root: Path) -> None:
    stats = dataset_stats(load_ltcc(ltcc_root))
    assert stats["train"] == {"ids": 3, "images": 5, "clothes": 5}
    assert stats["test"] == {"ids": 2, "images": 5, "clothes": 3}
    assert stats["splits"]["query"] == {"ids": 2, "images": 2, "clothes": 2}
    assert stats["splits"]["gallery"] == {"ids": 2, "images": 3, "clothes": 3}
    assert json.loads(json.dumps(stats)) == stats


def test_registry(ltcc_root: Path) -> None:
    assert set(DATASETS) == {"ltcc", "prcc", "last", "deepchange", "celebreid", "synthcc"}
    assert load_dataset("ltcc", ltcc_root).splits == load_ltcc(ltcc_root).splits
    with pytest.raises(DatasetError, match="unknown dataset 'market'.*ltcc, prcc, last, deepchange, celebreid"):
        load_dataset("market", ltcc_root)


# ------------------------------------------------------------------------------------------------ bad input


def test_missing_root(tmp_path: Path) -> None:
    with pytest.raises(DatasetError, match=rf"{tmp_path / 'nowhere'} does not exist.*train/, query/, test/"):
        load_ltcc(tmp_path / "nowhere")


def test_wrong_layout_lists_found_folders(tmp_path: Path) -> None:
    touch(tmp_path, "query/100_1_c1_000010.png", "test/100_2_c3_000012.png", "gallery/x.png")
    with pytest.raises(DatasetError) as err:
        load_ltcc(tmp_path)
    msg = str(err.value)
    assert "expected folders train/, query/, test/" in msg and str(tmp_path) in msg
    assert "'gallery/', 'query/', 'test/'" in msg


def test_bad_file_name_names_file_and_pattern(ltcc_root: Path) -> None:
    touch(ltcc_root / "LTCC_ReID", "train/001-1-c1.png")
    with pytest.raises(DatasetError, match=r"'001-1-c1.png' in .*train: expected PPP_C_cKK_FFFFFF.png"):
        load_ltcc(ltcc_root)


def test_empty_split(ltcc_root: Path) -> None:
    for p in (ltcc_root / "LTCC_ReID" / "query").iterdir():
        p.unlink()
    with pytest.raises(DatasetError, match=r"split 'query' is empty: no images in .*LTCC_ReID/query"):
        load_ltcc(ltcc_root)


def test_non_image_files_are_counted(ltcc_root: Path) -> None:
    touch(ltcc_root / "LTCC_ReID", "train/readme.txt", "test/.DS_Store", "query/.ipynb_checkpoints/x.png")
    assert load_ltcc(ltcc_root).skipped == {"non_image_entries": 3}


def test_unexpected_subfolder(ltcc_root: Path) -> None:
    touch(ltcc_root / "LTCC_ReID", "train/extra/001_1_c1_000009.png")
    with pytest.raises(DatasetError, match=r"unexpected folder .*train/extra: .*train should hold image files"):
        load_ltcc(ltcc_root)


def test_corrupt_image_only_with_verify(tmp_path: Path) -> None:
    base = tmp_path / "my_cache_c1"
    touch(base, *(f"train/{n}" for n in LTCC_TRAIN), *(f"query/{n}" for n in LTCC_QUERY),
          *(f"test/{n}" for n in LTCC_TEST), data=png_bytes())
    load_ltcc(base, verify=True)  # all valid
    (base / "test" / LTCC_TEST[1]).write_bytes(b"not a png")
    assert len(load_ltcc(base).splits["gallery"]) == 3  # default: images are not opened
    with pytest.raises(DatasetError, match=rf"corrupt image .*test/{LTCC_TEST[1]}: Pillow cannot read it"):
        load_ltcc(base, verify=True)


# ------------------------------------------------------------------------------------------------ PRCC

PRCC_FILES = ["train/001/A_cropped_rgb001.jpg", "train/001/B_cropped_rgb002.jpg", "train/001/C_cropped_rgb003.jpg",
              "train/003/A_cropped_rgb001.jpg", "train/003/C_cropped_rgb002.jpg",
              "val/002/A_cropped_rgb001.jpg",
              "test/A/005/cropped_rgb001.jpg", "test/A/002/cropped_rgb001.jpg", "test/A/002/cropped_rgb002.jpg",
              "test/B/002/cropped_rgb010.jpg", "test/B/005/cropped_rgb011.jpg",
              "test/C/005/cropped_rgb020.jpg"]


@pytest.fixture
def prcc_root(tmp_path: Path) -> Path:
    touch(tmp_path / "my_cache_c1" / "prcc" / "rgb", *PRCC_FILES)
    return tmp_path / "my_cache_c1"


def test_prcc(prcc_root: Path) -> None:
    ds = load_prcc(prcc_root)
    assert list(ds.splits) == ["train", "query_same", "query_diff", "gallery"]
    # clothes keys "001", "001C", "003", "003C" -> 0..3; camid A0 B1 C2
    assert rows(ds.train) == [("A_cropped_rgb001.jpg", 0, 0, 0), ("B_cropped_rgb002.jpg", 0, 1, 0),
                              ("C_cropped_rgb003.jpg", 0, 2, 1), ("A_cropped_rgb001.jpg", 1, 0, 2),
                              ("C_cropped_rgb002.jpg", 1, 2, 3)]
    assert ds.train_pid_names == ["001", "003"]
    np.testing.assert_array_equal(ds.pid2clothes, [[1, 1, 0, 0], [0, 0, 1, 1]])
    # test: rank over camera-A pids {2: 0, 5: 1}; clothes 2*rank (+1 for C); raw pids
    assert rows(ds.splits["gallery"]) == [("cropped_rgb001.jpg", 2, 0, 0), ("cropped_rgb002.jpg", 2, 0, 0),
                                          ("cropped_rgb001.jpg", 5, 0, 2)]
    assert rows(ds.splits["query_same"]) == [("cropped_rgb010.jpg", 2, 1, 0), ("cropped_rgb011.jpg", 5, 1, 2)]
    assert rows(ds.splits["query_diff"]) == [("cropped_rgb020.jpg", 5, 2, 3)]
    assert ds.protocols == ("sc", "cc")
    assert ds.query_sets == {"sc": ("query_same", "gallery"), "cc": ("query_diff", "gallery")}
    assert ds.eval_rules == {"sc": "general", "cc": "general"}
    stats = dataset_stats(ds)
    assert stats["train"] == {"ids": 2, "images": 5, "clothes": 4}
    assert stats["test"] == {"ids": 2, "images": 6, "clothes": 3}  # 0, 2 (A/B) and 3 (C of pid 5)


def test_prcc_root_variants(prcc_root: Path) -> None:
    ref = load_prcc(prcc_root).splits
    assert load_prcc(prcc_root / "prcc").splits == ref
    assert load_prcc(prcc_root / "prcc" / "rgb").splits == ref


def test_prcc_query_identity_without_gallery(prcc_root: Path) -> None:
    touch(prcc_root / "prcc" / "rgb", "test/C/009/cropped_rgb001.jpg")
    with pytest.raises(DatasetError, match=r"identity 9 of .*C/009/cropped_rgb001.jpg has no images in the gallery"):
        load_prcc(prcc_root)


def test_prcc_bad_name(prcc_root: Path) -> None:
    touch(prcc_root / "prcc" / "rgb", "train/003/D_cropped_rgb009.jpg")
    with pytest.raises(DatasetError, match=r"'D_cropped_rgb009.jpg' in .*train/003: expected <pid>/<CAM>_cropped"):
        load_prcc(prcc_root)


# ------------------------------------------------------------------------------------------------ LaST

LAST_FILES = ["train/000002/000002_000_00009_0257_01_001.jpg", "train/000002/000002_001_00009_0262_00_002.jpg",
              "train/000004/000004_000_00009_0300_00_001.jpg",
              "val/query/000050_000_00050_0001_00_000.jpg",
              "test/query/000101_000_00100_0002_00_000.jpg", "test/query/000100_000_00100_0001_00_000.jpg",
              "test/gallery/000100/000100_001_00100_0003_00_000.jpg",
              "test/gallery/000100/000100_002_00100_0004_00_000.jpg",
              "test/gallery/000101/000101_001_00100_0005_00_000.jpg"]


@pytest.fixture
def last_root(tmp_path: Path) -> Path:
    touch(tmp_path / "my_cache_c1" / "last", *LAST_FILES)
    return tmp_path / "my_cache_c1"


def test_last(last_root: Path) -> None:
    ds = load_last(last_root)
    assert load_last(last_root / "last").splits == ds.splits
    # clothes key = first_last field: 000002_001:0, 000002_002:1, 000004_001:2; camid = running index
    assert rows(ds.train) == [("000002_000_00009_0257_01_001.jpg", 0, 0, 0),
                              ("000002_001_00009_0262_00_002.jpg", 0, 1, 1),
                              ("000004_000_00009_0300_00_001.jpg", 1, 2, 2)]
    assert ds.train_pid_names == ["000002", "000004"]
    # test: raw pid, clothes = pid, camid = query 0..Nq-1 then gallery Nq..
    assert [r[1:] for r in rows(ds.splits["query"])] == [(100, 0, 100), (101, 1, 101)]
    assert [r[1:] for r in rows(ds.splits["gallery"])] == [(100, 2, 100), (100, 3, 100), (101, 4, 101)]
    assert ds.protocols == ("general",) and ds.query_sets == {"general": ("query", "gallery")}
    assert dataset_stats(ds)["test"] == {"ids": 2, "images": 5, "clothes": 2}


def test_last_pid_folder_mismatch(last_root: Path) -> None:
    touch(last_root / "last", "train/000004/000007_000_00009_0300_00_001.jpg")
    with pytest.raises(DatasetError, match=r"000007_000_00009_0300_00_001.jpg has person id 000007 but lies in"):
        load_last(last_root)


# ------------------------------------------------------------------------------------------------ DeepChange

DC_TRAIN = ["p0003_c01_20201015_172644_000744_bbox.jpg", "p0003_c02_20201020_100000_000001_bbox.jpg",
            "p0007_c01_20201015_080000_000010_bbox.jpg"]


@pytest.fixture
def dc_root(tmp_path: Path) -> Path:
    base = tmp_path / "my_cache_c1" / "DeepChangeDataset"
    unlisted = "p0007_c01_20201015_080000_000011_bbox.jpg"
    query = ["p0100_c03_20210101_090000_000001_bbox.jpg"]
    gallery = ["p0101_c05_20210101_090000_000004_bbox.jpg", "p0100_c04_20210202_090000_000003_bbox.jpg",
               "p0100_c04_20210101_090000_000002_bbox.jpg"]
    touch(base, *(f"train-set/{n}" for n in DC_TRAIN + [unlisted]), *(f"test-set-query/{n}" for n in query),
          *(f"test-set-gallery/{n}" for n in gallery))
    (base / "train-set-bbox.txt").write_text(f"{DC_TRAIN[2]},12\n{DC_TRAIN[0]},5\n{DC_TRAIN[1]},6\n\n")
    (base / "test-set-query-bbox.txt").write_text(f"{query[0]},40\n")
    (base / "test-set-gallery-bbox.txt").write_text(f"{gallery[0]},43\n{gallery[1]},42\n{gallery[2]},41\n")
    return tmp_path / "my_cache_c1"


def test_deepchange(dc_root: Path) -> None:
    ds = load_deepchange(dc_root)
    assert load_deepchange(dc_root / "DeepChangeDataset").splits == ds.splits
    # camid = tracklet id; clothes = pid string + date: p000320201015:0, p000320201020:1, p000720201015:2
    assert [r[1:] for r in rows(ds.train)] == [(0, 5, 0), (0, 6, 1), (1, 12, 2)]
    assert [r[0] for r in rows(ds.train)] == DC_TRAIN
    assert ds.train_pid_names == ["p0003", "p0007"]
    # test: raw pids; clothes over query ∪ gallery: p010020210101:0, p010020210202:1, p010120210101:2
    assert [r[1:] for r in rows(ds.splits["query"])] == [(100, 40, 0)]
    assert [r[1:] for r in rows(ds.splits["gallery"])] == [(100, 41, 0), (100, 42, 1), (101, 43, 2)]
    assert ds.skipped == {"unlisted_train-set": 1}
    assert ds.protocols == ("general",)


def test_deepchange_bad_lists(dc_root: Path) -> None:
    base = dc_root / "DeepChangeDataset"
    listing = base / "test-set-query-bbox.txt"
    listing.write_text("p0100_c03_20210101_090000_000009_bbox.jpg,40\n")
    with pytest.raises(DatasetError, match=r"test-set-query-bbox.txt, line 1: listed image .*000009_bbox.jpg does not"):
        load_deepchange(dc_root)
    listing.write_text("p0100_c03_20210101_090000_000001_bbox.jpg 40\n")
    with pytest.raises(DatasetError, match=r"line 1: .* is not 'file_name,tracklet_id'"):
        load_deepchange(dc_root)
    listing.unlink()
    with pytest.raises(DatasetError, match=r"list file .*test-set-query-bbox.txt is missing"):
        load_deepchange(dc_root)


# ------------------------------------------------------------------------------------------------ Celeb-reID


@pytest.fixture
def celeb_root(tmp_path: Path) -> Path:
    touch(tmp_path / "my_cache_c1" / "Celeb-reID", "train/1_1_0.jpg", "train/1_25_0.jpg", "train/10_3_0.jpg",
          "train/2_4_0.jpg", "query/7_1_0.jpg", "query/5_2_0.jpg", "gallery/5_13_0.jpg", "gallery/7_30_0.jpg",
          "gallery/-1_1_0.jpg")
    return tmp_path / "my_cache_c1"


def test_celebreid(celeb_root: Path) -> None:
    ds = load_celebreid(celeb_root)
    assert load_celebreid(celeb_root / "Celeb-reID").splits == ds.splits
    # sorted names: 10_3_0, 1_1_0, 1_25_0, 2_4_0 -> pids by first appearance 10:0, 1:1, 2:2;
    # camid = first digit of IDX - 1; one clothes class per image
    assert rows(ds.train) == [("10_3_0.jpg", 0, 2, 0), ("1_1_0.jpg", 1, 0, 1), ("1_25_0.jpg", 1, 1, 2),
                              ("2_4_0.jpg", 2, 3, 3)]
    assert ds.train_pid_names == ["10", "1", "2"] and ds.num_train_clothes == 4
    np.testing.assert_array_equal(ds.pid2clothes, [[1, 0, 0, 0], [0, 1, 1, 0], [0, 0, 0, 1]])
    # query pids by first appearance (5:0, 7:1); gallery through the query map; -1 is junk
    assert rows(ds.splits["query"]) == [("5_2_0.jpg", 0, 1, 0), ("7_1_0.jpg", 1, 0, 1)]
    assert rows(ds.splits["gallery"]) == [("5_13_0.jpg", 0, 0, 2), ("7_30_0.jpg", 1, 2, 3)]
    assert ds.skipped == {"junk_pid_-1": 1}
    assert ds.protocols == ("general", "cc", "sc")


def test_celebreid_unique_camids(celeb_root: Path) -> None:
    ds = load_celebreid(celeb_root, unique_camids=True)
    assert [s.camid for s in ds.train] == [0, 1, 2, 3]
    assert [s.camid for s in ds.splits["query"]] == [0, 1]
    assert [s.camid for s in ds.splits["gallery"]] == [2, 3]


def test_celebreid_gallery_identity_without_query(celeb_root: Path) -> None:
    touch(celeb_root / "Celeb-reID", "gallery/8_1_0.jpg")
    with pytest.raises(DatasetError, match=r"gallery image .*8_1_0.jpg has identity 8, which has no query"):
        load_celebreid(celeb_root)


# ------------------------------------------------------------------------------------------------ SynthCC

METADATA = (
    "split,image,pid,camid,outfit,clothes_key,gender,pose_family,view,artifact,artifact_param,artifact_strength\n"
    "train,000_1_c1_000001.png,0,0,3,000_1,1,walk,front,none,,0.0\n"
    "query,002_1_c2_000002.png,2,1,7,002_1,0,stand,back,motion_blur,k=9;angle=30,0.5\n"
)


@pytest.fixture
def synth_root(tmp_path: Path) -> Path:
    root = make_ltcc(tmp_path / "my_cache_c1" / "synth")
    (root / "synthcc.json").write_text(json.dumps({"format": "synthcc-1", "preset": "smoke", "seed": 0}))
    (root / "annotations").mkdir()
    (root / "annotations" / "metadata.csv").write_text(METADATA)
    for ext in ("external", "external_ntu"):
        touch(root / ext, "train/3_1_0.png", "train/3_2_0.png", "train/4_3_0.png", "query/9_1_0.png",
              "gallery/9_2_0.png")
    return root


def test_synthcc_agrees_with_ltcc(synth_root: Path) -> None:
    ds, ref = load_synthcc(synth_root), load_ltcc(synth_root)
    assert ds.name == "synthcc"
    assert ds.splits == ref.splits and ds.train_pid_names == ref.train_pid_names
    np.testing.assert_array_equal(ds.pid2clothes, ref.pid2clothes)
    assert (ds.protocols, ds.query_sets, ds.eval_rules) == (ref.protocols, ref.query_sets, ref.eval_rules)
    assert load_dataset("synthcc", synth_root).splits == ds.splits
    assert synthcc_manifest(synth_root)["preset"] == "smoke"


def test_synthcc_metadata(synth_root: Path) -> None:
    df = synthcc_metadata(synth_root)
    assert list(df["clothes_key"]) == ["000_1", "002_1"]
    assert list(df["artifact_param"]) == ["", "k=9;angle=30"]
    assert list(df["pid"]) == [0, 2] and df["artifact_strength"].tolist() == [0.0, 0.5]


def test_synthcc_external_sets(synth_root: Path) -> None:
    ext = load_celebreid(synth_root / "external")
    assert rows(ext.train) == [("3_1_0.png", 0, 0, 0), ("3_2_0.png", 0, 1, 1), ("4_3_0.png", 1, 2, 2)]
    assert load_synthcc_external(synth_root).splits == ext.splits
    ntu = load_synthcc_external(synth_root, "external_ntu", unique_camids=True)
    assert [s.camid for s in ntu.splits["gallery"]] == [1]
    with pytest.raises(DatasetError, match="use 'external' or 'external_ntu'"):
        load_synthcc_external(synth_root, "celeb")


def test_synthcc_needs_manifest(synth_root: Path) -> None:
    (synth_root / "synthcc.json").write_text(json.dumps({"format": "other"}))
    with pytest.raises(DatasetError, match=r"synthcc.json: format is 'other', expected 'synthcc-1'"):
        load_synthcc(synth_root)
    (synth_root / "synthcc.json").unlink()
    with pytest.raises(DatasetError, match=r"not a SynthCC folder: .*synthcc.json is missing.*rlq synth"):
        load_synthcc(synth_root)
