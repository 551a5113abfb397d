"""The shared pretraining run: config, hash, training order, trunk loading into every copy, resuming."""

from __future__ import annotations

import shutil
from dataclasses import replace

import pytest
import torch

from rlqlib.engine import hashing as H
from rlqlib.engine import presets as Pr
from rlqlib.engine import pretrain as Pt
from rlqlib.engine import runs as R
from rlqlib.engine import teacher as Tc
from rlqlib.engine import train as T
from rlqlib.methods.rlq.model import trunk_state

INIT = {"model.init": "synthcc"}


@pytest.fixture(scope="module")
def config(synthcc_smoke_pretrain):
    """``config(variant, **overrides)``: the smoke preset on SynthCC-smoke with a pretraining group."""
    def make(variant: str, **overrides):
        return Pr.make("smoke", variant, root=str(synthcc_smoke_pretrain), **overrides)

    return make


@pytest.fixture(scope="module")
def pretrained(config, tmp_path_factory) -> R.Run:
    """The pretraining run of the smoke preset, trained once for this module."""
    return R.run_or_load(Pt.pretrain_config(config("cal", **INIT)), tmp_path_factory.mktemp("runs"))


def test_pretrain_config_is_one_shared_run():
    a = Pt.pretrain_config(Pr.make("cpu", "bm", seed=3, **INIT))
    assert a == Pt.pretrain_config(Pr.make("cpu", "rlq", seed=0, epochs=4, **INIT))  # any seed, variant, length
    assert a.variant == "pretrain" and a.runtime.seed == 0 and a.data.train_set == "pretrain"
    assert a.model.variant == "cal" and a.model.init == "scratch" and a.terms == ("id_cal",) and not a.data.cloth_aug
    assert a.schedule.epochs == Pr.PRETRAIN_PRESETS["cpu"]["schedule.epochs"]
    assert Pr.make("cpu", "pretrain") == Pt.pretrain_config(Pr.make("cpu", "id-only", **INIT))
    assert Pt.pretrain_config(Pr.make("cpu", "bm", **INIT, **{"data.image_size": (64, 32)})).data.image_size == (64, 32)
    # the TAD teacher of such a student starts from the same trunk
    teacher = Tc.teacher_config(Pr.make("cpu", "rlq", **INIT))
    assert teacher.model.init == "synthcc" and Pt.pretrain_config(teacher) == a
    with pytest.raises(ValueError, match="pretraining run itself"):
        Pr.make("cpu", "pretrain", **INIT)
    with pytest.raises(ValueError, match="SynthCC's pretraining group"):
        Pr.make("cpu", "pretrain", **{"data.dataset": "ltcc"})
    with pytest.raises(ValueError, match="init"):
        Pr.make("cpu", "bm", **{"model.init": "imagenet"})


def test_init_enters_the_hash_with_the_pretraining_hash():
    for variant in Pr.VARIANTS:  # scratch (every existing config): hashed as before (keys pinned in test_config)
        model = H.hashed_dict(Pr.make("cpu-scratch", variant))["model"]
        assert "init" not in model and "init_hash" not in model, variant
    scratch, init = Pr.make("cpu-scratch", "bm"), Pr.make("cpu-scratch", "bm", **INIT)
    r = Tc.resolve(init)
    assert r.model.init_hash == Pt.pretrain_hash(init) == H.run_hash(Pt.pretrain_config(init))
    assert H.hashed_dict(r)["model"]["init_hash"] == r.model.init_hash
    assert H.config_hash(r) != H.config_hash(Tc.resolve(scratch))
    other = Pr.make("cpu-scratch", "bm", **INIT, **{"schedule.lr": 1e-4})  # another student of the same pretraining run
    assert Tc.resolve(other).model.init_hash == r.model.init_hash
    moved = replace(r, model=replace(r.model, init_hash="f" * 64))
    assert H.config_hash(moved) != H.config_hash(r)  # retraining the pretraining run moves its students
    assert Tc.resolve(Pr.make("cpu-scratch", "bm", **{"model.init_hash": "x"})).model.init_hash is None


def test_students_train_the_pretraining_run_first(config, tmp_path):
    run = R.run_or_load(config("tad", epochs=1, **INIT), tmp_path)
    lines = [line.split('"run": "')[1].split('"')[0] for line in (tmp_path / R.LEDGER).read_text().splitlines()]
    pre = sorted(tmp_path.glob("pretrain-*"))
    assert len(pre) == 1 and lines[0] == pre[0].name and lines[-1] == run.dir.name
    pre_run = R.load_run(pre[0])
    teacher = R.load_run(next(tmp_path.glob("teacher-*")))
    assert run.config.model.init_hash == teacher.config.model.init_hash == pre_run.hash
    assert pre_run.config.data.train_set == "pretrain" and pre_run.config.model.init_hash is None
    assert set(pre_run.metrics["eval"]) >= {"general"}  # scored on the group's own query/gallery
    before = dict(R.RUN_COUNTS)
    R.run_or_load(config("cal", epochs=1, **INIT), tmp_path)  # another student: loads, does not retrain
    assert R.RUN_COUNTS["trained"] == before["trained"] + 1 and len(list(tmp_path.glob("pretrain-*"))) == 1


