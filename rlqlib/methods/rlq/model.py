"""The networks: vanilla CAL, the two-branch Base Model (BM), BM + gender/pose (CAP) and the frozen TAD teacher.

Topology, as in the authors' code (docs/spec.md §1.1–1.6); every trunk piece is sliced out of one torchvision ResNet
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
* ``pose_on``: the branch(es) the pose branch is *disentangled from*. The |cos| loss (docs/spec.md §2.8) is
  mean_i |cos(f_pose_i, f_i)| for each f named in ``model.disentangle_from`` (``("f_bot",)`` for ``"bot"``, the
  final RLQ; ``("f_cal",)``; or ``("f_cal", "f_bot")`` for ``"both"``, one term each). The pose classifier always
  reads f_pose, the pose branch's own feature.

Forward (see :meth:`RLQNet.forward`): in train mode a dict of named tensors; in eval mode the inference feature
[f_cal, f_bot] (8192-d for ResNet-50; f_cal alone for vanilla CAL), not normalised (the evaluation flip-sums and
L2-normalises, docs/spec.md §1.5).
"""

from __future__ import annotations

import copy
from collections.abc import Mapping

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from rlqlib.methods.backbone import POOLINGS, build_trunk, layer4_channels, seeded
from rlqlib.methods.model_config import GENDER_INPUTS, MODEL_VARIANTS, POSE_DISENTANGLE, ModelConfig, VariantSpec

CLOTHES_SCALE = 16.0  # s = 1/τ of the cosine clothes logits; applied in the losses, not here (docs/spec.md §1.3)
MODES = ("cap", "tad")

# The model variants this module builds (the RLQ/CAL family of :data:`rlqlib.methods.model_config.MODEL_VARIANTS`).
VARIANTS: dict[str, VariantSpec] = {k: v for k, v in MODEL_VARIANTS.items() if v.method == "rlq"}


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

    def forward(self, x: Tensor, weight_grad: bool = True) -> Tensor:
        """Cosines (B, num_classes) of the rows of ``x`` (B, in_dim) with every class weight.

        ``weight_grad=False`` sends no gradient to the class weights (same values): for the passes whose weight
        gradient the clothes optimiser discards anyway (the adversarial and TAD terms; it zeroes its gradients
        right before its own backward), which saves normalising the (C, D) weight's backward every step.
        """
        weight = self.weight if weight_grad else self.weight.detach()
        # x_n · w_c / ‖w_c‖ — the same cosines as linear(x_n, normalize(w)), without materialising the normalised
        # (C, D) weight and its backward (C reaches 11,560 with the cloth replica's classes)
        norms = weight.norm(dim=1).clamp_min(1e-12)  # (num_classes,)
        return F.linear(F.normalize(x, dim=1), weight) / norms  # (B, num_classes)


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

    def __init__(self, cfg: ModelConfig, trunk: Mapping[str, Tensor] | None = None) -> None:
        super().__init__()
        self.cfg = cfg
        if cfg.variant not in VARIANTS:
            raise ValueError(f"RLQNet builds the variants {sorted(VARIANTS)}, not {cfg.variant!r} (another method's "
                             "network: rlqlib.methods.registry.build_model builds any variant)")
        spec = VARIANTS[cfg.variant]
        pieces, channels = build_trunk(cfg.backbone, cfg.pretrained, cfg.last_stride, trunk)
        self.stem = pieces["stem"]
        self.layer2 = pieces["layer2"]
        top = nn.Sequential(pieces["layer3"], pieces["layer4"])
        self.cal = Branch(copy.deepcopy(top), cfg.pooling, channels)
        self.feature_dim = self.cal.bn.num_features
        self.bot = Branch(copy.deepcopy(top), cfg.pooling, channels) if spec.bot else None
        self.bot_classifier = id_linear(self.feature_dim, cfg.num_ids) if spec.bot else None
        self.pose = None
        self.pose_classifier = None
        if spec.pose:
            pose_layers = nn.Sequential(copy.deepcopy(pieces["layer2"]), *copy.deepcopy(top))
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
        clothes_classifier: :class:`CosineClassifier` (D → num_clothes); its own optimiser (docs/spec.md §3.1).
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
    return POOLINGS[cfg.pooling][1] * layer4_channels(cfg.backbone)


def build_model(cfg: ModelConfig, seed: int = 0, trunk: Mapping[str, Tensor] | None = None) -> RLQNet:
    """Build the :class:`RLQNet` of ``cfg``; random initialisation is drawn from ``seed`` (the global RNG is untouched)
    and every trunk copy starts from ``trunk`` when given (a torchvision ResNet state, :func:`trunk_state`).

    Build on the CPU (or under ``torch.device("meta")`` to count parameters) and move it afterwards. Any variant,
    FIRe²'s included: :func:`rlqlib.methods.registry.build_model`.
    """
    with seeded(seed):
        return RLQNet(cfg, trunk)


# RLQNet state-dict prefixes of the trunk → torchvision ResNet prefixes (stem = conv1, bn1, relu, maxpool, layer1;
# the CAL branch's layers = layer3, layer4)
TRUNK_PREFIXES = {"stem.0.": "conv1.", "stem.1.": "bn1.", "stem.4.": "layer1.", "layer2.": "layer2.",
                  "cal.layers.0.": "layer3.", "cal.layers.1.": "layer4."}


def trunk_state(model_state: Mapping[str, Tensor]) -> dict[str, Tensor]:
    """The trunk of a trained :class:`RLQNet` (stem, layer2 and the CAL branch's layer3 + layer4; no BN neck, no
    head) as a torchvision ResNet state (keys ``conv1``, ``bn1``, ``layer1``…``layer4``), what
    :func:`rlqlib.methods.backbone.build_trunk` starts every trunk copy from (``trunk=...``)."""
    out = {}
    for key, value in model_state.items():
        for src, dst in TRUNK_PREFIXES.items():
            if key.startswith(src):
                out[dst + key[len(src):]] = value
    return out


def build_heads(cfg: ModelConfig, seed: int = 1) -> Heads:
    """Build the external heads (CAL-id and clothes classifiers) for ``cfg``, initialised from ``seed``."""
    with seeded(seed):
        return Heads(feature_dim(cfg), cfg.num_ids, cfg.num_clothes)
