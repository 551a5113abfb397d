"""Pose classes for CAP (docs/spec.md §5): vectors on hand-made skeletons, AlphaPose parsing, clustering, CSV format."""

from __future__ import annotations

import json
import math
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from rlqlib.data.annotations import read_pose_cluster_csv, write_pose_csv
from rlqlib.data.pose.clusters import cluster_medoids, cluster_poses, purity, sweep_k
from rlqlib.data.pose.config import ENCODINGS, PoseConfig
from rlqlib.data.pose.estimate import run_mediapipe
from rlqlib.data.pose.keypoints import (Keypoints, PoseInputError, detection_score, read_alphapose,
                                        read_alphapose_json, read_synthcc_keypoints, synthcc_truth)
from rlqlib.data.pose.labels import cluster_command
from rlqlib.data.pose.vectors import BODY_LINES, PoseEncoder, canvas_coords, pose_vectors

REPO = Path(__file__).resolve().parents[2]
LTCC_POSE = REPO / ".." / "shared" / "reference-annotations" / "LTCC_Pose_Cluster.csv"
POSE_PY = REPO / ".venv-pose" / "bin" / "python"

# The reference's 13 lines, written out independently of the module (docs/spec.md §5).
LINES = [(0, 1), (0, 2), (1, 3), (2, 4), (5, 6), (5, 7), (7, 9), (6, 8), (8, 10), (11, 13), (13, 15), (12, 14),
         (14, 16)]

# A front-facing person drawn directly on the 192×384 canvas (integer coordinates).
FRONT = np.array([[96, 40], [104, 32], [88, 32], [112, 36], [80, 36], [126, 90], [66, 90], [134, 150], [58, 150],
                  [138, 205], [54, 205], [116, 200], [76, 200], [118, 280], [74, 280], [120, 360], [72, 360]], float)


def skeletons(n: int, seed: int = 0) -> np.ndarray:
    """n jittered copies of FRONT, (n, 17, 3) with score 1."""
    rng = np.random.default_rng(seed)
    xy = FRONT[None] + rng.normal(0, 6, size=(n, 17, 2))
    return np.concatenate([xy, np.ones((n, 17, 1))], axis=2)


def loop_vector(xy: np.ndarray) -> list[float]:
    """R_LA of one canvas skeleton with math.* in an explicit loop."""
    lengths = [math.hypot(xy[a][0] - xy[b][0], xy[a][1] - xy[b][1]) for a, b in LINES]
    angles = [math.degrees(math.atan2(xy[a][1] - xy[b][1], xy[a][0] - xy[b][0])) for a, b in LINES]
    return lengths + angles


# ------------------------------------------------------------------------------------------------ vectors


def test_body_lines_are_the_reference_13_in_order():
    assert list(BODY_LINES) == LINES
    assert all(max(pair) < 17 for pair in BODY_LINES)  # the two "neck" (joint 17) pairs are skipped


def test_canvas_coords_truncate_before_and_after_scaling():
    xy = np.zeros((17, 2))
    xy[:3] = [[33.9, 77.7], [-3.7, -0.5], [99.99, 249.99]]
    got = canvas_coords(xy, (100, 250))
    # trunc(33.9) = 33 → 33·192/100 = 63.36 → 63; trunc(77.7) = 77 → 77·384/250 = 118.272 → 118
    assert got[0].tolist() == [63.0, 118.0]
    # both truncations go toward zero: -3 → -5.76 → -5; -0.5 → 0 (+0.0, not -0.0, so atan2 gives +180, not -180)
    assert got[1].tolist() == [-5.0, 0.0] and not np.signbit(got[1, 1])
    # the first truncation matters: 99·1.92 = 190.08 → 190 and 249·1.536 = 382.464 → 382 (not 383.98 → 383)
    assert got[2].tolist() == [190.0, 382.0]
    # the authors compute x·(192/W), the factor first: 55·(192/88) = 119.999… truncates to 119 (x·192/W would be 120)
    assert canvas_coords(np.full((17, 2), 55.0), (88, 384))[0].tolist() == [119.0, 55.0]
    # one size per image
    per_image = canvas_coords(np.full((2, 17, 2), 10.0), np.array([[192, 384], [96, 96]]))
    assert per_image[:, 0].tolist() == [[10.0, 10.0], [20.0, 40.0]]


