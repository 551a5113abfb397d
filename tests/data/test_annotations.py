"""Gender and pose-cluster tables (docs/spec.md §6): small hand-made CSVs, then the real files when ../shared exists."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from rlqlib.data.annotations import (
    LabelTable,
    gender_labels,
    image_identifier,
    pose_labels,
    read_gender_csv,
    read_pose_cluster_csv,
)
from rlqlib.data.datasets import (
    DatasetError,
    ReIDDataset,
    Sample,
    load_celebreid,
    load_deepchange,
    load_last,
    load_ltcc,
    load_prcc,
)

REAL = Path(__file__).resolve().parents[2] / ".." / "shared" / "reference-annotations"


def touch(root: Path, *relpaths: str) -> None:
    for rel in relpaths:
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.touch()


def fake_ds(name: str, pid_names: list[str], paths: list[str] = ()) -> ReIDDataset:
    train = [Sample(p, 0, 0, 0) for p in paths]
    return ReIDDataset(name=name, root=Path("."), splits={"train": train}, train_pid_names=pid_names,
                       num_train_clothes=1, pid2clothes=np.ones((len(pid_names), 1), bool), protocols=(),
                       query_sets={})


# ------------------------------------------------------------------------------------------------ gender


def test_gender_csv_blank_line_and_numeric_ids(tmp_path: Path) -> None:
    path = tmp_path / "G.csv"
    path.write_text("Category,ID,Gender\ntrain,000,1\n\ntrain,7,0\ntrain,p0003,1\n")
    table = read_gender_csv(path)
    assert table == {"000": 1, "7": 0, "p0003": 1} and table.source == str(path)
    # numeric ids compare as ints ("0" == "000", "007" == "7"); others as text
    np.testing.assert_array_equal(gender_labels(fake_ds("x", ["0", "007", "p0003"]), table), [1, 0, 1])
    np.testing.assert_array_equal(gender_labels(fake_ds("x", ["7"]), path), [0])  # path accepted too


def test_gender_csv_categories(tmp_path: Path) -> None:
    path = tmp_path / "G.csv"
    path.write_text("Category,ID,Gender\nquery,001,1\nquery,006,0\ntest,001,1\ntest,143,1\n")
    assert read_gender_csv(path, categories={"query"}) == {"001": 1, "006": 0}
    assert read_gender_csv(path) == {"001": 1, "006": 0, "143": 1}


@pytest.mark.parametrize(("body", "message"), [
    ("Category,ID,Gender\ntrain,000,1\ntrain,5\n", r"G.csv, line 3: expected 'Category,ID,Gender', got 'train,5'"),
    ("Category,ID,Gender\ntrain,000,2\n", r"G.csv, line 2: gender '2' must be 1 \(male\) or 0 \(female\)"),
    ("Category,ID,Gender\ntrain,000,m\n", r"G.csv, line 2: gender 'm' is not an integer"),
    ("Category,ID,Gender\ntrain,000,1\ntrain,000,0\n", r"G.csv, line 3: identity 000 has conflicting genders"),
    ("ID,Gender\n000,1\n", r"G.csv: header is ID,Gender, expected Category,ID,Gender"),
])
def test_gender_csv_malformed(tmp_path: Path, body: str, message: str) -> None:
    (tmp_path / "G.csv").write_text(body)
    with pytest.raises(DatasetError, match=message):
        read_gender_csv(tmp_path / "G.csv")


def test_gender_missing_identity(tmp_path: Path) -> None:
    path = tmp_path / "G.csv"
    path.write_text("Category,ID,Gender\ntrain,000,1\n")
    with pytest.raises(DatasetError, match=r"identity '012' \(train pid 1 of ltcc\) is missing from the gender "
                                           rf"table {path}; add a row 'train,012,<1 male\|0 female>'"):
        gender_labels(fake_ds("ltcc", ["000", "012"]), read_gender_csv(path))


# ------------------------------------------------------------------------------------------------ pose

POSE = "Category,Image,R_LA_5,R_LA_15\ntrain,092_A_cropped_rgb001,3.0,10.0\ntrain,092_C_cropped_rgb002,0.0,0.0\n"


def test_pose_csv_and_prcc_identifiers(tmp_path: Path) -> None:
    path = tmp_path / "P.csv"
    path.write_text(POSE)
    table = read_pose_cluster_csv(path)
    assert table == {"092_A_cropped_rgb001": 10, "092_C_cropped_rgb002": 0} and table.column == "R_LA_15"
    assert read_pose_cluster_csv(path, "R_LA_5") == {"092_A_cropped_rgb001": 3, "092_C_cropped_rgb002": 0}
    ds = fake_ds("prcc", ["092"], ["d/rgb/train/092/C_cropped_rgb002.jpg", "d/rgb/train/092/A_cropped_rgb001.jpg"])
    np.testing.assert_array_equal(pose_labels(ds, table), [0, 10])
    ds = fake_ds("prcc", ["092"], ["d/rgb/train/092/B_cropped_rgb003.jpg"])
    with pytest.raises(DatasetError, match=rf"image '092_B_cropped_rgb003' .* missing from the pose table {path} "
                                           r"\(column R_LA_15\)"):
        pose_labels(ds, table)


def test_pose_csv_errors(tmp_path: Path) -> None:
    path = tmp_path / "P.csv"
    path.write_text(POSE)
    with pytest.raises(DatasetError, match=r"P.csv: no column 'R_LA_16'; available: R_LA_5, R_LA_15"):
        read_pose_cluster_csv(path, "R_LA_16")
    path.write_text(POSE + "train,x,1.5,2.0\n")
    with pytest.raises(DatasetError, match=r"P.csv, line 4: R_LA_5 value '1.5' is not an integer"):
        read_pose_cluster_csv(path, "R_LA_5")
    path.write_text(POSE + "train,y,1.0\n")
    with pytest.raises(DatasetError, match=r"P.csv, line 4: expected 4 fields, got 3"):
        read_pose_cluster_csv(path)
    path.write_text("Image,R_LA_15\nx,1.0\n")
    with pytest.raises(DatasetError, match=r"header starts Image,R_LA_15, expected Category,Image"):
        read_pose_cluster_csv(path)


def test_image_identifier() -> None:
    assert image_identifier("ltcc", "/my_cache_c1/train/000_1_c10_001003.png") == "000_1_c10_001003"
    assert image_identifier("synthcc", "x/train/000_1_c10_001003.png") == "000_1_c10_001003"
    assert image_identifier("deepchange", "t/p0003_c01_20201015_172644_000744_bbox.jpg") == \
        "p0003_c01_20201015_172644_000744_bbox"
    assert image_identifier("prcc", "rgb/train/092/B_cropped_rgb118.jpg") == "092_B_cropped_rgb118"
    assert image_identifier("last", "last/train/000004/000004_003_00009_0262_00_001.jpg") == \
        "000004_000004_003_00009_0262_00_001"
    with pytest.raises(DatasetError, match="no image-identifier rule for dataset 'market'"):
        image_identifier("market", "a.jpg")


def test_label_table_is_a_dict() -> None:
    t = LabelTable({"a": 1}, "f.csv")
    assert dict(t) == {"a": 1} and t.source == "f.csv" and t.column is None


# ------------------------------------------------------------------------------------------------ real files

real = pytest.mark.skipif(not REAL.is_dir(), reason="../shared/reference-annotations is absent")


def expected_genders(csv: str) -> dict:
    df = pd.read_csv(REAL / csv)  # the reference's own parse: numeric ids become ints
    return dict(zip(df["ID"], df["Gender"]))


@real
def test_ltcc_pose_and_gender_join_on_real_names(tmp_path: Path) -> None:
    pose_csv = REAL / "LTCC_Pose_Cluster.csv"
    ref = pd.read_csv(pose_csv)
    base = tmp_path / "my_cache_c1" / "LTCC_ReID"
    touch(base, *(f"train/{stem}.png" for stem in ref["Image"]), "query/001_1_c11_015833.png",
          "test/001_2_c4_015861.png", "test/006_1_c5_015874.png")
    ds = load_ltcc(tmp_path / "my_cache_c1")
    assert (ds.num_train_pids, len(ds.train), ds.num_train_clothes) == (77, 9576, 256)  # Table 1
    labels = pose_labels(ds, read_pose_cluster_csv(pose_csv, "R_LA_15"))
    expected = dict(zip(ref["Image"], ref["R_LA_15"].astype(int)))
    np.testing.assert_array_equal(labels, [expected[Path(s.path).stem] for s in ds.train])
    spec_hist = [63, 736, 756, 488, 866, 319, 656, 614, 330, 273, 1094, 355, 575, 382, 1657, 412]  # docs/spec.md §5
    np.testing.assert_array_equal(np.bincount(labels, minlength=16), spec_hist)
    genders = gender_labels(ds, REAL / "LTCC_Gender.csv")
    assert (int(genders.sum()), int((genders == 0).sum())) == (47, 30)
    ref_gender = expected_genders("LTCC_Gender.csv")
    np.testing.assert_array_equal(genders, [ref_gender[int(n)] for n in ds.train_pid_names])


def first_ids(csv: str, n: int = 4) -> list[str]:
    lines = [ln for ln in (REAL / csv).read_text().splitlines()[1:] if ln.strip()]
    return [ln.split(",")[1] for ln in lines[:n]]


@real
@pytest.mark.parametrize("csv", ["PRCC_Gender.csv", "LaST_Gender.csv", "DeepChange_Gender.csv",
                                 "Celeb-reID_Gender.csv"])
def test_real_gender_files_join(tmp_path: Path, csv: str) -> None:
    ids, root = first_ids(csv), tmp_path / "my_cache_c1"
    if csv.startswith("PRCC"):
        touch(root / "rgb", *(f"train/{i}/A_cropped_rgb001.jpg" for i in ids), "test/A/001/cropped_rgb001.jpg",
              "test/B/001/cropped_rgb002.jpg", "test/C/001/cropped_rgb003.jpg")
        ds = load_prcc(root)
    elif csv.startswith("LaST"):
        touch(root / "last", *(f"train/{int(i):06d}/{int(i):06d}_000_00009_0257_01_001.jpg" for i in ids),
              "test/query/009999_000_00001_0001_00_000.jpg", "test/gallery/009999/009999_001_00001_0002_00_000.jpg")
        ds = load_last(root)
    elif csv.startswith("DeepChange"):
        base = root / "DeepChangeDataset"
        names = {"train-set": [f"{i}_c01_20201015_172644_000744_bbox.jpg" for i in ids],
                 "test-set-query": ["p9000_c01_20201015_172644_000001_bbox.jpg"],
                 "test-set-gallery": ["p9000_c02_20201015_172644_000002_bbox.jpg"]}
        for folder, files in names.items():
            touch(base, *(f"{folder}/{f}" for f in files))
            (base / f"{folder}-bbox.txt").write_text("".join(f"{f},{k}\n" for k, f in enumerate(files)))
        ds = load_deepchange(root)
    else:
        touch(root, *(f"train/{i}_1_0.jpg" for i in ids), "query/900_1_0.jpg", "gallery/900_2_0.jpg")
        ds = load_celebreid(root)
    key = (lambda n: n) if csv.startswith("DeepChange") else int  # LaST names are 6-digit folders ("000002")
    assert sorted(map(key, ds.train_pid_names)) == sorted(map(key, ids))
    ref = expected_genders(csv)
    np.testing.assert_array_equal(gender_labels(ds, REAL / csv), [ref[key(n)] for n in ds.train_pid_names])


@real
def test_real_gender_file_counts() -> None:
    counts = {"LTCC_Gender.csv": (47, 30), "PRCC_Gender.csv": (73, 77), "Celeb-reID_Gender.csv": (325, 307),
              "DeepChange_Gender.csv": (271, 179), "LaST_Gender.csv": (3017, 1983)}  # docs/spec.md §6
    for csv, (male, female) in counts.items():
        values = list(read_gender_csv(REAL / csv).values())
        assert (values.count(1), values.count(0)) == (male, female), csv
    assert len(read_gender_csv(REAL / "LTCC_test_Gender.csv", categories={"query"})) == 75
    assert len(read_gender_csv(REAL / "PRCC_test_Gender.csv")) == 71
