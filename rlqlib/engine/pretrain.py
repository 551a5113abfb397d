"""The shared pretraining run: a trunk trained once on SynthCC's pretraining population and shared by every run that
starts from it (``model.init = "synthcc"``), as the paper's runs share ImageNet weights.

A SynthCC folder generated with ``SynthConfig.pretrain_ids > 0`` holds a ``pretrain/`` group in Celeb-reID's layout:
identities disjoint from the target and external ones, a fresh outfit per image (clothes carry no identity), many
scenes (:func:`rlqlib.synthcc.generate.plan_external`). :func:`pretrain_config` derives, from any config that needs
it, the pretraining run (variant ``pretrain``: the id-only recipe on ``data.train_set = "pretrain"``, its length
from :data:`rlqlib.engine.presets.PRETRAIN_PRESETS`): same preset, SynthCC root (``model.init_root``, else the
target's ``data.root``: a real target dataset names a SynthCC folder there), input size, backbone (width, pooling,
last stride, ImageNet start) and runtime, with the seed fixed to :data:`PRETRAIN_SEED` — one pretraining run for
every seed and every variant, its P×K, schedule and losses the preset's own.

Its run-cache key is the ``model.init_hash`` of every run started from it (:func:`rlqlib.engine.teacher.resolve`
fills it in), so retraining it moves them all; :func:`rlqlib.engine.runs.run_or_load` trains or loads it before them
(also before a TAD teacher that starts from it), and the trainer copies its trunk into every trunk copy of a fresh
network (:meth:`rlqlib.engine.train.Trainer.start`). The pretraining run itself always starts from scratch.
"""

from __future__ import annotations

from dataclasses import replace

from rlqlib.engine.config import SECTIONS, ExperimentConfig
from rlqlib.engine.hashing import run_hash
from rlqlib.engine.presets import make

PRETRAIN_SEED = 0  # one pretraining run, whatever the seed of the runs that start from it


def needs_pretrain(cfg: ExperimentConfig) -> bool:
    """Whether the run starts from the shared pretraining run's trunk."""
    return cfg.model.init == "synthcc"


def pretrain_config(cfg: ExperimentConfig) -> ExperimentConfig:
    """The pretraining run ``cfg`` starts from: variant ``pretrain`` under ``cfg``'s preset, on ``cfg``'s SynthCC
    root and input size, with ``cfg``'s backbone and runtime and seed :data:`PRETRAIN_SEED` (see the module)."""
    base = make(cfg.preset, "pretrain")
    parts = {s: getattr(base, s) for s in SECTIONS}
    parts["data"] = replace(base.data, dataset="synthcc", root=cfg.model.init_root or cfg.data.root,
                            image_size=cfg.data.image_size)
    parts["model"] = replace(base.model, backbone=cfg.model.backbone, pretrained=cfg.model.pretrained,
                             pooling=cfg.model.pooling, last_stride=cfg.model.last_stride)
    parts["runtime"] = replace(cfg.runtime, seed=PRETRAIN_SEED)
    return ExperimentConfig(variant="pretrain", preset=cfg.preset, terms=base.terms, weights=dict(base.weights),
                            **parts)


def pretrain_hash(cfg: ExperimentConfig) -> str:
    """The run-cache key of the pretraining run ``cfg`` starts from (it depends on no other run)."""
    return run_hash(pretrain_config(cfg))
