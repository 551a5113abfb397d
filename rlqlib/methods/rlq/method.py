"""RLQ/CAL training (docs/spec.md §3.3): per epoch one TAD pass (if enabled), then one CAP pass, then the LR step.

(a) TAD: one pass over the HQ set (HQ + synthetic LQ pairs made on the device by
:class:`rlqlib.data.lq.LQSource` on the stored images with the target dataset's mix, frozen teacher on the HQ half;
:func:`rlqlib.methods.rlq.steps.tad_step`); (b) CAP: one pass over the target train set (CAL's two-step iteration,
:func:`rlqlib.methods.rlq.steps.cap_step`); (c) the MultiStepLR step. The student (model + CAL-id classifier) and
the clothes classifier have their own Adam and fp16 scaler; under DDP the student is wrapped and the clothes
classifier's gradient is averaged by hand. Every variant of the family (vanilla CAL, BM, BM + gender/pose, RLQ)
trains here; the terms and switches come from the :class:`~rlqlib.methods.base.Recipe`.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from typing import Any

import torch
from torch import nn

from rlqlib.methods.base import Bar, Method, Placement, Recipe, TrainData, no_bar
from rlqlib.methods.model_config import ModelConfig
from rlqlib.methods.optim import adam
from rlqlib.methods.rlq.model import VARIANTS, RLQNet, Teacher, build_heads, build_model, make_teacher
from rlqlib.methods.rlq.steps import StepContext, Student, cap_step, tad_step

# checkpoint entries of the method (besides "model"), in the order they are restored
STATE_KEYS = ("cal_classifier", "clothes_classifier", "opt", "opt_cc", "sched", "scaler", "scaler_cc")


def _means(names: list[str], sums: torch.Tensor | None, n: int) -> dict[str, float]:
    return {k: float(v) / n for k, v in zip(names, sums.tolist())} if n else {}


class RLQMethod(Method):
    """The RLQ/CAL family's training (one instance per run).

    Args:
        recipe: the run's sub-configs (``model``, ``schedule``, ``losses``, ``tad``, ``terms``, ``weights``,
            ``lq_aug`` and ``seed`` are read).
        data: the train data (``batches``, ``generator``, ``pid2clothes``; the ``hq_*`` set for TAD; ``mix``).
        place: device, AMP, memory layout, DDP world size.
        teacher: the teacher run's checkpoint state (``model_config``, ``model``); needed when ``tad.enabled`` and
            ``tad.teacher``.

    Attributes:
        model: the :class:`~rlqlib.methods.rlq.model.RLQNet`.
        heads: the external CAL-id and clothes classifiers.
        student: model + CAL-id classifier (unwrapped), what the main Adam optimises.
        clothes_classifier: the cosine clothes head (own Adam).
        teacher: the frozen :class:`~rlqlib.methods.rlq.model.Teacher` or None.
    """

    def __init__(self, recipe: Recipe, data: TrainData, place: Placement,
                 teacher: Mapping[str, Any] | None = None) -> None:
        self.recipe, self.data, self.place = recipe, data, place
        mcfg, dev, tad = recipe.model, place.device, recipe.tad
        self.model = build_model(mcfg, recipe.seed)
        self.heads = build_heads(mcfg, recipe.seed + 1)
        self.student = Student(self.model, self.heads.cal_classifier).to(dev)
        self.clothes_classifier = self.heads.clothes_classifier.to(dev)
        if place.channels_last:
            self.student.to(memory_format=torch.channels_last)
        self.teacher = self._teacher(teacher) if tad.enabled and tad.teacher else None
        s = recipe.schedule
        self.opt = adam(self._param_groups(), lr=s.lr, weight_decay=s.weight_decay)
        self.opt_cc = adam(self.clothes_classifier.parameters(), lr=s.lr * s.heads_lr_mult, weight_decay=s.weight_decay)
        self.sched = torch.optim.lr_scheduler.MultiStepLR(self.opt, s.milestone_epochs(), gamma=s.gamma)
        self.scaler = place.grad_scaler()
        self.scaler_cc = place.grad_scaler()
        wrapped: nn.Module = self.student
        if place.world_size > 1:
            spec = VARIANTS[mcfg.variant]
            unused = tad.enabled and (spec.gender or spec.pose)  # the TAD pass skips the pose branch / gender head
            wrapped = nn.parallel.DistributedDataParallel(
                self.student, device_ids=[dev.index] if dev.type == "cuda" else None,
                find_unused_parameters=unused)
        self.ctx = StepContext(
            student=wrapped, clothes_classifier=self.clothes_classifier, teacher=self.teacher, opt=self.opt,
            opt_cc=self.opt_cc, scaler=self.scaler, scaler_cc=self.scaler_cc, loss_cfg=recipe.losses,
            weights=dict(recipe.weights), terms=tuple(recipe.terms),
            pid2clothes=torch.as_tensor(data.pid2clothes, dtype=torch.bool, device=dev), place=place, tad=tad,
            mix=data.mix, lq_aug=recipe.lq_aug, lq_aug_mix=data.lq_aug_mix,
            cos_from=tuple(self.model.disentangle_from) or ("f_bot",))

    def _param_groups(self) -> list[dict[str, Any]]:
        """The main Adam's parameter groups: the model (group 0, the schedule's rate) and the external CAL-id
        classifier at ``heads_lr_mult`` × that rate; one group, as the authors' code, when the multiplier is 1."""
        s = self.recipe.schedule
        if s.heads_lr_mult == 1:
            return [{"params": list(self.student.parameters())}]
        return [{"params": list(self.model.parameters())},
                {"params": list(self.heads.cal_classifier.parameters()), "lr": s.lr * s.heads_lr_mult}]

    @staticmethod
    def network(cfg: ModelConfig, trunk: Mapping[str, torch.Tensor] | None = None) -> nn.Module:
        """:class:`~rlqlib.methods.rlq.model.RLQNet`."""
        return RLQNet(cfg, trunk)

    @staticmethod
    def external_heads(cfg: ModelConfig) -> nn.Module:
        """The external CAL-id and clothes classifiers (:func:`~rlqlib.methods.rlq.model.build_heads`)."""
        return build_heads(cfg)

    def _teacher(self, state: Mapping[str, Any] | None) -> Teacher:
        if state is None:
            raise ValueError("this TAD run distils from a teacher: pass teacher_dir (rlqlib.engine.runs.run_or_load "
                             "trains or finds it), or set tad.teacher=false")
        net = build_model(ModelConfig(**state["model_config"]), 0)
        net.load_state_dict(state["model"])
        teacher = make_teacher(net.to(self.place.device))
        if self.place.channels_last:
            teacher.to(memory_format=torch.channels_last)
        return teacher

    # -------------------------------------------------------------------------------- passes

    def epoch(self, epoch: int, bar: Bar = no_bar) -> dict[str, dict[str, Any]]:
        """The TAD pass (if enabled) and the CAP pass of 0-indexed ``epoch``, then the LR scheduler step."""
        passes = {}
        if self.recipe.tad.enabled:
            passes["tad"] = self.tad_epoch(epoch, bar)
        passes["cap"] = self.cap_epoch(epoch, bar)
        self.sched.step()
        return passes

    def tad_epoch(self, epoch: int, bar: Bar = no_bar) -> dict[str, float]:
        """One TAD pass over the HQ set; returns mean terms, the step count and the pass's seconds."""
        t0 = time.perf_counter()
        data, dev = self.data, self.place.device
        self.student.train()
        data.hq_sampler.set_epoch(epoch)
        sums, names, n = None, [], 0
        for step, idx in enumerate(bar(data.hq_sampler, len(data.hq_sampler), f"TAD {epoch}")):
            index = torch.as_tensor(idx, dtype=torch.long, device=dev)
            hq = data.hq_images[index]  # (B,3,H,W) uint8
            lq = data.hq_lq.make(index, data.hq_generator) if data.hq_lq is not None else None  # made on raw images
            values, names = tad_step(self.ctx, hq, index, epoch=epoch, step=step, generator=data.hq_generator,
                                     lq_u8=lq)
            sums = values if sums is None else sums + values
            n += 1
        return {**_means(names, sums, n), "steps": n, "seconds": round(time.perf_counter() - t0, 3)}

    def cap_epoch(self, epoch: int, bar: Bar = no_bar) -> dict[str, float]:
        """One CAP/ReID pass over the target train set; returns mean terms, steps, clothes-optimiser steps and the
        pass's seconds."""
        t0 = time.perf_counter()
        batches = self.data.batches
        self.student.train()
        batches.set_epoch(epoch)
        cc_active = epoch >= self.recipe.schedule.cc_start_epoch()
        sums, names, n = None, [], 0
        for step, batch in enumerate(bar(batches, len(batches), f"CAP {epoch}")):
            values, names = cap_step(self.ctx, batch, cc_active=cc_active, epoch=epoch, step=step,
                                     generator=self.data.generator)
            sums = values if sums is None else sums + values
            n += 1
        cc_steps = n if (cc_active and "adv" in self.recipe.terms) else 0
        return {**_means(names, sums, n), "steps": n, "cc_steps": cc_steps,
                "seconds": round(time.perf_counter() - t0, 3)}

    def lr_at(self, epoch: int) -> float:  # noqa: ARG002 - the scheduler is at ``epoch``
        """The main optimiser's current learning rate for the model (group 0; the scheduler steps once per
        :meth:`epoch`)."""
        return self.opt.param_groups[0]["lr"]

    # -------------------------------------------------------------------------------- state

    def state_dict(self) -> dict[str, Any]:
        """External heads, both optimisers, the scheduler and both scalers, under :data:`STATE_KEYS`."""
        return {
            "cal_classifier": self.heads.cal_classifier.state_dict(),
            "clothes_classifier": self.clothes_classifier.state_dict(),
            "opt": self.opt.state_dict(), "opt_cc": self.opt_cc.state_dict(), "sched": self.sched.state_dict(),
            "scaler": self.scaler.state_dict(), "scaler_cc": self.scaler_cc.state_dict(),
        }

    def load_state_dict(self, state: Mapping[str, Any], next_epoch: int) -> None:  # noqa: ARG002
        """Restore every entry of :meth:`state_dict` (the scheduler carries the epoch)."""
        targets = {"cal_classifier": self.heads.cal_classifier, "clothes_classifier": self.clothes_classifier,
                   "opt": self.opt, "opt_cc": self.opt_cc, "sched": self.sched, "scaler": self.scaler,
                   "scaler_cc": self.scaler_cc}
        for key in STATE_KEYS:
            targets[key].load_state_dict(state[key])
