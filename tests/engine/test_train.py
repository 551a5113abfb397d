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
from rlqlib.engine import hashing as H
from rlqlib.engine import presets as Pr
from rlqlib.engine import teacher as Tc
from rlqlib.engine import train as T
from rlqlib.data import training as TD
from rlqlib.methods.rlq.losses import TAD_KEYS
from rlqlib.methods.base import NonFiniteLossError


@pytest.fixture(scope="module")
def teacher_dir(smoke_config, tmp_path_factory) -> Path:
    cfg = Tc.resolve(Tc.teacher_config(smoke_config("rlq")))
    out = tmp_path_factory.mktemp("teacher")
    T.fit(cfg, out)
    return out


def _resolved(smoke_config, variant: str, teacher_dir: Path, **kw) -> C.ExperimentConfig:
    cfg = smoke_config(variant, **kw)
    return Tc.resolve(cfg, H.run_hash(Tc.resolve(Tc.teacher_config(cfg))))


def _snapshot(module: torch.nn.Module) -> dict[str, torch.Tensor]:
    return {k: v.detach().clone() for k, v in module.state_dict().items()}


def _same(a: dict, b: dict) -> bool:
    return a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


def test_tad_and_cap_epoch(smoke_config, teacher_dir):
    tr = T.Trainer(_resolved(smoke_config, "rlq", teacher_dir), teacher_dir=teacher_dir)
    teacher_before = _snapshot(tr.method.teacher)
    student_before = _snapshot(tr.model)
    tad = tr.method.tad_epoch(0)
    assert set(tad) == set(TAD_KEYS) | {"steps", "seconds"} and tad["steps"] > 0
    assert all(math.isfinite(v) for v in tad.values())
    assert _same(teacher_before, _snapshot(tr.method.teacher))  # frozen: weights and BN statistics unchanged
    assert not tr.method.teacher.training and all(p.grad is None and not p.requires_grad
                                                  for p in tr.method.teacher.parameters())
    assert not _same(student_before, _snapshot(tr.model))  # the student did learn
    # no gradient reached the pose branch / gender head in the TAD pass (mode "tad" skips them)
    assert all(p.grad is None for p in tr.model.pose.parameters())
    clothes_before = _snapshot(tr.method.clothes_classifier)
    cap = tr.method.cap_epoch(0)
    assert {"id_cal", "id_bot", "triplet", "kl_branches", "pose", "gender", "cos", "clothes"} <= set(cap)
    assert "adv" not in cap and cap["cc_steps"] == 0  # before the clothes-classifier start epoch
    assert all(math.isfinite(v) for v in cap.values())
    assert _same(clothes_before, _snapshot(tr.method.clothes_classifier))
    start = tr.cfg.schedule.cc_start_epoch()
    cap = tr.method.cap_epoch(start)
    assert "adv" in cap and cap["cc_steps"] == cap["steps"] > 0
    assert not _same(clothes_before, _snapshot(tr.method.clothes_classifier))


def test_history_and_files(smoke_config, teacher_dir, tmp_path):
    cfg = _resolved(smoke_config, "rlq", teacher_dir)
    metrics = T.fit(cfg, tmp_path, teacher_dir=teacher_dir)
    lines = (tmp_path / "metrics.jsonl").read_text().splitlines()
    assert len(lines) == cfg.schedule.epochs
    first, last = (__import__("json").loads(x) for x in (lines[0], lines[-1]))
    assert {"epoch", "lr", "tad", "cap", "seconds"} <= set(first) and "eval" not in first
    assert "adv" not in first["cap"] and "adv" in last["cap"]
    assert {"general", "cc", "sc"} == set(last["eval"]) == set(metrics["eval"])
    assert 0.0 <= metrics["eval"]["cc"]["top1"] <= 1.0
    assert (tmp_path / "metrics.json").is_file() and (tmp_path / T.CHECKPOINT).is_file()


