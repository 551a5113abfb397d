"""The one place rlqlib imports torchvision from.

torchvision 0.28.0 is published on PyPI only as a CUDA build. Against the CPU wheel of torch 2.13.0 its
compiled extension fails to load silently, and then ``torchvision/_meta_registrations.py`` registers a fake
kernel for ``torchvision::nms`` unconditionally and raises ``RuntimeError: operator torchvision::nms does not
exist`` at import time. Upstream: https://github.com/pytorch/vision/issues/9085 (fix PR #9086 was closed).

The workaround defines the two operator schemas the meta registrations expect, then imports again. On a
build where torchvision imports normally (any CUDA torch, or a fixed release) it does nothing. Models and
transforms work with the shim; ``torchvision.ops.nms`` and ``torchvision.io`` do not, so images are decoded
with Pillow everywhere in rlqlib.
"""

from __future__ import annotations

import sys
from types import ModuleType

import torch

_LIBRARIES: list = []  # keeps the torch.library.Library objects alive for the life of the process


def import_torchvision() -> ModuleType:
    """Return the ``torchvision`` module, applying the issue-9085 workaround when it is needed."""
    try:
        import torchvision

        return torchvision
    except RuntimeError as err:
        if "torchvision::nms" not in str(err):
            raise
    for name in [m for m in sys.modules if m == "torchvision" or m.startswith("torchvision.")]:
        del sys.modules[name]
    lib = torch.library.Library("torchvision", "DEF")
    lib.define("nms(Tensor dets, Tensor scores, float iou_threshold) -> Tensor")
    lib.define("qnms(Tensor dets, Tensor scores, float iou_threshold) -> Tensor")
    _LIBRARIES.append(lib)
    import torchvision

    return torchvision
