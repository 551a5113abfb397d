"""Losses vs explicit per-sample loops (plain math) on tiny float64 inputs; gradient checks."""

import math

import pytest
import torch
import torch.nn.functional as F

from rlqlib.methods.rlq import losses as L

D64 = torch.float64


def _rand(*shape, seed=0):
    return torch.randn(*shape, generator=torch.Generator().manual_seed(seed), dtype=D64)


def _cos_rows(n, c, seed=0):
    return torch.tanh(_rand(n, c, seed=seed))  # values in (-1, 1), like a cosine head


def _close(t, want, tol=1e-12):
    got = t.item() if isinstance(t, torch.Tensor) else t
    assert abs(got - want) <= tol * max(1.0, abs(want)), (got, want)


def _softmax(row, tau=1.0):
    m = max(row)
    e = [math.exp((v - m) / tau) for v in row]
    return [v / sum(e) for v in e]


def _norm(v):
    n = math.sqrt(sum(x * x for x in v))
    return [x / n for x in v]


def _dot(a, b):
    return sum(x * y for x, y in zip(a, b))


# --------------------------------------------------------------------------- label-smoothed CE


def _ce_smooth_loop(logits, targets, eps):
    total = 0.0
    for row, y in zip(logits.tolist(), targets.tolist()):
        k, p = len(row), _softmax(row)
        total += sum(-((1 - eps) * (c == y) + eps / k) * math.log(p[c]) for c in range(k))
    return total / len(targets)


@pytest.mark.parametrize("eps", [0.0, 0.1, 0.5])
def test_cross_entropy_smooth_matches_loop(eps):
    z = _rand(6, 4) * 3
    y = torch.tensor([0, 3, 1, 1, 2, 0])
    _close(L.cross_entropy_smooth(z, y, eps), _ce_smooth_loop(z, y, eps))
    _close(L.pose_ce(z, y, eps), _ce_smooth_loop(z, y, eps))
    g = torch.tensor([1, 0, 0, 1, 1, 0])
    _close(L.gender_ce(z[:, :2], g, eps), _ce_smooth_loop(z[:, :2], g, eps))


def test_cross_entropy_bad_input():
    z = _rand(3, 4)
    with pytest.raises(ValueError, match=r"labels must lie in \[0, 4\)"):
        L.cross_entropy_smooth(z, torch.tensor([0, 4, 1]))
    with pytest.raises(ValueError, match="integer"):
        L.cross_entropy_smooth(z, torch.tensor([0.0, 1.0, 1.0]))
    with pytest.raises(ValueError, match=r"\(3,\)"):
        L.cross_entropy_smooth(z, torch.tensor([0, 1]))
    with pytest.raises(ValueError, match=r"\(N, 2\)"):
        L.gender_ce(z, torch.tensor([0, 1, 1]))


# -------------------------------------------------------------------------------------- triplet


def _triplet_loop(x, pids, margin, gx=None, gp=None):
    gx = x if gx is None else gx
    gp = pids if gp is None else gp
    xs, gs = [_norm(r) for r in x.tolist()], [_norm(r) for r in gx.tolist()]
    total = 0.0
    for a, pa in zip(xs, pids.tolist()):
        pos = [1 - _dot(a, g) for g, p in zip(gs, gp.tolist()) if p == pa]
        neg = [1 - _dot(a, g) for g, p in zip(gs, gp.tolist()) if p != pa]
        if pos and neg:
            total += max(0.0, max(pos) - min(neg) + margin)
    return total / len(xs)


def test_triplet_matches_loop_with_singleton_identities():
    x = _rand(7, 5)
    pids = torch.tensor([0, 0, 1, 1, 1, 2, 3])  # ids 2, 3 have one sample: d_ap = d(a, a) = 0
    for m in (0.3, 1.5):
        _close(L.triplet_batch_hard(x, pids, m), _triplet_loop(x, pids, m))


