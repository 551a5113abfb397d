"""FIRe²'s training (docs/fire2-spec.md §4–§5): the two stages, per-epoch FFM re-clustering, its optimiser and schedule.

The :class:`~rlqlib.methods.base.Method` of ``model.variant == "fire2"``; the network, FAR, losses and transform
are in :mod:`rlqlib.methods.fire2.model`, the clustering in :mod:`rlqlib.methods.fire2.ffm`. Its one pass per
epoch is recorded under ``cap`` like RLQ's CAP pass.

* **Stage 1** (epochs before ``fire2.fg_start``): L_id only.
* **Stage 2**: every epoch starts by embedding and clustering the train set (FFM), rebuilding the cosine
  fine-grained classifier from the cluster centres and re-creating Adam (moments reset), as the reference does;
  then L_id + L_tri + L_attr + λ4 · L_FAR.
* **Schedule** (:func:`lr_at`): Adam (lr 3.5e−4, wd 5e−4) with linear warm-up from 0.01 and step decay, set on the
  optimiser at the start of each epoch.

Resuming: a stage-2 epoch starts by re-clustering from the restored weights (deterministic), so only the stage-1
optimiser, the fp16 scaler and the generators need the checkpoint.
"""

from __future__ import annotations

import bisect
import time
from collections.abc import Mapping
from typing import Any

import torch
from torch import Tensor, nn

from rlqlib.methods.backbone import seeded
from rlqlib.methods.base import Bar, Method, Placement, Recipe, TrainData, check_finite, no_bar
from rlqlib.methods.fire2 import ffm as FFM
from rlqlib.methods.fire2.config import FIRe2Config
from rlqlib.methods.fire2.model import FgClassifier, FIRe2Net, attr_aware_loss, fire2_augment, triplet_euclidean
from rlqlib.methods.model_config import ModelConfig
from rlqlib.methods.optim import adam
from rlqlib.methods.rlq.losses import cross_entropy_smooth
from rlqlib.methods.schedule import ScheduleConfig


def lr_at(epoch: int, schedule: ScheduleConfig, fire2: FIRe2Config) -> float:
    """The learning rate of 0-indexed ``epoch`` (reference ``WarmupMultiStepLR`` with last_epoch = epoch):
    lr · warm(e) · γ^{#milestones ≤ e}, warm(e) = f + (1 − f) · e / W for e < W warm-up epochs, else 1."""
    warm = fire2.warmup_epochs(schedule.epochs)
    factor = 1.0
    if epoch < warm:
        alpha = epoch / warm
        factor = fire2.warmup_factor * (1 - alpha) + alpha
    return schedule.lr * factor * schedule.gamma ** bisect.bisect_right(schedule.milestone_epochs(), epoch)


