"""The methods' optimiser (rlqlib.methods.optim.adam): the fused kernel makes Adam's update with coupled L2 decay."""

import torch

from rlqlib.methods.optim import adam


def _adam_by_hand(w: torch.Tensor, grads: list[torch.Tensor], lr: float, wd: float,
                  betas=(0.9, 0.999), eps=1e-8) -> torch.Tensor:
    """Adam (Kingma & Ba, Alg. 1) with the L2 term added to the gradient, written out step by step."""
    w, m, v = w.clone(), torch.zeros_like(w), torch.zeros_like(w)
    for t, g in enumerate(grads, start=1):
        g = g + wd * w
        m = betas[0] * m + (1 - betas[0]) * g
        v = betas[1] * v + (1 - betas[1]) * g * g
        m_hat, v_hat = m / (1 - betas[0] ** t), v / (1 - betas[1] ** t)
        w = w - lr * m_hat / (v_hat.sqrt() + eps)
    return w


def test_adam_makes_the_hand_written_update_per_parameter_group():
    g = torch.Generator().manual_seed(0)
    w0 = [torch.randn(7, 5, generator=g), torch.randn(3, generator=g)]
    grads = [[torch.randn(w.shape, generator=g) for _ in range(4)] for w in w0]
    params = [torch.nn.Parameter(w.clone()) for w in w0]
    lrs, wd = (3.5e-4, 3.5e-3), 5e-4  # the second group at 10x, as schedule.heads_lr_mult does
    opt = adam([{"params": [params[0]]}, {"params": [params[1]], "lr": lrs[1]}], lr=lrs[0], weight_decay=wd)
    for step in range(4):
        for p, gs in zip(params, grads):
            p.grad = gs[step].clone()
        opt.step()
    for p, w, gs, lr in zip(params, w0, grads, lrs):
        want = _adam_by_hand(w, gs, lr, wd)
        assert torch.allclose(p.detach(), want, rtol=0, atol=1e-6), (p.detach() - want).abs().max()
        assert (p.detach() - w).abs().max() > 3 * lr  # it moved by about lr per step, not by nothing


def test_adam_matches_torchs_for_loop_adam_to_rounding():
    """The authors' optimiser is torch's default (for-loop) Adam; the fused kernel differs only at float rounding."""
    g = torch.Generator().manual_seed(1)
    net = [torch.nn.Linear(16, 8), torch.nn.Linear(8, 4)]
    for layer in net:
        for p in layer.parameters():
            torch.nn.init.normal_(p, generator=g)
    twins = [[torch.nn.Parameter(p.detach().clone()) for layer in net for p in layer.parameters()] for _ in range(2)]
    fused = adam(twins[0], lr=1e-2, weight_decay=5e-4)
    loop = torch.optim.Adam(twins[1], lr=1e-2, weight_decay=5e-4, foreach=False)
    for _ in range(10):
        grads = [torch.randn(p.shape, generator=g) for p in twins[0]]
        for params, opt in zip(twins, (fused, loop)):
            for p, grad in zip(params, grads):
                p.grad = grad.clone()
            opt.step()
    diff = max((a - b).abs().max().item() for a, b in zip(*twins))
    assert diff < 1e-6