def test_triplet_scale_invariant_and_degenerate_cases():
    x, pids = _rand(6, 3, seed=1), torch.tensor([0, 0, 1, 1, 2, 2])
    scales = torch.tensor([[2.0], [0.5], [3.0], [1.0], [7.0], [0.1]], dtype=D64)
    _close(L.triplet_batch_hard(x * scales, pids), L.triplet_batch_hard(x, pids).item())
    same = torch.ones(6, 3, dtype=D64)  # all distances 0: every anchor pays exactly the margin
    _close(L.triplet_batch_hard(same, pids, 0.3), 0.3)
    one_id = torch.zeros(6, dtype=torch.long)  # no negatives anywhere: 0
    assert L.triplet_batch_hard(x, one_id).item() == 0.0


def test_triplet_external_gallery_and_gradient_only_through_live_rows():
    x, pids = _rand(4, 3, seed=2).requires_grad_(), torch.tensor([0, 1, 1, 2])
    remote, rpids = _rand(5, 3, seed=3), torch.tensor([0, 2, 2, 3, 1])
    gx, gp = torch.cat([remote, x]), torch.cat([rpids, pids])  # remote slice: plain tensor
    loss = L.triplet_batch_hard(x, pids, 0.3, gx, gp)
    _close(loss, _triplet_loop(x.detach(), pids, 0.3, gx.detach(), gp))
    loss.backward()
    assert x.grad is not None and remote.grad is None
    with pytest.raises(ValueError, match="together"):
        L.triplet_batch_hard(x, pids, 0.3, gx, None)


def test_triplet_gradcheck():
    pids = torch.tensor([0, 0, 1, 1, 2])
    x = _rand(5, 3, seed=4).requires_grad_()
    assert torch.autograd.gradcheck(lambda f: L.triplet_batch_hard(f, pids, 0.5), (x,))


# ------------------------------------------------------------------------ clothes / adversarial


def test_clothes_loss_matches_loop():
    cos, y = _cos_rows(6, 4), torch.tensor([0, 1, 3, 3, 2, 0])
    for margin in (0.0, 0.35):
        want = 0.0
        for row, t in zip(cos.tolist(), y.tolist()):
            z = [16 * (v - margin * (c == t)) for c, v in enumerate(row)]
            want -= math.log(_softmax(z)[t]) / 6
        _close(L.clothes_loss(cos, y, 16, margin), want)
    with pytest.raises(ValueError, match="unscaled"):
        L.clothes_loss(16 * cos, y)


# identity 0 owns clothes {0, 1, 2}, identity 1 only {3}, identity 2 owns {4, 5}
PID2CLOTHES = torch.tensor([[1, 1, 1, 0, 0, 0], [0, 0, 0, 1, 0, 0], [0, 0, 0, 0, 1, 1]]).bool()


def _adv_loop(cos, clothes, pids, table, scale, eps):
    total = 0.0
    for row, y, p in zip(cos.tolist(), clothes.tolist(), pids.tolist()):
        s = [scale * v for v in row]
        pos = [c for c in range(len(s)) if table[p][c]]
        neg = [c for c in range(len(s)) if not table[p][c]]
        for c in pos:
            q = (1 - eps) * (c == y) + eps / len(pos)
            ell = s[c] - math.log(math.exp(s[c]) + sum(math.exp(s[j]) for j in neg))
            total -= q * ell
    return total / len(pids)


@pytest.mark.parametrize("eps", [0.1, 1.0])
def test_cal_adversarial_matches_loop(eps):
    cos = _cos_rows(7, 6, seed=5)
    pids = torch.tensor([0, 0, 1, 1, 2, 2, 0])
    clothes = torch.tensor([0, 2, 3, 3, 4, 5, 1])
    want = _adv_loop(cos, clothes, pids, PID2CLOTHES.tolist(), 16, eps)
    _close(L.cal_adversarial(cos, clothes, pids, PID2CLOTHES, 16, eps), want)


