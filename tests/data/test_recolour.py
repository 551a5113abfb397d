"""rlqlib.data.recolour: colour tables, the recolouring blend and the synthetic clothes labels (tiny, CPU)."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from rlqlib.data.recolour import (COLOURS, LAST_COLOURS, extended_pid2clothes, recolour_clothes, sample_recolour,
                                  synthetic_clothes_labels)
from random_tensors import generator as _gen


def test_colours_match_matplotlib():
    mcolors = pytest.importorskip("matplotlib.colors")
    for name, rgb in COLOURS.items():
        assert rgb == tuple(int(v) for v in np.array(mcolors.to_rgb(name)) * 255)
    assert list(LAST_COLOURS) == ["green", "blue", "purple", "red", "yellow", "pink"]


def test_recolour_matches_per_pixel_formula():
    img = torch.tensor([[[100, 7], [200, 255]], [[0, 50], [13, 1]], [[77, 255], [128, 9]]],
                       dtype=torch.uint8)
    shirt = torch.tensor([[True, False], [False, True]])  # overlaps pant at (1,1)
    pant = torch.tensor([[False, False], [True, True]])
    table = list(COLOURS.values())
    si, pi = 4, 8  # black shirt, pink pants
    out = recolour_clothes(img[None], shirt[None, None], pant[None, None],
                             torch.tensor([si]), torch.tensor([pi]), COLOURS)[0]
    for y in range(2):
        for x in range(2):
            for c in range(3):
                v = int(img[c, y, x])
                if pant[y, x]:
                    want = math.floor(v * (1 - 0.7) + 0.7 * table[pi][c])
                elif shirt[y, x]:
                    want = math.floor(v * (1 - 0.7) + 0.7 * table[si][c])
                else:
                    want = v
                assert int(out[c, y, x]) == want, (y, x, c)
    assert int(out[0, 0, 0]) == 30  # 100·0.3 in float64 is 30.000000000000004 -> 30, as numpy


def test_synthetic_labels_and_extended_pid2clothes():
    labels = synthetic_clothes_labels(
        torch.tensor([0, 2, 76]), torch.tensor([1, 8, 5]), torch.tensor([3, 0, 5]), 256, 9
    )
    # N_orig + pid*81 + pant*9 + shirt
    assert labels.tolist() == [256 + 0 + 27 + 1, 256 + 162 + 0 + 8, 256 + 76 * 81 + 45 + 5]
    orig = np.random.default_rng(0).random((77, 256)) < 0.05
    ext = extended_pid2clothes(orig, 9)
    assert ext.shape == (77, 6493) and ext.dtype == bool
    assert np.array_equal(ext[:, :256], orig)
    assert np.array_equal(ext[:, 256:].sum(axis=1), np.full(77, 81))
    assert ext[2, 256 + 2 * 81 : 256 + 3 * 81].all() and not ext[2, 256 + 3 * 81 :].any()
    assert ext[[0, 2, 76], labels.numpy()].all()


def test_sample_recolour_range_and_independence():
    shirt, pant = sample_recolour(torch.zeros(4000, dtype=torch.long), _gen(0), 6)
    assert shirt.shape == pant.shape == (4000,)
    assert set(shirt.tolist()) == set(range(6)) == set(pant.tolist())
    assert (shirt != pant).float().mean() > 0.7  # independent: P(equal) = 1/6
