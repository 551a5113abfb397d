"""Experiment configs: presets × variants, fraction schedules, dict round trip, stable and sensitive hash."""

from __future__ import annotations

import dataclasses

import pytest

from rlqlib.engine import config as C
from rlqlib.engine import hashing as H
from rlqlib.engine import presets as Pr
from rlqlib.engine import teacher as Tc
from rlqlib.methods.rlq.losses import CAP_KEYS


@pytest.mark.parametrize("preset", sorted(Pr.PRESETS))
def test_every_variant_builds_under_every_preset(preset):
    for variant in Pr.VARIANTS:
        cfg = Pr.make(preset, variant)
        assert cfg.variant == variant and cfg.preset == preset
        assert set(cfg.terms) <= set(CAP_KEYS)
        assert set(cfg.weights) == set(C.ALL_WEIGHT_KEYS)


def test_variant_deltas_match_the_paper_tables():
    assert Pr.make("cpu", "cal").model.variant == "cal" and not Pr.make("cpu", "cal").data.cloth_aug
    assert Pr.make("cpu", "cal+cloth-aug").data.cloth_aug
    assert "triplet" in Pr.make("cpu", "cal+triplet").terms
    bm = Pr.make("cpu", "bm")
    assert bm.data.cloth_aug and {"triplet", "kl_branches", "adv", "id_bot"} <= set(bm.terms)
    assert not bm.tad.enabled
    cap = Pr.make("cpu", "cap")
    assert {"pose", "gender", "cos"} <= set(cap.terms) and not cap.tad.enabled
    rlq = Pr.make("cpu", "rlq")
    assert rlq.tad.enabled and rlq.tad.teacher and set(rlq.terms) == set(cap.terms)
    assert Pr.make("cpu", "tad").tad.enabled and Pr.make("cpu", "tad").model.variant == "bm"
    ss = Pr.make("cpu", "ss-mse")
    assert ss.tad.enabled and not ss.tad.teacher and ss.tad.self_mse
    assert Pr.make("cpu", "ss-mse+tad").tad.teacher and Pr.make("cpu", "ss-mse+tad").tad.self_mse
    assert Pr.make("cpu", "target-ss-mse").tad.source == "target"
    assert Pr.make("cpu", "bm+lq-aug").data.lq_aug > 0
    assert Pr.make("cpu", "id-only").terms == ("id_cal",)
    teacher = Pr.make("cpu", "teacher")
    assert teacher.data.train_set == "external" and not teacher.data.cloth_aug and not teacher.tad.enabled


def test_schedule_fractions_scale_with_run_length():
    s = Pr.make("paper", "bm").schedule
    assert s.epochs == 60 and s.milestone_epochs() == [20, 40] and s.cc_start_epoch() == 25
    short = Pr.make("paper", "bm", epochs=12).schedule
    assert short.milestone_epochs() == [4, 8] and short.cc_start_epoch() == 5  # 25/60*12 = 5
    assert Pr.make("smoke", "bm").schedule.cc_start_epoch() == 1  # 2 epochs: adv from the second


def test_cpu_preset_fine_tunes_the_shared_trunk_briefly_and_pretrains_with_the_scratch_schedule():
    cfg = Pr.make("cpu", "cal")
    assert cfg.model.init == "synthcc" and cfg.losses.adv_epsilon == Pr.CPU_ADV_EPSILON == 1.0
    s = cfg.schedule
    assert s.epochs == Pr.CPU_EPOCHS and s.milestones == Pr.CPU_FT_MILESTONES and s.cc_start == Pr.CPU_FT_CC_START
    assert s.heads_lr_mult == Pr.CPU_HEADS_LR_MULT == 20  # fast external heads in every RLQ/CAL-family target run
    assert s.ema_decay == Pr.CPU_EMA_DECAY == 0.98  # every target run ends with its weight average
    fire2, teacher = Pr.make("cpu", "fire2").schedule, Pr.make("cpu", "teacher").schedule
    assert fire2.heads_lr_mult == 1 and fire2.ema_decay == 0.98
    assert teacher.heads_lr_mult == Pr.CPU_TEACHER_HEADS_LR_MULT == 10 and teacher.ema_decay == 0  # as before
    assert teacher.epochs == s.epochs and teacher.milestones == s.milestones and teacher.cc_start == s.cc_start
    pre = Pr.make("cpu", "pretrain")  # 30 epochs from scratch, one rate for every parameter, no average
    assert pre.model.init == "scratch" and pre.schedule.epochs == Pr.CPU_PRETRAIN_EPOCHS == 30
    assert pre.schedule.heads_lr_mult == 1 and pre.schedule.ema_decay == 0
    assert pre.schedule.milestones == Pr.CPU_MILESTONES and pre.schedule.cc_start == Pr.CPU_CC_START
    long = Pr.make("cpu-long", "cal")  # the same trunk start, 15 epochs with the scratch schedule's fractions
    assert long.model == cfg.model and long.losses == cfg.losses and long.schedule.epochs == 15
    assert long.schedule.milestones == Pr.CPU_MILESTONES and long.schedule.cc_start == Pr.CPU_CC_START
    assert long.schedule.heads_lr_mult == 1 and long.schedule.ema_decay == 0 and Pr.make("cpu-long", "pretrain").schedule.epochs == 15  # as measured
    old = Pr.make("cpu-scratch", "cal")  # the cpu preset before the shared trunk, under its own name
    assert old.model.init == "scratch" and old.losses.adv_epsilon == 0.1 and old.schedule.epochs == 15


