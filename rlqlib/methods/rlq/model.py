"""The networks: vanilla CAL, the two-branch Base Model (BM), BM + gender/pose (CAP) and the frozen TAD teacher.

Topology, as in the authors' code (spec §1.1–1.6); every trunk piece is sliced out of one torchvision ResNet
and the duplicated pieces are ``copy.deepcopy``'d, so all copies start from identical weights (the reference
instantiates one ImageNet ResNet per branch: the same thing when pretrained; from scratch, the CPU presets'
copies are identical where the reference's would be independent draws)::

    x ─ stem+layer1 ─┬─ layer2 ─┬─ layer3+layer4 (CAL copy) ─ pool ─ BN ─ f_cal   [external: CAL-id, clothes]
                     │          └─ layer3+layer4 (BOT copy) ─ pool ─ BN ─ f_bot ─ bot_classifier [, gender]
                     └─ layer2+layer3+layer4 (POSE copy, train-only) ─ pool ─ BN ─ f_pose ─ pose_classifier

* Last stride 1: in every layer4 copy, block 0's strided conv (``conv2`` of a Bottleneck, ``conv1`` of a
  BasicBlock) and its downsample conv get stride 1 (384×192 input ⇒ 24×12 layer4 map).
* Pooling ``maxavg``: global max and global average, concatenated max first (2048 ch ⇒ 4096-d).
* BN neck per branch (``BatchNorm1d``, weight ~ N(1, 0.02), bias 0 and trainable). Every feature a loss or the
  evaluation sees is the post-BN vector.
* In-model heads, as in the reference model object: BOT identity classifier on f_bot, pose classifier on f_pose,
  and the gender classifier (reference: outside the model; here inside, it is 8,194 parameters). The CAL
  identity classifier and the cosine clothes classifier are *external* (:func:`build_heads`), as in the
  reference: the clothes classifier has its own optimiser and both are called by the training step on f_cal.

Placements (paper Table 6, ``ModelConfig.gender_on`` / ``pose_on``):

* ``gender_on``: the 2-way gender classifier reads f_bot (``"bot"``, the final RLQ), f_cal (``"cal"``, the
  reference's ``--gender_clothes``) or the 8192-d concatenation [f_cal, f_bot] (``"both"``, the reference's
  ``--gender_overall``).
* ``pose_on``: the branch(es) the pose branch is *disentangled from*. The |cos| loss (spec §2.8) is
  mean_i |cos(f_pose_i, f_i)| for each f named in ``model.disentangle_from`` (``("f_bot",)`` for ``"bot"``, the
  final RLQ; ``("f_cal",)``; or ``("f_cal", "f_bot")`` for ``"both"``, one term each). The pose classifier always
  reads f_pose, the pose branch's own feature.

Forward (see :meth:`RLQNet.forward`): in train mode a dict of named tensors; in eval mode the inference feature
[f_cal, f_bot] (8192-d for ResNet-50; f_cal alone for vanilla CAL), not normalised (the evaluation flip-sums and
L2-normalises, spec §1.5).
"""

from __future__ import annotations

import copy
import logging
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from rlqlib.methods.tv import import_torchvision

log = logging.getLogger(__name__)

CLOTHES_SCALE = 16.0  # s = 1/τ of the cosine clothes logits; applied in the losses, not here (spec §1.3)
MODES = ("cap", "tad")


# ------------------------------------------------------------------------------------------------ registries


@dataclass(frozen=True)
class BackboneSpec:
    """A torchvision ResNet layout.

    Attributes:
        block: ``"basic"`` (BasicBlock) or ``"bottleneck"``.
        layers: blocks per stage.
        width: channel multiplier of every stage (1.0 = torchvision's 64-128-256-512 planes).
        weights: torchvision weights enum holding the ImageNet weights (IMAGENET1K_V1), None if there are none.
    """

    block: str
    layers: tuple[int, int, int, int]
    width: float = 1.0
    weights: str | None = None


