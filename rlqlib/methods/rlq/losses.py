"""The losses of RLQ on CAL as the authors' code computes them (docs/spec.md §2); paper readings as options.

Each loss is a plain function of tensors. :func:`cap_terms` and :func:`tad_terms` return dicts of
named, **unweighted** terms; :func:`weighted_sum` applies the weights from a config. Keys:

============= ===================================================== ===================================
key           term                                                  source
============= ===================================================== ===================================
id_cal        label-smoothed CE, CAL-branch identity logits         docs/spec.md §2.1
id_bot        label-smoothed CE, BOT-branch identity logits         docs/spec.md §2.1
triplet       batch-hard triplet on f_BOT, d = 1 - cos, m = 0.3     docs/spec.md §2.2
kl_branches   KL(P_BOT || P_CAL) of the two identity heads          docs/spec.md §2.5
adv           clothes-based adversarial loss on f_CAL (if active)   CAL Eq. 3 + 5, docs/spec.md §2.4
pose          label-smoothed CE, pose clusters (k + 1 classes)      docs/spec.md §2.6
gender        label-smoothed CE, gender (2 classes)                 docs/spec.md §2.7
cos           mean |cos(f_BOT, f_POSE)|                             RLQ Eq. 1, docs/spec.md §2.8
distill_*     ||n(T) - n(S)||^2, {cal, bot} x {hq, lq}              RLQ Eq. 2, docs/spec.md §2.9
ss_bot/cal    KL(P_HQ || P_LQ), BOT / CAL identity logits           RLQ Eq. 3, docs/spec.md §2.10
ss_clothes    KL(P_HQ || P_LQ), clothes logits (inert by default)   RLQ Eq. 3, docs/spec.md §2.10, §9.1
============= ===================================================== ===================================

Where code and papers differ, :class:`LossConfig` chooses (preset ``"reference"``, the default, is
the code; ``"paper"`` the papers' reading):

* ``kl_reduction`` / ``ss_reduction``: ``"reference"`` = 0.64 tau^2 sum(KL) / (rows * classes), i.e.
  an effective weight of 0.4096 / N_id on the per-sample KL; ``"batchmean"`` = per-sample KL
  averaged over rows.
* ``tad_clothes_term``: the reference computes the clothes logits of L_S on *detached* f_CAL and
  never steps the clothes head with the TAD optimiser, so the term moves nothing. ``"reference"``
  keeps its value (for logs) without a graph; ``"paper"`` computes it on the live f_CAL so it trains
  the backbone.

The clothes-classifier loss :func:`clothes_loss` trains a separate head in its own optimiser step;
the training loop calls it directly, it is not among the backbone terms.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor

CAP_KEYS = ("id_cal", "id_bot", "triplet", "kl_branches", "adv", "pose", "gender", "cos")
TAD_KEYS = ("distill_cal_hq", "distill_cal_lq", "distill_bot_hq", "distill_bot_lq",
            "ss_bot", "ss_cal", "ss_clothes")
KNOWN_TERMS = frozenset(CAP_KEYS + TAD_KEYS)
KL_REDUCTIONS = ("reference", "batchmean")
TAD_CLOTHES_TERMS = ("reference", "paper")
REFERENCE_KL_LAMBDA = 0.64  # the reference's extra factor on both KL losses (its ``lambda1``)


@dataclass(frozen=True)
class LossConfig:
    """Loss hyper-parameters (the weights live with the training config, see :func:`weighted_sum`).

    Attributes:
        label_smoothing: epsilon of the label-smoothed CE (CAL-id, BOT-id, pose, gender).
        triplet_margin: margin m of the batch-hard triplet loss.
        clothes_scale: s = 1/tau of the cosine clothes head (clothes and adversarial losses).
        adv_epsilon: epsilon of CAL Eq. 5.
        kl_tau, kl_reduction: temperature and normalisation of ``kl_branches``.
        ss_tau, ss_reduction: the same for the TAD self-supervision L_S.
        tad_clothes_term: ``"reference"`` (inert clothes term of L_S) or ``"paper"`` (live).
        tad_clothes_scale: factor on the clothes cosines entering L_S (the reference feeds raw
            cosines, no x16, which makes those distributions nearly uniform).
    """

    label_smoothing: float = 0.1
    triplet_margin: float = 0.3
    clothes_scale: float = 16.0
    adv_epsilon: float = 0.1
    kl_tau: float = 0.8
    kl_reduction: str = "reference"
    ss_tau: float = 0.8
    ss_reduction: str = "reference"
    tad_clothes_term: str = "reference"
    tad_clothes_scale: float = 1.0

    def __post_init__(self) -> None:
        for name in ("kl_reduction", "ss_reduction"):
            if getattr(self, name) not in KL_REDUCTIONS:
                raise ValueError(f"LossConfig.{name} must be one of {KL_REDUCTIONS}, "
                                 f"got {getattr(self, name)!r}")
        if self.tad_clothes_term not in TAD_CLOTHES_TERMS:
            raise ValueError(f"LossConfig.tad_clothes_term must be one of {TAD_CLOTHES_TERMS}, "
                             f"got {self.tad_clothes_term!r}")
        if not (0.0 <= self.label_smoothing < 1.0 and 0.0 <= self.adv_epsilon <= 1.0):
            raise ValueError("LossConfig: label_smoothing must lie in [0, 1), "
                             "adv_epsilon in [0, 1]")
        if min(self.kl_tau, self.ss_tau, self.clothes_scale) <= 0:
            raise ValueError("LossConfig: kl_tau, ss_tau and clothes_scale must be positive")


LOSS_PRESETS: dict[str, LossConfig] = {
    "reference": LossConfig(),
    "paper": LossConfig(kl_reduction="batchmean", ss_reduction="batchmean",
                        tad_clothes_term="paper"),
}


# ------------------------------------------------------------------------------------------- checks


def _check_labels(labels: Tensor, n: int, k: int, what: str) -> Tensor:
    if labels.dim() != 1 or labels.shape[0] != n:
        raise ValueError(f"{what}: labels must have shape ({n},), got {tuple(labels.shape)}")
    if labels.dtype.is_floating_point or labels.dtype == torch.bool:
        raise ValueError(f"{what}: labels must be an integer tensor, got {labels.dtype}")
    if n and (int(labels.min()) < 0 or int(labels.max()) >= k):
        raise ValueError(f"{what}: labels must lie in [0, {k}), got [{int(labels.min())}, "
                         f"{int(labels.max())}]; the head/table must cover the whole label set")
    return labels.long()


def _check_logits_labels(logits: Tensor, labels: Tensor, what: str) -> Tensor:
    if logits.dim() != 2:
        raise ValueError(f"{what}: logits must be (N, K), got shape {tuple(logits.shape)}")
    return _check_labels(labels, logits.shape[0], logits.shape[1], what)


def _check_cosines(cos: Tensor, what: str) -> None:
    top = float(cos.detach().abs().max()) if cos.numel() else 0.0
    if top > 1.0 + 1e-4:
        raise ValueError(f"{what}: expected cosines in [-1, 1] (the scale is applied inside the "
                         f"loss), got |value| up to {top:.3g}; pass the clothes head's output "
                         "unscaled")


def _check_pair(a: Tensor, b: Tensor, what: str) -> None:
    if a.dim() != 2 or a.shape != b.shape:
        raise ValueError(f"{what}: expected two (N, D) tensors of one shape, "
                         f"got {tuple(a.shape)} and {tuple(b.shape)}")


# ----------------------------------------------------------------------------------- classification


def cross_entropy_smooth(logits: Tensor, targets: Tensor, eps: float = 0.1) -> Tensor:
    """Label-smoothed cross-entropy (docs/spec.md §2.1; CAL-id, BOT-id, pose and gender in the reference).

    t = (1 - eps) onehot(y) + eps / K; loss = mean over rows of sum_k -t_k log softmax(z)_k.

    Args:
        logits: (N, K) class scores.
        targets: (N,) integer labels in [0, K).
        eps: smoothing epsilon.

    Returns:
        Scalar loss.
    """
    targets = _check_logits_labels(logits, targets, "cross_entropy_smooth")
    log_p = F.log_softmax(logits, dim=1)  # (N, K)
    nll = -log_p.gather(1, targets[:, None]).squeeze(1)  # (N,)
    uniform = -log_p.mean(dim=1)  # (N,) = sum_k -(1/K) log p_k
    return ((1.0 - eps) * nll + eps * uniform).mean()


def pose_ce(logits_pose: Tensor, pose_labels: Tensor, eps: float = 0.1) -> Tensor:
    """Pose-cluster CE (docs/spec.md §2.6): :func:`cross_entropy_smooth` over the k + 1 clusters.

    Class 0 ("noisy/no pose") is an ordinary class, not ignored.

    Args:
        logits_pose: (N, k + 1).
        pose_labels: (N,) cluster ids in [0, k].
        eps: smoothing epsilon.
    """
    return cross_entropy_smooth(logits_pose, pose_labels, eps)


def gender_ce(logits_gender: Tensor, gender: Tensor, eps: float = 0.1) -> Tensor:
    """Gender CE (docs/spec.md §2.7): :func:`cross_entropy_smooth` with K = 2 (1 = male, 0 = female).

    Args:
        logits_gender: (N, 2).
        gender: (N,) labels in {0, 1}.
        eps: smoothing epsilon.
    """
    if logits_gender.dim() != 2 or logits_gender.shape[1] != 2:
        raise ValueError(f"gender_ce: logits must be (N, 2), got {tuple(logits_gender.shape)}")
    return cross_entropy_smooth(logits_gender, gender, eps)


def clothes_loss(cos_logits: Tensor, clothes_ids: Tensor, scale: float = 16.0,
                 margin: float = 0.0) -> Tensor:
    """Clothes-classifier loss L_C (CAL Eq. 2; docs/spec.md §2.3): CE(scale (cos - margin onehot), y).

    CosFace with margin 0 (NormFace) in the reference. The caller passes cosines computed on
    *detached* f_CAL, so only the clothes head learns. Mean over rows (CAL Eq. 2 writes a sum).

    Args:
        cos_logits: (N, C) cosines of L2-normalised features and clothes prototypes, in [-1, 1].
        clothes_ids: (N,) clothes labels in [0, C).
        scale: s = 1/tau (16).
        margin: CosFace additive margin.

    Returns:
        Scalar loss.
    """
    clothes_ids = _check_logits_labels(cos_logits, clothes_ids, "clothes_loss")
    _check_cosines(cos_logits, "clothes_loss")
    onehot = F.one_hot(clothes_ids, cos_logits.shape[1]).to(cos_logits.dtype)  # (N, C)
    return F.cross_entropy(scale * (cos_logits - margin * onehot), clothes_ids)


def cal_adversarial(cos_logits: Tensor, clothes_ids: Tensor, pids: Tensor, pid2clothes: Tensor,
                    scale: float = 16.0, eps: float = 0.1) -> Tensor:
    """Clothes-based adversarial loss L_CA (CAL Eq. 3 with the weights q of Eq. 5; docs/spec.md §2.4).

    With s_ic = scale cos_ic, P(i) the clothes classes of sample i's identity and N(i) the others:
    l_ic = s_ic - log(exp(s_ic) + sum_{j in N(i)} exp(s_ij)),
    q_ic = (1 - eps) [c = y_i] + eps / |P(i)| [c in P(i)], loss = mean_i sum_c -q_ic l_ic.
    The code averages over rows where Eq. 3 sums. A per-row max shift keeps it stable at any scale.
    The caller passes the just-updated clothes head's cosines on the *live* f_CAL.

    Args:
        cos_logits: (N, C) cosines in [-1, 1].
        clothes_ids: (N,) clothes labels; each must belong to its sample's identity in
            ``pid2clothes``.
        pids: (N,) identity labels, rows of ``pid2clothes``.
        pid2clothes: (N_id, C) bool, True where clothes class c belongs to identity p.
        scale: s = 1/tau (16).
        eps: epsilon of Eq. 5.

    Returns:
        Scalar loss.
    """
    clothes_ids = _check_logits_labels(cos_logits, clothes_ids, "cal_adversarial (clothes_ids)")
    _check_cosines(cos_logits, "cal_adversarial")
    n, c = cos_logits.shape
    if pid2clothes.dtype != torch.bool or pid2clothes.dim() != 2 or pid2clothes.shape[1] != c:
        raise ValueError(f"cal_adversarial: pid2clothes must be bool (N_id, {c}), "
                         f"got {pid2clothes.dtype} {tuple(pid2clothes.shape)}")
    pids = _check_labels(pids, n, pid2clothes.shape[0], "cal_adversarial (pids vs pid2clothes)")
    pos = pid2clothes.to(cos_logits.device)[pids]  # (N, C) bool, P(i)
    own = pos.gather(1, clothes_ids[:, None]).squeeze(1)  # (N,)
    if not bool(own.all()):
        i = int((~own).nonzero()[0, 0])
        raise ValueError(f"cal_adversarial: row {i} has clothes id {int(clothes_ids[i])}, which "
                         f"pid2clothes does not give to its identity {int(pids[i])}; build both "
                         "from the same label tables")
    s = scale * cos_logits  # (N, C)
    shift = s.detach().amax(dim=1, keepdim=True)  # (N, 1)
    e = torch.exp(s - shift)  # (N, C)
    neg = (e * ~pos).sum(dim=1, keepdim=True)  # (N, 1) sum over N(i)
    log_prob = s - shift - torch.log(e + neg)  # (N, C) l_ic
    q = eps * pos.to(s.dtype) / pos.sum(dim=1, keepdim=True)  # (N, C)
    q = q + (1.0 - eps) * F.one_hot(clothes_ids, c).to(s.dtype)
    return -(q * log_prob).sum(dim=1).mean()


# ------------------------------------------------------------------------------------------- metric


def triplet_batch_hard(features: Tensor, pids: Tensor, margin: float = 0.3,
                       gallery_features: Tensor | None = None,
                       gallery_pids: Tensor | None = None) -> Tensor:
    """Batch-hard triplet loss on L2-normalised features, d = 1 - cos (docs/spec.md §2.2).

    Per anchor: d_ap = max d to a same-pid gallery row (the anchor itself included), d_an = min d to
    an other-pid row; loss = mean relu(d_ap - d_an + margin). An anchor with no other-pid row (or,
    with an external gallery, no same-pid row) contributes 0.

    DDP: the reference mines over the rows all-gathered from every GPU with gradient only into this
    GPU's rows. Pass as gallery the gathered rows whose local slice is the live ``features`` and
    whose remote slices are detached; the gallery is used as given (re-normalising it is
    idempotent).

    Args:
        features: (N, D) anchors (post-BN f_BOT).
        pids: (N,) identity labels.
        margin: m.
        gallery_features: (G, D), default ``features``.
        gallery_pids: (G,), default ``pids``; give both gallery arguments or neither.

    Returns:
        Scalar loss.
    """
    if (gallery_features is None) != (gallery_pids is None):
        raise ValueError("triplet_batch_hard: give gallery_features and gallery_pids together, "
                         "or neither")
    if gallery_features is None:
        gallery_features, gallery_pids = features, pids
    if features.dim() != 2 or gallery_features.dim() != 2 \
            or features.shape[1] != gallery_features.shape[1]:
        raise ValueError(f"triplet_batch_hard: features (N, D) and gallery (G, D) must share D, "
                         f"got {tuple(features.shape)} and {tuple(gallery_features.shape)}")
    if pids.shape != features.shape[:1] or gallery_pids.shape != gallery_features.shape[:1]:
        raise ValueError(f"triplet_batch_hard: need one pid per row, got pids {tuple(pids.shape)}, "
                         f"gallery_pids {tuple(gallery_pids.shape)}")
    x = F.normalize(features, p=2, dim=1)  # (N, D)
    g = F.normalize(gallery_features, p=2, dim=1)  # (G, D)
    dist = 1.0 - x @ g.t()  # (N, G), in [0, 2]
    same = pids[:, None] == gallery_pids[None, :]  # (N, G)
    d_ap = dist.masked_fill(~same, float("-inf")).max(dim=1).values  # (N,)
    d_an = dist.masked_fill(same, float("inf")).min(dim=1).values  # (N,)
    return F.relu(d_ap - d_an + margin).mean()


# ---------------------------------------------------------------------------------------------- KL


def _tempered_kl(p_logits: Tensor, q_logits: Tensor, tau: float, reduction: str,
                 what: str) -> Tensor:
    _check_pair(p_logits, q_logits, what)
    if reduction not in KL_REDUCTIONS:
        raise ValueError(f"{what}: reduction must be one of {KL_REDUCTIONS}, got {reduction!r}")
    log_p = F.log_softmax(p_logits / tau, dim=1)  # (N, K)
    log_q = F.log_softmax(q_logits / tau, dim=1)  # (N, K)
    kl = log_p.exp() * (log_p - log_q)  # (N, K) elementwise contributions
    if reduction == "reference":
        return REFERENCE_KL_LAMBDA * tau * tau * kl.sum() / kl.numel()
    return kl.sum(dim=1).mean()


def kl_branches(logits_bot: Tensor, logits_cal: Tensor, tau: float = 0.8,
                reduction: str = "reference") -> Tensor:
    """KL(P_BOT || P_CAL) of the identity heads, P = softmax(z / tau) (docs/spec.md §2.5; RLQ §3.4 (1)).

    Neither side is detached. ``"reference"``: 0.64 tau^2 sum_{rows, classes} p_bot (log p_bot - log
    p_cal) / (rows * classes), the code's value; ``"batchmean"``: the per-sample KL averaged over
    rows, the paper's "weight 1" reading.

    Args:
        logits_bot: (N, N_id) BOT-branch identity logits (the reference side of the KL).
        logits_cal: (N, N_id) CAL-branch identity logits.
        tau: temperature.
        reduction: ``"reference"`` or ``"batchmean"``.

    Returns:
        Scalar loss.
    """
    return _tempered_kl(logits_bot, logits_cal, tau, reduction, "kl_branches")


def kl_self_supervision(logits_hq: Tensor, logits_lq: Tensor, tau: float = 0.8,
                        reduction: str = "reference") -> Tensor:
    """One term of L_S, KL(P_HQ || P_LQ) (RLQ Eq. 3; docs/spec.md §2.10), normalised as :func:`kl_branches`.

    HQ plays the teacher, LQ the student; nothing is detached, as in the reference.

    Args:
        logits_hq: (B, K) student logits on the HQ images.
        logits_lq: (B, K) student logits on their LQ versions, same row order.
        tau: temperature.
        reduction: ``"reference"`` or ``"batchmean"``.

    Returns:
        Scalar loss.
    """
    return _tempered_kl(logits_hq, logits_lq, tau, reduction, "kl_self_supervision")


# ---------------------------------------------------------------------------------- feature losses


def cos_disentangle(f_bot: Tensor, f_pose: Tensor) -> Tensor:
    """L_Cos = mean over rows of |cos(f_BOT, f_POSE)| (RLQ Eq. 1; docs/spec.md §2.8).

    Args:
        f_bot: (N, D) BOT-branch features (post-BN).
        f_pose: (N, D) pose-branch features (post-BN).

    Returns:
        Scalar loss in [0, 1].
    """
    _check_pair(f_bot, f_pose, "cos_disentangle")
    return F.cosine_similarity(f_bot, f_pose, dim=1).abs().mean()  # (N,) -> ()


def distill_l2(teacher: Tensor, student: Tensor) -> Tensor:
    """One distillation term ||n(T) - n(S)||^2 (RLQ Eq. 2; docs/spec.md §2.9), n = L2 normalisation.

    Squared distance summed over dims, mean over rows. Nothing is detached: run the frozen teacher
    under ``torch.no_grad()``.

    Args:
        teacher: (N, D) teacher features.
        student: (N, D) student features of the same rows.

    Returns:
        Scalar loss in [0, 4].
    """
    _check_pair(teacher, student, "distill_l2")
    diff = F.normalize(teacher, p=2, dim=1) - F.normalize(student, p=2, dim=1)  # (N, D)
    return diff.pow(2).sum(dim=1).mean()


def tad_distillation(t_cal: Tensor, t_bot: Tensor, s_cal_hq: Tensor, s_cal_lq: Tensor,
                     s_bot_hq: Tensor, s_bot_lq: Tensor) -> dict[str, Tensor]:
    """L_D (RLQ Eq. 2): the teacher's HQ features against the student's HQ and LQ ones, per branch.

    Args:
        t_cal, t_bot: (B, D) teacher CAL / BOT features of the HQ images.
        s_cal_hq, s_cal_lq: (B, D) student CAL features of the HQ images and of their LQ versions.
        s_bot_hq, s_bot_lq: (B, D) the same for the BOT branch.

    Returns:
        ``distill_cal_hq, distill_cal_lq, distill_bot_hq, distill_bot_lq``: unweighted scalars.
    """
    return {"distill_cal_hq": distill_l2(t_cal, s_cal_hq),
            "distill_cal_lq": distill_l2(t_cal, s_cal_lq),
            "distill_bot_hq": distill_l2(t_bot, s_bot_hq),
            "distill_bot_lq": distill_l2(t_bot, s_bot_lq)}


def tad_self_supervision(student_hq: Mapping[str, Tensor], student_lq: Mapping[str, Tensor],
                         clothes_classifier: Callable[[Tensor], Tensor],
                         cfg: LossConfig = LOSS_PRESETS["reference"]) -> dict[str, Tensor]:
    """L_S (RLQ Eq. 3): KL(P_HQ || P_LQ) of the student's BOT-id, CAL-id and clothes logits.

    ``cfg.tad_clothes_term`` decides the clothes term (docs/spec.md §2.10, §9.1):

    * ``"reference"``: the authors' code evaluates the clothes head on detached f_CAL, and that head
      is not in the TAD optimiser (its gradient is zeroed before the next clothes step), so the term
      moves no parameter. Here it is evaluated under ``torch.no_grad()``: the same value, no
      gradient anywhere.
    * ``"paper"``: evaluated on the live f_CAL, so the gradient reaches the backbone. The clothes
      head's weights get a gradient as well; zero it before the clothes-classifier step, as the
      reference does.

    Args:
        student_hq: ``f_cal`` (B, D), ``logits_cal`` and ``logits_bot`` (B, N_id) on the HQ images.
        student_lq: the same on the LQ versions.
        clothes_classifier: the cosine clothes head, (B, D) -> (B, C) cosines.
        cfg: ``ss_tau``, ``ss_reduction``, ``tad_clothes_term`` and ``tad_clothes_scale`` are used.

    Returns:
        ``ss_bot, ss_cal, ss_clothes``: unweighted scalars.
    """
    keys = ("f_cal", "logits_cal", "logits_bot")
    hq = {k: _need(student_hq, k, "tad_self_supervision", "student_hq") for k in keys}
    lq = {k: _need(student_lq, k, "tad_self_supervision", "student_lq") for k in keys}
    tau, red = cfg.ss_tau, cfg.ss_reduction
    out = {"ss_bot": kl_self_supervision(hq["logits_bot"], lq["logits_bot"], tau, red),
           "ss_cal": kl_self_supervision(hq["logits_cal"], lq["logits_cal"], tau, red)}
    live = torch.is_grad_enabled() and cfg.tad_clothes_term == "paper"
    with torch.set_grad_enabled(live):
        c_hq = cfg.tad_clothes_scale * clothes_classifier(hq["f_cal"])  # (B, C)
        c_lq = cfg.tad_clothes_scale * clothes_classifier(lq["f_cal"])  # (B, C)
        out["ss_clothes"] = kl_self_supervision(c_hq, c_lq, tau, red)
    return out


# ------------------------------------------------------------------------------------- aggregators


def _need(d: Mapping[str, Tensor], key: str, term: str, where: str) -> Tensor:
    if key not in d:
        raise KeyError(f"{term} needs {where}[{key!r}], which is missing (present: {sorted(d)}); "
                       f"provide it or leave {term!r} out of the enabled terms")
    return d[key]


def cap_terms(outputs: Mapping[str, Tensor], batch: Mapping[str, Tensor],
              cfg: LossConfig = LOSS_PRESETS["reference"], *, adv_active: bool,
              clothes_cos: Tensor | None = None, pid2clothes: Tensor | None = None,
              enabled: Collection[str] = CAP_KEYS, cos_from: Sequence[str] = ("f_bot",),
              gallery_f_bot: Tensor | None = None,
              gallery_pids: Tensor | None = None) -> dict[str, Tensor]:
    """Backbone terms of a CAP/ReID iteration (docs/spec.md §2, ``train_cal_pair23_ind_2feat``), unweighted.

    Keys, in :data:`CAP_KEYS` order, each only if in ``enabled``; ``adv`` only when ``adv_active``
    (the reference: epoch >= 25, 0-indexed). What each term reads:

    =========== ===================================================================================
    id_cal      outputs["logits_cal"] (N, N_id), batch["pids"] (N,)
    id_bot      outputs["logits_bot"] (N, N_id), batch["pids"]
    triplet     outputs["f_bot"] (N, D), batch["pids"], optional DDP gallery
    kl_branches outputs["logits_bot"], outputs["logits_cal"]
    adv         clothes_cos (N, C) on live f_CAL, pid2clothes, batch["clothes_ids"], batch["pids"]
    pose        outputs["logits_pose"] (N, k + 1), batch["pose"] (N,)
    gender      outputs["logits_gender"] (N, 2), batch["gender"] (N,)
    cos         outputs["f_pose"] and outputs[f] for f in ``cos_from``, summed (one |cos| each)
    =========== ===================================================================================

    Args:
        outputs: model and head outputs, keys as above.
        batch: labels, keys as above.
        cfg: loss configuration.
        adv_active: whether the adversarial loss is on in this epoch.
        clothes_cos: cosines of the just-updated clothes head on the live f_CAL (adv only).
        pid2clothes: (N_id, C) bool identity-to-clothes table (adv only).
        enabled: terms to compute, a subset of :data:`CAP_KEYS` (the BM: no pose, gender, cos).
        cos_from: features the pose branch is disentangled from (``("f_bot",)`` in the final RLQ;
            the reference's "both" option sums the f_cal and f_bot terms).
        gallery_f_bot, gallery_pids: optional DDP gallery of the triplet, see
            :func:`triplet_batch_hard`.

    Returns:
        Dict of scalar terms.
    """
    unknown = set(enabled) - set(CAP_KEYS)
    if unknown:
        raise ValueError(f"cap_terms: unknown terms {sorted(unknown)}; known: {CAP_KEYS}")
    eps, out = cfg.label_smoothing, {}
    for name in CAP_KEYS:
        if name not in enabled or (name == "adv" and not adv_active):
            continue
        o = lambda k: _need(outputs, k, name, "outputs")  # noqa: E731
        b = lambda k: _need(batch, k, name, "batch")  # noqa: E731
        if name in ("id_cal", "id_bot"):
            out[name] = cross_entropy_smooth(o(name.replace("id_", "logits_")), b("pids"), eps)
        elif name == "triplet":
            out[name] = triplet_batch_hard(o("f_bot"), b("pids"), cfg.triplet_margin, gallery_f_bot,
                                           gallery_pids)
        elif name == "kl_branches":
            out[name] = kl_branches(o("logits_bot"), o("logits_cal"), cfg.kl_tau, cfg.kl_reduction)
        elif name == "adv":
            if clothes_cos is None or pid2clothes is None:
                raise ValueError("cap_terms: adv_active=True needs clothes_cos (clothes head on "
                                 "the live f_CAL) and pid2clothes")
            out[name] = cal_adversarial(clothes_cos, b("clothes_ids"), b("pids"), pid2clothes,
                                        cfg.clothes_scale, cfg.adv_epsilon)
        elif name == "pose":
            out[name] = pose_ce(o("logits_pose"), b("pose"), eps)
        elif name == "gender":
            out[name] = gender_ce(o("logits_gender"), b("gender"), eps)
        else:  # "cos"
            if not cos_from:
                raise ValueError("cap_terms: cos_from is empty; name the features to disentangle "
                                 "the pose branch from")
            out[name] = sum(cos_disentangle(o(f), o("f_pose")) for f in cos_from)
    return out


def tad_terms(student_hq: Mapping[str, Tensor], student_lq: Mapping[str, Tensor],
              teacher: Mapping[str, Tensor], clothes_classifier: Callable[[Tensor], Tensor],
              cfg: LossConfig = LOSS_PRESETS["reference"]) -> dict[str, Tensor]:
    """Terms of one TAD iteration (``train_cal_pair9_ind_2feat``): L_D (4) + L_S (3), unweighted.

    Keys: :data:`TAD_KEYS`. ``ss_clothes`` has no gradient under ``tad_clothes_term="reference"``.

    Args:
        student_hq: ``f_cal``, ``f_bot`` (B, D), ``logits_cal``, ``logits_bot`` (B, N_id) on the HQ
            images (split from the joint 2B forward with :func:`split_hq_lq`).
        student_lq: the same on the LQ versions.
        teacher: ``f_cal``, ``f_bot`` (B, D) of the frozen teacher on the HQ images.
        clothes_classifier: the student's cosine clothes head, (B, D) -> (B, C).
        cfg: loss configuration.

    Returns:
        Dict of scalar terms.
    """
    def n(d: Mapping[str, Tensor], key: str, where: str) -> Tensor:
        return _need(d, key, "tad_terms", where)

    hq, lq = "student_hq", "student_lq"
    out = tad_distillation(n(teacher, "f_cal", "teacher"), n(teacher, "f_bot", "teacher"),
                           n(student_hq, "f_cal", hq), n(student_lq, "f_cal", lq),
                           n(student_hq, "f_bot", hq), n(student_lq, "f_bot", lq))
    out.update(tad_self_supervision(student_hq, student_lq, clothes_classifier, cfg))
    return out


def split_hq_lq(outputs: Mapping[str, Tensor],
                n_hq: int) -> tuple[dict[str, Tensor], dict[str, Tensor]]:
    """Split the outputs of a joint [HQ; LQ] forward (first ``n_hq`` rows HQ, the rest LQ).

    Args:
        outputs: name -> (2 n_hq, ...) tensors.
        n_hq: number of HQ rows.
    """
    for k, v in outputs.items():
        if v.shape[0] != 2 * n_hq:
            raise ValueError(f"split_hq_lq: outputs[{k!r}] has {v.shape[0]} rows, "
                             f"expected 2 * {n_hq}")
    return {k: v[:n_hq] for k, v in outputs.items()}, {k: v[n_hq:] for k, v in outputs.items()}


def weighted_sum(terms: Mapping[str, Tensor], weights: Mapping[str, float]) -> Tensor:
    """Total loss, sum_k weights[k] terms[k].

    Every term needs a weight (a missing one is an error, never a silent 0) and every weight must
    name a known term (:data:`KNOWN_TERMS`), so typos fail loudly. Weights of known terms absent
    from ``terms`` are fine (``adv`` before it starts; CAP and TAD weights in one mapping).

    Args:
        terms: name -> scalar tensor, from :func:`cap_terms` or :func:`tad_terms`.
        weights: name -> float.

    Returns:
        Scalar tensor.
    """
    unknown = sorted(set(weights) - KNOWN_TERMS)
    if unknown:
        raise KeyError(f"weighted_sum: unknown loss names in weights: {unknown}; "
                       f"known: {sorted(KNOWN_TERMS)}")
    missing = [k for k in terms if k not in weights]
    if missing:
        raise KeyError(f"weighted_sum: no weight for terms {missing}; add them to the config "
                       "(weight 0 to switch one off)")
    if not terms:
        raise ValueError("weighted_sum: no terms to sum")
    for k, v in terms.items():
        if v.dim() != 0:
            raise ValueError(f"weighted_sum: term {k!r} must be a scalar, "
                             f"got shape {tuple(v.shape)}")
    return sum(float(weights[k]) * v for k, v in terms.items())
