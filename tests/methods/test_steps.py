"""The wiring of one CAP step and one TAD step (rlqlib.methods.rlq.steps): term order, the values against direct
calls of the loss functions on the same forward outputs, and which degradation mix each LQ synthesis uses."""

from __future__ import annotations

import copy
from dataclasses import replace

import torch

from rlqlib.data import degrade as D
from rlqlib.methods.base import Placement
from rlqlib.methods.model_config import ModelConfig
from rlqlib.methods.rlq import losses as L
from rlqlib.methods.rlq import steps as S
from rlqlib.methods.rlq.config import TADConfig
from rlqlib.methods.rlq.model import build_heads, build_model, make_teacher
from rlqlib.data.transforms import normalize, train_augment

N_ID, N_CLOTHES, B, H, W = 4, 6, 8, 64, 32
WEIGHTS = {k: 1.0 for k in L.CAP_KEYS + L.TAD_KEYS + tuple(S.SELF_MSE)}


def _ctx(variant: str = "rlq", terms=tuple(L.CAP_KEYS), **kw) -> S.StepContext:
    cfg = ModelConfig(variant=variant, backbone="resnet_micro", num_ids=N_ID, num_clothes=N_CLOTHES,
                      num_pose_classes=5)
    model, heads = build_model(cfg, 0), build_heads(cfg, 1)
    student = S.Student(model, heads.cal_classifier)
    teacher = make_teacher(build_model(replace(cfg, variant="bm"), 3))
    pid2clothes = torch.zeros(N_ID, N_CLOTHES, dtype=torch.bool)
    pid2clothes[torch.arange(N_CLOTHES) % N_ID, torch.arange(N_CLOTHES)] = True
    place = Placement(device=torch.device("cpu"))
    return S.StepContext(
        student=student, clothes_classifier=heads.clothes_classifier, teacher=teacher,
        opt=torch.optim.Adam(student.parameters(), lr=1e-3), opt_cc=torch.optim.Adam(heads.clothes_classifier.parameters(),
                                                                                    lr=1e-3),
        scaler=place.grad_scaler(), scaler_cc=place.grad_scaler(), loss_cfg=L.LOSS_PRESETS["reference"],
        weights=WEIGHTS, terms=tuple(terms), pid2clothes=pid2clothes, place=place, tad=kw.pop("tad", TADConfig()),
        **kw)


