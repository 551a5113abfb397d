"""Training engine on SynthCC-smoke: TAD and CAP passes, the clothes-classifier switch, NaN stop, resume
equivalence, corrupt checkpoints and a 2-process gloo DDP run."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.multiprocessing as mp

from rlqlib.engine import config as C
from rlqlib.engine import train as T
from rlqlib.data import training as TD
from rlqlib.methods.rlq.losses import TAD_KEYS
from rlqlib.methods.rlq.steps import NonFiniteLossError
from rlqlib.synthcc.generate import PRESETS, generate


@pytest.fixture(scope="module")
def root(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("synthcc") / "smoke"
    generate(PRESETS["smoke"], out, seed=0, workers=1, progress=False)
    return out


def smoke(root: Path, variant: str, **kw) -> C.ExperimentConfig:
    return C.make("smoke", variant, root=str(root), **kw)


@pytest.fixture(scope="module")
def teacher_dir(root, tmp_path_factory) -> Path:
    cfg = C.resolve(C.teacher_config(smoke(root, "rlq")))
    out = tmp_path_factory.mktemp("teacher")
    T.fit(cfg, out)
    return out


def _resolved(root: Path, variant: str, teacher_dir: Path, **kw) -> C.ExperimentConfig:
    cfg = smoke(root, variant, **kw)
    return C.resolve(cfg, C.run_hash(C.resolve(C.teacher_config(cfg))))


def _snapshot(module: torch.nn.Module) -> dict[str, torch.Tensor]:
    return {k: v.detach().clone() for k, v in module.state_dict().items()}


def _same(a: dict, b: dict) -> bool:
    return a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


def test_tad_and_cap_epoch(root, teacher_dir):
    tr = T.Trainer(_resolved(root, "rlq", teacher_dir), teacher_dir=teacher_dir)
    teacher_before = _snapshot(tr.teacher)
    student_before = _snapshot(tr.model)
    tad = tr.tad_epoch(0)
    assert set(tad) == set(TAD_KEYS) | {"steps", "seconds"} and tad["steps"] > 0
    assert all(math.isfinite(v) for v in tad.values())
    assert _same(teacher_before, _snapshot(tr.teacher))  # frozen: weights and BN statistics unchanged
    assert not tr.teacher.training and all(p.grad is None and not p.requires_grad for p in tr.teacher.parameters())
    assert not _same(student_before, _snapshot(tr.model))  # the student did learn
    # no gradient reached the pose branch / gender head in the TAD pass (mode "tad" skips them)
    assert all(p.grad is None for p in tr.model.pose.parameters())
    clothes_before = _snapshot(tr.clothes_classifier)
    cap = tr.cap_epoch(0)
    assert {"id_cal", "id_bot", "triplet", "kl_branches", "pose", "gender", "cos", "clothes"} <= set(cap)
    assert "adv" not in cap and cap["cc_steps"] == 0  # before the clothes-classifier start epoch
    assert all(math.isfinite(v) for v in cap.values())
    assert _same(clothes_before, _snapshot(tr.clothes_classifier))
    start = tr.cfg.schedule.cc_start_epoch()
    cap = tr.cap_epoch(start)
    assert "adv" in cap and cap["cc_steps"] == cap["steps"] > 0
    assert not _same(clothes_before, _snapshot(tr.clothes_classifier))


def test_history_and_files(root, teacher_dir, tmp_path):
    cfg = _resolved(root, "rlq", teacher_dir)
    metrics = T.fit(cfg, tmp_path, teacher_dir=teacher_dir)
    lines = (tmp_path / "metrics.jsonl").read_text().splitlines()
    assert len(lines) == cfg.schedule.epochs
    first, last = (__import__("json").loads(x) for x in (lines[0], lines[-1]))
    assert {"epoch", "lr", "tad", "cap", "seconds"} <= set(first) and "eval" not in first
    assert "adv" not in first["cap"] and "adv" in last["cap"]
    assert {"general", "cc", "sc"} == set(last["eval"]) == set(metrics["eval"])
    assert 0.0 <= metrics["eval"]["cc"]["top1"] <= 1.0
    assert (tmp_path / "metrics.json").is_file() and (tmp_path / T.CHECKPOINT).is_file()


def test_nonfinite_term_stops_with_a_clear_error(root):
    tr = T.Trainer(C.resolve(smoke(root, "bm")))
    with torch.no_grad():
        tr.model.bot.bn.weight.fill_(float("nan"))
    with pytest.raises(NonFiniteLossError, match=r"CAP loss term\(s\) \[.*'id_bot'.*epoch 0, step 0.*indices"):
        tr.cap_epoch(0)


def test_resume_gives_the_same_run(root, teacher_dir, tmp_path):
    cfg = _resolved(root, "tad", teacher_dir, epochs=3)
    full = T.Trainer(cfg, tmp_path / "full", teacher_dir)
    m_full = full.fit()
    with pytest.raises(T.TrainingInterrupted):
        T.fit(cfg, tmp_path / "cut", teacher_dir=teacher_dir, stop_after_epoch=1)
    assert not (tmp_path / "cut" / "metrics.json").exists()
    resumed = T.Trainer(cfg, tmp_path / "cut", teacher_dir)
    m_resumed = resumed.fit(resume=True)
    untimed = [{k: v for k, v in h["cap"].items() if k != "seconds"} for h in (resumed.history[0], full.history[0])]
    assert untimed[0] == untimed[1]  # epoch 0 came from the checkpoint's history
    assert m_resumed["eval"] == m_full["eval"] and m_resumed["train"] == m_full["train"]
    assert _same(_snapshot(full.model), _snapshot(resumed.model))
    assert _same(_snapshot(full.clothes_classifier), _snapshot(resumed.clothes_classifier))


def test_corrupt_or_foreign_checkpoint(root, tmp_path):
    cfg = C.resolve(smoke(root, "cal", epochs=1))
    T.fit(cfg, tmp_path / "ok")
    good = (tmp_path / "ok" / T.CHECKPOINT).read_bytes()
    bad = tmp_path / "bad"
    bad.mkdir()
    (bad / T.CHECKPOINT).write_bytes(good[: len(good) // 2])
    with pytest.raises(T.CheckpointError, match=r"bad/checkpoint.pt cannot be read.*Delete it"):
        T.fit(cfg, bad)
    foreign = tmp_path / "foreign.pt"
    torch.save({"state_dict": {}}, foreign)
    with pytest.raises(T.CheckpointError, match="not an rlqlib training checkpoint"):
        T.load_checkpoint(foreign)
    other = C.resolve(smoke(root, "cal", epochs=1, seed=5))
    with pytest.raises(T.CheckpointError, match="belongs to config"):
        T.fit(other, tmp_path / "ok")


def test_cloth_aug_on_real_dataset_needs_masks(root):
    ds = TD.load_train_dataset(C.resolve(smoke(root, "bm")))
    cfg = smoke(root, "bm", dataset="ltcc")
    with pytest.raises(ValueError, match="data.mask_root"):
        TD.clothes_masks(cfg, ds, 1)


def _ddp_worker(rank: int, world: int, init_file: str, cfg_dict: dict, out: str) -> None:
    torch.distributed.init_process_group("gloo", init_method=f"file://{init_file}", rank=rank, world_size=world)
    try:
        cfg = C.from_dict(cfg_dict)
        tr = T.Trainer(cfg, Path(out) / "run")
        metrics = tr.fit(resume=False)
        torch.save({"state": _snapshot(tr.model), "clothes": _snapshot(tr.clothes_classifier),
                    "steps": tr.history[-1]["cap"]["steps"], "eval": metrics["eval"]},
                   Path(out) / f"rank{rank}.pt")
    finally:
        torch.distributed.destroy_process_group()


def test_gloo_ddp_ranks_stay_in_sync(root, tmp_path):
    # one epoch from the clothes start on (cc_start=0), so the hand-averaged clothes head is exercised too
    cfg = C.resolve(smoke(root, "bm", epochs=1, **{"schedule.cc_start": 0.0, "data.p": 2}))
    mp.spawn(_ddp_worker, args=(2, str(tmp_path / "init"), C.to_dict(cfg), str(tmp_path)), nprocs=2, join=True)
    r0, r1 = (torch.load(tmp_path / f"rank{r}.pt", weights_only=True) for r in (0, 1))
    assert r0["steps"] == r1["steps"] > 0
    params0 = {k: v for k, v in r0["state"].items() if "running" not in k and "num_batches" not in k}
    params1 = {k: v for k, v in r1["state"].items() if "running" not in k and "num_batches" not in k}
    assert _same(params0, params1)
    assert _same(r0["clothes"], r1["clothes"])
    assert r0["eval"] == r1["eval"]
    assert (tmp_path / "run" / "metrics.json").is_file()


def test_synthcc_pose_table_is_fitted_once_per_file_and_k(root, monkeypatch):
    from rlqlib.data import pose as P

    calls = []
    real = P.cluster_poses
    monkeypatch.setattr(P, "cluster_poses", lambda kp, cfg: calls.append(cfg.k) or real(kp, cfg))
    monkeypatch.setattr(TD, "_POSE_TABLES", {})
    first = TD.synthcc_pose_table(root, 5)
    first["x"] = 99  # callers get a copy: the cache cannot be edited through it
    again = TD.synthcc_pose_table(root, 5)
    assert calls == [5] and "x" not in again and again == {k: v for k, v in first.items() if k != "x"}
    other = TD.synthcc_pose_table(root, 6)
    assert calls == [5, 6] and max(other.values()) <= 6
    cfg = smoke(root, "rlq")
    ds = TD.load_train_dataset(cfg)
    labels = TD.pose_per_sample(cfg, ds)  # (N,) from the cached k=5 table, no new fit
    assert calls == [5, 6] and labels.tolist() == [again[Path(s.path).stem] for s in ds.train]


def test_external_train_set_reads_its_own_gender_and_keypoints(root):
    import pandas as pd

    cfg = smoke(root, "cap", **{"data.train_set": "external", "data.cloth_aug": False})
    ds = TD.load_train_dataset(cfg)
    table = pd.read_csv(Path(root) / "annotations" / "External_Gender.csv")
    by_id = dict(zip(table["ID"].astype(int), table["Gender"].astype(int)))
    expected = [by_id[int(ds.train_pid_names[s.pid])] for s in ds.train]
    assert TD.gender_per_sample(cfg, ds).tolist() == expected  # not SynthCC_Gender.csv's rows for ids 1..N
    poses = TD.pose_per_sample(cfg, ds)
    assert poses.shape == (len(ds.train),) and 0 <= poses.min() and poses.max() <= cfg.data.pose_k
    with pytest.raises(ValueError, match="no gender table"):
        TD.gender_per_sample(smoke(root, "cap", **{"data.train_set": "external_ntu", "data.cloth_aug": False}), ds)


def test_outfit_clothes_labels_are_shared_between_identities(root):
    from rlqlib.data import datasets as Dt

    cfg = smoke(root, "cal", **{"data.clothes_labels": "outfit"})
    ds = TD.load_train_dataset(cfg)
    clothes, table = TD.clothes_labels(cfg, ds)
    meta = Dt.synthcc_metadata(root).query("split == 'train'").set_index("image")["outfit"]
    outfits = np.array([int(meta[Path(s.path).name]) for s in ds.train])
    # same outfit <=> same class, and the table marks exactly the (identity, outfit) pairs seen
    assert ((outfits[:, None] == outfits[None]) == (clothes[:, None] == clothes[None])).all()
    pids = np.array([s.pid for s in ds.train])
    expected = np.zeros_like(table)
    expected[pids, clothes] = True
    assert (table == expected).all() and table.sum(0).max() > 1  # some outfit is worn by several identities
    dataset_clothes, dataset_table = TD.clothes_labels(smoke(root, "cal"), ds)
    assert dataset_table is ds.pid2clothes and dataset_clothes.tolist() == [s.clothes_id for s in ds.train]
    assert C.config_hash(smoke(root, "cal")) == C.config_hash(smoke(root, "cal", **{"data.clothes_labels": "dataset"}))
    with pytest.raises(ValueError, match="clothes_labels"):
        C.make("smoke", "cal", dataset="ltcc", **{"data.clothes_labels": "outfit"})