def _expected_copies(model: torch.nn.Module) -> dict[str, torch.nn.Module]:
    """torchvision prefix (conv1…layer4) → a trunk copy of the network, for every copy it holds."""
    if hasattr(model, "trunk"):  # FIRe²: one chain
        t = model.trunk
        return {"conv1": t[0][0], "bn1": t[0][1], "layer1": t[0][4], "layer2": t[1], "layer3": t[2], "layer4": t[3]}
    out = {"conv1": model.stem[0], "bn1": model.stem[1], "layer1": model.stem[4], "layer2": model.layer2}
    for name in ("cal", "bot", "pose"):
        branch = getattr(model, name)
        if branch is not None:
            layers = list(branch.layers)
            for i, layer in enumerate(layers):
                out[f"{name}:layer{5 - len(layers) + i}"] = layer  # pose: layer2-4, cal/bot: layer3-4
    return out


@pytest.mark.parametrize("variant", ["cap", "fire2"])
def test_every_trunk_copy_starts_from_the_pretrained_trunk(config, pretrained, variant):
    cfg = Tc.resolve(config(variant, **INIT))
    trainer = T.Trainer(cfg, None, init_dir=pretrained.dir)
    scratch = {k: v.clone() for k, v in trainer.model.state_dict().items()}
    want = trunk_state(T.load_checkpoint(pretrained.dir / T.CHECKPOINT)["model"])

    def same() -> list[bool]:
        return [torch.equal(value.cpu(), want[f"{name.split(':')[-1]}.{key}"])
                for name, module in _expected_copies(trainer.model).items()
                for key, value in module.state_dict().items() if key.endswith("weight")]

    assert not all(same())  # a fresh network: its own random trunk
    trainer.start()  # what fit does before the first step of a fresh run
    assert variant != "cap" or {"bot:layer3", "pose:layer2", "pose:layer4"} <= set(_expected_copies(trainer.model))
    for name, module in _expected_copies(trainer.model).items():
        prefix = name.split(":")[-1]
        for key, value in module.state_dict().items():
            assert torch.equal(value.cpu(), want[f"{prefix}.{key}"]), (name, key)
    necks = [k for k in scratch if (".bn." in k or "bottleneck" in k or "classifier" in k)]
    assert necks and all(torch.equal(trainer.model.state_dict()[k], scratch[k]) for k in necks)  # fresh necks/heads


def test_resumed_run_does_not_reload_and_errors_are_clear(config, pretrained, tmp_path):
    cfg = Tc.resolve(config("cal", **INIT))  # 2 epochs
    init_dir = tmp_path / "pre"
    shutil.copytree(pretrained.dir, init_dir)
    with pytest.raises(T.TrainingInterrupted):
        T.fit(cfg, tmp_path / "run", init_dir=init_dir, stop_after_epoch=1)
    (init_dir / T.CHECKPOINT).unlink()  # a resumed run restores its own checkpoint: it never reads this one
    assert T.fit(cfg, tmp_path / "run", init_dir=init_dir)["epochs"] == 2
    with pytest.raises(FileNotFoundError, match="pretraining checkpoint .* is missing"):
        T.fit(cfg, tmp_path / "fresh", init_dir=init_dir)
    shutil.copy(pretrained.dir / T.CHECKPOINT, init_dir / T.CHECKPOINT)
    other = Tc.resolve(config("cal", **INIT, **{"runtime.amp": "bf16"}))  # another pretraining run's hash
    with pytest.raises(T.CheckpointError, match="expects"):
        T.Trainer(other, None, init_dir=init_dir).start()
    with pytest.raises(ValueError, match="init_dir"):
        T.Trainer(cfg).start()


def test_a_real_target_names_the_synthcc_folder_of_its_pretraining_run():
    with pytest.raises(ValueError, match="model.init_root"):
        Pr.make("cpu", "bm", dataset="ltcc", root="/data/LTCC")
    cfg = Pr.make("cpu", "bm", dataset="ltcc", root="/data/LTCC", **{"model.init_root": "data/synthcc-cpu"})
    pre = Pt.pretrain_config(cfg)
    assert (pre.data.dataset, pre.data.root, pre.data.train_set) == ("synthcc", "data/synthcc-cpu", "pretrain")
    # a location, like data.root: the same pretraining run as a SynthCC target's on that folder
    assert H.config_hash(pre, {"data": {}, "world_size": 1}) == H.config_hash(
        Pt.pretrain_config(Pr.make("cpu", "bm", root="elsewhere")), {"data": {}, "world_size": 1})
    assert "init_root" not in H.hashed_dict(Tc.resolve(cfg))["model"]