BACKBONES: dict[str, BackboneSpec] = {
    "resnet50": BackboneSpec("bottleneck", (3, 4, 6, 3), 1.0, "ResNet50_Weights"),  # the paper's
    "resnet34": BackboneSpec("basic", (3, 4, 6, 3), 1.0, "ResNet34_Weights"),
    "resnet18": BackboneSpec("basic", (2, 2, 2, 2), 1.0, "ResNet18_Weights"),
    # CPU presets, from scratch: ResNet-18 at half width (32-64-128-256 ch, 2.8 M trunk parameters) ...
    "resnet_tiny": BackboneSpec("basic", (2, 2, 2, 2), 0.5),
    # ... and one block per stage at quarter width (16-32-64-128 ch, 0.31 M) for smoke runs.
    "resnet_micro": BackboneSpec("basic", (1, 1, 1, 1), 0.25),
}


@dataclass(frozen=True)
class VariantSpec:
    """Which parts a model variant has."""

    bot: bool  # second (BOT) branch with its identity classifier: the Base Model
    gender: bool  # 2-way gender classifier
    pose: bool  # pose branch (own layer2–4) with its (k+1)-way classifier


VARIANTS: dict[str, VariantSpec] = {
    "cal": VariantSpec(bot=False, gender=False, pose=False),  # vanilla CAL (spec §1.6)
    "bm": VariantSpec(bot=True, gender=False, pose=False),  # Base Model (reference resnet50_joint2)
    "bm+g": VariantSpec(bot=True, gender=True, pose=False),
    "bm+p": VariantSpec(bot=True, gender=False, pose=True),
    "rlq": VariantSpec(bot=True, gender=True, pose=True),  # BM + CAP (reference resnet50_joint3_3)
}



def _fire2_net(cfg: ModelConfig) -> nn.Module:
    from rlqlib.methods.fire2.model import FIRe2Net  # its own module (FIRe², fire2-spec §1); imported on use

    return FIRe2Net(cfg)


# Models of other methods, built by :func:`build_model` from the same ModelConfig (backbone, pretrained, pooling,
# last_stride, num_ids): name -> builder. Their names are valid ``ModelConfig.variant`` values.
MODELS: dict[str, Callable[[ModelConfig], nn.Module]] = {"fire2": _fire2_net}

GENDER_INPUTS: dict[str, tuple[str, ...]] = {"bot": ("f_bot",), "cal": ("f_cal",), "both": ("f_cal", "f_bot")}
POSE_DISENTANGLE: dict[str, tuple[str, ...]] = {"bot": ("f_bot",), "cal": ("f_cal",), "both": ("f_cal", "f_bot")}


def _pool_maxavg(x: Tensor) -> Tensor:
    return torch.cat([x.amax(dim=(2, 3)), x.mean(dim=(2, 3))], dim=1)  # (B, 2C), max first


def _pool_avg(x: Tensor) -> Tensor:
    return x.mean(dim=(2, 3))  # (B, C)


def _pool_max(x: Tensor) -> Tensor:
    return x.amax(dim=(2, 3))  # (B, C)


# name -> (function (B, C, H, W) -> (B, m·C), feature multiplier m)
POOLINGS: dict[str, tuple] = {"maxavg": (_pool_maxavg, 2), "avg": (_pool_avg, 1), "max": (_pool_max, 1)}