def test_canvas_coords_follow_the_authors_arithmetic_coordinate_by_coordinate():
    # the authors' resize_coordinates, one Python float at a time: int(int(x) * (192 / W)), int(int(y) * (384 / H))
    rng = np.random.default_rng(0)
    sizes = rng.integers(20, 600, (400, 2))  # (W, H) per image
    xy = rng.uniform(0, 1, (400, 17, 2)) * sizes[:, None, :]
    got = canvas_coords(xy, sizes)
    want = [[[int(int(x) * (192 / w)), int(int(y) * (384 / h))] for x, y in pts] for pts, (w, h) in zip(xy, sizes)]
    assert got.tolist() == want
    # on these draws the order of the operations matters for some coordinates (the difference M1 of the
    # differences page): x·192/W differs from x·(192/W) after truncation
    other = [[int(int(x) * 192 / w) for x, _ in pts] for pts, (w, _) in zip(xy, sizes)]
    assert np.array(other).tolist() != got[..., 0].tolist()


def test_r_la_vector_matches_explicit_loop_and_layout():
    kp = skeletons(3)  # (3, 17, 3) on the canvas itself: (W, H) = (192, 384) maps integers to themselves
    ints = np.trunc(kp[..., :2])
    for variant, width in (("R_LA", 26), ("R_LAC", 60), ("R_A", 13)):
        v = pose_vectors(kp, (192, 384), variant)
        assert v.shape == (3, width)
    v = pose_vectors(kp, (192, 384), "R_LA")
    for i in range(3):
        np.testing.assert_allclose(v[i], loop_vector(ints[i]), rtol=0, atol=1e-12)
    lac = pose_vectors(kp, (192, 384), "R_LAC")
    np.testing.assert_array_equal(lac[:, :34], ints.reshape(3, 34))  # x0, y0, x1, y1, …
    np.testing.assert_array_equal(lac[:, 34:], v)
    np.testing.assert_array_equal(pose_vectors(kp, (192, 384), "R_A"), v[:, 13:])


def test_hand_computed_lengths_and_angles():
    xy = FRONT.copy()
    v = pose_vectors(xy[None], (192, 384))[0]
    # line 0 = nose (96, 40) → L-eye (104, 32): dx = -8, dy = 8 → length 8√2, atan2(8, -8) = 135°
    assert v[0] == pytest.approx(8 * math.sqrt(2)) and v[13] == pytest.approx(135.0)
    # line 4 = L-shoulder (126, 90) → R-shoulder (66, 90): length 60, angle atan2(0, 60) = 0°
    assert v[4] == 60.0 and v[17] == 0.0
    # line 6 = L-elbow (134, 150) → L-wrist (138, 205): dx = -4, dy = -55 → atan2(-55, -4) ≈ -94.16°
    assert v[6] == pytest.approx(math.hypot(4, 55)) and v[19] == pytest.approx(math.degrees(math.atan2(-55, -4)))
    # a back view swaps the shoulders: (66, 90) → (126, 90) is +180° (the range is (-180, 180])
    back = xy.copy()
    back[[5, 6]] = back[[6, 5]]
    assert pose_vectors(back[None], (192, 384))[0, 17] == 180.0
    # image pixels are mapped to the canvas first: a 64×128 image is scaled ×3
    small = np.trunc(FRONT / 3)
    got = pose_vectors(small[None], (64, 128))[0]
    np.testing.assert_allclose(got, loop_vector(np.trunc(small) * 3), atol=1e-12)


def test_wrong_keypoint_shape_is_an_error():
    with pytest.raises(PoseInputError, match=r"\(N, 17, 2\|3\)"):
        pose_vectors(np.zeros((2, 18, 3)), (192, 384))
    with pytest.raises(PoseInputError, match="positive"):
        canvas_coords(np.zeros((17, 2)), (0, 384))