def test_cal_adversarial_single_clothes_identity_is_ce_against_negatives():
    # identity 1 has one clothes class: q = 1 on it, loss = -(s_3 - log sum_j e^{s_j})
    cos = _cos_rows(1, 6, seed=6)
    s = (16 * cos[0]).tolist()
    want = -(s[3] - math.log(sum(math.exp(v) for v in s)))
    _close(L.cal_adversarial(cos, torch.tensor([3]), torch.tensor([1]), PID2CLOTHES), want)


def test_cal_adversarial_no_negatives_and_bad_labels():
    cos = _cos_rows(3, 3, seed=7).requires_grad_()
    table = torch.ones(1, 3, dtype=torch.bool)  # one identity owns every class: l_ic = 0
    loss = L.cal_adversarial(cos, torch.tensor([0, 1, 2]), torch.zeros(3, dtype=torch.long), table)
    loss.backward()
    assert loss.item() == 0.0 and torch.isfinite(cos.grad).all()
    two = torch.tensor([0, 1])
    with pytest.raises(ValueError, match="does not give"):
        L.cal_adversarial(_cos_rows(2, 6), torch.tensor([0, 0]), two, PID2CLOTHES)
    with pytest.raises(ValueError, match="bool"):
        L.cal_adversarial(_cos_rows(2, 6), torch.tensor([0, 3]), two, PID2CLOTHES.long())


def test_cal_adversarial_gradcheck():
    pids, clothes = torch.tensor([0, 1, 2, 0]), torch.tensor([1, 3, 5, 0])
    cos = (_cos_rows(4, 6, seed=8) * 0.9).requires_grad_()
    fn = lambda c: L.cal_adversarial(c, clothes, pids, PID2CLOTHES)  # noqa: E731
    assert torch.autograd.gradcheck(fn, (cos,))


# ------------------------------------------------------------------------------------------- KL


def _kl_loop(zp, zq, tau, reduction):
    total, rows, k = 0.0, len(zp), len(zp[0])
    for a, b in zip(zp.tolist(), zq.tolist()):
        p, q = _softmax(a, tau), _softmax(b, tau)
        total += sum(pi * (math.log(pi) - math.log(qi)) for pi, qi in zip(p, q))
    return 0.64 * tau**2 * total / (rows * k) if reduction == "reference" else total / rows


def test_kl_reference_scaling_by_hand_2x3():
    bot = torch.tensor([[1.0, 0.0, -1.0], [0.5, 0.5, 2.0]], dtype=D64)
    cal = torch.tensor([[0.0, 0.0, 0.0], [2.0, -1.0, 0.0]], dtype=D64)
    tau = 0.8
    kl_rows = []
    for a, b in zip(bot.tolist(), cal.tolist()):
        ea = [math.exp(v / tau) for v in a]
        eb = [math.exp(v / tau) for v in b]
        p = [v / sum(ea) for v in ea]
        q = [v / sum(eb) for v in eb]
        kl_rows.append(sum(p[c] * math.log(p[c] / q[c]) for c in range(3)))
    ref = 0.64 * 0.64 * (kl_rows[0] + kl_rows[1]) / 6  # 0.64 tau^2 / (rows * classes), tau^2 = 0.64
    _close(L.kl_branches(bot, cal), ref)
    _close(L.kl_branches(bot, cal, reduction="batchmean"), sum(kl_rows) / 2)
    _close(L.kl_self_supervision(bot, cal), ref)


@pytest.mark.parametrize("reduction", L.KL_REDUCTIONS)
@pytest.mark.parametrize("tau", [0.8, 2.0])
def test_kl_losses_match_loop_and_direction(reduction, tau):
    a, b = _rand(5, 4, seed=9) * 2, _rand(5, 4, seed=10)
    _close(L.kl_branches(a, b, tau, reduction), _kl_loop(a, b, tau, reduction))
    _close(L.kl_self_supervision(a, b, tau, reduction), _kl_loop(a, b, tau, reduction))
    _close(L.kl_branches(b, a, tau, reduction), _kl_loop(b, a, tau, reduction))
    assert abs(_kl_loop(a, b, tau, reduction) - _kl_loop(b, a, tau, reduction)) > 1e-3  # asymmetric
    _close(L.kl_branches(a, a, tau, reduction), 0.0, tol=1e-15)


