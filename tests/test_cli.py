"""The `rlq` command line as a user runs it: synth determinism, stats on SynthCC read as LTCC, errors."""

import hashlib
import json
import subprocess
import sys
from pathlib import Path

import pytest

from rlqlib.cli import main


def _rlq(*args: str) -> subprocess.CompletedProcess:
    """Run the installed console script (as a user would), falling back to `python -m rlqlib.cli`."""
    exe = Path(sys.executable).parent / "rlq"
    cmd = [str(exe)] if exe.exists() else [sys.executable, "-m", "rlqlib.cli"]
    return subprocess.run(cmd + list(args), capture_output=True, text=True, timeout=600)


def _digest(folder: Path) -> dict[str, str]:
    return {
        str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(folder.rglob("*"))
        if p.is_file()
    }


@pytest.fixture(scope="module")
def smoke_twice(tmp_path_factory):
    base = tmp_path_factory.mktemp("cli")
    outs = []
    for name in ("a", "b"):
        res = _rlq("synth", "--preset", "smoke", "--out", str(base / name), "--seed", "0", "--quiet")
        assert res.returncode == 0, res.stderr
        outs.append((base / name, json.loads(res.stdout)))
    return outs


def test_synth_same_seed_gives_identical_files(smoke_twice):
    (a, _), (b, _) = smoke_twice
    da, db = _digest(a), _digest(b)
    assert len(da) > 100
    assert da == db


def test_stats_reads_synthcc_as_ltcc(smoke_twice):
    (root, summary), _ = smoke_twice
    as_ltcc = _rlq("stats", "--dataset", "ltcc", "--root", str(root))
    as_synth = _rlq("stats", "--dataset", "synthcc", "--root", str(root))
    assert as_ltcc.returncode == 0, as_ltcc.stderr
    assert as_synth.returncode == 0, as_synth.stderr
    ltcc, synth = json.loads(as_ltcc.stdout), json.loads(as_synth.stdout)
    for key in ("train", "test", "splits"):
        assert ltcc[key] == synth[key]
    manifest = json.loads((root / "synthcc.json").read_text())
    assert ltcc["train"]["images"] == len(list((root / "train").glob("*.png")))
    assert ltcc["train"]["ids"] == len({p.name[:3] for p in (root / "train").glob("*.png")})
    assert manifest["preset"] == "smoke" and manifest["seed"] == 0


def test_synth_if_absent_keeps_existing_and_refuses_other_seed(smoke_twice, capsys):
    (root, _), _ = smoke_twice
    assert main(["synth", "--preset", "smoke", "--out", str(root), "--seed", "0", "--if-absent"]) == 0
    assert json.loads(capsys.readouterr().out)["status"] == "present"
    with pytest.raises(SystemExit, match="seed=1"):
        main(["synth", "--preset", "smoke", "--out", str(root), "--seed", "1", "--if-absent"])


def test_synth_set_adds_a_pretraining_group_and_leaves_the_rest_identical(smoke_twice, tmp_path, capsys):
    """`rlq synth --set pretrain_ids=3` writes the pretrain/ group; every other file equals the plain preset's; the
    folder then counts as present only for the same --set, and a bad field is a one-line error."""
    (plain, _), _ = smoke_twice
    out = tmp_path / "with-pretrain"
    args = ["synth", "--preset", "smoke", "--out", str(out), "--seed", "0", "--quiet", "--set", "pretrain_ids=3",
            "--set", "pretrain_test_ids=2"]
    assert main(args) == 0
    digest = _digest(out)
    group = {k for k in digest if k.startswith("pretrain/")}
    assert group and {p.split("/")[1] for p in group} >= {"train", "query", "gallery"}
    a, b = _digest(plain), {k: v for k, v in digest.items() if k not in group}
    assert {k for k in a if a[k] != b.get(k)} <= {"synthcc.json", "annotations/metadata.csv"}  # + the group's rows
    capsys.readouterr()
    assert main(args + ["--if-absent"]) == 0 and json.loads(capsys.readouterr().out)["status"] == "present"
    with pytest.raises(SystemExit, match="another configuration"):
        main(["synth", "--preset", "smoke", "--out", str(out), "--seed", "0", "--if-absent"])
    with pytest.raises(SystemExit, match="no_such_field"):
        main(["synth", "--preset", "smoke", "--out", str(tmp_path / "x"), "--set", "no_such_field=1"])


def test_stats_bad_root_is_a_clear_error(tmp_path):
    res = _rlq("stats", "--dataset", "ltcc", "--root", str(tmp_path / "missing"))
    assert res.returncode == 2
    assert "missing" in res.stderr and "does not exist" in res.stderr
    assert "Traceback" not in res.stderr