@dataclass(frozen=True)
class ModelConfig:
    """Architecture of one model; see :data:`MODEL_PRESETS` and the module docstring.

    Attributes:
        variant: a key of :data:`VARIANTS` (``cal``, ``bm``, ``bm+g``, ``bm+p``, ``rlq``) or of :data:`MODELS`
            (``fire2``: :class:`rlqlib.methods.fire2.model.FIRe2Net`, which ignores ``num_clothes``, ``num_pose_classes``).
        backbone: a key of :data:`BACKBONES`.
        num_ids: training identities (width of the identity classifiers).
        num_clothes: clothes classes incl. synthetic ones (width of the clothes classifier).
        num_pose_classes: k + 1 pose clusters (class 0 = no usable pose).
        gender_on: ``bot`` | ``cal`` | ``both``; only for variants with a gender head.
        pose_on: ``bot`` | ``cal`` | ``both``; only for variants with a pose branch.
        pretrained: start every trunk copy from torchvision's ImageNet weights, read from the torch hub cache.
        pooling: a key of :data:`POOLINGS`.
        last_stride: stride of layer4 (1 = the reference's, 2 = torchvision's).
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

    def __post_init__(self) -> None:
        for name, value, choices in (
            ("variant", self.variant, {**VARIANTS, **MODELS}),
            ("backbone", self.backbone, BACKBONES),
            ("gender_on", self.gender_on, GENDER_INPUTS),
            ("pose_on", self.pose_on, POSE_DISENTANGLE),
            ("pooling", self.pooling, POOLINGS),
        ):
            if value not in choices:
                raise ValueError(f"ModelConfig.{name}={value!r} is unknown; choose from {sorted(choices)}")
        for name in ("num_ids", "num_clothes", "num_pose_classes"):
            if getattr(self, name) < 1:
                raise ValueError(f"ModelConfig.{name} must be >= 1, got {getattr(self, name)}")
        if self.last_stride not in (1, 2):
            raise ValueError(f"ModelConfig.last_stride must be 1 or 2, got {self.last_stride}")
        spec = VARIANTS.get(self.variant, VariantSpec(bot=False, gender=False, pose=False))
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


# ------------------------------------------------------------------------------------------------ trunk


def _resnet_class(width: float) -> type:
    """torchvision's ResNet, with every stage's channel count scaled by ``width`` when it is not 1."""
    tv = import_torchvision()
    if width == 1.0:
        return tv.models.ResNet

    class ScaledResNet(tv.models.ResNet):
        def _make_layer(self, block, planes, blocks, stride=1, dilate=False):  # noqa: D401 (torchvision hook)
            if planes == 64:  # the first stage: also narrow the stem (ResNet.__init__ built it 64 wide)
                self.inplanes = max(1, round(64 * width))
                self.conv1 = nn.Conv2d(3, self.inplanes, kernel_size=7, stride=2, padding=3, bias=False)
                self.bn1 = self._norm_layer(self.inplanes)
            return super()._make_layer(block, max(1, round(planes * width)), blocks, stride, dilate)

    return ScaledResNet


def imagenet_weights_path(backbone: str) -> tuple[Path, str]:
    """Where the ImageNet weights of ``backbone`` must lie in the torch hub cache, and their download URL."""
    tv = import_torchvision()
    spec = BACKBONES[backbone]
    if spec.weights is None:
        raise ValueError(f"backbone {backbone!r} has no ImageNet weights")
    url = getattr(tv.models, spec.weights).IMAGENET1K_V1.url
    return Path(torch.hub.get_dir()) / "checkpoints" / url.rsplit("/", 1)[-1], url


def _load_imagenet(net: nn.Module, backbone: str) -> None:
    path, url = imagenet_weights_path(backbone)
    if not path.is_file():
        raise FileNotFoundError(
            f"ImageNet weights for {backbone} not found at {path} (nothing is downloaded). Download {url} "
            f"on a machine with internet and copy it to exactly that path (the torch hub cache, "
            f"$TORCH_HOME/hub/checkpoints/), or build the model with pretrained=False."
        )
    log.info("loading ImageNet weights for %s from %s", backbone, path)
    net.load_state_dict(torch.load(path, map_location="cpu", weights_only=True))


def _set_last_stride(layer4: nn.Sequential, stride: int) -> None:
    block = layer4[0]
    for conv in (block.conv1, block.conv2):  # Bottleneck strides conv2, BasicBlock conv1
        if conv.stride != (1, 1):
            conv.stride = (stride, stride)
    block.downsample[0].stride = (stride, stride)


def build_trunk(backbone: str, pretrained: bool = False, last_stride: int = 1) -> tuple[nn.ModuleDict, int]:
    """One torchvision ResNet sliced into ``stem`` (conv1, bn1, relu, maxpool, layer1), ``layer2``, ``layer3``,
    ``layer4``; ``fc`` and ``avgpool`` are dropped.

    Returns:
        the pieces, and the channel count of layer4's output.
    """
    spec = BACKBONES[backbone]
    tv = import_torchvision()
    block = {"basic": tv.models.resnet.BasicBlock, "bottleneck": tv.models.resnet.Bottleneck}[spec.block]
    net = _resnet_class(spec.width)(block, list(spec.layers))
    if pretrained:
        _load_imagenet(net, backbone)
    _set_last_stride(net.layer4, last_stride)
    stem = nn.Sequential(net.conv1, net.bn1, net.relu, net.maxpool, net.layer1)
    pieces = nn.ModuleDict({"stem": stem, "layer2": net.layer2, "layer3": net.layer3, "layer4": net.layer4})
    return pieces, net.inplanes  # layer4's output channels


# ------------------------------------------------------------------------------------------------ parts


def bn_neck(dim: int) -> nn.BatchNorm1d:
    """``BatchNorm1d`` with weight ~ N(1, 0.02), bias 0 (trainable), as the reference's branch necks."""
    bn = nn.BatchNorm1d(dim)
    nn.init.normal_(bn.weight, 1.0, 0.02)
    nn.init.zeros_(bn.bias)
    return bn