def test_cpu_scratch_preset_schedule_is_its_own_explicit_fractions():
    s = Pr.make("cpu-scratch", "cal").schedule
    assert s.milestones == Pr.CPU_MILESTONES == (0.7, 0.9) and s.cc_start == Pr.CPU_CC_START == 0.5
    # 15 epochs: 0.7*15 = 10.5 -> 10 (round half to even), 0.9*15 = 13.5 -> 14, 0.5*15 = 7.5 -> 8
    assert s.epochs == 15 and s.milestone_epochs() == [10, 14] and s.cc_start_epoch() == 8
    longer = Pr.make("cpu-scratch", "cal", epochs=20).schedule  # the fractions, not the epochs, are the preset's
    assert longer.milestone_epochs() == [14, 18] and longer.cc_start_epoch() == 10
    assert Pr.make("smoke", "cal").schedule.milestones == Pr.PAPER_MILESTONES  # other presets: the paper's
    assert Pr.make("paper", "cal").schedule.cc_start == Pr.PAPER_CC_START


def test_overrides_aliases_and_errors():
    cfg = Pr.make("smoke", "bm", seed=3, root="/x", **{"schedule.lr": 1e-3, "weights.triplet": 0.5})
    assert cfg.runtime.seed == 3 and cfg.data.root == "/x" and cfg.schedule.lr == 1e-3
    assert cfg.weights["triplet"] == 0.5 and cfg.weights["id_cal"] == 1.0
    with pytest.raises(KeyError, match="schedule"):
        Pr.make("smoke", "bm", **{"schedule.learning_rate": 1})
    with pytest.raises(KeyError, match="unknown variant"):
        Pr.make("smoke", "nope")
    with pytest.raises(ValueError, match="gender head"):
        Pr.make("smoke", "bm", terms=("id_cal", "gender"))
    with pytest.raises(ValueError, match="two-branch"):
        Pr.make("smoke", "cal", **{"tad.enabled": True})
    with pytest.raises(ValueError, match="amp"):
        Pr.make("smoke", "bm", amp="fp8")


def test_dict_round_trip_is_lossless():
    for variant in ("rlq", "cal", "teacher"):
        cfg = Pr.make("cpu", variant)
        back = C.from_dict(C.to_dict(cfg))
        assert back == cfg and H.config_hash(back) == H.config_hash(cfg)
    with pytest.raises(KeyError, match="unknown keys"):
        d = C.to_dict(Pr.make("cpu", "bm"))
        d["data"]["bogus"] = 1
        C.from_dict(d)


def test_hash_stable_and_sensitive():
    a, b = Pr.make("cpu", "bm"), Pr.make("cpu", "bm")
    assert H.config_hash(a) == H.config_hash(b)
    assert len(H.config_hash(a)) == 64
    # sensitive to hyper-parameters, seed, variant, precision and device type
    for key, value in (("schedule.lr", 1e-4), ("seed", 1), ("runtime.amp", "none"), ("device", "cuda"),
                       ("weights.triplet", 0.0), ("losses.kl_tau", 0.5)):
        assert H.config_hash(Pr.make("cpu", "bm", **{key: value})) != H.config_hash(a), key
    assert H.config_hash(Pr.make("cpu", "bm+g")) != H.config_hash(a)
    # not sensitive to cosmetic / placement fields, nor to the order of terms or the GPU index
    for key, value in (("progress", False), ("threads", 1), ("root", "/elsewhere"),
                       ("runtime.eval_batch_size", 7)):
        assert H.config_hash(Pr.make("cpu", "bm", **{key: value})) == H.config_hash(a), key
    assert H.config_hash(Pr.make("cpu", "bm", terms=tuple(reversed(a.terms)))) == H.config_hash(a)
    assert H.config_hash(Pr.make("cpu", "bm", device="cuda:0")) == H.config_hash(Pr.make("cpu", "bm", device="cuda:1"))


