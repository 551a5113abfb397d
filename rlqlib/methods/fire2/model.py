"""FIRe² (Wang et al., TIFS 2024), the third method of the training harness: its network, FAR, losses and transform.

The engineering source is ``fire2-spec`` (the official code at 00ffdec); FFM's clustering lives in
:mod:`rlqlib.methods.fire2.ffm`, the schedule and the training epochs in :mod:`rlqlib.methods.fire2.method`
(:class:`~rlqlib.methods.fire2.method.FIRe2Method`, the :class:`~rlqlib.methods.base.Method` of
``model.variant == "fire2"``).

* **Model** (:class:`FIRe2Net`, docs/fire2-spec.md §1): one ResNet trunk from
  :data:`rlqlib.methods.backbone.BACKBONES` (last stride 1), max+avg pooling, a BN neck (weight 1, bias 0 and
  frozen) whose output ``feat`` feeds every loss and is the eval-mode output, an identity classifier Linear(D, N_id,
  no bias, std 0.001), and the train-only FAR head (own frozen-bias BN neck + classifier).
* **FAR** (:func:`recompose`, docs/fire2-spec.md §3): the layer4 map is cut into P horizontal stripes, each
  instance-normalised (unbiased variance + 1e−6, statistics detached) and re-styled with the statistics of the same
  stripe of a donor drawn uniformly among the batch members with *another* fine-grained id; K copies, k-major.
* **Losses** (docs/fire2-spec.md §4): stage 1 L_id (label-smoothed CE); stage 2 L_id + L_tri (batch-hard, margin
  0.3, Euclidean on the post-BN feature) + L_attr (:func:`attr_aware_loss`) + 0.3 · L_FAR (label-smoothed CE on the
  recomposed features' logits, the content image's identity).
* **Schedule** (docs/fire2-spec.md §5, :mod:`rlqlib.methods.fire2.method`): Adam (lr 3.5e−4, wd 5e−4) with linear
  warm-up from 0.01 and step decay (:func:`~rlqlib.methods.fire2.method.lr_at`); from stage 2 on, every epoch
  re-clusters (FFM), rebuilds the cosine fine-grained classifier from the cluster centres and re-creates Adam
  (moments reset), as the reference does.
* **Transform** (docs/fire2-spec.md §5): flip (0.5) → zero pad 10 + random crop → normalise → random erasing (0.5,
  fill 0), batched on the device (:func:`fire2_augment`).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from rlqlib.data.transforms import normalize, random_erase, random_flip
from rlqlib.methods.backbone import POOLINGS, build_trunk
from rlqlib.methods.model_config import ModelConfig

log = logging.getLogger(__name__)

IN_EPS = 1e-6  # added to the stripe variance before the square root (docs/fire2-spec.md §3)


# ------------------------------------------------------------------------------------------ model


def _neck(dim: int) -> nn.BatchNorm1d:
    bn = nn.BatchNorm1d(dim)  # weight 1, bias 0 (reference: kaiming init of BN)
    bn.bias.requires_grad_(False)
    return bn


def _classifier(dim: int, num_classes: int) -> nn.Linear:
    fc = nn.Linear(dim, num_classes, bias=False)
    nn.init.normal_(fc.weight, 0.0, 0.001)
    return fc


class FIRe2Net(nn.Module):
    """FIRe²'s network (docs/fire2-spec.md §1); built by :func:`rlqlib.methods.registry.build_model` for
    ``variant="fire2"``.

    Submodules: ``trunk`` (stem … layer4), ``bottleneck``, ``classifier``, ``far_bottleneck``, ``far_classifier``.

    Attributes:
        feature_dim: D (4096 for ResNet-50 with maxavg).
        inference_dim: width of the eval-mode output (= D).
    """

    def __init__(self, cfg: ModelConfig, trunk: Mapping[str, Tensor] | None = None) -> None:
        super().__init__()
        self.cfg = cfg
        pieces, channels = build_trunk(cfg.backbone, cfg.pretrained, cfg.last_stride, trunk)
        self.trunk = nn.Sequential(pieces["stem"], pieces["layer2"], pieces["layer3"], pieces["layer4"])
        self.pool = POOLINGS[cfg.pooling][0]
        self.feature_dim = self.inference_dim = POOLINGS[cfg.pooling][1] * channels
        self.bottleneck = _neck(self.feature_dim)
        self.classifier = _classifier(self.feature_dim, cfg.num_ids)
        self.far_bottleneck = _neck(self.feature_dim)
        self.far_classifier = _classifier(self.feature_dim, cfg.num_ids)

    def inference_modules(self) -> list[nn.Module]:
        """The parts the eval-mode forward uses."""
        return [self.trunk, self.bottleneck]

    def forward(self, x: Tensor, fgids: Tensor | None = None, generator: torch.Generator | None = None,
                parts: int = 2, times: int = 1) -> Tensor | dict[str, Tensor]:
        """Run the network on normalised images ``x`` (B, 3, H, W).

        The trunk follows any surrounding autocast; pooling, necks, classifiers and FAR run in float32.

        Args:
            fgids: (B,) fine-grained ids; in train mode, given ⇒ the FAR branch runs (stage 2).
            generator: draws FAR's donors (on the batch's device).
            parts, times: FAR's P and K.

        Returns:
            eval mode: ``feat`` (B, D), the post-BN feature. Train mode: a dict with ``feat`` (B, D), ``logits``
            (B, N_id) and, with ``fgids``, ``logits_far`` (K·B, N_id) and ``far_self_donors`` (() long: rows with no
            other fine-grained id in the batch, which keep their own statistics).
        """
        fmap = self.trunk(x)  # (B, C, h, w)
        with torch.autocast(fmap.device.type, enabled=False):
            fmap = fmap.float()
            feat = self.bottleneck(self.pool(fmap))  # (B, D)
            if not self.training:
                return feat
            out = {"feat": feat, "logits": self.classifier(feat)}  # (B, N_id)
            if fgids is not None:
                mixed, n_self = recompose(fmap, fgids, parts, times, generator)  # (K·B, C, P·h', w)
                out["logits_far"] = self.far_classifier(self.far_bottleneck(self.pool(mixed)))  # (K·B, N_id)
                out["far_self_donors"] = n_self
            return out


class FgClassifier(nn.Module):
    """The fine-grained classifier (docs/fire2-spec.md §1, reference ``FgClassifier``): cosines of the L2-normalised
    feature and weight rows, no bias; the weights start as the FFM cluster centres and the module is rebuilt every
    epoch.

    Args:
        centres: (F, D) cluster centres (copied).
    """

    def __init__(self, centres: Tensor) -> None:
        super().__init__()
        self.weight = nn.Parameter(centres.detach().clone())  # (F, D)

    def forward(self, feat: Tensor) -> Tensor:
        """Cosines (B, F) of the features ``feat`` (B, D)."""
        return F.linear(F.normalize(feat, dim=1), F.normalize(self.weight, dim=1))


def recompose(fmap: Tensor, fgids: Tensor, parts: int = 2, times: int = 1,
              generator: torch.Generator | None = None) -> tuple[Tensor, Tensor]:
    """FAR's attribute recomposition (docs/fire2-spec.md §3).

    Stripe p of sample b (rows p·h … (p+1)·h − 1, h = ⌊H/P⌋; rows past P·h are dropped) becomes
    (X_bp − μ_bp) / σ_bp · σ_dp + μ_dp, with μ, σ the per-channel spatial mean and sqrt(unbiased var + 1e−6),
    both detached, and d a donor drawn uniformly, independently per stripe and without replacement across the K
    copies, among the batch rows whose fine-grained id differs from b's. A row without such a donor (the whole
    batch one fine-grained class) keeps its own statistics; those rows are counted.

    Args:
        fmap: (B, C, H, W) layer4 map (gradient flows through X only).
        fgids: (B,) fine-grained ids.
        parts, times: P and K.
        generator: source of the donor draws.

    Returns:
        ((K·B, C, P·h, W) recomposed maps, copy-major; () long count of rows without a donor).
    """
    b, c, hh, w = fmap.shape
    h = hh // parts
    if h < 1 or h * w < 2:
        raise ValueError(f"FAR needs stripes of >= 2 positions: map {hh}x{w} cut into {parts} parts; use fewer "
                         "fire2.parts or a larger input")
    x = fmap[:, :, : parts * h].reshape(b, c, parts, h, w)  # (B, C, P, h, W)
    mu = x.mean(dim=(3, 4), keepdim=True).detach()  # (B, C, P, 1, 1)
    sig = (x.var(dim=(3, 4), keepdim=True) + IN_EPS).sqrt().detach()  # (B, C, P, 1, 1), unbiased
    content = (x - mu) / sig  # (B, C, P, h, W)
    other = fgids[:, None] != fgids[None, :]  # (B, B)
    alone = ~other.any(dim=1)  # (B,)
    allowed = other | (alone[:, None] & torch.eye(b, dtype=torch.bool, device=fmap.device))
    if times > int(allowed.sum(1).min()):
        raise ValueError(f"FAR: {times} recompositions without replacement need as many donors per row; some row "
                         f"has {int(allowed.sum(1).min())}: lower fire2.times")
    draws = torch.multinomial(allowed.float().repeat(parts, 1), times, replacement=False,
                              generator=generator)  # (P·B, K)
    donor = draws.view(parts, b, times).permute(2, 1, 0)  # (K, B, P)
    stripe = torch.arange(parts, device=fmap.device)  # (P,)
    new_mu = mu[:, :, :, 0, 0].permute(0, 2, 1)[donor, stripe]  # (K, B, P, C)
    new_sig = sig[:, :, :, 0, 0].permute(0, 2, 1)[donor, stripe]  # (K, B, P, C)
    shape = (times * b, parts, c, 1, 1)
    new_mu = new_mu.reshape(shape).transpose(1, 2)  # (K·B, C, P, 1, 1)
    new_sig = new_sig.reshape(shape).transpose(1, 2)
    mixed = content.repeat(times, 1, 1, 1, 1) * new_sig + new_mu  # (K·B, C, P, h, W)
    return mixed.reshape(times * b, c, parts * h, w), alone.sum()


# ------------------------------------------------------------------------------------------ losses


def triplet_euclidean(feat: Tensor, pids: Tensor, margin: float = 0.3) -> Tensor:
    """Batch-hard triplet loss on Euclidean distances (docs/fire2-spec.md §4 L_tri; reference ``TripletLoss``).

    d_ij = sqrt(max(‖f_i‖² + ‖f_j‖² − 2 f_i·f_j, 1e−12)); per anchor the largest same-id distance (itself included)
    and the smallest other-id one; loss = mean relu(d_ap − d_an + margin). An anchor without another identity in
    the batch contributes 0.

    Args:
        feat: (B, D) post-BN features.
        pids: (B,) identities.
        margin: m.
    """
    sq = feat.pow(2).sum(1)  # (B,)
    dist = (sq[:, None] + sq[None, :] - 2 * feat @ feat.t()).clamp_min(1e-12).sqrt()  # (B, B)
    same = pids[:, None] == pids[None, :]  # (B, B)
    d_ap = dist.masked_fill(~same, float("-inf")).amax(1)  # (B,)
    d_an = dist.masked_fill(same, float("inf")).amin(1)  # (B,)
    return F.relu(d_ap - d_an + margin).mean()


def attr_aware_loss(cos: Tensor, fgids: Tensor, own: Tensor, scale: float = 16.0, eps: float = 0.1) -> Tensor:
    """FFM's attribute-aware classification loss (docs/fire2-spec.md §2, reference ``AttrAwareLoss``).

    z_ij = scale · cos_ij over all F fine-grained classes; q_ij = (1 − eps)[j = c_i] + eps / |A(y_i)| · [j ∈ A(y_i)],
    A(y) the classes of sample i's identity (c_i among them); loss = −(1/B) Σ_i Σ_j q_ij log softmax(z_i)_j.
    Smoothing goes to the sibling clusters of the same person only.

    Args:
        cos: (B, F) cosines of the fine-grained classifier, in [−1, 1].
        fgids: (B,) fine-grained ids c_i.
        own: (B, F) bool, A(y_i) per row (``pid2fg[pids]``).
        scale: 1/τ.
        eps: ε.
    """
    if not bool(own.gather(1, fgids[:, None]).all()):
        raise ValueError("attr_aware_loss: a sample's fine-grained id is not among its identity's classes; build "
                         "fgids and the identity table from the same clustering")
    log_p = F.log_softmax(scale * cos, dim=1)  # (B, F)
    q = eps * own.float() / own.sum(1, keepdim=True) + (1 - eps) * F.one_hot(fgids, cos.shape[1]).float()
    return -(q * log_p).sum(1).mean()


# ------------------------------------------------------------------------------------------ data


def fire2_augment(x: Tensor, generator: torch.Generator, pad: int = 10, flip_p: float = 0.5,
                  erase_p: float = 0.5) -> Tensor:
    """The reference's train transform on already-resized images (docs/fire2-spec.md §5), per-image random, batched.

    RandomHorizontalFlip(flip_p) → Pad(pad, fill 0) → RandomCrop(H, W) (offsets uniform in 0…2·pad) → ToTensor →
    Normalize → RandomErasing(erase_p, area 0.02–0.4, aspect ≥ 0.3, fill 0).

    Args:
        x: (B, 3, H, W) uint8 on any device.
        generator: source of all randomness (drawn on its own device).

    Returns:
        (B, 3, H, W) float32 normalised images on ``x.device``.
    """
    b, _, h, w = x.shape
    x = random_flip(x, generator, flip_p)
    u = torch.rand((b, 2), generator=generator, device=generator.device, dtype=torch.float64).to(x.device)
    top = (u[:, 0] * (2 * pad + 1)).floor().long()  # (B,) in [0, 2·pad]
    left = (u[:, 1] * (2 * pad + 1)).floor().long()  # (B,)
    padded = F.pad(x, (pad, pad, pad, pad))  # (B, 3, H + 2·pad, W + 2·pad), zeros
    rows = top[:, None] + torch.arange(h, device=x.device)  # (B, H)
    cols = left[:, None] + torch.arange(w, device=x.device)  # (B, W)
    item = torch.arange(b, device=x.device)[:, None, None]  # (B, 1, 1)
    x = padded[item, :, rows[:, :, None], cols[:, None, :]].permute(0, 3, 1, 2)  # (B, 3, H, W)
    return random_erase(normalize(x.contiguous()), generator, erase_p, fill=(0.0, 0.0, 0.0), inplace=True)
