"""The optimisation schedule shared by every method, with epoch-dependent switches as fractions of the run."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class ScheduleConfig:
    """Optimisation schedule (docs/spec.md §3.1), with the epoch-dependent switches as fractions of ``epochs``.

    Attributes:
        epochs: total epochs E.
        lr, weight_decay: Adam (coupled L2) for both optimisers.
        milestones: MultiStepLR milestones as fractions of E (20/60, 40/60).
        gamma: LR decay factor.
        cc_start: clothes-classifier step and adversarial loss from epoch round(cc_start · E) (25/60).
        eval_every: also evaluate every N epochs for curves (0 = only after the last epoch). No checkpoint
            selection happens on the test set: the final epoch is what is reported.
        heads_lr_mult: the RLQ/CAL family's new, randomly initialised external classifiers (the CAL-id classifier,
            its own parameter group in the main Adam, and the clothes classifier's Adam) learn at
            ``heads_lr_mult · lr``; the trunk and the model's own heads at ``lr``. 1 = the authors' code (one rate);
            the ``cpu`` preset's short fine-tuning from the pretrained trunk uses 20 (docs/synthcc-probes.md §4–§5).
        ema_decay: keep an exponential moving average of the network's weights, updated after every optimiser step
            of the network, and end the run with it (what is evaluated and checkpointed as the model;
            :mod:`rlqlib.engine.ema`); 0 = off (the paper and the authors' code).
    """

    epochs: int = 60
    lr: float = 3.5e-4
    weight_decay: float = 5e-4
    milestones: tuple[float, ...] = (20 / 60, 40 / 60)  # PAPER_MILESTONES
    gamma: float = 0.1
    cc_start: float = 25 / 60  # PAPER_CC_START
    eval_every: int = 0
    heads_lr_mult: float = 1.0
    ema_decay: float = 0.0

    def __post_init__(self) -> None:
        if not self.heads_lr_mult > 0:
            raise ValueError(f"schedule.heads_lr_mult={self.heads_lr_mult!r}: it multiplies the learning rate; "
                             "give a positive number (1 = one rate for every parameter)")
        if not 0 <= self.ema_decay < 1:
            raise ValueError(f"schedule.ema_decay={self.ema_decay!r}: give a decay in [0, 1) (0 = no weight "
                             "averaging; e.g. 0.98 averages over about the last 50 steps)")

    def milestone_epochs(self) -> list[int]:
        """LR milestones in epochs (60 epochs ⇒ [20, 40])."""
        return [int(round(m * self.epochs)) for m in self.milestones]

    def cc_start_epoch(self) -> int:
        """First (0-indexed) epoch with the clothes step and the adversarial loss (60 epochs ⇒ 25)."""
        return int(round(self.cc_start * self.epochs))
