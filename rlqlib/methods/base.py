"""The interface every training method implements, and what the trainer hands it.

:class:`rlqlib.engine.train.Trainer` keeps what all runs share (device, data, seeds, generators, checkpoint files,
resuming, evaluation, progress bars) and calls the run's :class:`Method` for the rest::

    method = method_for(model_cfg.variant)(recipe, data, place, teacher=None)  # rlqlib.methods.registry
    for epoch in range(start, epochs):
        lr = method.lr_at(epoch)
        passes = method.epoch(epoch, bar)         # {"tad": {...}, "cap": {...}}: one record per pass
        ...evaluate method.model, checkpoint {..., "model": method.model.state_dict(), **method.state_dict()}

The two implementations are RLQ/CAL (:class:`rlqlib.methods.rlq.method.RLQMethod`) and FIRe²
(:class:`rlqlib.methods.fire2.method.FIRe2Method`). A method reads only the sub-configs of :class:`Recipe` it needs.
"""

from __future__ import annotations

import contextlib
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch import Tensor, nn

from rlqlib.data.batches import TrainBatches
from rlqlib.data.lq import LQSource
from rlqlib.data.sampler import PKSampler
from rlqlib.methods.fire2.config import FIRe2Config
from rlqlib.methods.model_config import ModelConfig
from rlqlib.methods.rlq.config import TADConfig
from rlqlib.methods.rlq.losses import LossConfig
from rlqlib.methods.schedule import ScheduleConfig

# A progress wrapper: (iterable, its length, description) -> the same items (the trainer's tqdm bar).
Bar = Callable[[Iterable, int, str], Iterable]
AMP_DTYPES: dict[str, torch.dtype | None] = {"none": None, "bf16": torch.bfloat16, "fp16": torch.float16}


def no_bar(it: Iterable, total: int, desc: str) -> Iterable:  # noqa: ARG001 - the Bar signature
    """The :data:`Bar` that shows nothing."""
    return it


class NonFiniteLossError(RuntimeError):
    """A loss term became NaN or infinite."""


def check_finite(terms: Mapping[str, Tensor], *, phase: str, epoch: int, step: int, index: Tensor) -> Tensor:
    """Stack the detached terms (one host sync); raise :class:`NonFiniteLossError` if any is NaN/inf.

    Returns:
        (T,) float32 values in the order of ``terms``.
    """
    values = torch.stack([v.detach().float() for v in terms.values()])  # (T,)
    if not bool(torch.isfinite(values).all()):
        bad = [k for k, v in zip(terms, values.tolist()) if not torch.isfinite(torch.tensor(v))]
        shown = index.tolist()[:32]
        raise NonFiniteLossError(
            f"{phase} loss term(s) {bad} became non-finite at epoch {epoch}, step {step} "
            f"(values {dict(zip(terms, values.tolist()))}); batch dataset indices {shown}"
            f"{' ...' if index.numel() > 32 else ''}. Lower the learning rate, check the inputs of these "
            "indices, or disable AMP (runtime.amp=none)")
    return values


@dataclass(frozen=True)
class Placement:
    """Where and in which numerics the training runs.

    Attributes:
        device: the training device.
        amp: autocast of the forward passes, ``none``, ``bf16`` or ``fp16`` (fp16 also scales the gradients).
        channels_last: NHWC memory format for the networks and their inputs.
        world_size: data-parallel processes (1 = none).
        eval_batch_size: images per forward when a method embeds the train set (FIRe²'s FFM).
    """

    device: torch.device
    amp: str = "none"
    channels_last: bool = False
    world_size: int = 1
    eval_batch_size: int = 128

    @property
    def amp_dtype(self) -> torch.dtype | None:
        """The autocast dtype, None without AMP."""
        return AMP_DTYPES[self.amp]

    def autocast(self) -> contextlib.AbstractContextManager:
        """Autocast on the device in :attr:`amp_dtype`, or nothing without AMP."""
        if self.amp_dtype is None:
            return contextlib.nullcontext()
        return torch.autocast(self.device.type, dtype=self.amp_dtype)

    def layout(self, x: Tensor) -> Tensor:
        """``x`` in the training memory format."""
        return x.contiguous(memory_format=torch.channels_last) if self.channels_last else x

    def grad_scaler(self) -> torch.amp.GradScaler:
        """A gradient scaler, enabled under fp16 only."""
        return torch.amp.GradScaler(self.device.type, enabled=self.amp == "fp16")