def _batch(seed: int = 0) -> dict[str, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    pids = torch.arange(B) % N_ID
    return {"images": normalize(torch.randint(0, 256, (B, 3, H, W), generator=g, dtype=torch.uint8)),
            "pids": pids, "clothes_ids": pids, "gender": pids % 2, "pose": torch.arange(B) % 5,
            "index": torch.arange(B)}


def test_cap_step_terms_in_reference_order_with_the_updated_clothes_head():
    ctx = _ctx()
    before = copy.deepcopy((ctx.student, ctx.clothes_classifier, ctx.opt_cc))
    batch = _batch()
    values, names = S.cap_step(ctx, batch, cc_active=True, epoch=0, step=0, generator=torch.Generator())
    assert names == [*L.CAP_KEYS, "clothes"]  # backbone terms in CAP_KEYS order, then the clothes head's loss
    # the same iteration by hand (docs/spec.md §3.2): forward, clothes step, adversarial with the updated head
    student, cc, opt_cc = before
    out = student(batch["images"], mode="cap")
    l_clothes = L.clothes_loss(cc(out["f_cal"].detach()), batch["clothes_ids"], 16.0)
    opt_cc.zero_grad()
    l_clothes.backward()
    opt_cc.step()
    cos = cc(out["f_cal"], weight_grad=False)
    want = L.cap_terms(out, batch, L.LOSS_PRESETS["reference"], adv_active=True, clothes_cos=cos,
                       pid2clothes=ctx.pid2clothes, enabled=L.CAP_KEYS, cos_from=("f_bot",))
    want["clothes"] = l_clothes
    torch.testing.assert_close(values, torch.stack([want[k].detach() for k in names]), rtol=1e-5, atol=1e-6)


def test_cap_step_before_the_clothes_start_logs_the_clothes_loss_without_adversarial_term():
    ctx = _ctx(variant="bm", terms=("id_cal", "id_bot", "triplet", "kl_branches", "adv"))
    cc_before = copy.deepcopy(ctx.clothes_classifier.state_dict())
    _, names = S.cap_step(ctx, _batch(), cc_active=False, epoch=0, step=0, generator=torch.Generator())
    assert names == ["id_cal", "id_bot", "triplet", "kl_branches", "clothes"]
    assert all(torch.equal(v, cc_before[k]) for k, v in ctx.clothes_classifier.state_dict().items())  # not stepped


def _record_mixes(monkeypatch) -> list[str]:
    mixes: list[str] = []
    original = D.degrade

    def spy(images, generator, mix="ltcc", **kw):
        mixes.append(mix)
        return original(images, generator, mix=mix, **kw)

    monkeypatch.setattr(S.D, "degrade", spy)
    return mixes


def test_replace_mode_lq_augmentation_uses_its_own_mix(monkeypatch):
    mixes = _record_mixes(monkeypatch)
    ctx = _ctx(variant="bm", terms=("id_cal", "id_bot"), mix="ltcc", lq_aug=1.0, lq_aug_mix="prcc")
    S.cap_step(ctx, _batch(), cc_active=False, epoch=0, step=0, generator=torch.Generator().manual_seed(0))
    assert mixes == ["prcc"]  # the LQ augmentation's mix, not TAD's
    mixes.clear()
    S.cap_step(replace(ctx, lq_aug=0.0), _batch(), cc_active=False, epoch=0, step=0, generator=torch.Generator())
    assert mixes == []  # extra_view mode: the view is in the batch already, the step degrades nothing


def test_tad_step_terms_order_values_and_lq_source(monkeypatch):
    mixes = _record_mixes(monkeypatch)
    tad = TADConfig(enabled=True, self_mse=True)
    ctx = _ctx(variant="bm", terms=("id_cal",), tad=tad, mix="deepchange")
    hq_u8 = torch.randint(0, 256, (B, 3, H, W), generator=torch.Generator().manual_seed(1), dtype=torch.uint8)
    student = copy.deepcopy(ctx.student)
    g = torch.Generator().manual_seed(2)
    state = g.get_state()
    values, names = S.tad_step(ctx, hq_u8, torch.arange(B), epoch=0, step=0, generator=g)
    assert mixes == ["deepchange"]  # no LQ twins given: made from the HQ images with TAD's mix
    assert names == ["distill_cal_hq", "distill_cal_lq", "distill_bot_hq", "distill_bot_lq", "ss_bot", "ss_cal",
                     "ss_clothes", "self_mse_cal", "self_mse_bot"]
    # by hand: the same pair (same generator state), one forward of [HQ; LQ], the teacher on HQ
    g2 = torch.Generator().set_state(state)
    lq_u8, _ = D.degrade(hq_u8, g2, mix="deepchange")
    hq, lq = train_augment(hq_u8, g2), train_augment(lq_u8, g2)
    out = student(torch.cat([hq, lq]), mode="tad")
    s_hq, s_lq = L.split_hq_lq(out, B)
    t_cal, t_bot = ctx.teacher(hq)
    want = L.tad_distillation(t_cal, t_bot, s_hq["f_cal"], s_lq["f_cal"], s_hq["f_bot"], s_lq["f_bot"])
    want.update(L.tad_self_supervision(s_hq, s_lq, lambda f: ctx.clothes_classifier(f, weight_grad=False)))
    want.update({"self_mse_cal": L.distill_l2(s_hq["f_cal"], s_lq["f_cal"]),
                 "self_mse_bot": L.distill_l2(s_hq["f_bot"], s_lq["f_bot"])})
    torch.testing.assert_close(values, torch.stack([want[k].detach() for k in names]), rtol=1e-5, atol=1e-6)
    # LQ twins made elsewhere (on the raw images, rlqlib.data.lq): used as given, nothing degraded here
    mixes.clear()
    lq_given = torch.zeros_like(hq_u8)
    hq2, lq2 = S.make_pair(hq_u8, torch.Generator().manual_seed(3), "ltcc", lq_given)
    assert mixes == [] and torch.equal(lq2, train_augment(lq_given, _after_hq(hq_u8, 3)))
    S.tad_step(ctx, hq_u8, torch.arange(B), epoch=0, step=1, generator=torch.Generator(), lq_u8=lq_given)
    assert mixes == []


def _after_hq(hq_u8: torch.Tensor, seed: int) -> torch.Generator:
    """A generator in the state make_pair leaves after augmenting the HQ half."""
    g = torch.Generator().manual_seed(seed)
    train_augment(hq_u8, g)
    return g