def test_kl_gradcheck_both_sides_live():
    a, b = _rand(3, 4, seed=11).requires_grad_(), _rand(3, 4, seed=12).requires_grad_()
    assert torch.autograd.gradcheck(lambda x, y: L.kl_branches(x, y), (a, b))
    fn = lambda x, y: L.kl_self_supervision(x, y, 0.8, "batchmean")  # noqa: E731
    assert torch.autograd.gradcheck(fn, (a, b))
    with pytest.raises(ValueError, match="reduction"):
        L.kl_branches(a, b, reduction="mean")


# ------------------------------------------------------------------------------- feature losses


def test_cos_disentangle_loop_sign_and_scale_invariance():
    fb, fp = _rand(6, 4, seed=13), _rand(6, 4, seed=14)
    want = sum(abs(_dot(_norm(a), _norm(b))) for a, b in zip(fb.tolist(), fp.tolist())) / 6
    _close(L.cos_disentangle(fb, fp), want)
    signs = torch.tensor([[1.0], [-1.0], [-1.0], [1.0], [-1.0], [1.0]], dtype=D64)
    _close(L.cos_disentangle(fb, signs * fp * 3.0), want)
    _close(L.cos_disentangle(-fb, fp), want)
    orth = torch.tensor([[1.0, 0.0], [0.0, 2.0]], dtype=D64)
    _close(L.cos_disentangle(orth, orth.flip(1)), 0.0, tol=1e-15)
    x = _rand(4, 3, seed=15).requires_grad_()
    assert torch.autograd.gradcheck(lambda f: L.cos_disentangle(f, fp[:4, :3]), (x,))


def test_distill_l2_loop_and_zero_up_to_scale():
    t, s = _rand(5, 4, seed=16), _rand(5, 4, seed=17)
    want = sum(sum((x - y) ** 2 for x, y in zip(_norm(a), _norm(b)))
               for a, b in zip(t.tolist(), s.tolist())) / 5
    _close(L.distill_l2(t, s), want)
    row_scale = torch.tensor([[0.1], [2.0], [5.0], [1.0], [30.0]], dtype=D64)
    _close(L.distill_l2(t, t * row_scale), 0.0, tol=1e-15)
    _close(L.distill_l2(t, -t), 4.0)  # antipodal: ||2 n||^2 = 4
    x = s.clone().requires_grad_()
    assert torch.autograd.gradcheck(lambda f: L.distill_l2(t, f), (x,))


def test_tad_distillation_pairs_teacher_hq_with_each_student_view():
    t_cal, t_bot = _rand(3, 4, seed=18), _rand(3, 4, seed=19)
    s = [_rand(3, 4, seed=20 + i) for i in range(4)]
    out = L.tad_distillation(t_cal, t_bot, *s)
    assert list(out) == ["distill_cal_hq", "distill_cal_lq", "distill_bot_hq", "distill_bot_lq"]
    for v, teacher, student in zip(out.values(), (t_cal, t_cal, t_bot, t_bot), s):
        _close(v, L.distill_l2(teacher, student).item())


# ------------------------------------------------------------------------------ TAD aggregation


class _CosHead(torch.nn.Module):
    def __init__(self, d, c, seed):
        super().__init__()
        self.w = torch.nn.Parameter(_rand(c, d, seed=seed))

    def forward(self, f):
        return F.normalize(f, dim=1) @ F.normalize(self.w, dim=1).t()  # (B, C) cosines


