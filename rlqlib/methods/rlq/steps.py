"""One optimisation step of each pass: the CAP/ReID step (docs/spec.md §3.2) and the TAD step (docs/spec.md §3.3).

Both steps are plain functions over a :class:`StepContext` (the modules, optimisers and switches of a run);
:class:`rlqlib.methods.rlq.method.RLQMethod` runs the passes, :mod:`rlqlib.engine.train` keeps the data and the
checkpoints. Every loss term is computed unweighted and named (:mod:`rlqlib.methods.rlq.losses`); the weights come
from the config. A NaN/inf in any term stops the run with a :class:`~rlqlib.methods.base.NonFiniteLossError` naming
the epoch, step, term and the batch's dataset indices.

DDP (several processes): the student is wrapped in ``DistributedDataParallel``; the triplet loss mines over the
f_BOT rows all-gathered from every rank with gradient only into the local slice (the reference's behaviour);
the clothes classifier, trained outside DDP on detached features, has its gradient averaged by hand.
"""

from __future__ import annotations

from functools import partial
from collections.abc import Mapping
from dataclasses import dataclass

import torch
import torch.distributed as dist
from torch import Tensor, nn

from rlqlib.data import degrade as D
from rlqlib.data.transforms import train_augment
from rlqlib.methods.base import Placement, check_finite
from rlqlib.methods.rlq import losses as L
from rlqlib.methods.rlq.config import TADConfig

SELF_MSE = {"self_mse_cal": "f_cal", "self_mse_bot": "f_bot"}


class Student(nn.Module):
    """The trained network as one module (what DDP wraps): the model plus the external CAL-id classifier.

    ``forward(x, mode)`` returns the model's train-mode dict with ``logits_cal`` added (CAL-id logits on f_cal).
    """

    def __init__(self, model: nn.Module, cal_classifier: nn.Module) -> None:
        super().__init__()
        self.model = model
        self.cal_classifier = cal_classifier

    def forward(self, x: Tensor, mode: str = "cap") -> dict[str, Tensor]:
        out = self.model(x, mode=mode)
        out["logits_cal"] = self.cal_classifier(out["f_cal"])  # (B, N_id)
        return out


@dataclass(frozen=True)
class StepContext:
    """What a step needs; built once per run by :class:`rlqlib.methods.rlq.method.RLQMethod`.

    Attributes:
        student: :class:`Student`, possibly DDP-wrapped.
        clothes_classifier: the cosine clothes head (own optimiser ``opt_cc``).
        teacher: frozen :class:`rlqlib.methods.rlq.model.Teacher` or None.
        opt, opt_cc: main and clothes Adam.
        scaler, scaler_cc: fp16 gradient scalers (disabled unless amp = fp16).
        loss_cfg: :class:`rlqlib.methods.rlq.losses.LossConfig`.
        weights: term → weight.
        terms: enabled CAP terms.
        pid2clothes: (N_id, N_clothes) bool on the device.
        place: device, autocast, memory layout and DDP world size.
        tad: which TAD terms run (``teacher``, ``self_ss``, ``self_mse``).
        mix: degradation mix of TAD's LQ synthesis when the pass gives no LQ twins (:func:`make_pair`).
        lq_aug: probability of the ``replace``-mode LQ augmentation in the CAP step (0 with the authors'
            ``extra_view`` mode: that view is already in the batch, :class:`rlqlib.data.batches.TrainBatches`).
        lq_aug_mix: its degradation mix.
        cos_from: the features the |cos| term pairs with f_pose.
    """

    student: nn.Module
    clothes_classifier: nn.Module
    teacher: nn.Module | None
    opt: torch.optim.Optimizer
    opt_cc: torch.optim.Optimizer
    scaler: torch.amp.GradScaler
    scaler_cc: torch.amp.GradScaler
    loss_cfg: L.LossConfig
    weights: Mapping[str, float]
    terms: tuple[str, ...]
    pid2clothes: Tensor
    place: Placement
    tad: TADConfig
    mix: str = "ltcc"
    lq_aug: float = 0.0
    lq_aug_mix: str = "ltcc"
    cos_from: tuple[str, ...] = ("f_bot",)

    def loss_weights(self) -> dict[str, float]:
        """The weights :func:`rlqlib.methods.rlq.losses.weighted_sum` knows (SS_MSE weights are applied here)."""
        return {k: float(w) for k, w in self.weights.items() if k in L.KNOWN_TERMS}


