"""RLQ's task-agnostic distillation section of an experiment (:class:`TADConfig`)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class TADConfig:
    """Task-agnostic distillation (docs/spec.md §3.3, §3.6) and its Table-9 variants.

    Attributes:
        enabled: run one TAD pass over the HQ/LQ pair source before every CAP pass.
        source: ``external`` (SynthCC's Celeb-like set; for real targets ``external_root``), ``external_ntu``,
            or ``target`` (noisy pairs from the target train set, "LTCC + SS_MSE").
        external_root: Celeb-reID folder for real target datasets (SynthCC: ``root/<source>``).
        teacher: distil from the frozen teacher (L_D); the teacher run is resolved through the run cache.
        teacher_hash: config hash of the teacher run, filled in by :func:`rlqlib.engine.teacher.resolve` (part of
            the student's hash).
        teacher_seed: the teacher run's training seed. An int (default 0): one teacher shared by the students of
            every seed, as the authors' code (one released Celeb-reID teacher for every run); None: each student
            seed distils from a teacher trained with its own seed (the seed spread then includes the teacher's).
        self_ss: the self-supervision KL terms L_S (``ss_*``).
        self_mse: the SS_MSE terms ``self_mse_{cal,bot}`` = ||n(S_HQ) − n(S_LQ)||² (no teacher).
        subsample: fraction of each identity's images kept (docs/spec.md §3.9 "~8%": 0.08); 1.0 = all.
        mix: degradation mix of :data:`rlqlib.data.degrade.MIXES`; None = the target dataset's.
    """

    enabled: bool = False
    source: str = "external"
    external_root: str | None = None
    teacher: bool = True
    teacher_hash: str | None = None
    teacher_seed: int | None = 0
    self_ss: bool = True
    self_mse: bool = False
    subsample: float = 1.0
    mix: str | None = None