def test_improved_encoding_handles_the_180_degree_wrap():
    up, down, other = FRONT.copy(), FRONT.copy(), FRONT.copy()
    up[[5, 6]] = [[66, 90], [126, 91]]  # back view, shoulder line at atan2(-1, -60) ≈ -179.05°
    down[[5, 6]] = [[66, 91], [126, 90]]  # same pose tilted the other way: ≈ +179.05°
    other[[9, 10]] = [[150, 40], [42, 40]]  # arms raised
    raw = pose_vectors(np.stack([up, down, other]), (192, 384))
    assert raw[0, 17] == pytest.approx(-179.045, abs=1e-3) and raw[1, 17] == pytest.approx(179.045, abs=1e-3)
    ref = PoseEncoder.fit(raw, "R_LA", "reference").transform(raw)
    imp = PoseEncoder.fit(raw, "R_LA", "improved").transform(raw)
    dist = lambda x, i, j: float(np.linalg.norm(x[i] - x[j]))  # noqa: E731
    assert dist(ref, 0, 1) > dist(ref, 0, 2)  # reference: the wrap looks farther than raising both arms
    assert dist(imp, 0, 1) < dist(imp, 0, 2) / 10  # improved: the two tilts are neighbours
    assert imp.shape == (3, 13 + 26)
    np.testing.assert_allclose(imp[:, 13:26], np.sin(np.radians(raw[:, 13:])))
    np.testing.assert_allclose(imp[:, 26:], np.cos(np.radians(raw[:, 13:])))


def test_improved_encoding_scales_lengths_as_one_group():
    raw = pose_vectors(skeletons(4), (192, 384), "R_LAC")
    enc = PoseEncoder.fit(raw, "R_LAC", "improved")
    coords, lengths = raw[:, :34], raw[:, 34:47]
    np.testing.assert_allclose(enc.mean[:34], coords.mean())
    np.testing.assert_allclose(enc.std[34:], lengths.std())
    out = enc.transform(raw)
    np.testing.assert_allclose(out[:, 34:47], (lengths - lengths.mean()) / lengths.std())
    assert out.shape == (4, 47 + 26)


# ------------------------------------------------------------------------------------------------ sources


def write_json(path: Path, entries) -> Path:
    path.write_text(json.dumps(entries))
    return path


def entry(name: str, kp: np.ndarray, score: float) -> dict:
    return {"image_id": name, "category_id": 1, "keypoints": kp.ravel().tolist(), "score": score,
            "box": [0, 0, 10, 10]}


def test_alphapose_keeps_the_highest_scoring_person(tmp_path):
    a, b, c = skeletons(3)
    path = write_json(tmp_path / "kp.json", [entry("x.png", a, 0.4), entry("x.png", b, 2.5), entry("x.png", c, 1.0),
                                             entry("y.jpg", c, 0.1)])
    got = read_alphapose_json(path, person="pose")
    assert sorted(got) == ["x.png", "y.jpg"]
    np.testing.assert_array_equal(got["x.png"], b)
    np.testing.assert_array_equal(got["y.jpg"], c)
    with pytest.raises(ValueError, match="person='best'"):
        read_alphapose_json(path, person="best")


def test_alphapose_keeps_the_person_the_detector_scored_highest_by_default(tmp_path):
    # AlphaPose's score = mean(kp scores) + box score + 1.25·max(kp scores); the authors keep the highest box score
    # (their yolo_scores). Person a: box 0.9, weak keypoints; person b: box 0.5, confident keypoints.
    a, b = skeletons(2)
    a[:, 2], b[:, 2] = 0.2, 0.9
    score_a = 0.2 + 0.9 + 1.25 * 0.2  # 1.35
    score_b = 0.9 + 0.5 + 1.25 * 0.9  # 2.525: the higher AlphaPose score
    path = write_json(tmp_path / "kp.json", [entry("x.png", a, score_a), entry("x.png", b, score_b)])
    assert detection_score(a, score_a) == pytest.approx(0.9) and detection_score(b, score_b) == pytest.approx(0.5)
    np.testing.assert_array_equal(read_alphapose_json(path)["x.png"], a)  # the detector's choice (default)
    np.testing.assert_array_equal(read_alphapose_json(path, person="pose")["x.png"], b)
    np.testing.assert_array_equal(read_alphapose(path, image_size=(64, 128)).points["x.png"], a)