def test_nonfinite_term_stops_with_a_clear_error(smoke_config):
    tr = T.Trainer(Tc.resolve(smoke_config("bm")))
    with torch.no_grad():
        tr.model.bot.bn.weight.fill_(float("nan"))
    with pytest.raises(NonFiniteLossError, match=r"CAP loss term\(s\) \[.*'id_bot'.*epoch 0, step 0.*indices"):
        tr.method.cap_epoch(0)


def test_resume_gives_the_same_run(smoke_config, teacher_dir, tmp_path):
    cfg = _resolved(smoke_config, "tad", teacher_dir, epochs=3)
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
    assert _same(_snapshot(full.method.clothes_classifier), _snapshot(resumed.method.clothes_classifier))


def test_corrupt_or_foreign_checkpoint(smoke_config, tmp_path):
    cfg = Tc.resolve(smoke_config("cal", epochs=1))
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
    other = Tc.resolve(smoke_config("cal", epochs=1, seed=5))
    with pytest.raises(T.CheckpointError, match="belongs to config"):
        T.fit(other, tmp_path / "ok")


def test_cloth_aug_on_real_dataset_needs_masks(smoke_config):
    ds = TD.load_train_dataset(Tc.resolve(smoke_config("bm")).data)
    cfg = smoke_config("bm", dataset="ltcc")
    with pytest.raises(ValueError, match="data.mask_root"):
        TD.clothes_masks(cfg.data, ds, 1)


def _ddp_worker(rank: int, world: int, init_file: str, cfg_dict: dict, out: str) -> None:
    torch.distributed.init_process_group("gloo", init_method=f"file://{init_file}", rank=rank, world_size=world)
    try:
        cfg = C.from_dict(cfg_dict)
        tr = T.Trainer(cfg, Path(out) / "run")
        metrics = tr.fit(resume=False)
        torch.save({"state": _snapshot(tr.model), "clothes": _snapshot(tr.method.clothes_classifier),
                    "steps": tr.history[-1]["cap"]["steps"], "eval": metrics["eval"]},
                   Path(out) / f"rank{rank}.pt")
    finally:
        torch.distributed.destroy_process_group()


def test_gloo_ddp_ranks_stay_in_sync(smoke_config, tmp_path):
    # one epoch from the clothes start on (cc_start=0), so the hand-averaged clothes head is exercised too
    cfg = Tc.resolve(smoke_config("bm", epochs=1, **{"schedule.cc_start": 0.0, "data.p": 2}))
    mp.spawn(_ddp_worker, args=(2, str(tmp_path / "init"), C.to_dict(cfg), str(tmp_path)), nprocs=2, join=True)
    r0, r1 = (torch.load(tmp_path / f"rank{r}.pt", weights_only=True) for r in (0, 1))
    assert r0["steps"] == r1["steps"] > 0
    params0 = {k: v for k, v in r0["state"].items() if "running" not in k and "num_batches" not in k}
    params1 = {k: v for k, v in r1["state"].items() if "running" not in k and "num_batches" not in k}
    assert _same(params0, params1)
    assert _same(r0["clothes"], r1["clothes"])
    assert r0["eval"] == r1["eval"]
    assert (tmp_path / "run" / "metrics.json").is_file()


def test_synthcc_pose_table_is_fitted_once_per_file_and_k(smoke_config, synthcc_smoke, monkeypatch):
    from rlqlib.data.pose import clusters as P

    calls = []
    real = P.cluster_poses
    monkeypatch.setattr(P, "cluster_poses", lambda kp, cfg: calls.append(cfg.k) or real(kp, cfg))
    monkeypatch.setattr(TD, "_POSE_TABLES", {})
    first = TD.synthcc_pose_table(synthcc_smoke, 5)
    first["x"] = 99  # callers get a copy: the cache cannot be edited through it
    again = TD.synthcc_pose_table(synthcc_smoke, 5)
    assert calls == [5] and "x" not in again and again == {k: v for k, v in first.items() if k != "x"}
    other = TD.synthcc_pose_table(synthcc_smoke, 6)
    assert calls == [5, 6] and max(other.values()) <= 6
    cfg = smoke_config("rlq")
    ds = TD.load_train_dataset(cfg.data)
    labels = TD.pose_per_sample(cfg.data, ds)  # (N,) from the cached k=5 table, no new fit
    assert calls == [5, 6] and labels.tolist() == [again[Path(s.path).stem] for s in ds.train]


