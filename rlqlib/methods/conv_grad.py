"""3×3 convolutions whose weight gradient on small feature maps is computed as nine matrix products (CPU, bf16).

On the CPU, under bf16 autocast, oneDNN's weight gradient of a 3×3 convolution is slow when the feature map is
small and the channels many: for the ``cpu`` preset's layer4 (64 × 256 × 8 × 4, stride 1, the reference's last
stride at 128×64 input) it takes 12.7 ms at one thread, five times the forward pass (2.4 ms) and the input gradient
(2.5 ms), and it is the largest single cost of a Base Model step. The same gradient as nine (C_out × N·H·W) ·
(N·H·W × C_in) products, one per kernel tap, takes 6.3 ms; from 16 × 8 positions on, oneDNN is faster
(``bench/train.py``; the measurements are in :data:`SMALL_MAP`'s comment).

:class:`SmallMapConv2d` is an :class:`torch.nn.Conv2d` (same parameters, same state dict) that takes that path only
where it pays: on the CPU, inside a bf16 autocast region, with gradients on, for a 3×3 convolution with padding 1,
no bias, no groups or dilation, whose output has at most :data:`SMALL_MAP` positions. The forward pass and the input
gradient are oneDNN's, on the same bf16 casts autocast makes; the weight gradient is rounded to bf16 as autocast's
would be. Everywhere else (GPU, float32, evaluation) it is the plain convolution. :func:`use_small_map_convs` switches
a built network's eligible convolutions to it.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

# output positions (H·W) up to which the matmul weight gradient is used. Measured at one thread (bf16, channels
# last, batch 64): 8×4 = 32 positions, 256 → 256 channels: 12.7 ms (oneDNN) against 6.3 ms; 16×8 = 128 positions,
# 128 → 128: 4.8 ms against 7.8 ms; 32×16, 64 → 64: 3.7 against 11.5.
SMALL_MAP = 32


def weight_grad(grad_out: Tensor, x: Tensor, stride: int) -> Tensor:
    """The weight gradient of a 3×3, padding-1 convolution: Σ_{n,h,w} grad_out[n,o,h,w] · x_pad[n,c,s·h+i,s·w+j].

    Args:
        grad_out: (N, C_out, H_out, W_out) gradient of the output.
        x: (N, C_in, H, W) input.
        stride: the convolution's stride s.

    Returns:
        (C_out, C_in, 3, 3) in ``grad_out``'s dtype, channels-last strided (each tap's product is one column block).
    """
    n, c_out, h_out, w_out = grad_out.shape
    c_in = x.shape[1]
    xp = F.pad(x.permute(0, 2, 3, 1), (0, 0, 1, 1, 1, 1))  # (N, H+2, W+2, C_in)
    g = grad_out.permute(0, 2, 3, 1).reshape(-1, c_out).t()  # (C_out, N·H_out·W_out)
    out = torch.empty(c_out, 3, 3, c_in, dtype=grad_out.dtype, device=grad_out.device)
    hi, wi = stride * (h_out - 1) + 1, stride * (w_out - 1) + 1
    for i in range(3):
        for j in range(3):
            tap = xp[:, i:i + hi:stride, j:j + wi:stride, :].reshape(-1, c_in)  # (N·H_out·W_out, C_in)
            out[:, i, j] = g @ tap
    return out.permute(0, 3, 1, 2)


class _MatmulWeightGrad(torch.autograd.Function):
    """bf16 convolution (oneDNN) whose backward takes the input gradient from oneDNN and the weight gradient from
    :func:`weight_grad`."""

    @staticmethod
    def forward(ctx, x: Tensor, weight: Tensor, stride: int) -> Tensor:
        xb, wb = x.to(torch.bfloat16), weight.to(torch.bfloat16)  # the casts autocast makes
        ctx.save_for_backward(xb, wb)
        ctx.stride, ctx.x_dtype, ctx.w_dtype = stride, x.dtype, weight.dtype
        with torch.autocast("cpu", enabled=False):
            return F.conv2d(xb, wb, None, stride, 1)

    @staticmethod
    def backward(ctx, grad_out: Tensor) -> tuple[Tensor | None, Tensor | None, None]:
        xb, wb = ctx.saved_tensors
        grad_out = grad_out.to(torch.bfloat16)
        gx = gw = None
        if ctx.needs_input_grad[0]:
            s = ctx.stride
            gx = torch.ops.aten.convolution_backward(grad_out, xb, wb, None, [s, s], [1, 1], [1, 1], False, [0, 0], 1,
                                                     [True, False, False])[0].to(ctx.x_dtype)
        if ctx.needs_input_grad[1]:
            gw = weight_grad(grad_out, xb, ctx.stride).to(ctx.w_dtype)
        return gx, gw, None


class SmallMapConv2d(nn.Conv2d):
    """A 3×3 :class:`torch.nn.Conv2d` (padding 1, no bias, groups, dilation) whose weight gradient on small maps
    on the CPU under bf16 autocast comes from :func:`weight_grad`; elsewhere the plain convolution."""

    def forward(self, x: Tensor) -> Tensor:
        s = self.stride[0]
        h_out, w_out = (x.shape[2] - 1) // s + 1, (x.shape[3] - 1) // s + 1
        if (x.device.type == "cpu" and torch.is_grad_enabled() and self.weight.requires_grad
                and torch.is_autocast_enabled("cpu") and torch.get_autocast_dtype("cpu") == torch.bfloat16
                and h_out * w_out <= SMALL_MAP):
            return _MatmulWeightGrad.apply(x, self.weight, s)
        return super().forward(x)


def eligible(conv: nn.Module) -> bool:
    """Whether ``conv`` is a plain 3×3 convolution with padding 1 that :class:`SmallMapConv2d` can stand in for."""
    return (type(conv) is nn.Conv2d and conv.kernel_size == (3, 3) and conv.padding == (1, 1)
            and conv.dilation == (1, 1) and conv.groups == 1 and conv.bias is None
            and conv.stride[0] == conv.stride[1] and conv.padding_mode == "zeros")


def use_small_map_convs(module: nn.Module, enabled: bool = True) -> int:
    """Switch every eligible convolution inside ``module`` to :class:`SmallMapConv2d` in place (same parameters and
    state-dict keys), or with ``enabled=False`` every :class:`SmallMapConv2d` back to a plain :class:`torch.nn.Conv2d`
    (oneDNN's weight gradient everywhere: ``bench/train.py --convs plain``); returns how many were switched."""
    n = 0
    for m in module.modules():
        if enabled and eligible(m):
            m.__class__ = SmallMapConv2d
        elif not enabled and type(m) is SmallMapConv2d:
            m.__class__ = nn.Conv2d
        else:
            continue
        n += 1
    return n