def test_alphapose_malformed_files(tmp_path):
    bad = tmp_path / "bad.json"
    bad.write_text('[\n {"image_id": "a.png",\n  "keypoints": [1, 2,, 3]}\n]')
    with pytest.raises(PoseInputError, match=r"bad\.json.*line 3, column"):
        read_alphapose_json(bad)
    short = write_json(tmp_path / "short.json", [entry("a.png", np.zeros((17, 3)), 1), entry("b.png", np.zeros(78), 1)])
    with pytest.raises(PoseInputError, match=r"entry 1 \(b\.png\): keypoints has 78 values, expected 51"):
        read_alphapose_json(short)
    with pytest.raises(PoseInputError, match="JSON list"):
        read_alphapose_json(write_json(tmp_path / "d.json", {"a.png": []}))
    with pytest.raises(PoseInputError, match="entry 0: expected an object with image_id, keypoints and score"):
        read_alphapose_json(write_json(tmp_path / "e.json", [{"image_id": "a.png", "keypoints": []}]))
    with pytest.raises(PoseInputError, match="does not exist"):
        read_alphapose_json(tmp_path / "absent.json")


def make_images(folder: Path, sizes: dict[str, tuple[int, int]]) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for name, size in sizes.items():
        Image.new("RGB", size).save(folder / name)
    return folder


def test_image_sizes_come_from_the_images_or_one_size(tmp_path):
    kp = skeletons(2)
    path = write_json(tmp_path / "kp.json", [entry("a.png", kp[0], 1), entry("b.png", kp[1], 1)])
    folder = make_images(tmp_path / "img", {"a.png": (40, 80), "b.png": (64, 128)})
    got = read_alphapose(path, images=folder)
    assert got.sizes == {"a.png": (40, 80), "b.png": (64, 128)}
    assert read_alphapose(path, image_size=(32, 64)).sizes == {"a.png": (32, 64), "b.png": (32, 64)}
    with pytest.raises(PoseInputError, match=r"--images DIR.*--image-size W H"):
        read_alphapose(path)


def test_images_missing_from_the_keypoint_file(tmp_path):
    path = write_json(tmp_path / "kp.json", [entry("a.png", skeletons(1)[0], 1)])
    folder = make_images(tmp_path / "img", {n: (8, 16) for n in ("a.png", "b.png", "c.png")})
    with pytest.raises(PoseInputError, match=r"2 of 3 images .* missing from .*kp\.json: b\.png, c\.png"):
        read_alphapose(path, images=folder)
    got = read_alphapose(path, images=folder, missing="zero")
    assert got.points["b.png"] is None and got.points["c.png"] is None and got.points["a.png"] is not None
    stray = write_json(tmp_path / "stray.json", [entry("zzz.png", skeletons(1)[0], 1)])
    with pytest.raises(PoseInputError, match=r"1 entries of .*stray\.json name images that are not in"):
        read_alphapose(stray, images=folder, missing="zero")


# ------------------------------------------------------------------------------------------------ clustering


