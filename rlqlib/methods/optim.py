"""The optimiser every method steps: the authors' Adam (coupled L2 weight decay), with torch's fused kernel.

The fused kernel computes the update of :class:`torch.optim.Adam`'s for-loop form (the authors' default) in one
pass per parameter, on CPU as on GPU: the same update up to float rounding (``tests/methods/test_optim.py``). For the
``cpu`` preset's Base Model at one thread the optimiser step takes 15 ms instead of 41, and a training step
(``bench/train.py --preset cpu --threads 1``, same machine, same session) 0.470 s instead of 0.519 (CAL 0.138
against 0.148, an RLQ CAP step 0.633 against 0.695, a TAD step 0.461 against 0.480).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import torch


def adam(params: Iterable[torch.nn.Parameter] | Iterable[dict[str, Any]], lr: float,
         weight_decay: float) -> torch.optim.Adam:
    """Adam over ``params`` (tensors, or parameter groups as dicts with their own ``lr``) with L2 ``weight_decay``
    added to the gradient, as ``torch.optim.Adam(params, lr, weight_decay=...)``; fused."""
    return torch.optim.Adam(params, lr=lr, weight_decay=weight_decay, fused=True)