def _gather_gallery(f_bot: Tensor, pids: Tensor, world_size: int) -> tuple[Tensor, Tensor]:
    """All-gathered (f_bot, pids) with the live local rows in this rank's slice (gradient only into them)."""
    feats = [torch.empty_like(f_bot) for _ in range(world_size)]
    ids = [torch.empty_like(pids) for _ in range(world_size)]
    dist.all_gather(feats, f_bot.detach().contiguous())
    dist.all_gather(ids, pids.contiguous())
    feats[dist.get_rank()] = f_bot
    return torch.cat(feats), torch.cat(ids)  # (W·N, D), (W·N,)


def _average_grads(module: nn.Module, world_size: int) -> None:
    for p in module.parameters():
        if p.grad is not None:
            dist.all_reduce(p.grad)
            p.grad.div_(world_size)


def _lq_augment(images: Tensor, ctx: StepContext, generator: torch.Generator) -> Tensor:
    """BM + LQ Aug., ``replace`` mode (not the authors' code, which adds a third view, docs/spec.md §4): degrade
    each image with probability ``ctx.lq_aug`` with the mix ``ctx.lq_aug_mix`` (applied to the normalised
    tensor; the artifacts are linear filters/resamplings whose weights sum to 1, so they commute with the
    per-channel normalisation — only the erased box gets blurred along)."""
    pick = torch.rand(images.shape[0], generator=generator, device=generator.device) < ctx.lq_aug  # (M,)
    idx = pick.nonzero().flatten().to(images.device)
    if idx.numel() == 0:
        return images
    out = images.clone()
    out[idx] = D.degrade(images[idx], generator, mix=ctx.lq_aug_mix)[0]
    return out


def cap_step(ctx: StepContext, batch: Mapping[str, Tensor], *, cc_active: bool, epoch: int, step: int,
             generator: torch.Generator) -> tuple[Tensor, list[str]]:
    """One CAP/ReID iteration in the reference's order (docs/spec.md §3.2).

    1. one forward of the M images; 2. clothes classifier on detached f_CAL → clothes loss → step the clothes
    optimiser if ``cc_active`` (only when the adversarial term is enabled); 3. clothes cosines of the just-updated
    classifier on the live f_CAL → adversarial term (if ``cc_active``); 4. backbone terms, weighted sum, one
    main-optimiser step.

    Returns:
        ((T,) term values, their names), the clothes-classifier loss named ``clothes`` included.
    """
    x = batch["images"]
    if ctx.lq_aug > 0:
        x = _lq_augment(x, ctx, generator)
    with ctx.place.autocast():
        out = ctx.student(ctx.place.layout(x), mode="cap")
    out = {k: v.float() for k, v in out.items()}
    if "f_bot" not in out:  # vanilla CAL: its triplet (Table 5) runs on f_CAL
        out["f_bot"] = out["f_cal"]
    uses_clothes = "adv" in ctx.terms  # no clothes head at all in the identity-only baseline
    train_cc = uses_clothes and cc_active
    if uses_clothes:
        with torch.set_grad_enabled(train_cc):  # before the start epoch: logged only
            cos_det = ctx.clothes_classifier(out["f_cal"].detach())  # (M, C)
            l_clothes = L.clothes_loss(cos_det, batch["clothes_ids"], ctx.loss_cfg.clothes_scale)
    if train_cc:
        ctx.opt_cc.zero_grad(set_to_none=True)
        ctx.scaler_cc.scale(l_clothes).backward()
        if ctx.place.world_size > 1:
            _average_grads(ctx.clothes_classifier, ctx.place.world_size)
        ctx.scaler_cc.step(ctx.opt_cc)
        ctx.scaler_cc.update()
    clothes_cos = ctx.clothes_classifier(out["f_cal"], weight_grad=False) if train_cc else None  # (M, C), updated head
    gallery = {}
    if "triplet" in ctx.terms and ctx.place.world_size > 1:
        g_f, g_p = _gather_gallery(out["f_bot"], batch["pids"], ctx.place.world_size)
        gallery = {"gallery_f_bot": g_f, "gallery_pids": g_p}
    terms = L.cap_terms(out, batch, ctx.loss_cfg, adv_active=train_cc, clothes_cos=clothes_cos,
                        pid2clothes=ctx.pid2clothes, enabled=ctx.terms, cos_from=ctx.cos_from, **gallery)
    logged = {**terms, "clothes": l_clothes} if uses_clothes else dict(terms)
    values = check_finite(logged, phase="CAP", epoch=epoch, step=step, index=batch["index"])
    loss = L.weighted_sum(terms, ctx.loss_weights())
    ctx.opt.zero_grad(set_to_none=True)
    ctx.scaler.scale(loss).backward()
    ctx.scaler.step(ctx.opt)
    ctx.scaler.update()
    return values, list(logged)


