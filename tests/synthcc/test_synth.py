"""SynthCC generator: determinism, layout, annotations and image sanity on the ``smoke`` preset."""

from __future__ import annotations

import csv
import hashlib
import json
import re
from collections import defaultdict
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from rlqlib.synthcc import generate as synth
from rlqlib.synthcc.body import HEAD, LSH, NOSE, Body, Outfit, Pose, project, skeleton
from rlqlib.synthcc.draw import BG, BOTTOM, SHIRT, draw_person, layout

SMOKE = synth.PRESETS["smoke"]
H, W = SMOKE.image_size
LTCC_RE = re.compile(r"^(\d{3})_(\d+)_c(\d{2})_(\d{6})\.png$")
CELEB_RE = re.compile(r"^([1-9]\d*)_([1-9]\d*)_0\.png$")
SHARED = Path(__file__).resolve().parents[2] / ".." / "shared" / "reference-annotations"


@pytest.fixture(scope="module")
def runs(tmp_path_factory, synthcc_smoke, synthcc_smoke_manifest):
    """smoke seed 0 in-process (the session's SynthCC-smoke), seed 0 with two worker processes, seed 1 in-process."""
    root = tmp_path_factory.mktemp("synth")
    b = synth.generate(SMOKE, root / "b", seed=0, workers=2)
    c = synth.generate(SMOKE, root / "c", seed=1, workers=1)
    return {"a": (synthcc_smoke, synthcc_smoke_manifest), "b": (root / "b", b), "c": (root / "c", c)}


@pytest.fixture(scope="module")
def meta(runs):
    return list(csv.DictReader((runs["a"][0] / "annotations" / "metadata.csv").read_text().splitlines()))


def _hashes(root: Path) -> dict[str, str]:
    return {str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(root.rglob("*")) if p.is_file()}


def _csv_rows(path: Path) -> list[list[str]]:
    return list(csv.reader(path.read_text().splitlines()))


def _images(root: Path, folder: str) -> list[str]:
    return sorted(p.name for p in (root / folder).glob("*.png"))


def test_same_seed_is_byte_identical_across_worker_counts(runs):
    ha, hb = _hashes(runs["a"][0]), _hashes(runs["b"][0])
    assert len(ha) > 500 and ha == hb
    assert runs["a"][1] == runs["b"][1]


def test_different_seed_differs(runs):
    ha, hc = _hashes(runs["a"][0]), _hashes(runs["c"][0])
    assert ha["annotations/metadata.csv"] != hc["annotations/metadata.csv"]
    common = set(ha) & set(hc)
    assert sum(ha[k] != hc[k] for k in common) > 0.9 * len(common) - 5  # all but a few unchanged annotation files


def test_manifest_and_counts(runs, meta):
    root, manifest = runs["a"]
    on_disk = json.loads((root / "synthcc.json").read_text())
    assert on_disk == manifest and manifest["format"] == "synthcc-1" and manifest["preset"] == "smoke"
    assert manifest["seed"] == 0 and manifest["image_size"] == [H, W]
    assert not (root / ".synthcc-partial.json").exists()
    n_files = sum(len(_images(root, f)) for f in synth.FOLDERS)
    assert manifest["counts"]["images"] == n_files == len(meta)
    assert manifest["counts"]["train_ids"] == SMOKE.train_ids and manifest["counts"]["test_ids"] == SMOKE.test_ids


def test_file_names_follow_ltcc_and_celeb_layouts(runs, meta):
    root = runs["a"][0]
    frames = []
    for folder in ("train", "query", "test"):
        for name in _images(root, folder):
            m = LTCC_RE.match(name)
            assert m, name
            assert 1 <= int(m.group(3)) <= SMOKE.cameras and int(m.group(2)) >= 1
            frames.append(m.group(4))
    assert len(frames) == len(set(frames))  # frame numbers unique over the whole target set
    for folder in synth.FOLDERS[3:]:
        names = _images(root, folder)
        assert names and all(CELEB_RE.match(n) for n in names), folder
        assert sorted(int(n.split("_")[1]) for n in names) == list(range(1, len(names) + 1))  # IDX runs from 1
    # metadata agrees with the file names
    for r in meta:
        if r["split"] in ("train", "query", "test"):
            ppp, outfit, cam, _ = LTCC_RE.match(r["image"]).groups()
            assert (int(ppp), int(cam) - 1, f"{ppp}_{outfit}") == (int(r["pid"]), int(r["camid"]), r["clothes_key"])