@dataclass(frozen=True)
class Recipe:
    """What a run trains: the experiment's sub-configs that methods read (each reads the ones it needs).

    Attributes:
        model: the network, with the train set's sizes filled in (``num_ids``, ``num_clothes``, ...).
        schedule: epochs, Adam and the epoch-dependent switches.
        losses: loss hyper-parameters.
        tad: RLQ's task-agnostic distillation.
        fire2: FIRe²'s switches and hyper-parameters.
        terms: the CAP backbone terms RLQ/CAL computes.
        weights: loss term → weight.
        lq_aug: probability of the ``replace``-mode LQ augmentation in RLQ's CAP step (0 in the authors' ``extra_view``
            mode, whose LQ views are in the batches).
        seed: the run's seed (network and head initialisation).
    """

    model: ModelConfig
    schedule: ScheduleConfig
    losses: LossConfig
    tad: TADConfig
    fire2: FIRe2Config
    terms: tuple[str, ...]
    weights: Mapping[str, float]
    lq_aug: float
    seed: int


@dataclass(frozen=True)
class TrainData:
    """The train data as the trainer loaded it; the generators are checkpointed by the trainer.

    Attributes:
        images: (N, 3, H, W) uint8 train images, where batches are made.
        pids: (N,) train identities 0…N_id−1.
        pid2clothes: (N_id, N_clothes) bool, the clothes classes of each identity (recoloured ones included).
        batches: the labelled P×K batches of the train set (:class:`rlqlib.data.batches.TrainBatches`), drawn with
            ``generator``; ``batches.sampler`` gives the plain index batches.
        generator: augmentation (and FIRe²'s FAR donors) of the train-set pass, on the device.
        hq_images: (N', 3, H, W) uint8 HQ set of RLQ's TAD pass on the device, None without TAD.
        hq_sampler: its P×K sampler, None without TAD.
        hq_generator: degradation and augmentation of the TAD pass, on the device.
        mix: the degradation mix (:data:`rlqlib.data.degrade.MIXES`) of TAD's LQ synthesis.
        hq_lq: TAD's LQ twins of ``hq_images`` by index (:class:`rlqlib.data.lq.LQSource`: made on the stored
            images, as the authors' code); None = degrade ``hq_images`` with ``mix``.
        lq_aug_mix: the mix of the CAP pass's LQ augmentation in its ``replace`` mode.
    """

    images: Tensor
    pids: np.ndarray
    pid2clothes: np.ndarray
    batches: TrainBatches
    generator: torch.Generator
    hq_images: Tensor | None
    hq_sampler: PKSampler | None
    hq_generator: torch.Generator
    mix: str
    hq_lq: LQSource | None = None
    lq_aug_mix: str = "ltcc"


class Method(ABC):
    """One training method: its network, its passes over the data, its optimisers and their schedule.

    Subclasses are built as ``Method(recipe, data, place, teacher=...)`` (``teacher``: a finished run's checkpoint
    state the method distils from, or None) and set :attr:`model`.

    Attributes:
        model: the trained network, on the device. The trainer checkpoints its ``state_dict`` as ``"model"`` and
            evaluates it: its eval-mode forward gives the (B, D) inference feature.
    """

    model: nn.Module

    @staticmethod
    @abstractmethod
    def network(cfg: ModelConfig, trunk: Mapping[str, Tensor] | None = None) -> nn.Module:
        """The untrained network of ``cfg``, initialised from the global RNG (build it under
        :func:`rlqlib.methods.backbone.seeded`); with ``trunk`` (a torchvision ResNet state, no ``fc``) every trunk
        copy starts from it (pass it to :func:`rlqlib.methods.backbone.build_trunk`)."""

    @staticmethod
    def external_heads(cfg: ModelConfig) -> nn.Module:  # noqa: ARG004 - a method without external heads
        """Trained modules outside the network (counted beside it, not in it); by default none."""
        return nn.Module()

    @abstractmethod
    def epoch(self, epoch: int, bar: Bar = no_bar) -> dict[str, dict[str, Any]]:
        """Train 0-indexed ``epoch``: its passes in order, pass name → record (mean loss terms, ``steps``, timings
        ending in ``seconds``), leaving everything ready for the next epoch."""

    @abstractmethod
    def lr_at(self, epoch: int) -> float:
        """The learning rate 0-indexed ``epoch`` trains with (called before :meth:`epoch`)."""

    @abstractmethod
    def state_dict(self) -> dict[str, Any]:
        """The method's checkpoint entries besides the model (top-level keys of the checkpoint)."""

    @abstractmethod
    def load_state_dict(self, state: Mapping[str, Any], next_epoch: int) -> None:
        """Restore the entries of :meth:`state_dict` from the checkpoint ``state`` before 0-indexed ``next_epoch``."""
