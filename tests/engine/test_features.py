"""Inference features: the flip-sum extractor vs an explicit per-image loop, its input checks, and the run settings
that :func:`rlqlib.engine.features.run_features` applies."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from rlqlib.data.transforms import IMAGENET_MEAN, IMAGENET_STD
from rlqlib.engine.config import RuntimeConfig
from rlqlib.engine.evaluate import EvaluationError
from rlqlib.engine.features import extract_features, run_features


class TinyNet(nn.Module):
    """Conv + BN + dropout + pooling: eval mode matters (BN statistics, dropout)."""

    def __init__(self):
        super().__init__()
        gen = torch.Generator().manual_seed(0)
        self.conv = nn.Conv2d(3, 4, 3, padding=1)
        with torch.no_grad():
            self.conv.weight.copy_(torch.randn(self.conv.weight.shape, generator=gen))
        self.bn = nn.BatchNorm2d(4)
        self.drop = nn.Dropout(0.5)
        self.head = nn.Linear(4 * 4 * 2, 6)

    def forward(self, x):
        x = self.bn(self.conv(x))  # (B,4,8,4)
        return self.head(self.drop(nn.functional.avg_pool2d(x, 2).flatten(1)))  # (B, 6)


def explicit_features(model, images):
    mean = torch.tensor(IMAGENET_MEAN).view(3, 1, 1)
    std = torch.tensor(IMAGENET_STD).view(3, 1, 1)
    out = []
    with torch.no_grad():
        for img in images:
            x = ((img.float() / 255 - mean) / std)[None]
            f = model(x) + model(torch.flip(x, dims=[3]))
            out.append((f / f.norm()).squeeze(0))
    return torch.stack(out)


def test_extract_features_matches_explicit_loop():
    images = torch.randint(0, 256, (7, 3, 8, 4), dtype=torch.uint8, generator=torch.Generator().manual_seed(3))
    model = TinyNet().train()
    feats = extract_features(model, images, batch_size=3)
    assert model.training  # state restored
    expected = explicit_features(model.eval(), images)
    assert feats.dtype == torch.float32 and feats.shape == (7, 6)
    torch.testing.assert_close(feats, expected, atol=1e-6, rtol=1e-5)
    torch.testing.assert_close(feats.norm(dim=1), torch.ones(7))
    # a loader of dicts or tuples gives the same features
    batches = [{"images": images[:4]}, {"images": images[4:]}]
    torch.testing.assert_close(extract_features(model, batches), feats, atol=1e-6, rtol=1e-5)
    torch.testing.assert_close(extract_features(model, [(images[:2], 0), (images[2:], 0)]), feats,
                               atol=1e-6, rtol=1e-5)
    # bf16 autocast + channels_last: close, float32 out
    amp = extract_features(model, images, amp=True)
    assert amp.dtype == torch.float32 and model.conv.weight.is_contiguous()  # weights' layout restored
    torch.testing.assert_close(amp, feats, atol=0.05, rtol=0.05)


def test_extract_features_rejects_float_images():
    with pytest.raises(EvaluationError, match="uint8"):
        extract_features(TinyNet(), torch.zeros(2, 3, 8, 4))
    with pytest.raises(EvaluationError, match="no images"):
        extract_features(TinyNet(), [])


def test_run_features_uses_the_runs_settings():
    images = torch.randint(0, 256, (5, 3, 8, 4), dtype=torch.uint8, generator=torch.Generator().manual_seed(4))
    model = TinyNet()
    cpu = torch.device("cpu")
    runtime = RuntimeConfig(amp="bf16", channels_last=True, eval_batch_size=2)
    # a run that trains in bf16 is scored in bf16 (on the CPU too), with its layout and batch size
    expected = extract_features(model, images, 2, cpu, amp=True, channels_last=True)
    assert torch.equal(run_features(model, images, runtime, cpu), expected)
    assert not torch.equal(expected, extract_features(model, images, 2, cpu, amp=False, channels_last=True))
    fp32 = RuntimeConfig(amp="none", channels_last=False, eval_batch_size=3)
    assert torch.equal(run_features(model, images, fp32, cpu), extract_features(model, images, 3, cpu, amp=False,
                                                                                  channels_last=False))