def make_pair(hq_u8: Tensor, generator: torch.Generator, mix: str,
              lq_u8: Tensor | None = None) -> tuple[Tensor, Tensor]:
    """HQ/LQ pair of docs/spec.md §3.6: the LQ copy is synthesised on the stored uint8 image *before* the train
    transform (``lq_u8`` when given, e.g. made on the raw image by :class:`rlqlib.data.lq.LQSource`; else from
    ``hq_u8`` with ``mix``), then HQ and LQ are augmented independently (not pixel-aligned). Returns two
    (B,3,H,W) float batches."""
    if lq_u8 is None:
        lq_u8, _ = D.degrade(hq_u8, generator, mix=mix)  # (B,3,H,W) uint8
    return train_augment(hq_u8, generator), train_augment(lq_u8, generator)


def tad_step(ctx: StepContext, hq_u8: Tensor, index: Tensor, *, epoch: int, step: int,
             generator: torch.Generator, lq_u8: Tensor | None = None) -> tuple[Tensor, list[str]]:
    """One TAD iteration (docs/spec.md §3.3): student on the 2B concatenation [HQ; LQ] in ``mode="tad"``, frozen
    teacher on the HQ half, L_D (if a teacher) + L_S (if ``self_ss``) + SS_MSE (if ``self_mse``), one step of
    the main optimiser (the same Adam as the CAP step). ``lq_u8``: the LQ twins of ``hq_u8`` (see
    :func:`make_pair`).

    Returns:
        ((T,) term values, their names).
    """
    hq, lq = make_pair(hq_u8, generator, ctx.mix, lq_u8)
    b = hq.shape[0]
    with ctx.place.autocast():
        out = ctx.student(ctx.place.layout(torch.cat([hq, lq])), mode="tad")  # 2B rows
        t_cal, t_bot = ctx.teacher(ctx.place.layout(hq)) if ctx.tad.teacher else (None, None)
    out = {k: v.float() for k, v in out.items()}
    s_hq, s_lq = L.split_hq_lq(out, b)
    terms: dict[str, Tensor] = {}
    if ctx.tad.teacher:
        terms.update(L.tad_distillation(t_cal.float(), t_bot.float(), s_hq["f_cal"], s_lq["f_cal"],
                                        s_hq["f_bot"], s_lq["f_bot"]))
    if ctx.tad.self_ss:
        terms.update(L.tad_self_supervision(s_hq, s_lq, partial(ctx.clothes_classifier, weight_grad=False), ctx.loss_cfg))
    if ctx.tad.self_mse:
        for key, feat in SELF_MSE.items():
            terms[key] = L.distill_l2(s_hq[feat], s_lq[feat])
    values = check_finite(terms, phase="TAD", epoch=epoch, step=step, index=index)
    known = {k: v for k, v in terms.items() if k not in SELF_MSE}
    loss = L.weighted_sum(known, ctx.loss_weights()) if known else 0.0
    for key in SELF_MSE:
        if key in terms:
            loss = loss + float(ctx.weights[key]) * terms[key]
    ctx.opt.zero_grad(set_to_none=True)
    ctx.scaler.scale(loss).backward()
    ctx.scaler.step(ctx.opt)
    ctx.scaler.update()
    return values, list(terms)