def test_external_train_set_reads_its_own_gender_and_keypoints(smoke_config, synthcc_smoke):
    import pandas as pd

    cfg = smoke_config("cap", **{"data.train_set": "external", "data.cloth_aug": False})
    ds = TD.load_train_dataset(cfg.data)
    table = pd.read_csv(Path(synthcc_smoke) / "annotations" / "External_Gender.csv")
    by_id = dict(zip(table["ID"].astype(int), table["Gender"].astype(int)))
    expected = [by_id[int(ds.train_pid_names[s.pid])] for s in ds.train]
    assert TD.gender_per_sample(cfg.data, ds).tolist() == expected  # not SynthCC_Gender.csv's rows for ids 1..N
    poses = TD.pose_per_sample(cfg.data, ds)
    assert poses.shape == (len(ds.train),) and 0 <= poses.min() and poses.max() <= cfg.data.pose_k
    ntu = smoke_config("cap", **{"data.train_set": "external_ntu", "data.cloth_aug": False})
    with pytest.raises(ValueError, match="no gender table"):
        TD.gender_per_sample(ntu.data, ds)


def test_outfit_clothes_labels_are_shared_between_identities(smoke_config, synthcc_smoke):
    from rlqlib.data import datasets as Dt

    cfg = smoke_config("cal", **{"data.clothes_labels": "outfit"})
    ds = TD.load_train_dataset(cfg.data)
    clothes, table = TD.clothes_labels(cfg.data, ds)
    meta = Dt.synthcc_metadata(synthcc_smoke).query("split == 'train'").set_index("image")["outfit"]
    outfits = np.array([int(meta[Path(s.path).name]) for s in ds.train])
    # same outfit <=> same class, and the table marks exactly the (identity, outfit) pairs seen
    assert ((outfits[:, None] == outfits[None]) == (clothes[:, None] == clothes[None])).all()
    pids = np.array([s.pid for s in ds.train])
    expected = np.zeros_like(table)
    expected[pids, clothes] = True
    assert (table == expected).all() and table.sum(0).max() > 1  # some outfit is worn by several identities
    dataset_clothes, dataset_table = TD.clothes_labels(smoke_config("cal").data, ds)
    assert dataset_table is ds.pid2clothes and dataset_clothes.tolist() == [s.clothes_id for s in ds.train]
    assert H.config_hash(smoke_config("cal")) == H.config_hash(
        smoke_config("cal", **{"data.clothes_labels": "dataset"}))
    with pytest.raises(ValueError, match="clothes_labels"):
        Pr.make("smoke", "cal", dataset="ltcc", **{"data.clothes_labels": "outfit"})


