"""What one training run asks a cluster for, per preset: GPUs, CPUs, memory and a time limit derived from its epochs.

The SLURM executor of the book's run list (:mod:`rlqlib.book.executors`) requests :func:`for_config` of each run::

    r = for_config(make("paper", "rlq", root="/data/LTCC_ReID", dataset="ltcc"))
    r.gpus, r.cpus, r.mem_gb, r.minutes      # 1, 8, 32, 270

The time limit is ``setup_minutes + minutes_per_epoch × epochs`` (a run of the paper preset: 60 epochs of LTCC on one
GPU, with the TAD pass and the recoloured replica, plus loading and evaluation). A run cut by the limit is not lost:
its job is requeued and the run resumes from its last checkpoint (one per epoch), as a rerun would.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace

from rlqlib.engine.config import ExperimentConfig


@dataclass(frozen=True)
class Resources:
    """What one run of a preset asks for.

    Attributes:
        gpus: GPUs (0 on a CPU device, whatever the preset says: :func:`for_config`).
        cpus: CPU cores; also the run's ``runtime.threads`` there.
        mem_gb: host memory in GB.
        minutes_per_epoch: the time limit's part per epoch.
        setup_minutes: the time limit's fixed part (start-up, image loading, the final evaluation).
    """

    gpus: int
    cpus: int
    mem_gb: int
    minutes_per_epoch: float
    setup_minutes: int = 15

    def minutes(self, epochs: int) -> int:
        """The time limit of a run of ``epochs`` epochs, in whole minutes."""
        return math.ceil(self.setup_minutes + self.minutes_per_epoch * epochs)


_CPU = Resources(gpus=0, cpus=1, mem_gb=8, minutes_per_epoch=4.0)  # a two-branch run: ~2 min per epoch at 1 thread

#: Preset -> resources of one of its runs (:data:`rlqlib.engine.presets.PRESETS`' keys).
RESOURCES: dict[str, Resources] = {
    "smoke": Resources(gpus=0, cpus=1, mem_gb=4, minutes_per_epoch=1.0, setup_minutes=10),
    "cpu": _CPU,
    "cpu-long": _CPU,
    "cpu-scratch": _CPU,
    "paper": Resources(gpus=1, cpus=8, mem_gb=32, minutes_per_epoch=4.0, setup_minutes=30),
}


@dataclass(frozen=True)
class Request:
    """What a job asks a cluster for: GPUs, CPUs, memory (GB) and its time limit (minutes)."""

    gpus: int
    cpus: int
    mem_gb: int
    minutes: int


def for_config(cfg: ExperimentConfig) -> Request:
    """The request of the run ``cfg``: its preset's :class:`Resources`, no GPU on a CPU device, the time limit from its
    epochs."""
    if cfg.preset not in RESOURCES:
        raise ValueError(f"no resources for preset {cfg.preset!r}; add it to rlqlib.engine.resources.RESOURCES "
                         f"(known: {', '.join(sorted(RESOURCES))})")
    r = RESOURCES[cfg.preset]
    if not str(cfg.runtime.device).startswith("cuda"):
        r = replace(r, gpus=0)
    return Request(r.gpus, r.cpus, r.mem_gb, r.minutes(cfg.schedule.epochs))