def test_describe_prints_table8_parameter_counts(capsys):
    for variant, millions in (("bm", 45.9), ("rlq", 69.3)):
        assert main(["describe", "--variant", variant, "--backbone", "resnet50", "--num-ids", "77",
                     "--num-clothes", "256"]) == 0
        out = json.loads(capsys.readouterr().out)
        assert round(out["params"] / 1e6, 1) == millions
        assert out["params_inference"] <= out["params"]


def test_poses_cluster_writes_reference_csv(smoke_twice, tmp_path):
    (root, _), _ = smoke_twice
    out = tmp_path / "labels.csv"
    w, h = json.loads((root / "synthcc.json").read_text())["image_size"][::-1]
    res = _rlq("poses", "cluster", "--keypoints", str(root / "annotations" / "keypoints_train.json"),
               "--k", "5", "--out", str(out), "--image-size", str(w), str(h))
    assert res.returncode == 0, res.stderr
    lines = out.read_text().splitlines()
    assert lines[0] == "Category,Image,R_LA_5"
    assert len(lines) - 1 == len(list((root / "train").glob("*.png")))
    assert {float(line.split(",")[2]) for line in lines[1:]} <= {float(c) for c in range(0, 6)}


def test_score_prints_metrics_json(tmp_path):
    import numpy as np

    # two identities, query 0 matches gallery 0 (different camera), query 1 matches gallery 2 second-best
    g = np.array([[1.0, 0.0], [0.0, 1.0], [0.6, 0.8]], dtype=np.float32)
    q = np.array([[1.0, 0.0], [0.0, 1.0]], dtype=np.float32)
    np.savez(tmp_path / "q.npz", feats=q, pids=np.array([0, 1]), camids=np.array([0, 0]), clothes_ids=np.array([0, 1]))
    np.savez(tmp_path / "g.npz", feats=g, pids=np.array([0, 2, 1]), camids=np.array([1, 1, 1]),
             clothes_ids=np.array([0, 2, 3]))
    res = _rlq("score", "--query", str(tmp_path / "q.npz"), "--gallery", str(tmp_path / "g.npz"), "--protocol", "general")
    assert res.returncode == 0, res.stderr
    out = json.loads(res.stdout)
    assert out["num_valid_queries"] == 2
    assert out["top1"] == 0.5 and out["top5"] == 1.0
    assert abs(out["mAP"] - (1.0 + 0.5) / 2) < 1e-9
    bad = _rlq("score", "--query", str(tmp_path / "q.npz"), "--gallery", str(tmp_path / "g.npz"), "--protocol", "xx")
    assert bad.returncode == 2 and "unknown protocol" in bad.stderr


def test_evaluate_names_a_truncated_checkpoint_in_one_line(tmp_path):
    from rlqlib.engine.config import to_dict
    from rlqlib.engine.presets import make

    run = tmp_path / "bm-000000000000"
    run.mkdir()
    (run / "config.json").write_text(json.dumps({"config": to_dict(make("smoke", "bm")), "hash": "0" * 64}))
    (run / "metrics.json").write_text("{}")
    (run / "checkpoint.pt").write_bytes(b"PK\x03\x04 truncated")
    res = _rlq("evaluate", "--run", str(run))
    assert res.returncode == 2, res.stderr
    lines = res.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in res.stderr
    assert lines[0].startswith("rlq evaluate: error: checkpoint") and "checkpoint.pt cannot be read" in lines[0]


def test_score_does_not_import_torch(tmp_path):
    # `rlq score` runs on numpy alone (rlqlib.engine.ranking): importing torch would cost more than scoring
    import numpy as np

    f = np.eye(3, dtype=np.float32)
    for name in ("q", "g"):
        np.savez(tmp_path / f"{name}.npz", feats=f, pids=np.arange(3), camids=np.array([0, 1, 2]) + (name == "g"))
    code = ("import sys, json; from rlqlib.cli import main; "
            f"rc = main(['score', '--query', {str(tmp_path / 'q.npz')!r}, '--gallery', {str(tmp_path / 'g.npz')!r}]); "
            "print(json.dumps({'rc': rc, 'torch': 'torch' in sys.modules}))")
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert res.returncode == 0, res.stderr
    status = json.loads(res.stdout.strip().splitlines()[-1])
    assert status == {"rc": 0, "torch": False}
    assert json.loads("".join(res.stdout.strip().splitlines()[:-1]))["top1"] == 1.0
