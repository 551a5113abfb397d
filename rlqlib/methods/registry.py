"""The training methods by name, the one a model variant selects, and any variant's network and parameter counts.

``ModelConfig.variant`` picks the method through :data:`rlqlib.methods.model_config.MODEL_VARIANTS`: ``fire2`` is
FIRe², every other variant (``cal``, ``bm``, ``bm+g``, ``bm+p``, ``rlq``) the RLQ/CAL family::

    method_for("fire2")            # FIRe2Method
    net = build_model(ModelConfig(variant="bm"), seed=0)
"""

from __future__ import annotations

from collections.abc import Mapping

import torch
from torch import nn

from rlqlib.methods.backbone import seeded
from rlqlib.methods.base import Method
from rlqlib.methods.fire2.method import FIRe2Method
from rlqlib.methods.model_config import MODEL_VARIANTS, ModelConfig
from rlqlib.methods.rlq.method import RLQMethod

METHODS: dict[str, type[Method]] = {"rlq": RLQMethod, "fire2": FIRe2Method}


def method_for(variant: str) -> type[Method]:
    """The method that trains model variant ``variant``."""
    return METHODS[MODEL_VARIANTS[variant].method]


def build_model(cfg: ModelConfig, seed: int = 0, trunk: Mapping[str, torch.Tensor] | None = None) -> nn.Module:
    """The network of ``cfg`` (any variant); random initialisation is drawn from ``seed`` (the global RNG is
    untouched), and every trunk copy starts from ``trunk`` when given (a torchvision ResNet state,
    :func:`rlqlib.methods.rlq.model.trunk_state`). Build on the CPU (or under ``torch.device("meta")`` to count
    parameters) and move it afterwards."""
    with seeded(seed):
        return method_for(cfg.variant).network(cfg, trunk)


def _numel(modules) -> int:
    return sum(p.numel() for m in modules if m is not None for p in m.parameters())


def count_parameters(
    variant: str,
    backbone: str = "resnet50",
    num_ids: int = 77,
    num_clothes: int = 256,
    num_pose: int = 16,
    gender_on: str = "bot",
    pose_on: str = "bot",
) -> dict:
    """Parameter counts of a variant, built on the meta device (no memory, no weights).

    ``params`` counts the model object, as the paper's Table 8 does: trunk pieces, BN necks and the in-model
    heads (BOT-id, pose, gender); it excludes the external CAL-id and clothes classifiers, which live outside
    the reference's model object. With ResNet-50, 77 ids and 16 pose classes this gives 45,902,989 (BM,
    45.9 M), 45,911,183 (BM+G), 69,259,421 (BM+P) and 69,267,615 (RLQ, 69.3 M): 1,444,928 (stem+layer1+layer2)
    + 2 × 22,063,104 (layer3+layer4) + 2 × 8,192 (BN) + 315,469 (BOT-id) [+ 23,282,688 (pose layer2–4) +
    8,192 + 65,552 (pose head)] [+ 8,194 (gender head)].

    Returns:
        ``params``; ``params_inference`` (stem, layer2, CAL and BOT branches with their BN necks: what the
        eval-mode forward uses); ``by_part`` (every top-level part, plus the external heads under
        ``heads.cal_classifier`` and ``heads.clothes_classifier``, which are not in ``params``; FIRe² has none).
    """
    cfg = ModelConfig(
        variant=variant, backbone=backbone, num_ids=num_ids, num_clothes=num_clothes,
        num_pose_classes=num_pose, gender_on=gender_on, pose_on=pose_on,
    )
    with torch.device("meta"):
        model = build_model(cfg)
        heads = method_for(variant).external_heads(cfg)
    by_part = {name: _numel([m]) for name, m in model.named_children()}
    by_part.update({f"heads.{name}": _numel([m]) for name, m in heads.named_children()})
    return {
        "params": _numel([model]),
        "params_inference": _numel(model.inference_modules()),
        "by_part": by_part,
    }