def id_linear(in_dim: int, out_dim: int) -> nn.Linear:
    """Linear classifier with bias, W ~ N(0, 0.001), b = 0 (identity, pose and gender heads)."""
    fc = nn.Linear(in_dim, out_dim)
    nn.init.normal_(fc.weight, 0.0, 0.001)
    nn.init.zeros_(fc.bias)
    return fc


class CosineClassifier(nn.Module):
    """Cosine classifier: cos(f/‖f‖, w_c/‖w_c‖), no bias, in [−1, 1]; scale by :data:`CLOTHES_SCALE` in the loss.

    Rows are initialised uniform(−1, 1) and renormalised to unit norm (reference NormalizedClassifier).
    """

    def __init__(self, in_dim: int, num_classes: int) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.empty(num_classes, in_dim))
        with torch.no_grad():
            self.weight.uniform_(-1.0, 1.0)
            self.weight.div_(self.weight.norm(dim=1, keepdim=True).clamp_min(1e-12))

    def forward(self, x: Tensor) -> Tensor:
        """Cosines (B, num_classes) of the rows of ``x`` (B, in_dim) with every class weight."""
        return F.linear(F.normalize(x, dim=1), F.normalize(self.weight, dim=1))  # (B, num_classes)


class Branch(nn.Module):
    """ResNet stages → global pooling → BN neck; returns the post-BN feature."""

    def __init__(self, layers: nn.Sequential, pooling: str, channels: int) -> None:
        super().__init__()
        self.layers = layers
        self.pooling = pooling
        self.pool = POOLINGS[pooling][0]
        self.bn = bn_neck(POOLINGS[pooling][1] * channels)

    def forward(self, x: Tensor) -> Tensor:
        """Feature (B, D) of a feature map (B, C, H, W)."""
        return self.bn(self.pool(self.layers(x)))  # (B, D)


# ------------------------------------------------------------------------------------------------ models


