"""Models: outputs per variant and mode, topology details vs hand computations, gradients, teacher, counts."""

import dataclasses

import pytest
import torch

from rlqlib.methods.backbone import POOLINGS
from rlqlib.methods.model_config import ModelConfig
from rlqlib.methods.registry import count_parameters
from rlqlib.methods.rlq import model as M
from rlqlib.methods.tv import import_torchvision

B, H, W = 4, 64, 32  # batch and input size of the small-model tests


def _cfg(variant="rlq", **kw):
    return ModelConfig(variant=variant, backbone="resnet_micro", num_ids=7, num_clothes=11, num_pose_classes=5, **kw)


def _x(seed=0, b=B):
    return torch.randn(b, 3, H, W, generator=torch.Generator().manual_seed(seed))


def _weighted_sum(tensors, seed=0):
    """A random projection of every tensor (a plain sum of BN outputs has zero gradient in train mode)."""
    g = torch.Generator().manual_seed(seed)
    return sum((t * torch.randn(t.shape, generator=g)).sum() for t in tensors)


EXPECTED_KEYS = {
    "cal": {"f_cal"},
    "bm": {"f_cal", "f_bot", "logits_bot"},
    "bm+g": {"f_cal", "f_bot", "logits_bot", "logits_gender"},
    "bm+p": {"f_cal", "f_bot", "logits_bot", "f_pose", "logits_pose"},
    "rlq": {"f_cal", "f_bot", "logits_bot", "f_pose", "logits_pose", "logits_gender"},
}


@pytest.mark.parametrize("variant", list(M.VARIANTS))
def test_train_outputs_and_eval_feature(variant):
    cfg = _cfg(variant)
    net = M.build_model(cfg)
    d = M.feature_dim(cfg)
    assert d == 2 * 128 == net.feature_dim  # micro layer4 has 128 channels; maxavg doubles
    widths = {"f_cal": d, "f_bot": d, "f_pose": d, "logits_bot": 7, "logits_pose": 5, "logits_gender": 2}
    out = net(_x())
    assert set(out) == EXPECTED_KEYS[variant]
    for k, v in out.items():
        assert v.shape == (B, widths[k]) and torch.isfinite(v).all(), k
    tad = net(_x(), mode="tad")
    assert set(tad) == EXPECTED_KEYS[variant] & {"f_cal", "f_bot", "logits_bot"}

    net.eval()
    x = _x(1)
    feat = net(x)
    # eval output = [f_CAL, f_BOT] computed branch by branch (f_CAL alone for vanilla CAL), not normalised
    x2 = net.layer2(net.stem(x))
    parts = [net.cal(x2)] + ([net.bot(x2)] if net.bot is not None else [])
    assert feat.shape == (B, net.inference_dim) == (B, d * len(parts))
    assert torch.allclose(feat, torch.cat(parts, dim=1))
    assert not torch.allclose(feat.norm(dim=1), torch.ones(B))


def test_eval_width_resnet50_on_meta():
    with torch.device("meta"):
        for variant, width in (("rlq", 8192), ("cal", 4096)):
            net = M.build_model(ModelConfig(variant=variant)).eval()
            assert net(torch.empty(2, 3, 384, 192)).shape == (2, width)