def _student(b, d, n_id, seed):
    out = {"f_cal": _rand(b, d, seed=seed), "f_bot": _rand(b, d, seed=seed + 1),
           "logits_cal": _rand(b, n_id, seed=seed + 2), "logits_bot": _rand(b, n_id, seed=seed + 3)}
    return {k: v.requires_grad_() for k, v in out.items()}


@pytest.mark.parametrize("mode", L.TAD_CLOTHES_TERMS)
def test_tad_clothes_term_reference_inert_paper_live(mode):
    cfg = L.LossConfig(tad_clothes_term=mode)
    head = _CosHead(4, 5, seed=30)
    hq, lq = _student(3, 4, 6, seed=40), _student(3, 4, 6, seed=50)
    terms = L.tad_self_supervision(hq, lq, head, cfg)
    assert list(terms) == ["ss_bot", "ss_cal", "ss_clothes"]
    want = _kl_loop(head(hq["f_cal"]).detach(), head(lq["f_cal"]).detach(), 0.8, "reference")
    _close(terms["ss_clothes"], want)  # same value in both modes
    want = _kl_loop(hq["logits_bot"].detach(), lq["logits_bot"].detach(), 0.8, "reference")
    _close(terms["ss_bot"], want)
    if mode == "reference":
        assert not terms["ss_clothes"].requires_grad  # no gradient to f_CAL nor to the head
    else:
        terms["ss_clothes"].backward()
        assert hq["f_cal"].grad.abs().sum() > 0 and lq["f_cal"].grad.abs().sum() > 0


def test_tad_terms_keys_and_missing_input():
    head = _CosHead(4, 5, seed=31)
    hq, lq = _student(3, 4, 6, seed=60), _student(3, 4, 6, seed=70)
    teacher = {"f_cal": _rand(3, 4, seed=80), "f_bot": _rand(3, 4, seed=81)}
    terms = L.tad_terms(hq, lq, teacher, head)
    assert tuple(terms) == L.TAD_KEYS
    _close(terms["distill_bot_lq"], L.distill_l2(teacher["f_bot"], lq["f_bot"]).item())
    with pytest.raises(KeyError, match="f_bot"):
        L.tad_terms(hq, lq, {"f_cal": teacher["f_cal"]}, head)


def test_split_hq_lq():
    out = {"f_cal": torch.arange(8.0).view(4, 2), "logits_bot": torch.arange(4.0)[:, None]}
    hq, lq = L.split_hq_lq(out, 2)
    assert torch.equal(hq["f_cal"], out["f_cal"][:2])
    assert torch.equal(lq["logits_bot"], out["logits_bot"][2:])
    with pytest.raises(ValueError, match="rows"):
        L.split_hq_lq(out, 3)


# ------------------------------------------------------------------------------ CAP aggregation


def _cap_inputs(n=6, d=4, n_id=3):
    shapes = {"f_cal": d, "f_bot": d, "f_pose": d, "logits_cal": n_id, "logits_bot": n_id,
              "logits_pose": 5, "logits_gender": 2}
    outputs = {k: _rand(n, w, seed=90 + i) for i, (k, w) in enumerate(shapes.items())}
    batch = {"pids": torch.tensor([0, 0, 1, 1, 2, 2]),
             "clothes_ids": torch.tensor([0, 1, 3, 3, 4, 5]),
             "pose": torch.tensor([0, 4, 2, 2, 1, 3]),
             "gender": torch.tensor([1, 1, 0, 0, 1, 1])}
    return outputs, batch