class RLQNet(nn.Module):
    """Vanilla CAL, the Base Model and its CAP variants, as one module whose parts follow the variant.

    Submodules: ``stem`` (conv1…layer1), ``layer2``, ``cal`` (:class:`Branch` on layer3+layer4); for two-branch
    variants ``bot`` and ``bot_classifier``; with pose ``pose`` (Branch on its own layer2–4, fed by the stem)
    and ``pose_classifier``; with gender ``gender_classifier``. Absent parts are None.

    Attributes:
        feature_dim: width D of each branch feature (4096 for ResNet-50 with maxavg).
        inference_dim: width of the eval-mode output (2D, or D for vanilla CAL).
        disentangle_from: output keys the |cos| loss pairs with ``f_pose`` (empty without a pose branch).
    """

    def __init__(self, cfg: ModelConfig) -> None:
        super().__init__()
        self.cfg = cfg
        spec = VARIANTS[cfg.variant]
        trunk, channels = build_trunk(cfg.backbone, cfg.pretrained, cfg.last_stride)
        self.stem = trunk["stem"]
        self.layer2 = trunk["layer2"]
        top = nn.Sequential(trunk["layer3"], trunk["layer4"])
        self.cal = Branch(copy.deepcopy(top), cfg.pooling, channels)
        self.feature_dim = self.cal.bn.num_features
        self.bot = Branch(copy.deepcopy(top), cfg.pooling, channels) if spec.bot else None
        self.bot_classifier = id_linear(self.feature_dim, cfg.num_ids) if spec.bot else None
        self.pose = None
        self.pose_classifier = None
        if spec.pose:
            pose_layers = nn.Sequential(copy.deepcopy(trunk["layer2"]), *copy.deepcopy(top))
            self.pose = Branch(pose_layers, cfg.pooling, channels)
            self.pose_classifier = id_linear(self.feature_dim, cfg.num_pose_classes)
        self.gender_inputs = GENDER_INPUTS[cfg.gender_on] if spec.gender else ()
        self.gender_classifier = (
            id_linear(self.feature_dim * len(self.gender_inputs), 2) if spec.gender else None
        )
        self.disentangle_from = POSE_DISENTANGLE[cfg.pose_on] if spec.pose else ()
        self.inference_dim = self.feature_dim * (2 if spec.bot else 1)

    def inference_modules(self) -> list[nn.Module]:
        """The parts the eval-mode forward uses (what a deployed model keeps)."""
        return [m for m in (self.stem, self.layer2, self.cal, self.bot) if m is not None]

    def features(self, x: Tensor) -> tuple[Tensor, Tensor | None]:
        """(f_cal, f_bot) of images ``x`` (B, 3, H, W), each (B, D); f_bot is None for vanilla CAL."""
        x2 = self.layer2(self.stem(x))  # (B, C2, H/8, W/8)
        return self.cal(x2), (self.bot(x2) if self.bot is not None else None)

    def forward(self, x: Tensor, mode: str = "cap") -> Tensor | dict[str, Tensor]:
        """Run the network on a batch of normalised images.

        Args:
            x: images (B, 3, H, W).
            mode: train mode only. ``"cap"`` (default) runs every part. ``"tad"`` (the reference's
                ``student_mode``) returns f_cal, f_bot and logits_bot and does **not execute** the pose branch
                or the gender head (the reference runs the pose branch and discards it), which saves about a
                third of the forward. Note for DDP: their parameters still get no gradient in a TAD step, and
                DDP needs ``find_unused_parameters=True`` (the reference's ``--unused_param``) for parameters
                without a gradient whether or not their module ran; single-process training is unaffected.

        Returns:
            eval mode: the inference feature (B, 2D) = [f_cal, f_bot] (f_cal (B, D) for vanilla CAL), not
            normalised. Train mode: a dict with ``f_cal`` (B, D) and, where the variant has them, ``f_bot``
            (B, D), ``logits_bot`` (B, num_ids), ``f_pose`` (B, D), ``logits_pose`` (B, num_pose_classes),
            ``logits_gender`` (B, 2). The CAL-id and clothes logits come from :func:`build_heads`.
        """
        if mode not in MODES:
            raise ValueError(f"mode={mode!r} is unknown; choose from {MODES}")
        x1 = self.stem(x)  # (B, C1, H/4, W/4)
        x2 = self.layer2(x1)  # (B, C2, H/8, W/8)
        f_cal = self.cal(x2)  # (B, D)
        f_bot = self.bot(x2) if self.bot is not None else None  # (B, D)
        if not self.training:
            return f_cal if f_bot is None else torch.cat([f_cal, f_bot], dim=1)  # (B, D) or (B, 2D)
        out = {"f_cal": f_cal}
        if f_bot is not None:
            out["f_bot"] = f_bot
            out["logits_bot"] = self.bot_classifier(f_bot)  # (B, num_ids)
        if mode == "tad":
            return out
        if self.pose is not None:
            out["f_pose"] = self.pose(x1)  # (B, D)
            out["logits_pose"] = self.pose_classifier(out["f_pose"])  # (B, num_pose_classes)
        if self.gender_classifier is not None:
            g_in = torch.cat([out[k] for k in self.gender_inputs], dim=1)  # (B, D) or (B, 2D)
            out["logits_gender"] = self.gender_classifier(g_in)  # (B, 2)
        return out