def test_lq_aug_extra_view_batches_and_tad_lq_source_are_wired(smoke_config, teacher_dir):
    # bm+lq-aug (Table 9): the authors' extra LQ view of every sample is in the CAP batches (3B with the recoloured
    # replica) and the step degrades nothing more; replace mode is the step's probability instead (difference N2)
    tr = T.Trainer(Tc.resolve(smoke_config("bm+lq-aug")))
    batch = next(iter(tr.data.batches))
    p, k = tr.cfg.data.p, tr.cfg.data.k
    assert batch["images"].shape[0] == 3 * p * k and int(batch["lq_view"].sum()) == p * k
    assert tr.method.ctx.lq_aug == 0.0 and tr.data.batches.lq_view.mix == "ltcc"
    assert tr.data.batches.lq_view.at == "input"  # SynthCC-smoke is stored at the smoke input size
    old = T.Trainer(Tc.resolve(smoke_config("bm+lq-aug", **{"data.lq_aug_mode": "replace", "data.lq_aug": 0.5,
                                                             "data.lq_aug_mix": "target"})))
    assert next(iter(old.data.batches))["images"].shape[0] == 2 * p * k
    assert old.method.ctx.lq_aug == 0.5 and old.method.ctx.lq_aug_mix == "synthcc"
    # TAD: LQ twins from the HQ set's source, with the target's mix
    rlq = T.Trainer(_resolved(smoke_config, "tad", teacher_dir), teacher_dir=teacher_dir)
    assert rlq.data.hq_lq.mix == rlq.data.mix == "synthcc" and rlq.data.hq_lq.inputs.shape[0] == len(rlq.data.hq_images)
    # the paper preset's SynthCC (large, stored at 256×128) would be degraded raw: effective config says so
    assert C.effective(Pr.make("paper", "rlq")).data.degrade_at == "raw"
    assert C.effective(Pr.make("smoke", "rlq")).data.degrade_at == "input"


@pytest.mark.parametrize("mult", [1.0, 10.0])
def test_heads_lr_mult_sets_the_external_classifiers_rate(smoke_config, mult):
    cfg = smoke_config("bm", **{"schedule.heads_lr_mult": mult, "runtime.amp": "none"})
    method = T.Trainer(cfg, None).method
    lr, heads = cfg.schedule.lr, method.heads
    groups = method.opt.param_groups
    if mult == 1:  # the authors' single group over model + CAL-id classifier; hashed as before the field existed
        assert len(groups) == 1 and groups[0]["lr"] == lr
        assert "heads_lr_mult" not in H.hashed_dict(cfg)["schedule"]
    else:
        assert [g["lr"] for g in groups] == [lr, lr * mult]
        assert {id(p) for p in groups[0]["params"]} == {id(p) for p in method.model.parameters()}
        assert {id(p) for p in groups[1]["params"]} == {id(p) for p in heads.cal_classifier.parameters()}
        assert H.hashed_dict(cfg)["schedule"]["heads_lr_mult"] == mult
    assert method.opt_cc.param_groups[0]["lr"] == lr * mult
    # Adam's first step moves each weight by lr * g / (|g| + eps): at most the group's rate, and about it where g != 0
    before = {n: p.detach().clone() for n, p in method.student.named_parameters()}
    x = torch.rand(4, 3, *cfg.data.image_size)
    out = method.student(x)
    (out["logits_cal"].logsumexp(1).sum() + sum(v.float().square().mean() for v in out.values()
                                                if v.dtype.is_floating_point)).backward()
    method.opt.step()
    moved = {n: (p.detach() - before[n]).abs().max().item() for n, p in method.student.named_parameters()}
    trunk = max(v for n, v in moved.items() if not n.startswith("cal_classifier."))
    head = max(v for n, v in moved.items() if n.startswith("cal_classifier."))
    assert trunk <= lr * 1.0001 and head == pytest.approx(lr * mult, rel=1e-3)
    method.sched.step()  # at epoch 1, every milestone reached decays both rates alike
    decay = cfg.schedule.gamma ** sum(m <= 1 for m in cfg.schedule.milestone_epochs())
    assert decay < 1 and [g["lr"] for g in groups] == pytest.approx([lr * decay * (mult if i else 1)
                                                                     for i in range(len(groups))])


def test_heads_lr_mult_is_checked(smoke_config):
    with pytest.raises(ValueError, match=r"schedule.heads_lr_mult=0.0.*positive"):
        smoke_config("cal", **{"schedule.heads_lr_mult": 0.0})
    with pytest.raises(ValueError, match="FIRe² has not; set schedule.heads_lr_mult=1"):
        T.Trainer(smoke_config("fire2", **{"schedule.heads_lr_mult": 10.0}), None)
