"""An exponential moving average of a model's weights (Polyak–Ruppert averaging), updated after every optimiser step
that changes the model, and put into the model at the end of the run (``schedule.ema_decay``; 0 = off, the paper's
and the authors' code). Not in RLQ, CAL or FIRe²: an option for short runs, whose last steps otherwise decide where
in the loss basin a run ends (docs/synthcc-probes.md)::

    ema = WeightAverage(model, decay=0.98)
    with ema.tracking(model):          # every optimizer.step() over a parameter of model updates the average
        train(...)
    ema.copy_to(model)                 # the averaged weights (BN running statistics averaged too)

The average after update t (1, 2, …) is ``a_t = d_t · a_{t-1} + (1 − d_t) · w_t`` with ``d_t = min(decay, 1 − 1/t)``:
the plain mean of the weights after steps 1…t while ``t ≤ 1/(1 − decay)`` (the starting weights, new classifiers at
their random start, get no share), an exponential average with a horizon of ``1/(1 − decay)`` steps after that.
Every floating-point entry of the state dict is averaged; integer entries (BN's ``num_batches_tracked``) are copied.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Mapping
from typing import Any

import torch
from torch.optim.optimizer import register_optimizer_step_post_hook
from torch import nn


class WeightAverage:
    """The moving average of ``model``'s state dict (a copy on the model's device).

    Args:
        model: the network whose weights are averaged.
        decay: the average's decay per update, in [0, 1).
    """

    def __init__(self, model: nn.Module, decay: float) -> None:
        if not 0 <= decay < 1:
            raise ValueError(f"ema decay {decay!r}: give a number in [0, 1) (0: no averaging)")
        self.decay = float(decay)
        self.updates = 0
        self.shadow = {k: v.detach().clone() for k, v in model.state_dict().items()}

    def decay_at(self, t: int) -> float:
        """The decay of update ``t`` (1-indexed): ``1 − 1/t`` (a running mean) capped at ``decay``."""
        return min(self.decay, 1.0 - 1.0 / t)

    @torch.no_grad()
    def update(self, model: nn.Module) -> None:
        """Move the average towards ``model``'s current weights by one step."""
        self.updates += 1
        d = self.decay_at(self.updates)
        live = model.state_dict()
        avg = [self.shadow[k] for k, v in live.items() if v.is_floating_point()]
        cur = [v.detach() for v in live.values() if v.is_floating_point()]
        if avg:
            torch._foreach_lerp_(avg, cur, 1.0 - d)
        for k, v in live.items():
            if not v.is_floating_point():
                self.shadow[k].copy_(v)

    def copy_to(self, model: nn.Module) -> None:
        """Load the averaged weights into ``model``."""
        model.load_state_dict(self.shadow)

    def state_dict(self) -> dict[str, Any]:
        return {"decay": self.decay, "updates": self.updates, "shadow": self.shadow}

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        self.decay, self.updates = float(state["decay"]), int(state["updates"])
        for k, v in state["shadow"].items():
            self.shadow[k].copy_(v)

    @contextlib.contextmanager
    def tracking(self, model: nn.Module) -> Iterator[None]:
        """Within the block, every ``optimizer.step()`` whose parameters include one of ``model``'s updates the
        average (a process-wide optimiser hook, removed on exit; methods re-create optimisers, so no single one is
        hooked)."""
        mine = {id(p) for p in model.parameters()}

        def hook(opt: torch.optim.Optimizer, args: Any, kwargs: Any) -> None:  # noqa: ARG001 - the hook signature
            if any(id(p) in mine for g in opt.param_groups for p in g["params"]):
                self.update(model)

        handle = register_optimizer_step_post_hook(hook)
        try:
            yield
        finally:
            handle.remove()