def test_identities_outfits_and_cameras(meta):
    train = [r for r in meta if r["split"] == "train"]
    test = [r for r in meta if r["split"] in ("query", "test")]
    train_ids, test_ids = {r["pid"] for r in train}, {r["pid"] for r in test}
    assert len(train_ids) == SMOKE.train_ids and len(test_ids) == SMOKE.test_ids and not train_ids & test_ids
    assert {r["pid"] for r in meta if r["split"] == "query"} == test_ids
    per_id = defaultdict(lambda: (set(), set()))
    for r in train:
        per_id[r["pid"]][0].add(r["outfit"])
        per_id[r["pid"]][1].add(r["camid"])
    assert all(len(o) >= 2 and len(c) >= 2 for o, c in per_id.values())
    wearers = defaultdict(set)
    for r in train + test:
        wearers[r["outfit"]].add(r["pid"])
    assert max(len(v) for v in wearers.values()) >= 3  # look-alike clothes on different people
    assert sum(len(v) >= 2 for v in wearers.values()) >= SMOKE.outfit_pool // 2


def test_every_query_has_a_clothes_changing_cross_camera_match(meta):
    gallery = [r for r in meta if r["split"] == "test"]
    queries = [r for r in meta if r["split"] == "query"]
    assert 0.1 < len(queries) / (len(queries) + len(gallery)) < 0.4
    for q in queries:
        assert any(g["pid"] == q["pid"] and g["camid"] != q["camid"] and g["clothes_key"] != q["clothes_key"]
                   for g in gallery), q["image"]


def test_keypoints_one_entry_per_image_inside_bounds(runs):
    root = runs["a"][0]
    for split, folder in (("train", "train"), ("query", "query"), ("test", "test"),
                          ("external_train", "external/train")):
        entries = json.loads((root / "annotations" / f"keypoints_{split}.json").read_text())
        assert sorted(e["image_id"] for e in entries) == _images(root, folder)
        for e in entries:
            k = np.asarray(e["keypoints"], dtype=float).reshape(17, 3)
            assert e["category_id"] == 1 and 0 < e["score"] <= 1
            assert (k[:, :2] >= 0).all() and (k[:, 0] <= W - 1).all() and (k[:, 1] <= H - 1).all()
            assert ((k[:, 2] > 0) & (k[:, 2] <= 1)).all()
            x, y, w, h = e["box"]
            assert 0 <= x and 0 <= y and x + w <= W and y + h <= H and h > H / 3
            inside = (k[:, 0] >= x - 1) & (k[:, 0] <= x + w + 1) & (k[:, 1] >= y - 1) & (k[:, 1] <= y + h + 1)
            assert inside.all(), e["image_id"]


def test_back_view_hides_the_face_in_keypoint_scores(runs, meta):
    root = runs["a"][0]
    entries = {e["image_id"]: e for e in json.loads((root / "annotations" / "keypoints_train.json").read_text())}
    views = {r["image"]: r["view"] for r in meta if r["split"] == "train"}
    backs = [n for n, v in views.items() if v == "back"]
    fronts = [n for n, v in views.items() if v == "front"]
    assert backs and fronts
    assert all(entries[n]["keypoints"][3 * NOSE + 2] < 0.5 for n in backs)
    assert all(entries[n]["keypoints"][3 * NOSE + 2] == 1.0 for n in fronts)