def test_teacher_is_shared_and_its_hash_enters_the_student():
    tad, rlq = Pr.make("cpu", "tad"), Pr.make("cpu", "rlq")
    assert Tc.teacher_config(tad) == Tc.teacher_config(rlq)
    t = Tc.teacher_config(rlq)
    assert t.variant == "teacher" and t.data.train_set == "external"
    assert t.schedule == dataclasses.replace(rlq.schedule, heads_lr_mult=10.0, ema_decay=0.0)  # TEACHER_PRESETS["cpu"]
    assert Tc.teacher_config(Pr.make("smoke", "rlq")).schedule == Pr.make("smoke", "rlq").schedule  # no entry
    assert Tc.teacher_config(Pr.make("cpu", "rlq", epochs=3)) == t  # the student's length does not move the teacher
    with pytest.raises(ValueError, match="teacher"):
        Tc.resolve(rlq)
    r1, r2 = Tc.resolve(rlq, "a" * 64), Tc.resolve(rlq, "b" * 64)
    assert r1.tad.teacher_hash == "a" * 64 and H.config_hash(r1) != H.config_hash(r2)
    assert Tc.resolve(Pr.make("cpu", "bm")).tad.teacher_hash is None
    assert not Tc.needs_teacher(Pr.make("cpu", "ss-mse"))


def test_configs_are_frozen():
    cfg = Pr.make("smoke", "bm")
    with pytest.raises(dataclasses.FrozenInstanceError):
        cfg.schedule.epochs = 3  # type: ignore[misc]


# the data fingerprint of SynthCC-cpu seed 0 (``rlq synth --preset cpu --seed 0``), as stored with its runs
SYNTHCC_CPU = {"counts": {"external_gallery_ids": 40, "external_gallery_images": 493, "external_ntu_gallery_ids": 16,
                          "external_ntu_gallery_images": 146, "external_ntu_query_ids": 16,
                          "external_ntu_query_images": 49, "external_ntu_train_ids": 24,
                          "external_ntu_train_images": 295, "external_query_ids": 40, "external_query_images": 159,
                          "external_train_ids": 110, "external_train_images": 1772, "images": 7680,
                          "outfit_pool": 72, "query_ids": 60, "query_images": 363, "test_ids": 60,
                          "test_images": 1095, "train_clothes": 399, "train_ids": 136, "train_images": 3308},
               "dataset": "synthcc", "format": "synthcc-1", "generator_version": "1.0", "image_size": [128, 64],
               "preset": "cpu", "seed": 0}


@pytest.mark.parametrize("variant, overrides, key", [
    ("bm", {}, "e20206592df4"),
    ("cal", {"data.clothes_labels": "outfit"}, "c491ae055118"),  # a field added later, set
    ("fire2", {}, "abbf270073e1"),  # the section added later, used
    ("teacher", {}, "1d8666edae57"),
])
def test_cache_keys_of_existing_runs_do_not_move(variant, overrides, key):
    # the run folders of the book's cpu runs before the shared trunk (runs/<variant>-<key>): the cpu-scratch preset's
    # configs under their former preset name; a change here retrains every cached run
    cfg = Tc.resolve(dataclasses.replace(
        Pr.make("cpu-scratch", variant, seed=0, device="cpu", root="data/synthcc-cpu", **overrides), preset="cpu"))
    assert H.config_hash(cfg, {"data": SYNTHCC_CPU, "world_size": 1})[:12] == key