class Heads(nn.Module):
    """The heads outside the model object (as in the reference), both on f_cal.

    Attributes:
        cal_classifier: CAL identity classifier, Linear (D → num_ids); main optimiser.
        clothes_classifier: :class:`CosineClassifier` (D → num_clothes); its own optimiser (spec §3.1).
    """

    def __init__(self, feature_dim: int, num_ids: int, num_clothes: int) -> None:
        super().__init__()
        self.cal_classifier = id_linear(feature_dim, num_ids)
        self.clothes_classifier = CosineClassifier(feature_dim, num_clothes)


class Teacher(nn.Module):
    """A frozen two-branch model for TAD: eval mode forever, no gradients, returns (f_cal, f_bot).

    ``train()`` on the teacher (or on a parent module) keeps it in eval mode, so its BN running statistics
    never change. The forward runs under ``torch.no_grad()``; its outputs carry no graph.
    """

    def __init__(self, model: RLQNet) -> None:
        super().__init__()
        if getattr(model, "bot", None) is None:
            raise ValueError("the TAD teacher must be a two-branch model (variant bm or larger), not vanilla CAL")
        self.net = model.requires_grad_(False)
        self.train(False)

    def train(self, mode: bool = True) -> Teacher:  # noqa: ARG002 - always eval
        return super().train(False)

    def forward(self, x: Tensor) -> tuple[Tensor, Tensor]:
        """(f_cal, f_bot), each (B, D), of the HQ images ``x`` (B, 3, H, W)."""
        with torch.no_grad():
            return self.net.features(x)


def make_teacher(model: RLQNet) -> Teacher:
    """Freeze ``model`` in place (``eval()``, ``requires_grad_(False)``) and wrap it as a :class:`Teacher`.

    Load the teacher checkpoint into ``model`` first. A model with a pose branch (the reference's "BM + CGAL"
    teacher) is accepted; its pose branch and heads are never run.
    """
    return Teacher(model)


# ------------------------------------------------------------------------------------------------ builders


def feature_dim(cfg: ModelConfig) -> int:
    """Width D of one branch feature: pooled channels of layer4 (4096 for ResNet-50 with maxavg)."""
    spec = BACKBONES[cfg.backbone]
    channels = max(1, round(512 * spec.width)) * (4 if spec.block == "bottleneck" else 1)
    return POOLINGS[cfg.pooling][1] * channels


def build_model(cfg: ModelConfig, seed: int = 0) -> RLQNet:
    """Build the model of ``cfg``; random initialisation is drawn from ``seed`` (the global RNG is untouched).

    Build on the CPU (or under ``torch.device("meta")`` to count parameters) and move it afterwards. A variant of
    :data:`MODELS` (``fire2``) builds that method's network.
    """
    with torch.random.fork_rng(devices=[]):
        torch.default_generator.manual_seed(seed)
        return MODELS[cfg.variant](cfg) if cfg.variant in MODELS else RLQNet(cfg)


def build_heads(cfg: ModelConfig, seed: int = 1) -> Heads:
    """Build the external heads (CAL-id and clothes classifiers) for ``cfg``, initialised from ``seed``."""
    with torch.random.fork_rng(devices=[]):
        torch.default_generator.manual_seed(seed)
        return Heads(feature_dim(cfg), cfg.num_ids, cfg.num_clothes)


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
        ``heads.cal_classifier`` and ``heads.clothes_classifier``, which are not in ``params``).
    """
    cfg = ModelConfig(
        variant=variant, backbone=backbone, num_ids=num_ids, num_clothes=num_clothes,
        num_pose_classes=num_pose, gender_on=gender_on, pose_on=pose_on,
    )
    with torch.device("meta"):
        model = build_model(cfg)
        heads = build_heads(cfg) if variant not in MODELS else nn.Module()  # FIRe²: no external heads
    by_part = {name: _numel([m]) for name, m in model.named_children()}
    by_part.update({f"heads.{name}": _numel([m]) for name, m in heads.named_children()})
    return {
        "params": _numel([model]),
        "params_inference": _numel(model.inference_modules()),
        "by_part": by_part,
    }