def test_masks_cover_the_drawn_garments(runs):
    root = runs["a"][0]
    boxes = {e["image_id"]: e["box"] for e in json.loads((root / "annotations" / "keypoints_train.json").read_text())}
    names = _images(root, "train")
    assert len(list((root / "masks" / "train").glob("*.png"))) == 2 * len(names)
    for name in names:
        img = np.asarray(Image.open(root / "train" / name))
        x, y, w, h = boxes[name]
        for part in ("shirt", "pant"):
            m = np.asarray(Image.open(root / "masks" / "train" / f"{name[:-4]}_{part}.png"))
            assert m.shape == img.shape and set(np.unique(m)) <= {0, 255}, (name, part)
            assert (m[..., 0] == m[..., 1]).all() and (m[..., 0] == m[..., 2]).all()
            ys, xs = np.nonzero(m[..., 0])
            assert len(ys) >= 4, (name, part)
            assert xs.min() >= x - 1 and xs.max() <= x + w and ys.min() >= y - 1 and ys.max() <= y + h
        shirt = np.asarray(Image.open(root / "masks" / "train" / f"{name[:-4]}_shirt.png"))[..., 0] > 0
        pant = np.asarray(Image.open(root / "masks" / "train" / f"{name[:-4]}_pant.png"))[..., 0] > 0
        assert np.nonzero(shirt)[0].mean() < np.nonzero(pant)[0].mean()  # the top is above the bottom


def test_low_quality_cameras_and_clean_external_sets(runs, meta):
    lq = {str(c) for c, _ in SMOKE.lq_cameras}
    target = [r for r in meta if r["split"] in ("train", "query", "test")]
    lq_rows = [r for r in target if r["camid"] in lq]
    hq_rows = [r for r in target if r["camid"] not in lq]
    assert lq_rows and hq_rows
    assert np.mean([r["artifact"] != "none" for r in lq_rows]) > 0.6
    assert np.mean([r["artifact"] != "none" for r in hq_rows]) < 0.15
    dominant = dict(SMOKE.lq_cameras)
    for cam, art in dominant.items():
        rows = [r for r in lq_rows if r["camid"] == str(cam)]
        if len(rows) >= 5:
            assert np.mean([r["artifact"] == art for r in rows]) > 0.5
    for r in target:
        s = float(r["artifact_strength"])
        if r["artifact"] == "none":
            assert r["artifact_param"] == "" and s == 0.0
        else:
            assert 0.0 <= s <= 1.0 and re.fullmatch(r"[a-z]+=[0-9.]+(;[a-z]+=[0-9.]+)*", r["artifact_param"])
    assert all(r["artifact"] == "none" for r in meta if r["split"].startswith("external"))
    ntu = [r for r in meta if r["split"].startswith("external_ntu")]
    assert {r["camid"] for r in ntu} == {"0"} and {r["view"] for r in ntu} == {"front"}
    assert {r["pose_family"] for r in ntu} <= set(SMOKE.ntu_families)


def test_gender_tables_match_the_real_formats(runs, meta):
    ann = runs["a"][0] / "annotations"
    rows = _csv_rows(ann / "SynthCC_Gender.csv")
    assert rows[0] == ["Category", "ID", "Gender"] and len(rows) == SMOKE.train_ids + 1
    gender = {r["pid"]: r["gender"] for r in meta if r["split"] in ("train", "query", "test")}
    assert all(c == "train" and re.fullmatch(r"\d{3}", i) and gender[str(int(i))] == g for c, i, g in rows[1:])
    test_rows = _csv_rows(ann / "SynthCC_test_Gender.csv")[1:]
    assert sorted({c for c, _, _ in test_rows}) == ["query", "test"] and len(test_rows) == 2 * SMOKE.test_ids
    ext = _csv_rows(ann / "External_Gender.csv")[1:]
    assert [int(i) for _, i, _ in ext] == list(range(1, SMOKE.external_train_ids + 1))
    if not SHARED.is_dir():
        pytest.skip("shared/reference-annotations not present")
    real = _csv_rows(SHARED / "LTCC_Gender.csv")
    assert real[0] == rows[0] and all(re.fullmatch(r"\d{3}", r[1]) and r[2] in "01" for r in real[1:])


def test_images_are_people_not_noise_or_blank(runs):
    root = runs["a"][0]
    contrast = []
    for name in _images(root, "train"):
        a = np.asarray(Image.open(root / "train" / name)).astype(float)
        assert a.std() > 8, name  # not blank
        smooth = np.abs(np.diff(a, axis=1)).mean() / np.abs(a - a.mean((0, 1))).mean()
        assert smooth < 0.7, name  # iid noise gives ~1.35
        person = np.zeros(a.shape[:2], bool)
        for part in ("shirt", "pant"):
            person |= np.asarray(Image.open(root / "masks" / "train" / f"{name[:-4]}_{part}.png"))[..., 0] > 0
        border = np.concatenate([a[:, :2].reshape(-1, 3), a[:, -2:].reshape(-1, 3)])
        contrast.append(np.abs(a[person].mean(0) - np.median(border, 0)).sum())
    assert np.median(contrast) > 40  # clothes stand out from the background edges