class FIRe2Method(Method):
    """FIRe²'s training (one instance per run; single-process).

    Args:
        recipe: the run's sub-configs (``model``, ``schedule``, ``fire2``, ``losses`` and ``seed`` are read).
        data: the train data (``images``, ``pids``, ``batches.sampler`` for the P×K index batches, ``generator``
            for the augmentation and FAR's donors).
        place: device, AMP, memory layout; ``eval_batch_size`` for FFM's features.
        teacher: unused (FIRe² distils from no run).

    Attributes:
        model: the :class:`~rlqlib.methods.fire2.model.FIRe2Net`.
        pids: (N,) long train identities on the device.
        fg: the fine-grained labels of the last FFM pass (None before stage 2).
        fg_classifier: the fine-grained classifier built from their centres (None without ``fire2.attr_loss``).
        opt: the current Adam (re-created every stage-2 epoch).
    """

    def __init__(self, recipe: Recipe, data: TrainData, place: Placement,
                 teacher: Mapping[str, Any] | None = None) -> None:  # noqa: ARG002 - no teacher
        if place.world_size > 1:
            raise ValueError("FIRe² runs are single-process (its per-epoch FFM and optimiser rebuilds are not "
                             "distributed); run without torchrun")
        if recipe.schedule.heads_lr_mult != 1:
            raise ValueError(f"schedule.heads_lr_mult={recipe.schedule.heads_lr_mult}: it sets the rate of the RLQ/CAL "
                             "family's external classifiers, which FIRe² has not; set schedule.heads_lr_mult=1")
        with seeded(recipe.seed):
            model = self.network(recipe.model)
        self.model = model.to(place.device)
        if place.channels_last:
            self.model.to(memory_format=torch.channels_last)
        self.f2, self.schedule, self.losses, self.place = recipe.fire2, recipe.schedule, recipe.losses, place
        self.images, self.sampler, self.generator = data.images, data.batches.sampler, data.generator
        self.device = place.device
        self.pids = torch.as_tensor(data.pids, dtype=torch.long, device=self.device)
        self.num_ids = int(recipe.model.num_ids)
        self.scaler = place.grad_scaler()
        self.fg: FFM.FgLabels | None = None
        self.fg_classifier: FgClassifier | None = None
        self.opt = self._adam([])

    @staticmethod
    def network(cfg: ModelConfig, trunk: Mapping[str, torch.Tensor] | None = None) -> nn.Module:
        """:class:`~rlqlib.methods.fire2.model.FIRe2Net`."""
        return FIRe2Net(cfg, trunk)

    # -------------------------------------------------------------------------------- schedule

    def lr_at(self, epoch: int) -> float:
        """Learning rate of 0-indexed ``epoch`` (:func:`lr_at`)."""
        return lr_at(epoch, self.schedule, self.f2)

    def stage2(self, epoch: int) -> bool:
        """Whether 0-indexed ``epoch`` is in stage 2 (triplet, FFM, FAR)."""
        return epoch >= self.f2.fg_start_epoch(self.schedule.epochs)

    def _adam(self, extra: list[nn.Parameter]) -> torch.optim.Adam:
        params = [p for p in self.model.parameters() if p.requires_grad] + extra
        return adam(params, lr=self.schedule.lr, weight_decay=self.schedule.weight_decay)

    # -------------------------------------------------------------------------------- FFM

    def mine(self) -> FFM.FgLabels:
        """FFM (docs/fire2-spec.md §2): cluster the current train features; rebuild the fine-grained classifier from the
        centres and re-create Adam over model + fine-grained classifier, as the reference does every stage-2 epoch."""
        place = self.place
        amp = place.amp_dtype if self.device.type == "cuda" else None  # CPU: exact float32, as the evaluation
        feats = FFM.train_features(self.model, self.images, place.eval_batch_size, self.device, amp,
                                   place.channels_last)  # (N, D)
        f2 = self.f2
        self.fg = FFM.cluster_identities(feats, self.pids, self.num_ids, f2.k1, f2.k2, f2.eps, f2.knn_padding)
        # FAR alone needs the fine-grained ids, not the classifier
        self.fg_classifier = FgClassifier(self.fg.centres) if f2.attr_loss else None
        self.opt = self._adam(list(self.fg_classifier.parameters()) if f2.attr_loss else [])
        return self.fg

    # -------------------------------------------------------------------------------- passes

    def epoch(self, epoch: int, bar: Bar = no_bar) -> dict[str, dict[str, Any]]:
        """FIRe²'s one pass of 0-indexed ``epoch`` (:meth:`train_pass`), recorded as ``cap``."""
        return {"cap": self.train_pass(epoch, bar)}

    def train_pass(self, epoch: int, bar: Bar = no_bar) -> dict[str, Any]:
        """One training pass of 0-indexed ``epoch``; returns mean loss terms, ``steps``, in stage 2 ``fg_classes``
        and ``far_self_donors``, and the timings ``ffm_seconds`` and ``seconds``."""
        t0 = time.perf_counter()
        record: dict[str, Any] = {}
        stage2 = self.stage2(epoch)
        if stage2:
            if self.f2.attr_loss or self.f2.far:
                record["fg_classes"] = self.mine().num_classes
            else:
                self.opt = self._adam([])  # the reference re-creates Adam every stage-2 epoch
            record["ffm_seconds"] = round(time.perf_counter() - t0, 3)
        for group in self.opt.param_groups:
            group["lr"] = self.lr_at(epoch)
        self.model.train()
        self.sampler.set_epoch(epoch)
        sums, names, n, n_self = None, [], 0, torch.zeros((), dtype=torch.long, device=self.device)
        for step, idx in enumerate(bar(self.sampler, len(self.sampler), f"FIRe2 {epoch}")):
            values, names, alone = self.step(torch.as_tensor(idx, dtype=torch.long, device=self.device),
                                             stage2=stage2, epoch=epoch, step=step)
            sums = values if sums is None else sums + values
            n_self += alone
            n += 1
        record.update({k: float(v) / n for k, v in zip(names, sums.tolist())} if n else {})
        if stage2 and self.f2.far:
            record["far_self_donors"] = int(n_self)
        return {**record, "steps": n, "seconds": round(time.perf_counter() - t0, 3)}

    def step(self, index: Tensor, *, stage2: bool, epoch: int, step: int) -> tuple[Tensor, list[str], Tensor]:
        """One optimisation step on the train images ``index`` (B,) (docs/fire2-spec.md §4).

        Returns:
            ((T,) unweighted term values, their names, () rows without a FAR donor).
        """
        x = fire2_augment(self.images[index.to(self.images.device)].to(self.device), self.generator,
                          self.f2.pad)  # (B, 3, H, W)
        x = self.place.layout(x)
        pids = self.pids[index]  # (B,)
        f2, eps = self.f2, self.losses.label_smoothing
        fgids = self.fg.fgids[index] if stage2 and self.fg is not None else None  # (B,)
        with self.place.autocast():
            out = self.model(x, fgids if f2.far else None, self.generator, f2.parts, f2.times)
        terms = {"id": cross_entropy_smooth(out["logits"], pids, eps)}
        weights = {"id": 1.0}
        if stage2:
            terms["triplet"] = triplet_euclidean(out["feat"], pids, self.losses.triplet_margin)
            weights["triplet"] = 1.0
            if f2.attr_loss:
                own = self.fg.pid2fg[pids]  # (B, F)
                terms["attr"] = attr_aware_loss(self.fg_classifier(out["feat"]), fgids, own, f2.scale, f2.epsilon)
                weights["attr"] = 1.0
            if f2.far:
                terms["far"] = cross_entropy_smooth(out["logits_far"], pids.repeat(f2.times), eps)
                weights["far"] = f2.far_weight
        values = check_finite(terms, phase="FIRe2", epoch=epoch, step=step, index=index)
        loss = sum(weights[k] * v for k, v in terms.items())
        self.opt.zero_grad(set_to_none=True)
        self.scaler.scale(loss).backward()
        self.scaler.step(self.opt)
        self.scaler.update()
        alone = out.get("far_self_donors", torch.zeros((), dtype=torch.long, device=self.device))
        return values, list(terms), alone

    # -------------------------------------------------------------------------------- state

    def state_dict(self) -> dict[str, Any]:
        """What a checkpoint needs besides the model and the generators: ``{"fire2": {"opt", "scaler"}}``."""
        return {"fire2": {"opt": self.opt.state_dict(), "scaler": self.scaler.state_dict()}}

    def load_state_dict(self, state: Mapping[str, Any], next_epoch: int) -> None:
        """Restore before running 0-indexed ``next_epoch``. A stage-2 epoch rebuilds its optimiser (and re-clusters)
        at its start, so the saved optimiser is loaded only when ``next_epoch`` is still in stage 1."""
        own = state["fire2"]
        self.scaler.load_state_dict(own["scaler"])
        if not self.stage2(next_epoch):
            self.opt.load_state_dict(own["opt"])