def test_fields_that_follow_the_dataset_and_preset():
    # M2: LaST recolours with 6 colours, every other dataset with 9; N1: raw images except SynthCC stored at input size
    assert C.effective(Pr.make("smoke", "bm", dataset="last")).data.colours == "last"
    assert C.effective(Pr.make("smoke", "bm")).data.colours == "all"
    assert C.effective(Pr.make("smoke", "bm", dataset="last", **{"data.colours": "all"})).data.colours == "all"
    for preset in C.INPUT_SIZED_SYNTHCC_PRESETS:
        assert C.effective(Pr.make(preset, "rlq")).data.degrade_at == "input"
    assert C.effective(Pr.make("paper", "rlq")).data.degrade_at == "raw"
    assert C.effective(Pr.make("smoke", "rlq", dataset="ltcc")).data.degrade_at == "raw"
    cfg = Pr.make("paper", "rlq")
    assert C.effective(C.effective(cfg)) == C.effective(cfg)
    # None and the value it stands for are one run
    for key, value in (("data.colours", "all"), ("data.degrade_at", "input")):
        assert H.config_hash(Pr.make("cpu", "rlq", **{key: value})) == H.config_hash(Pr.make("cpu", "rlq")), key
    with pytest.raises(ValueError, match="data.degrade_at='later'"):
        Pr.make("smoke", "rlq", **{"data.degrade_at": "later"})
    with pytest.raises(ValueError, match="lq_aug_mode"):
        Pr.make("smoke", "bm", **{"data.lq_aug_mode": "both"})
    with pytest.raises(ValueError, match="lq_aug_mix"):
        Pr.make("smoke", "bm", **{"data.lq_aug_mix": "celebreid"})


def test_new_fields_enter_the_hash_only_where_they_change_the_run():
    bm, rlq, lq = Pr.make("cpu", "bm"), Pr.make("cpu", "rlq"), Pr.make("cpu", "bm+lq-aug")
    # no LQ augmentation: its mode and mix cannot matter; SynthCC without named faulty lists: faulty_masks cannot
    for key, value in (("data.lq_aug_mode", "replace"), ("data.lq_aug_mix", "prcc"), ("data.faulty_masks", False)):
        assert H.config_hash(Pr.make("cpu", "bm", **{key: value})) == H.config_hash(bm), key
    # ... but they do where they can
    assert H.config_hash(Pr.make("cpu", "bm+lq-aug", **{"data.lq_aug_mode": "replace"})) != H.config_hash(lq)
    assert H.config_hash(Pr.make("cpu", "bm", **{"data.faulty_csvs": ["x.csv"]})) != H.config_hash(bm)
    ltcc = Pr.make("smoke", "bm", dataset="ltcc")
    assert H.config_hash(Pr.make("smoke", "bm", dataset="ltcc", **{"data.faulty_masks": False})) != H.config_hash(ltcc)
    # raw vs input LQ images: the same images on SynthCC-cpu (no hash change), a different run at the paper preset
    assert H.config_hash(Pr.make("cpu", "rlq", **{"data.degrade_at": "input"})) == H.config_hash(rlq)
    paper = Pr.make("paper", "rlq")
    assert H.config_hash(Pr.make("paper", "rlq", **{"data.degrade_at": "input"})) != H.config_hash(paper)
    assert H.config_hash(Pr.make("paper", "bm", **{"data.degrade_at": "input"})) == H.config_hash(Pr.make("paper", "bm"))


def test_authors_teacher_and_cal_batch_at_the_paper_preset():
    t = Tc.teacher_config(Pr.make("paper", "rlq"))
    assert t.schedule.epochs == Pr.TEACHER_EPOCHS == 200 and (t.data.p, t.data.k) == (10, 4)
    assert t.schedule.milestone_epochs() == [20, 40] and t.schedule.cc_start_epoch() == 25
    small = Tc.teacher_config(Pr.make("cpu", "rlq"))  # cpu: its schedule as before the average, the student's P×K
    assert small.schedule == dataclasses.replace(Pr.make("cpu", "bm").schedule, heads_lr_mult=10.0, ema_decay=0.0)
    assert (small.data.p, small.data.k) == (8, 4)
    for variant in ("cal", "cal+cloth-aug", "cal+triplet", "cal+cloth-aug+triplet", "id-only"):
        cfg = Pr.make("paper", variant)
        assert (cfg.data.p, cfg.data.k) == (4, 8), variant  # K = 8, 32 per process (the CAL authors')
        assert (Pr.make("cpu", variant).data.p, Pr.make("cpu", variant).data.k) == (8, 4), variant
    assert (Pr.make("paper", "bm").data.p, Pr.make("paper", "bm").data.k) == (8, 4)
    lq = Pr.make("smoke", "bm+lq-aug").data
    assert lq.lq_aug == 1.0 and lq.lq_aug_mode == "extra_view" and lq.lq_aug_mix == "ltcc"