def test_refuses_foreign_or_different_folders(runs, tmp_path):
    (tmp_path / "notes.txt").write_text("mine")
    with pytest.raises(FileExistsError, match="not empty"):
        synth.generate(SMOKE, tmp_path, seed=0)
    with pytest.raises(FileExistsError, match="seed=0"):
        synth.generate(SMOKE, runs["c"][0], seed=0)  # holds seed 1
    synth._check_out(runs["a"][0], SMOKE, 0)  # same preset/config/seed: allowed (regenerated in place)


def test_config_validation_names_the_problem():
    with pytest.raises(ValueError, match="cameras_per_id"):
        synth.SynthConfig(name="bad", cameras=3, cameras_per_id=4)
    with pytest.raises(ValueError, match="lq_cameras"):
        synth.SynthConfig(name="bad", lq_cameras=((9, "pixelation"),))
    assert set(synth.PRESETS) == {"smoke", "cpu", "large"}
    assert synth.PRESETS["cpu"].image_size == (128, 64) and synth.PRESETS["cpu"].cameras == 8


# ------------------------------------------------------------------------------------ the person model itself


def _person(**kw) -> tuple[Body, Outfit]:
    body = Body(gender=1, height=0.85, shoulder=0.28, hip=0.2, depth=0.6, arm=0.05, leg=0.075, head=0.068,
                leg_len=0.5, skin=(200, 150, 120), hair=(40, 30, 20), hair_style="short", glasses="none",
                beard=False, bag="none", bag_color=(0, 0, 0), tilt=0.0, stride=25.0, swing=20.0, lean=0.0)
    outfit = Outfit(top=(200, 30, 40), pattern="solid", top2=(255, 255, 255), sleeves="long", jacket=None,
                    bottom=(30, 40, 90), bottom_type="trousers", shoes=(20, 20, 20))
    return body, outfit


def _stand(yaw: float) -> Pose:
    return Pose("front_stand", yaw, 0.0, 0.0, (0.0, 0.0), (0.0, 0.0), (4.0, 4.0), (0.0, 0.0), (10.0, 10.0),
                (10.0, 10.0))


def test_skeleton_projection_left_right_and_facing():
    body, _ = _person()
    pts = skeleton(body, _stand(0.0))
    assert abs(min(pts[15, 1], pts[16, 1], pts[19, 1], pts[20, 1]) - 0.035) < 1e-9  # soles on the ground
    x, depth = project(pts, 0.0)  # facing the camera: the person's left is on the image right
    assert x[LSH] > x[LSH + 1] and depth[NOSE] > depth[HEAD]
    x, depth = project(pts, 180.0)  # from behind: mirrored, face away
    assert x[LSH] < x[LSH + 1] and depth[NOSE] < depth[HEAD]
    x, depth = project(pts, 90.0)  # facing image right: nose right of the head centre, left side away
    assert x[NOSE] > x[HEAD] and depth[LSH] < depth[LSH + 1]


def test_label_map_is_exactly_the_drawn_garments():
    body, outfit = _person()
    pose = _stand(0.0)
    canvas = np.full((128, 64, 3), 90, np.uint8)
    scale, cx, gy = layout(body, pose, (128, 64), body.height, 0.0, 0.03)
    rgb, labels, kp = draw_person(canvas, body, outfit, pose, scale, cx, gy)
    assert (rgb[labels == BG] == 90).all()  # background untouched
    assert (rgb[labels == SHIRT] == outfit.top).all()  # solid top, front view: no far-side shading
    assert (rgb[labels == BOTTOM] == outfit.bottom).all()
    ys, xs = np.nonzero(labels == SHIRT)
    yb, _ = np.nonzero(labels == BOTTOM)
    assert len(ys) > 100 and len(yb) > 100 and ys.mean() < yb.mean()
    assert kp.shape == (17, 3) and (kp[:, 2] == 1.0).all()
    assert labels[int(kp[NOSE, 1]), int(kp[NOSE, 0])] != BG  # the nose keypoint lies on the drawn head