def toy_keypoints(n: int = 20, none: tuple[str, ...] = ("z_none.png",)) -> Keypoints:
    kp = skeletons(n)
    kp[n // 2:, 9:11, 1] -= 150  # half of them raise both wrists: two clear pose groups
    points = {f"img{i:02d}.png": kp[i] for i in range(n)}
    points.update({name: None for name in none})
    return Keypoints(points, {name: (192, 384) for name in points}, "toy")


def test_missing_person_gets_class_zero_and_the_rest_1_to_k():
    res = cluster_poses(toy_keypoints(), PoseConfig(k=5))
    table = res.label_table()
    assert table["z_none"] == 0
    rest = [v for name, v in table.items() if name != "z_none"]
    assert sorted(set(rest)) == [1, 2, 3, 4, 5]
    assert res.counts()[0] == 1 and sum(res.counts().values()) == 21
    assert np.isnan(res.vectors[res.names.index("z_none.png")]).all()
    # wrists up vs down never share a cluster
    up = {table[f"img{i:02d}"] for i in range(10, 20)}
    down = {table[f"img{i:02d}"] for i in range(10)}
    assert not up & down


def test_confidence_threshold_is_an_option():
    kps = toy_keypoints(none=())
    kps.points["img03.png"] = kps.points["img03.png"].copy()
    kps.points["img03.png"][:, 2] = 0.2
    assert cluster_poses(kps, PoseConfig(k=5)).label_table()["img03"] > 0  # reference: scores ignored
    assert cluster_poses(kps, PoseConfig(k=5, min_score=0.5)).label_table()["img03"] == 0


def test_kmeans_settings_are_the_reference_ones():
    km = cluster_poses(toy_keypoints(), PoseConfig(k=5)).kmeans
    assert (km.n_clusters, km.random_state, km.max_iter, km.n_init) == (5, 0, 1000, 10)


def test_bad_clustering_requests():
    with pytest.raises(PoseInputError, match="k=6 clusters need at least 6 images with a usable pose, got 5"):
        cluster_poses(toy_keypoints(5), PoseConfig(k=6))
    with pytest.raises(ValueError, match="outside 5…40"):
        PoseConfig(k=41)
    with pytest.raises(ValueError, match="variant"):
        PoseConfig(variant="N_LA")
    assert PoseConfig().column == "R_LA_15" and PoseConfig(encoding="improved", variant="R_A", k=5).column == "Z_A_5"


def test_medoid_and_purity_by_hand():
    x = np.array([[0.0], [1.0], [2.0], [10.0], [5.0], [7.0], [np.nan]])
    labels = np.array([1, 1, 1, 1, 2, 2, 0])
    # cluster 1 distance sums: 0→13, 1→11, 2→11, 10→27 (first minimum wins); cluster 2: a tie → first
    assert cluster_medoids(x, labels) == {1: 1, 2: 4}
    assert cluster_medoids(x, labels, chunk=1) == {1: 1, 2: 4}
    assert purity([1, 1, 1, 2, 2, 3], ["a", "a", "b", "b", "b", "a"]) == pytest.approx(5 / 6)
    with pytest.raises(ValueError, match="equally long"):
        purity([1, 2], ["a"])


def test_synthcc_ground_truth_clusters_by_pose_family(synthcc_smoke):
    kps = read_synthcc_keypoints(synthcc_smoke, "train")
    truth = synthcc_truth(synthcc_smoke, "train")
    assert set(kps.points) == set(truth) and all(v is not None for v in kps.points.values())
    chance = pd.Series(truth).value_counts(normalize=True).max()
    sweep = {enc: sweep_k(kps, (5, 10), PoseConfig(encoding=enc), truth).set_index("k")["purity"]
             for enc in ENCODINGS}
    assert sweep["reference"][10] > chance + 0.2
    assert sweep["improved"][10] > chance + 0.35
    res = cluster_poses(kps, PoseConfig(k=10, encoding="improved"))
    assert purity(res.labels, [truth[n] for n in res.names]) == pytest.approx(sweep["improved"][10])


def test_cluster_command_writes_the_reference_format(synthcc_smoke, tmp_path):
    kp_json = synthcc_smoke / "annotations" / "keypoints_train.json"
    h, w = json.loads((synthcc_smoke / "synthcc.json").read_text())["image_size"]
    out = tmp_path / "labels.csv"
    summary = cluster_command(kp_json, [5, 10], out, variant=["R_A", "R_LA"], image_size=(w, h))
    lines = out.read_text().splitlines()
    assert lines[0] == "Category,Image,R_LA_5,R_A_5,R_LA_10,R_A_10"
    assert summary["images"] == len(lines) - 1 == len(list((synthcc_smoke / "train").glob("*.png")))
    first = lines[1].split(",")
    assert first[0] == "train" and not first[1].endswith(".png") and all(v.endswith(".0") for v in first[2:])
    res = cluster_poses(read_alphapose(kp_json, image_size=(w, h)), PoseConfig(k=10))
    assert dict(read_pose_cluster_csv(out, "R_LA_10")) == res.label_table()
    # from the image folder instead of one size: same labels
    cluster_command(kp_json, 10, tmp_path / "b.csv", images=synthcc_smoke / "train", category="query")
    assert dict(read_pose_cluster_csv(tmp_path / "b.csv", "R_LA_10")) == res.label_table()
    assert (tmp_path / "b.csv").read_text().splitlines()[1].startswith("query,")
    with pytest.raises(ValueError, match="variant"):
        cluster_command(kp_json, 10, out, variant="R_XY", image_size=(w, h))


@pytest.mark.skipif(not LTCC_POSE.is_file(), reason="../shared/reference-annotations is not available")
def test_ltcc_pose_csv_round_trip(tmp_path):
    table = read_pose_cluster_csv(LTCC_POSE, "R_LA_15")
    raw = pd.read_csv(LTCC_POSE, dtype={"Image": str})
    assert len(table) == len(raw) == 9576
    assert dict(zip(raw["Image"], raw["R_LA_15"].astype(int))) == dict(table)
    counts = pd.Series(table).value_counts().sort_index().tolist()
    assert counts == [63, 736, 756, 488, 866, 319, 656, 614, 330, 273, 1094, 355, 575, 382, 1657, 412]  # docs/spec.md §5
    names = list(table)
    write_pose_csv(tmp_path / "ltcc.csv", names, {"R_LA_15": [table[n] for n in names]})
    assert dict(read_pose_cluster_csv(tmp_path / "ltcc.csv", "R_LA_15")) == dict(table)
    assert (tmp_path / "ltcc.csv").read_text().splitlines()[1] == "train,000_1_c10_001003,10.0"


# ------------------------------------------------------------------------------------------------ mediapipe


def test_blazepose_to_coco_entry():
    from rlqlib.data.pose.mediapipe import BLAZEPOSE_TO_COCO, to_coco_entry

    lm = np.column_stack([np.arange(33) / 33, np.arange(33) / 66, np.linspace(0, 1, 33)])  # (33, 3)
    e = to_coco_entry("a.png", lm, 330, 660)
    kp = np.array(e["keypoints"]).reshape(17, 3)
    np.testing.assert_allclose(kp[:, 0], np.array(BLAZEPOSE_TO_COCO) * 10, atol=1e-3)
    np.testing.assert_allclose(kp[:, 1], np.array(BLAZEPOSE_TO_COCO) * 10, atol=1e-3)
    assert list(BLAZEPOSE_TO_COCO) == [0, 2, 5, 7, 8, 11, 12, 13, 14, 15, 16, 23, 24, 25, 26, 27, 28]
    assert e["score"] == pytest.approx(kp[:, 2].mean(), abs=1e-4) and e["image_id"] == "a.png"
    assert e["box"] == [0.0, 0.0, 320.0, 320.0]


def test_mediapipe_module_imports_neither_torch_nor_sklearn():
    code = "import sys, rlqlib.data.pose.mediapipe; print(sorted({'torch', 'sklearn', 'pandas'} & set(sys.modules)))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=REPO)
    assert out.stdout.strip() == "[]"


@pytest.mark.pose_env
@pytest.mark.skipif(not POSE_PY.exists(), reason="no .venv-pose: run `make pose-env` for the MediaPipe estimator test")
def test_mediapipe_on_the_astronaut(tmp_path):
    folder = tmp_path / "img"
    folder.mkdir()
    subprocess.run([str(POSE_PY), "-c", "import sys; from PIL import Image; from skimage import data; "
                    "Image.fromarray(data.astronaut()).save(sys.argv[1])", str(folder / "astronaut.png")], check=True)
    Image.new("RGB", (64, 128), (90, 90, 90)).save(folder / "blank.png")  # nobody there: left out
    summary = run_mediapipe(folder, tmp_path / "kp.json")
    assert summary == {"images": 2, "persons": 1, "no_person": 1, "out": str((tmp_path / "kp.json").resolve())}
    with pytest.raises(PoseInputError, match="blank.png"):
        read_alphapose(tmp_path / "kp.json", images=folder)
    kps = read_alphapose(tmp_path / "kp.json", images=folder, missing="zero")
    assert kps.points["blank.png"] is None and kps.sizes["astronaut.png"] == (512, 512)
    kp = kps.points["astronaut.png"]  # (17, 3); the face is at about x 150…300, y 50…200 of the 512² photo
    assert 150 < kp[0, 0] < 300 and 50 < kp[0, 1] < 200
    assert kp[1, 1] < kp[0, 1] and kp[2, 1] < kp[0, 1]  # eyes above the nose
    assert kp[5, 1] > kp[0, 1] + 50 and kp[6, 1] > kp[0, 1] + 50  # shoulders well below it
    assert kp[5, 0] > kp[0, 0] > kp[6, 0]  # the person's left shoulder is on the image's right
    assert (kp[:7, 2] > 0.9).all()
