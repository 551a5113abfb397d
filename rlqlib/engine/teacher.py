"""TAD teacher resolution: which teacher run a student distils from, and how its hash enters the student's config.

A TAD student (``tad.enabled`` and ``tad.teacher``) depends on a teacher run (variant ``teacher``,
:func:`teacher_config`). Its run-cache key is written into the student's ``tad.teacher_hash`` by :func:`resolve`,
so that it is part of the student's hash: retraining the teacher moves every student. :mod:`rlqlib.engine.runs`
trains or loads the teacher first (:func:`rlqlib.engine.runs.resolve_with_teacher`). :func:`resolve` also fills
``model.init_hash`` of a run started from the shared pretraining run (:mod:`rlqlib.engine.pretrain`); a teacher
starts from it too when its student does.
"""

from __future__ import annotations

from dataclasses import replace

from rlqlib.engine import pretrain as Pt
from rlqlib.engine.config import SECTIONS, ExperimentConfig
from rlqlib.methods.rlq.config import TADConfig
from rlqlib.engine.presets import TEACHER_PRESETS, make


def teacher_config(cfg: ExperimentConfig) -> ExperimentConfig:
    """The teacher run a TAD student depends on: variant ``teacher`` under the same preset (its default schedule,
    so that changing the student's length does not retrain the teacher; ``paper``: the authors' 200 epochs,
    :data:`rlqlib.engine.presets.TEACHER_PRESETS`), with the student's data root, input size, P×K (unless the
    teacher preset sets its own: ``paper`` 10 × 4), backbone (and trunk start, ``model.init``), losses and
    runtime, trained on the student's external set; its seed is ``tad.teacher_seed`` (default 0: one teacher for
    every student seed, as the authors' code), or the student's own when that is None."""
    source = cfg.tad.source if cfg.tad.source != "target" else "external"
    base = make(cfg.preset, "teacher")
    own = TEACHER_PRESETS.get(cfg.preset, {})
    parts = {s: getattr(base, s) for s in SECTIONS}
    parts["data"] = replace(base.data, dataset=cfg.data.dataset, root=cfg.data.root, train_set=source,
                            image_size=cfg.data.image_size, p=own.get("data.p", cfg.data.p),
                            k=own.get("data.k", cfg.data.k))
    parts["model"] = replace(base.model, backbone=cfg.model.backbone, pretrained=cfg.model.pretrained,
                             pooling=cfg.model.pooling, last_stride=cfg.model.last_stride, init=cfg.model.init,
                             init_root=cfg.model.init_root)
    seed = cfg.runtime.seed if cfg.tad.teacher_seed is None else cfg.tad.teacher_seed
    parts["runtime"] = replace(cfg.runtime, seed=seed)
    parts["losses"] = cfg.losses
    parts["tad"] = replace(TADConfig(), external_root=cfg.tad.external_root)
    return ExperimentConfig(variant="teacher", preset=cfg.preset, terms=base.terms, weights=dict(base.weights),
                            **parts)


def needs_teacher(cfg: ExperimentConfig) -> bool:
    """Whether the run distils from a teacher run."""
    return cfg.tad.enabled and cfg.tad.teacher


def resolve(cfg: ExperimentConfig, teacher_hash: str | None = None) -> ExperimentConfig:
    """Fill ``tad.teacher_hash`` (the teacher's cache key, given) and ``model.init_hash`` (the pretraining run's
    cache key, :func:`rlqlib.engine.pretrain.pretrain_hash`, for ``model.init = "synthcc"``; None otherwise) so
    that they are part of the run's hash."""
    init_hash = Pt.pretrain_hash(cfg) if Pt.needs_pretrain(cfg) else None
    cfg = replace(cfg, model=replace(cfg.model, init_hash=init_hash))
    if not needs_teacher(cfg):
        return replace(cfg, tad=replace(cfg.tad, teacher_hash=None))
    if teacher_hash is None:
        raise ValueError("resolve: a TAD run with a teacher needs the teacher run's hash (rlqlib.engine.runs does this)")
    return replace(cfg, tad=replace(cfg.tad, teacher_hash=teacher_hash))
