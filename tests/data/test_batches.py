"""rlqlib.data.batches: augmented training batches, with and without recoloured replicas (tiny, CPU)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from rlqlib.data.batches import TrainBatches
from rlqlib.data.lq import LQSource
from rlqlib.data.recolour import extended_pid2clothes
from rlqlib.data.sampler import PKSampler
from rlqlib.data.transforms import normalize
from random_tensors import generator as _gen, random_images as _images

# identity -> number of images; with k=4, ids 3 and 5 are up-sampled; 2+1+1+1+2+1 = 8 chunks
COUNTS = {0: 10, 1: 7, 2: 4, 3: 2, 4: 9, 5: 1}
PIDS = [pid for pid, n in COUNTS.items() for _ in range(n)]




def test_train_batches_plain():
    images = _images(len(PIDS), 8, 4, seed=1)
    sampler = PKSampler(PIDS, p=2, k=4, seed=0)
    tb = TrainBatches(images, PIDS, np.array(PIDS) * 2, sampler, _gen(0))
    tb.set_epoch(3)
    assert sampler.epoch == 3
    batches = list(tb)
    assert len(batches) == len(tb) == 4
    for batch in batches:
        assert set(batch) == {"images", "pids", "clothes_ids", "index"}
        assert batch["images"].shape == (8, 3, 8, 4) and batch["images"].dtype == torch.float32
        assert torch.equal(batch["clothes_ids"], batch["pids"] * 2)
    with pytest.raises(ValueError, match="gender"):
        TrainBatches(images, PIDS, PIDS, sampler, _gen(0), extra={"gender": [0, 1]})


def test_train_batches_with_replicas():
    n, h, w, c = len(PIDS), 8, 4, 9
    images = _images(n, h, w, seed=2)
    shirt = torch.zeros(n, 1, h, w, dtype=torch.bool)
    shirt[:, :, 1:4] = True
    pant = torch.zeros_like(shirt)
    pant[:, :, 5:8] = True
    clothes = np.array(PIDS) * 2  # one real clothes class per id, N_orig = 12
    pid2clothes = np.zeros((6, 12), dtype=bool)
    pid2clothes[np.arange(6), np.arange(6) * 2] = True
    ext = extended_pid2clothes(pid2clothes, c)
    gender = np.array([pid % 2 for pid in PIDS])
    single = np.zeros(n, dtype=bool)
    single[:10] = True  # identity 0 is "faulty": one colour for both parts
    tb = TrainBatches(
        images, PIDS, clothes, PKSampler(PIDS, p=2, k=4, seed=0), _gen(0),
        extra={"gender": gender}, recolour=True, shirt_masks=shirt, pant_masks=pant,
        num_orig_clothes=12, single_colour=single, augment=dict(crop_p=0, flip_p=0, erase_p=0),
    )
    batches = list(tb)
    assert len(batches) == len(tb) == 4
    for batch in batches:
        idx = batch["index"]
        assert batch["images"].shape == (16, 3, h, w)
        assert torch.equal(idx[0::2], idx[1::2])
        assert torch.equal(batch["pids"], torch.tensor(PIDS)[idx])
        assert torch.equal(batch["gender"], torch.as_tensor(gender)[idx])
        assert batch["replica"].tolist() == [False, True] * 8
        assert torch.equal(batch["clothes_ids"][0::2], torch.as_tensor(clothes)[idx[0::2]])
        syn = batch["clothes_ids"][1::2] - 12 - batch["pids"][1::2] * c * c  # combo index
        assert ((syn >= 0) & (syn < c * c)).all()
        assert ext[batch["pids"].numpy(), batch["clothes_ids"].numpy()].all()  # own classes
        faulty = torch.as_tensor(single)[idx[1::2]]
        assert (syn // c == syn % c)[faulty].all()  # single colour: pant index == shirt index
        # originals untouched; replicas differ only inside the masks
        assert torch.equal(batch["images"][0::2], normalize(images[idx[0::2]]))
        outside = ~(shirt | pant)[idx[1::2]].expand(-1, 3, -1, -1)
        original = normalize(images[idx[1::2]])
        assert torch.equal(batch["images"][1::2][outside], original[outside])
        assert not torch.equal(batch["images"][1::2], original)


def _masks(n, h, w):
    shirt = torch.zeros(n, 1, h, w, dtype=torch.bool)
    shirt[:, :, 1:4] = True
    pant = torch.zeros_like(shirt)
    pant[:, :, 5:8] = True
    return shirt, pant


def test_lq_view_makes_a_3b_batch_as_the_authors_lr_aug():
    # "BM + LQ Aug." in the authors' code: original, recoloured replica and a degraded third view per sample, the
    # third labelled with the sample's original clothes class (difference N2)
    n, h, w, c = len(PIDS), 32, 16, 9
    images = _images(n, h, w, seed=3)
    shirt, pant = _masks(n, h, w)
    clothes = np.array(PIDS) * 2
    gender = np.array([pid % 2 for pid in PIDS])
    view = LQSource(images, "ltcc")
    kw = dict(extra={"gender": gender}, recolour=True, shirt_masks=shirt, pant_masks=pant, num_orig_clothes=12,
              augment=dict(crop_p=0, flip_p=0, erase_p=0))
    tb = TrainBatches(images, PIDS, clothes, PKSampler(PIDS, p=2, k=4, seed=0), _gen(0), lq_view=view, **kw)
    plain = TrainBatches(images, PIDS, clothes, PKSampler(PIDS, p=2, k=4, seed=0), _gen(0), **kw)
    for batch, two in zip(tb, plain):
        idx = batch["index"]
        assert batch["images"].shape == (24, 3, h, w)  # 3B
        assert torch.equal(idx[0::3], idx[1::3]) and torch.equal(idx[0::3], idx[2::3])
        assert batch["lq_view"].tolist() == [False, False, True] * 8
        assert batch["replica"].tolist() == [False, True, False] * 8
        assert torch.equal(batch["pids"], torch.tensor(PIDS)[idx])
        assert torch.equal(batch["gender"], torch.as_tensor(gender)[idx])
        assert torch.equal(batch["clothes_ids"][2::3], torch.as_tensor(clothes)[idx[2::3]])  # original class
        assert torch.equal(batch["clothes_ids"][0::3], torch.as_tensor(clothes)[idx[0::3]])
        assert (batch["clothes_ids"][1::3] >= 12).all()  # the replicas' synthetic classes
        assert torch.equal(batch["images"][0::3], normalize(images[idx[0::3]]))
        assert not torch.equal(batch["images"][2::3], batch["images"][0::3])  # degraded
        assert two["images"].shape == (16, 3, h, w)


def test_lq_view_draws_and_clean_copies():
    n, h, w = len(PIDS), 32, 16
    images = _images(n, h, w, seed=4)
    aug = dict(crop_p=0, flip_p=0, erase_p=0)
    tb = TrainBatches(images, PIDS, PIDS, PKSampler(PIDS, p=2, k=4, seed=0), _gen(1), lq_view=LQSource(images, "prcc"),
                      augment=aug)
    batch = next(iter(tb))  # no replicas: [x0, x0_lq, x1, x1_lq, ...] = 2B
    idx = batch["index"][0::2]
    assert batch["images"].shape == (16, 3, h, w) and batch["lq_view"].tolist() == [False, True] * 8
    # the view is LQSource.make on the sampled indices, from the batches' generator, before the augmentation
    assert torch.equal(batch["images"][1::2], normalize(LQSource(images, "prcc").make(idx, _gen(1))))
    clean = TrainBatches(images, PIDS, PIDS, PKSampler(PIDS, p=2, k=4, seed=0), _gen(1),
                         lq_view=LQSource(images, "prcc"), lq_view_p=0.0, augment=aug)
    b0 = next(iter(clean))
    assert torch.equal(b0["images"][1::2], b0["images"][0::2])  # lq_view_p = 0: undegraded copies
    with pytest.raises(ValueError, match="lq_view covers"):
        TrainBatches(images, PIDS, PIDS, PKSampler(PIDS, p=2, k=4, seed=0), _gen(1), lq_view=LQSource(images[:3], "ltcc"))
