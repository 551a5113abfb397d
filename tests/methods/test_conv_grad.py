"""The matmul weight gradient of small-map 3×3 convolutions (rlqlib.methods.conv_grad) against an explicit loop and
against torch's own convolution, and where it is (not) used."""

import copy

import pytest
import torch
from torch import nn

from rlqlib.methods import conv_grad as G
from rlqlib.methods.backbone import build_trunk


def loop_weight_grad(grad_out, x, stride):
    """Σ_{n,h,w} grad_out[n,o,h,w] · x_pad[n,c,s·h+i,s·w+j], one output position at a time."""
    n, c_out, h_out, w_out = grad_out.shape
    xp = torch.nn.functional.pad(x, (1, 1, 1, 1))
    gw = torch.zeros(c_out, x.shape[1], 3, 3, dtype=torch.float64)
    for b in range(n):
        for h in range(h_out):
            for w in range(w_out):
                patch = xp[b, :, stride * h:stride * h + 3, stride * w:stride * w + 3].double()  # (C_in, 3, 3)
                gw += grad_out[b, :, h, w].double()[:, None, None, None] * patch[None]
    return gw


@pytest.mark.parametrize("stride", [1, 2])
def test_weight_grad_equals_the_loop(stride):
    g = torch.Generator().manual_seed(0)
    x = torch.randn(2, 3, 5, 4, generator=g)
    h_out, w_out = (5 - 1) // stride + 1, (4 - 1) // stride + 1
    grad_out = torch.randn(2, 4, h_out, w_out, generator=g)
    got = G.weight_grad(grad_out, x, stride)
    assert got.shape == (4, 3, 3, 3)
    torch.testing.assert_close(got.double(), loop_weight_grad(grad_out, x, stride), rtol=1e-5, atol=1e-5)


def test_weight_grad_is_the_gradient_of_conv2d():
    """Against autograd of a float32 conv2d (channels last input, stride 2)."""
    g = torch.Generator().manual_seed(1)
    x = torch.randn(3, 5, 7, 6, generator=g).contiguous(memory_format=torch.channels_last)
    w = torch.randn(6, 5, 3, 3, generator=g, requires_grad=True)
    y = torch.nn.functional.conv2d(x, w, None, 2, 1)
    grad_out = torch.randn(y.shape, generator=g)
    y.backward(grad_out)
    torch.testing.assert_close(G.weight_grad(grad_out, x, 2), w.grad, rtol=1e-4, atol=1e-4)


def _run(conv, x, amp=True, grad=True):
    """Output, input gradient and weight gradient of ``conv`` on ``x`` (a fixed weighting of the output as loss)."""
    x = x.clone().requires_grad_(grad)
    with torch.set_grad_enabled(grad), torch.autocast("cpu", dtype=torch.bfloat16, enabled=amp):
        y = conv(x)
    if not grad:
        return y, None, None, y.grad_fn
    weights = torch.linspace(-1, 1, y.numel()).view_as(y)
    (y.float() * weights).sum().backward()
    return y, x.grad, conv.weight.grad, y.grad_fn


@pytest.mark.parametrize("stride,size", [(1, (8, 4)), (2, (9, 7))])
@pytest.mark.parametrize("channels_last", [False, True])
def test_small_map_conv_matches_the_plain_convolution_in_bf16(stride, size, channels_last):
    torch.manual_seed(2)
    plain = nn.Conv2d(32, 48, 3, stride, 1, bias=False)
    fast = copy.deepcopy(plain)
    assert G.use_small_map_convs(fast) == 1
    x = torch.randn(6, 32, *size)
    if channels_last:
        x = x.contiguous(memory_format=torch.channels_last)
        plain, fast = (m.to(memory_format=torch.channels_last) for m in (plain, fast))
    y0, gx0, gw0, _ = _run(plain, x)
    y1, gx1, gw1, fn = _run(fast, x)
    assert type(fn).__name__ == "_MatmulWeightGradBackward"  # the matmul path was taken
    assert y1.dtype == y0.dtype == torch.bfloat16 and gx1.dtype == gx0.dtype and gw1.dtype == torch.float32
    torch.testing.assert_close(y1, y0, rtol=0, atol=0)  # the same oneDNN forward on the same casts
    torch.testing.assert_close(gx1, gx0, rtol=0, atol=0)  # the same oneDNN input gradient
    # both weight gradients are bf16-rounded sums of the same products, in different orders
    scale = gw0.abs().max()
    assert (gw1 - gw0).abs().max() <= 2e-2 * scale


@pytest.mark.parametrize("case", ["float32", "no_grad", "large_map", "frozen"])
def test_small_map_conv_is_the_plain_convolution_elsewhere(case):
    torch.manual_seed(3)
    plain = nn.Conv2d(8, 8, 3, 1, 1, bias=False)
    fast = copy.deepcopy(plain)
    G.use_small_map_convs(fast)
    x = torch.randn(2, 8, 12, 6) if case == "large_map" else torch.randn(2, 8, 4, 4)  # 72 > SMALL_MAP positions
    if case == "frozen":
        for m in (plain, fast):
            m.weight.requires_grad_(False)
    kwargs = {"amp": case != "float32", "grad": case != "no_grad"}
    out0, out1 = _run(plain, x, **kwargs), _run(fast, x, **kwargs)
    assert type(out1[3]).__name__ != "_MatmulWeightGradBackward"
    for a, b in zip(out0[:3], out1[:3]):
        assert (a is None and b is None) or torch.equal(a, b)


def test_only_plain_3x3_padding_1_convolutions_are_switched():
    net = nn.Sequential(nn.Conv2d(3, 8, 7, 2, 3, bias=False), nn.Conv2d(8, 8, 3, 1, 1, bias=False),
                        nn.Conv2d(8, 8, 1, bias=False), nn.Conv2d(8, 8, 3, 1, 1, bias=True),
                        nn.Conv2d(8, 8, 3, 1, 1, groups=2, bias=False), nn.Conv2d(8, 8, 3, 2, 1, bias=False))
    keys = list(net.state_dict())
    assert G.use_small_map_convs(net) == 2
    assert [type(m).__name__ for m in net] == ["Conv2d", "SmallMapConv2d", "Conv2d", "Conv2d", "Conv2d",
                                               "SmallMapConv2d"]
    assert list(net.state_dict()) == keys
    assert G.use_small_map_convs(net, enabled=False) == 2  # and back (the benchmark's baseline)
    assert all(type(m) is nn.Conv2d for m in net)


def test_the_trunk_uses_small_map_convolutions():
    pieces, _ = build_trunk("resnet_micro")
    convs = [m for m in pieces.modules() if isinstance(m, nn.Conv2d)]
    switched = [m for m in convs if isinstance(m, G.SmallMapConv2d)]
    # resnet_micro: one BasicBlock per stage, two 3×3 convolutions each; the 7×7 stem and 1×1 shortcuts stay
    assert len(switched) == 8
    assert all(m.kernel_size != (3, 3) for m in convs if not isinstance(m, G.SmallMapConv2d))