def test_cap_terms_values_and_adv_switch():
    outputs, batch = _cap_inputs()
    cos = _cos_rows(6, 6, seed=99)
    off = L.cap_terms(outputs, batch, adv_active=False)
    assert tuple(off) == tuple(k for k in L.CAP_KEYS if k != "adv")
    on = L.cap_terms(outputs, batch, adv_active=True, clothes_cos=cos, pid2clothes=PID2CLOTHES)
    assert tuple(on) == L.CAP_KEYS
    o, p = outputs, batch["pids"]
    expected = {
        "id_cal": _ce_smooth_loop(o["logits_cal"], p, 0.1),
        "id_bot": _ce_smooth_loop(o["logits_bot"], p, 0.1),
        "triplet": _triplet_loop(o["f_bot"], p, 0.3),
        "kl_branches": _kl_loop(o["logits_bot"], o["logits_cal"], 0.8, "reference"),
        "adv": _adv_loop(cos, batch["clothes_ids"], p, PID2CLOTHES.tolist(), 16, 0.1),
        "pose": _ce_smooth_loop(o["logits_pose"], batch["pose"], 0.1),
        "gender": _ce_smooth_loop(o["logits_gender"], batch["gender"], 0.1),
        "cos": L.cos_disentangle(o["f_bot"], o["f_pose"]).item(),  # loop-checked above
    }
    for k, v in expected.items():
        _close(on[k], v)
    paper = L.cap_terms(outputs, batch, L.LOSS_PRESETS["paper"], adv_active=False)
    _close(paper["kl_branches"], _kl_loop(o["logits_bot"], o["logits_cal"], 0.8, "batchmean"))
    both = L.cap_terms(outputs, batch, adv_active=False, enabled=("cos",),
                       cos_from=("f_cal", "f_bot"))
    _close(both["cos"], expected["cos"] + L.cos_disentangle(o["f_cal"], o["f_pose"]).item())
    with pytest.raises(ValueError, match="clothes_cos"):
        L.cap_terms(outputs, batch, adv_active=True)


def test_cap_terms_enabled_subset_and_missing_keys():
    outputs, batch = _cap_inputs()
    bm = ("id_cal", "id_bot", "triplet", "kl_branches", "adv")  # Base Model: no pose, no gender
    slim = {k: outputs[k] for k in ("f_cal", "f_bot", "logits_cal", "logits_bot")}
    assert tuple(L.cap_terms(slim, batch, adv_active=False, enabled=bm)) == bm[:-1]
    with pytest.raises(KeyError, match="logits_pose"):
        L.cap_terms(slim, batch, adv_active=False)
    with pytest.raises(ValueError, match="unknown terms"):
        L.cap_terms(outputs, batch, adv_active=False, enabled=("id_cal", "center"))


# --------------------------------------------------------------------------------- weighted sum


def test_weighted_sum_value_and_errors():
    terms = {"id_cal": torch.tensor(2.0), "triplet": torch.tensor(3.0)}
    w = {"id_cal": 1.0, "triplet": 0.5, "adv": 1.0, "ss_clothes": 1.0}  # known, absent: fine
    _close(L.weighted_sum(terms, w), 3.5)
    with pytest.raises(KeyError, match="no weight for terms.*triplet"):
        L.weighted_sum(terms, {"id_cal": 1.0})
    with pytest.raises(KeyError, match="unknown loss names.*tripletx"):
        L.weighted_sum(terms, {**w, "tripletx": 1.0})
    with pytest.raises(ValueError, match="scalar"):
        L.weighted_sum({"id_cal": torch.ones(2)}, {"id_cal": 1.0})


def test_weighted_sum_backpropagates_weights():
    x = torch.tensor(1.5, dtype=D64, requires_grad=True)
    L.weighted_sum({"pose": x * x, "gender": 2 * x}, {"pose": 0.5, "gender": 3.0}).backward()
    _close(x.grad, 0.5 * 2 * 1.5 + 3.0 * 2)


def test_loss_config_validation_and_presets():
    assert L.LOSS_PRESETS["reference"] == L.LossConfig()
    assert L.LOSS_PRESETS["paper"].tad_clothes_term == "paper"
    with pytest.raises(ValueError, match="kl_reduction"):
        L.LossConfig(kl_reduction="mean")
    with pytest.raises(ValueError, match="tad_clothes_term"):
        L.LossConfig(tad_clothes_term="fixed")