def test_last_stride_one_in_every_layer4_copy():
    with torch.device("meta"):
        net = M.build_model(ModelConfig(variant="rlq"))  # ResNet-50 (Bottleneck: conv2 carries the stride)
        x3 = net.cal.layers[0](torch.empty(1, 512, 48, 24))
        assert x3.shape[-2:] == net.cal.layers[1](x3).shape[-2:] == (24, 12)  # 384×192 input => 24×12
    for layer4 in (net.cal.layers[1], net.bot.layers[1], net.pose.layers[2]):
        assert layer4[0].conv2.stride == (1, 1) and layer4[0].downsample[0].stride == (1, 1)

    for last_stride, factor in ((1, 1), (2, 2)):  # BasicBlock: conv1 carries the stride
        net = M.build_model(_cfg("bm", last_stride=last_stride))
        x3 = net.bot.layers[0](net.layer2(net.stem(_x())))
        x4 = net.bot.layers[1](x3)
        assert x3.shape[-2:] == (4, 2) and x4.shape[-2:] == (4 // factor, 2 // factor)


def test_maxavg_pooling_max_first_by_hand():
    fmap = torch.tensor([[[[1.0, 5.0], [2.0, 0.0]], [[-1.0, -3.0], [-2.0, -6.0]]]])  # (1, 2, 2, 2)
    pool, mult = POOLINGS["maxavg"]
    assert mult == 2
    assert torch.equal(pool(fmap), torch.tensor([[5.0, -1.0, 2.0, -3.0]]))  # [max c0, max c1, avg c0, avg c1]


def test_bn_neck_and_classifier_init():
    net = M.build_model(dataclasses.replace(_cfg(), backbone="resnet_tiny"))  # D = 512: enough for the stats
    for branch in (net.cal, net.bot, net.pose):
        w, b = branch.bn.weight.detach(), branch.bn.bias.detach()
        assert abs(w.mean().item() - 1.0) < 0.005 and abs(w.std().item() - 0.02) < 0.004
        assert torch.equal(b, torch.zeros_like(b)) and branch.bn.bias.requires_grad
    for fc in (net.bot_classifier, net.pose_classifier, net.gender_classifier):
        assert abs(fc.weight.std().item() - 0.001) < 0.0002 and torch.equal(fc.bias, torch.zeros_like(fc.bias))


def test_clothes_head_is_a_cosine():
    assert M.CLOTHES_SCALE == 16
    heads = M.build_heads(_cfg())
    cc = heads.clothes_classifier
    w = cc.weight.detach()
    assert w.shape == (11, 256) and torch.allclose(w.norm(dim=1), torch.ones(11))
    f = torch.randn(5, 256, generator=torch.Generator().manual_seed(2)) * 7
    with torch.no_grad():
        cc.weight.mul_(torch.arange(1, 12).float()[:, None])  # rows of any norm: only the direction counts
        got = cc(f)
    expect = torch.empty(5, 11)
    for i in range(5):
        for c in range(11):
            wc = cc.weight[c].detach()
            expect[i, c] = (f[i] @ wc) / (f[i].norm() * wc.norm())
    assert torch.allclose(got, expect, atol=1e-6)
    assert got.abs().max() <= 1.0
    assert sum(p.numel() for p in cc.parameters()) == 11 * 256  # no bias
    assert heads.cal_classifier(f).shape == (5, 7)


@pytest.mark.parametrize(("gender_on", "width"), [("bot", 256), ("cal", 256), ("both", 512)])
def test_gender_placement(gender_on, width):
    net = M.build_model(_cfg(gender_on=gender_on))
    assert net.gender_classifier.in_features == width
    out = net(_x())
    g_in = {"bot": out["f_bot"], "cal": out["f_cal"], "both": torch.cat([out["f_cal"], out["f_bot"]], 1)}
    assert torch.allclose(out["logits_gender"], net.gender_classifier(g_in[gender_on]))


def test_pose_placement_and_config_errors():
    assert M.build_model(_cfg()).disentangle_from == ("f_bot",)
    assert M.build_model(_cfg(pose_on="cal")).disentangle_from == ("f_cal",)
    assert M.build_model(_cfg(pose_on="both")).disentangle_from == ("f_cal", "f_bot")
    assert M.build_model(_cfg("bm+g")).disentangle_from == ()
    with pytest.raises(ValueError, match="variant 'bm' has none"):
        _cfg("bm", pose_on="cal")
    with pytest.raises(ValueError, match=r"ModelConfig.variant='rlq2' is unknown.*bm\+p"):
        _cfg("rlq2")
    with pytest.raises(ValueError, match="no ImageNet weights"):
        _cfg(pretrained=True)
    with pytest.raises(ValueError, match="mode='train'"):
        M.build_model(_cfg())(_x(), mode="train")


def test_gradients_reach_every_parameter_and_tad_skips_pose():
    cfg = _cfg()
    net, heads = M.build_model(cfg), M.build_heads(cfg)
    out = net(_x())
    extra = [heads.cal_classifier(out["f_cal"]), heads.clothes_classifier(out["f_cal"])]
    _weighted_sum(list(out.values()) + extra).backward()
    for name, p in list(net.named_parameters()) + list(heads.named_parameters()):
        assert p.grad is not None and torch.isfinite(p.grad).all() and p.grad.abs().sum() > 0, name

    net.zero_grad(set_to_none=True)
    calls = []
    net.pose.register_forward_hook(lambda *_: calls.append(1))
    net.gender_classifier.register_forward_hook(lambda *_: calls.append(1))
    _weighted_sum(net(_x(), mode="tad").values()).backward()
    assert calls == []  # not executed at all
    for name, p in net.named_parameters():
        skipped = name.startswith(("pose", "gender_classifier"))
        assert (p.grad is None) == skipped, name


def test_duplicated_branches_start_identical_but_are_separate():
    net = M.build_model(_cfg())
    cal, bot = net.cal.layers.state_dict(), net.bot.layers.state_dict()
    for k in cal:
        assert torch.equal(cal[k], bot[k]) and cal[k].data_ptr() != bot[k].data_ptr(), k
    pose = net.pose.layers.state_dict()  # pose copy = layer2, layer3, layer4 ("0.", "1.", "2.")
    for k, v in net.layer2.state_dict().items():
        assert torch.equal(pose[f"0.{k}"], v)
    for k, v in cal.items():
        i, rest = k.split(".", 1)
        assert torch.equal(pose[f"{int(i) + 1}.{rest}"], v)

    before = {k: v.detach().clone() for k, v in net.bot.layers.named_parameters()}
    opt = torch.optim.SGD(net.parameters(), lr=0.1)
    _weighted_sum([net(_x())["f_cal"]]).backward()
    opt.step()
    after_cal = dict(net.cal.layers.named_parameters())
    assert all(not torch.equal(after_cal[k], before[k]) for k in before)  # every CAL weight moved ...
    for k, v in net.bot.layers.named_parameters():
        assert torch.equal(v, before[k]), k  # ... no BOT weight did (no gradient reached that copy)


def test_teacher_is_frozen_and_unaffected_by_student_steps():
    teacher = M.make_teacher(M.build_model(_cfg("bm"), seed=5))
    student, heads = M.build_model(_cfg()), M.build_heads(_cfg())
    student.train()
    teacher.train()  # stays in eval mode
    assert not teacher.training and not teacher.net.training and not teacher.net.cal.bn.training
    assert all(not p.requires_grad for p in teacher.parameters())
    x = _x(3)
    t_cal, t_bot = teacher(x)
    assert t_cal.shape == t_bot.shape == (B, 256) and not t_cal.requires_grad
    assert not any(t.requires_grad for t in teacher(x.clone().requires_grad_(True)))  # run under no_grad
    state = {k: v.clone() for k, v in teacher.state_dict().items()}

    params = list(student.parameters()) + list(heads.parameters())
    opt = torch.optim.Adam(params, lr=1e-3)
    out = student(torch.cat([x, x.flip(-1)]), mode="tad")
    s_cal, s_bot = out["f_cal"][:B], out["f_bot"][:B]
    loss = (s_cal - t_cal).pow(2).sum() + (s_bot - t_bot).pow(2).sum() + _weighted_sum([out["logits_bot"]])
    loss.backward()
    opt.step()
    assert all(p.grad is None for p in teacher.parameters())
    for k, v in teacher.state_dict().items():  # weights and BN running stats
        assert torch.equal(v, state[k]), k
    t_cal2, t_bot2 = teacher(x)
    assert torch.equal(t_cal, t_cal2) and torch.equal(t_bot, t_bot2)
    with pytest.raises(ValueError, match="two-branch"):
        M.make_teacher(M.build_model(_cfg("cal")))


def test_seeded_init_is_reproducible_and_leaves_global_rng_alone():
    rng = torch.get_rng_state()
    a, b, c = (M.build_model(_cfg("bm"), seed=s) for s in (3, 3, 4))
    assert torch.equal(rng, torch.get_rng_state())
    sa, sb, sc = a.state_dict(), b.state_dict(), c.state_dict()
    assert all(torch.equal(sa[k], sb[k]) for k in sa)
    assert not all(torch.equal(sa[k], sc[k]) for k in sa)


def test_parameter_counts_match_paper_table8():
    n_bm = 1_444_928 + 2 * 22_063_104 + 2 * 8_192 + (4096 * 77 + 77)  # docs/spec.md §1.1 arithmetic
    n_pose = 23_282_688 + 8_192 + (4096 * 16 + 16)
    counts = {v: count_parameters(v, "resnet50", num_ids=77, num_clothes=256) for v in ("bm", "bm+p", "rlq")}
    assert counts["bm"]["params"] == n_bm
    assert counts["bm+p"]["params"] == n_bm + n_pose
    assert counts["rlq"]["params"] == n_bm + n_pose + (4096 * 2 + 2)
    assert round(counts["bm"]["params"] / 1e6, 1) == 45.9
    assert round(counts["bm+p"]["params"] / 1e6, 1) == 69.3
    assert round(counts["rlq"]["params"] / 1e6, 1) == 69.3
    assert counts["rlq"]["params_inference"] == 1_444_928 + 2 * (22_063_104 + 8_192) < counts["rlq"]["params"]
    by_part = counts["rlq"]["by_part"]
    assert by_part["heads.clothes_classifier"] == 4096 * 256 and by_part["heads.cal_classifier"] == 4096 * 77 + 77
    assert sum(v for k, v in by_part.items() if not k.startswith("heads.")) == counts["rlq"]["params"]


def _isolated_hub(monkeypatch, tmp_path):
    monkeypatch.setattr(torch.hub, "get_dir", lambda: str(tmp_path))
    return tmp_path / "checkpoints"


def test_pretrained_missing_file_names_expected_path(monkeypatch, tmp_path):
    expected = _isolated_hub(monkeypatch, tmp_path) / "resnet50-0676ba61.pth"
    with pytest.raises(FileNotFoundError) as err, torch.device("meta"):
        M.build_model(ModelConfig(variant="bm", pretrained=True))
    assert str(expected) in str(err.value)
    assert "https://download.pytorch.org/models/resnet50-0676ba61.pth" in str(err.value)


def test_pretrained_weights_land_in_every_copy(monkeypatch, tmp_path):
    ckpt = _isolated_hub(monkeypatch, tmp_path)
    ckpt.mkdir()
    tv = import_torchvision()
    # a stand-in "ImageNet" file: randomly initialised resnet18 weights
    state = tv.models.resnet18(weights=None).state_dict()
    torch.save(state, ckpt / "resnet18-f37072fd.pth")
    net = M.build_model(ModelConfig(variant="bm+p", backbone="resnet18", pretrained=True))
    assert torch.equal(net.stem[0].weight, state["conv1.weight"])
    assert torch.equal(net.stem[4][1].conv2.weight, state["layer1.1.conv2.weight"])
    for layer2 in (net.layer2, net.pose.layers[0]):
        assert torch.equal(layer2[0].conv1.weight, state["layer2.0.conv1.weight"])
    for layer4 in (net.cal.layers[1], net.bot.layers[1], net.pose.layers[2]):
        assert torch.equal(layer4[1].bn2.running_var, state["layer4.1.bn2.running_var"])
        assert layer4[0].conv1.stride == (1, 1)  # last stride set after loading


def test_clothes_head_gradients_match_the_normalised_weight_form_and_weight_grad_false_sends_none():
    cc = M.build_heads(_cfg()).clothes_classifier
    with torch.no_grad():
        cc.weight.mul_(torch.arange(1, 12).float()[:, None])
    f = torch.randn(5, 256, generator=torch.Generator().manual_seed(3), requires_grad=True)
    probe = torch.randn(5, 11, generator=torch.Generator().manual_seed(4))
    (cc(f) * probe).sum().backward()
    w = cc.weight.detach().clone().requires_grad_(True)
    f2 = f.detach().clone().requires_grad_(True)
    expect = torch.nn.functional.normalize(f2, dim=1) @ torch.nn.functional.normalize(w, dim=1).T
    (expect * probe).sum().backward()
    assert torch.allclose(cc.weight.grad, w.grad, atol=1e-6) and torch.allclose(f.grad, f2.grad, atol=1e-6)
    cc.weight.grad, f.grad = None, None
    out = cc(f, weight_grad=False)
    assert torch.allclose(out, expect.detach(), atol=1e-6)
    (out * probe).sum().backward()
    assert cc.weight.grad is None and torch.allclose(f.grad, f2.grad, atol=1e-6)
