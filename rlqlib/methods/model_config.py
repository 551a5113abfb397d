"""The model section of an experiment (:class:`ModelConfig`), shared by every method, and the model variants.

:data:`MODEL_VARIANTS` names every valid ``ModelConfig.variant``: the method that trains it (a key of
:data:`rlqlib.methods.registry.METHODS`) and, for the RLQ/CAL family, which parts its network has (paper
Tables 2, 5, 8; :mod:`rlqlib.methods.rlq.model`). ``fire2`` is FIRe²'s network (:mod:`rlqlib.methods.fire2.model`),
which reads ``backbone``, ``pretrained``, ``pooling``, ``last_stride`` and ``num_ids`` only.
"""

from __future__ import annotations

from dataclasses import dataclass

from rlqlib.methods.backbone import BACKBONES, POOLINGS


@dataclass(frozen=True)
class VariantSpec:
    """One model variant: the method that trains it and the parts its network has.

    Attributes:
        method: key of :data:`rlqlib.methods.registry.METHODS`.
        bot: second (BOT) branch with its identity classifier: the Base Model.
        gender: 2-way gender classifier.
        pose: pose branch (own layer2–4) with its (k+1)-way classifier.
    """

    method: str
    bot: bool = False
    gender: bool = False
    pose: bool = False


MODEL_VARIANTS: dict[str, VariantSpec] = {
    "cal": VariantSpec("rlq"),  # vanilla CAL (docs/spec.md §1.6)
    "bm": VariantSpec("rlq", bot=True),  # Base Model (reference resnet50_joint2)
    "bm+g": VariantSpec("rlq", bot=True, gender=True),
    "bm+p": VariantSpec("rlq", bot=True, pose=True),
    "rlq": VariantSpec("rlq", bot=True, gender=True, pose=True),  # BM + CAP (reference resnet50_joint3_3)
    "fire2": VariantSpec("fire2"),  # FIRe² (docs/fire2-spec.md §1): one branch, no gender head, no pose branch
}

INITS = ("scratch", "synthcc")  # ModelConfig.init: random/ImageNet trunk, or the shared SynthCC-pretrained trunk
GENDER_INPUTS: dict[str, tuple[str, ...]] = {"bot": ("f_bot",), "cal": ("f_cal",), "both": ("f_cal", "f_bot")}
POSE_DISENTANGLE: dict[str, tuple[str, ...]] = {"bot": ("f_bot",), "cal": ("f_cal",), "both": ("f_cal", "f_bot")}


@dataclass(frozen=True)
class ModelConfig:
    """Architecture of one model; see :data:`MODEL_PRESETS` and :mod:`rlqlib.methods.rlq.model`.

    Attributes:
        variant: a key of :data:`MODEL_VARIANTS` (``cal``, ``bm``, ``bm+g``, ``bm+p``, ``rlq``; ``fire2``:
            :class:`rlqlib.methods.fire2.model.FIRe2Net`, which ignores ``num_clothes``, ``num_pose_classes``).
        backbone: a key of :data:`rlqlib.methods.backbone.BACKBONES`.
        num_ids: training identities (width of the identity classifiers).
        num_clothes: clothes classes incl. synthetic ones (width of the clothes classifier).
        num_pose_classes: k + 1 pose clusters (class 0 = no usable pose).
        gender_on: ``bot`` | ``cal`` | ``both``; only for variants with a gender head.
        pose_on: ``bot`` | ``cal`` | ``both``; only for variants with a pose branch.
        pretrained: start every trunk copy from torchvision's ImageNet weights, read from the torch hub cache.
        pooling: a key of :data:`rlqlib.methods.backbone.POOLINGS`.
        last_stride: stride of layer4 (1 = the reference's, 2 = torchvision's).
        init: where the trunk starts: ``scratch`` (random, or ImageNet with ``pretrained``) or ``synthcc`` (every
            trunk copy starts from the trunk of the shared run pretrained on SynthCC's pretraining population,
            :mod:`rlqlib.engine.pretrain`, loaded by the trainer on a fresh start; BN necks and classifiers stay
            freshly initialised). Added later: hashed only when not ``scratch``.
        init_root: the SynthCC folder whose pretraining group that run trains on; None: ``data.root`` (the target
            is then SynthCC). A location, not hashed (the pretraining run's key enters through ``init_hash``).
        init_hash: run-cache key of that pretraining run, filled in at resolution
            (:func:`rlqlib.engine.teacher.resolve`) so that it is part of the hash; None with ``scratch``.
    """

    variant: str = "rlq"
    backbone: str = "resnet50"
    num_ids: int = 77
    num_clothes: int = 256
    num_pose_classes: int = 16
    gender_on: str = "bot"
    pose_on: str = "bot"
    pretrained: bool = False
    pooling: str = "maxavg"
    last_stride: int = 1
    init: str = "scratch"
    init_root: str | None = None
    init_hash: str | None = None

    def __post_init__(self) -> None:
        for name, value, choices in (
            ("variant", self.variant, MODEL_VARIANTS),
            ("backbone", self.backbone, BACKBONES),
            ("gender_on", self.gender_on, GENDER_INPUTS),
            ("pose_on", self.pose_on, POSE_DISENTANGLE),
            ("pooling", self.pooling, POOLINGS),
            ("init", self.init, INITS),
        ):
            if value not in choices:
                raise ValueError(f"ModelConfig.{name}={value!r} is unknown; choose from {sorted(choices)}")
        for name in ("num_ids", "num_clothes", "num_pose_classes"):
            if getattr(self, name) < 1:
                raise ValueError(f"ModelConfig.{name} must be >= 1, got {getattr(self, name)}")
        if self.last_stride not in (1, 2):
            raise ValueError(f"ModelConfig.last_stride must be 1 or 2, got {self.last_stride}")
        spec = MODEL_VARIANTS[self.variant]
        if self.gender_on != "bot" and not spec.gender:
            raise ValueError(f"gender_on={self.gender_on!r} needs a gender head; variant {self.variant!r} has none")
        if self.pose_on != "bot" and not spec.pose:
            raise ValueError(f"pose_on={self.pose_on!r} needs a pose branch; variant {self.variant!r} has none")
        if self.pretrained and BACKBONES[self.backbone].weights is None:
            with_weights = sorted(k for k, v in BACKBONES.items() if v.weights)
            raise ValueError(
                f"backbone {self.backbone!r} has no ImageNet weights; use pretrained=False or one of {with_weights}"
            )


MODEL_PRESETS: dict[str, ModelConfig] = {
    "smoke": ModelConfig(backbone="resnet_micro"),
    "cpu": ModelConfig(backbone="resnet_tiny"),
    "paper": ModelConfig(backbone="resnet50", pretrained=True),
}
