"""rlqlib.engine.ema: the weight average against its recursion written out, which optimiser steps update it, and a
run with ``schedule.ema_decay`` (ends with the average, resumes to the same weights, hashed only when on)."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from rlqlib.engine import hashing as H
from rlqlib.engine import teacher as Tc
from rlqlib.engine import train as T
from rlqlib.engine.ema import WeightAverage


def _net() -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(3, 2), nn.BatchNorm1d(2))


def test_the_average_follows_its_recursion_with_the_warm_up():
    net = _net()
    ema = WeightAverage(net, decay=0.9)
    history = [net[0].weight.detach().clone()]
    for t in range(1, 40):  # a running mean while 1 - 1/t <= 0.9 (t <= 10), then the decay 0.9
        with torch.no_grad():
            net[0].weight.add_(torch.randn(2, 3))
            net[1].num_batches_tracked += 1
        history.append(net[0].weight.detach().clone())
        ema.update(net)
    want = history[0]
    for t, w in enumerate(history[1:], start=1):
        d = min(0.9, 1 - 1 / t)
        want = d * want + (1 - d) * w
        if t == 10:  # the first 10 steps' weights, equally weighted; the start none
            torch.testing.assert_close(want, torch.stack(history[1:11]).mean(0))
    torch.testing.assert_close(ema.shadow["0.weight"], want)
    assert ema.shadow["1.num_batches_tracked"].item() == 39  # integers are copied, not averaged
    assert [ema.decay_at(t) for t in (1, 2, 10, 11, 1000)] == pytest.approx([0, 0.5, 0.9, 0.9, 0.9])
    ema.copy_to(net)
    torch.testing.assert_close(net[0].weight, want)


def test_only_steps_of_an_optimiser_over_the_model_update_it_and_only_while_tracking():
    net, other = _net(), nn.Linear(2, 2)
    opt, opt_other = torch.optim.SGD(net.parameters(), lr=0.1), torch.optim.SGD(other.parameters(), lr=0.1)
    ema = WeightAverage(net, decay=0.5)
    with ema.tracking(net):
        for o, m in ((opt, net), (opt_other, other), (opt, net)):
            m(torch.randn(4, m[0].in_features if isinstance(m, nn.Sequential) else 2)).sum().backward()
            o.step()
    assert ema.updates == 2
    opt.step()  # outside the block: no hook any more
    assert ema.updates == 2
    with pytest.raises(ValueError, match=r"ema decay 1.0.*\[0, 1\)"):
        WeightAverage(net, 1.0)


def test_a_run_with_ema_ends_with_the_average_resumes_to_it_and_is_hashed_only_when_on(smoke_config, tmp_path):
    off = Tc.resolve(smoke_config("cal", epochs=2))
    cfg = Tc.resolve(smoke_config("cal", epochs=2, **{"schedule.ema_decay": 0.9}))
    assert "ema_decay" not in H.hashed_dict(off)["schedule"] and H.hashed_dict(cfg)["schedule"]["ema_decay"] == 0.9
    full = T.Trainer(cfg, tmp_path / "full")
    raw = {}
    full.method.epoch = _recording(full, full.method.epoch, raw)
    metrics = full.fit()
    state = T.load_checkpoint(tmp_path / "full" / T.CHECKPOINT)
    assert state["ema"]["updates"] == sum(h["cap"]["steps"] for h in full.history) > 0
    for k, v in full.model.state_dict().items():  # the checkpointed and evaluated model is the average
        torch.testing.assert_close(state["model"][k], v)
        torch.testing.assert_close(v, state["ema"]["shadow"][k])
    assert any(not torch.equal(raw[k], v) for k, v in full.model.state_dict().items() if v.is_floating_point())
    with pytest.raises(T.TrainingInterrupted):
        T.fit(cfg, tmp_path / "cut", stop_after_epoch=1)
    resumed = T.Trainer(cfg, tmp_path / "cut")
    assert resumed.fit(resume=True)["eval"] == metrics["eval"]
    for k, v in full.model.state_dict().items():
        torch.testing.assert_close(resumed.model.state_dict()[k], v, rtol=0, atol=0)
    with pytest.raises(ValueError, match=r"schedule.ema_decay=1.5"):
        smoke_config("cal", **{"schedule.ema_decay": 1.5})


def _recording(trainer, epoch_fn, raw):
    """The method's epoch, keeping a copy of the raw weights after the last one (before the average replaces them)."""
    def epoch(e, bar):
        out = epoch_fn(e, bar)
        raw.update({k: v.detach().clone() for k, v in trainer.model.state_dict().items()})
        return out
    return epoch
