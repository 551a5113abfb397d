"""rlqlib.data.loader: sampler, batched augmentation, recolouring, decoding, batches (tiny, CPU)."""

from __future__ import annotations

import math
from collections import Counter

import numpy as np
import pytest
import torch
from PIL import Image

from rlqlib.data import loader as L
from rlqlib.data.datasets import DatasetError

# identity -> number of images; with k=4, ids 3 and 5 are up-sampled; 2+1+1+1+2+1 = 8 chunks
COUNTS = {0: 10, 1: 7, 2: 4, 3: 2, 4: 9, 5: 1}
PIDS = [pid for pid, n in COUNTS.items() for _ in range(n)]
MEAN = torch.tensor(L.IMAGENET_MEAN).view(1, 3, 1, 1)
STD = torch.tensor(L.IMAGENET_STD).view(1, 3, 1, 1)


def _chunks(batch: list[int], k: int) -> list[list[int]]:
    return [batch[i : i + k] for i in range(0, len(batch), k)]


def _images(b=6, h=24, w=12, seed=0) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return torch.randint(0, 256, (b, 3, h, w), generator=g, dtype=torch.uint8)


def _gen(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


# ----------------------------------------------------------------------------------- PKSampler


def test_sampler_batches_are_pk_and_chunks_share_one_pid():
    s = L.PKSampler(PIDS, p=2, k=4, seed=0)
    batches = list(s)
    assert len(batches) == len(s) == 4  # 8 chunks / p=2
    seen = Counter()
    for b in batches:
        assert len(b) == 8
        for chunk in _chunks(b, 4):
            assert len({PIDS[i] for i in chunk}) == 1
        seen.update(b)
    # ids with >= k images: each image at most once; remainders dropped and counted
    assert all(seen[i] <= 1 for i in seen if COUNTS[PIDS[i]] >= 4)
    assert s.last_stats["remainder_images_dropped"] == 2 + 3 + 0 + 1
    assert s.last_stats["upsampled_ids"] == 2


def test_sampler_upsamples_small_ids_with_replacement():
    s = L.PKSampler(PIDS, p=1, k=4, seed=3)
    small = {pid: {i for i, q in enumerate(PIDS) if q == pid} for pid in (3, 5)}
    found = {3: 0, 5: 0}
    for b in s:
        pid = PIDS[b[0]]
        if pid in small:
            found[pid] += 1
            assert len(b) == 4 and set(b) <= small[pid]
    assert found == {3: 1, 5: 1}  # exactly one chunk each


def test_sampler_deterministic_per_seed_and_epoch():
    a, b = L.PKSampler(PIDS, 2, 4, seed=7), L.PKSampler(PIDS, 2, 4, seed=7)
    assert list(a) == list(b)
    e0 = list(a)
    a.set_epoch(1)
    b.set_epoch(1)
    assert list(a) == list(b) != e0
    assert list(L.PKSampler(PIDS, 2, 4, seed=8)) != e0


@pytest.mark.parametrize("p,world_size", [(1, 3), (2, 3), (1, 2), (2, 2)])
def test_sampler_ranks_disjoint_equal_and_len_matches(p, world_size):
    ranks = [L.PKSampler(PIDS, p, 4, seed=1, rank=r, world_size=world_size)
             for r in range(world_size)]
    plans = [list(s) for s in ranks]
    for s, plan in zip(ranks, plans):
        assert len(s) == len(plan) > 0
    # 8 chunks truncated to a multiple of world_size, then p chunks per batch, on every rank
    assert {len(plan) for plan in plans} == {(8 // world_size) // p}
    for i in range(world_size):
        for j in range(i + 1, world_size):
            idx_i = {x for b in plans[i] for x in b}
            idx_j = {x for b in plans[j] for x in b}
            assert not idx_i & idx_j  # no image on two ranks (up-sampled ids have one chunk)


def test_sampler_distinct_ids():
    pids = [0] * 40 + [1] * 12 + [2] * 12 + [3] * 8  # one dominant identity, 18 chunks of 4
    default_dup = 0
    for epoch in range(5):
        default = L.PKSampler(pids, p=3, k=4, seed=0)
        default.set_epoch(epoch)
        default_dup += sum(len({pids[c[0]] for c in _chunks(b, 4)}) < 3 for b in default)
        s = L.PKSampler(pids, p=3, k=4, seed=0, distinct_ids=True)
        s.set_epoch(epoch)
        batches = list(s)
        assert len(s) == len(batches) > 0
        for b in batches:
            assert len(b) == 12
            assert len({pids[c[0]] for c in _chunks(b, 4)}) == 3
            assert all(len({pids[i] for i in c}) == 1 for c in _chunks(b, 4))
        stats = s.last_stats
        dropped = stats["chunks_dropped_unpacked"] + 3 * stats["batches_dropped_world"]
        assert 3 * len(batches) + dropped == 18
    assert default_dup > 0  # the faithful default does repeat identities inside a batch


def test_sampler_rejects_bad_input():
    with pytest.raises(ValueError, match="cannot fill"):
        L.PKSampler([0, 0, 1], p=3, k=2, seed=0)
    with pytest.raises(ValueError, match="rank"):
        L.PKSampler(PIDS, 1, 4, seed=0, rank=2, world_size=2)
    with pytest.raises(ValueError, match="distinct_ids"):
        L.PKSampler([0] * 40, p=2, k=4, seed=0, distinct_ids=True)


# -------------------------------------------------------------------------------- augmentation


def test_normalize_values():
    x = torch.tensor([0, 255, 51], dtype=torch.uint8).view(1, 3, 1, 1)
    want = [(0 - 0.485) / 0.229, (1 - 0.456) / 0.224, (0.2 - 0.406) / 0.225]
    assert torch.allclose(L.normalize(x).flatten(), torch.tensor(want), atol=1e-6)
    assert torch.equal(L.eval_transform(x), L.normalize(x))
    with pytest.raises(TypeError, match="uint8"):
        L.train_augment(x.float(), _gen(0))


def test_augment_shape_range_determinism():
    x = _images()
    out = L.train_augment(x, _gen(1))
    assert out.shape == x.shape and out.dtype == torch.float32
    assert ((out >= -MEAN / STD - 1e-5) & (out <= (1 - MEAN) / STD + 1e-5)).all()
    assert torch.equal(out, L.train_augment(x, _gen(1)))
    assert not torch.equal(out, L.train_augment(x, _gen(2)))


def test_augment_identity_and_flip():
    x = _images()
    none = L.train_augment(x, _gen(0), crop_p=0, flip_p=0, erase_p=0)
    assert torch.equal(none, L.normalize(x))
    flipped = L.train_augment(x, _gen(0), crop_p=0, flip_p=1, erase_p=0)
    assert torch.equal(flipped, L.normalize(x).flip(-1))


def _draws(seed: int, b: int) -> dict[str, torch.Tensor]:
    """Replay train_augment's documented draw order from a fresh generator."""
    g = _gen(seed)

    def r(*shape):
        return torch.rand(shape, generator=g, dtype=torch.float64)

    return dict(crop_u=r(b), crop_off=r(b, 2), flip_u=r(b),
                erase_u=r(b), area=r(b, 100), aspect=r(b, 100), pos=r(b, 2))


@pytest.mark.parametrize("b,h,w,retries", [(8, 24, 12, False), (16, 40, 4, True), (64, 2, 2, True)])
def test_erasing_matches_per_image_reference_loop(b, h, w, retries):
    x = _images(b, h, w, seed=4)
    out = L.train_augment(x, _gen(5), crop_p=0, flip_p=0, erase_p=1)
    d = _draws(5, b)
    ref = L.normalize(x)
    fill = torch.tensor(L.ERASE_FILL).view(3, 1, 1)
    tries = []
    for i in range(b):  # the reference algorithm, one image at a time
        for t in range(100):
            target = (0.02 + (0.4 - 0.02) * d["area"][i, t].item()) * h * w
            aspect = 0.3 + (1 / 0.3 - 0.3) * d["aspect"][i, t].item()
            bh = int(round(math.sqrt(target * aspect)))
            bw = int(round(math.sqrt(target / aspect)))
            if bw < w and bh < h:
                top = int(d["pos"][i, 0].item() * (h - bh + 1))
                left = int(d["pos"][i, 1].item() * (w - bw + 1))
                if h > 2:  # box area in [0.02, 0.4] of the image, up to the rounding of h and w
                    assert 0.02 * h * w - (bh + bw) <= bh * bw <= 0.4 * h * w + (bh + bw) + 1
                ref[i, :, top : top + bh, left : left + bw] = fill
                tries.append(t)
                break
    assert len(tries) == b
    assert (max(tries) > 0) == retries  # thin images need more than one candidate
    assert torch.equal(out, ref)
    if h > 2:  # every image got a box holding exactly the fill values
        assert (out == fill.view(1, 3, 1, 1)).all(dim=1).any(dim=(1, 2)).all()


def test_erasing_skips_when_no_candidate_fits():
    x = _images(3, 1, 64)  # one row: every candidate has h >= 1 = H, so none fits
    out = L.train_augment(x, _gen(0), crop_p=0, flip_p=0, erase_p=1)
    assert torch.equal(out, L.normalize(x))


def test_crop_is_shifted_pil_upscale():
    b, h, w = 8, 16, 8
    x = _images(b, h, w, seed=9)
    out = L.train_augment(x, _gen(11), crop_p=1, flip_p=0, erase_p=0)
    assert out.shape == x.shape
    pixels = (out * STD + MEAN) * 255  # back to 0-255
    d = _draws(11, b)
    h2, w2 = round(h * 1.125), round(w * 1.125)  # 18, 9
    offsets, bias = set(), []
    for i in range(b):
        top = round(d["crop_off"][i, 0].item() * (h2 - h))
        left = round(d["crop_off"][i, 1].item() * (w2 - w))
        pil = Image.fromarray(x[i].permute(1, 2, 0).numpy()).resize((w2, h2), Image.BILINEAR)
        want = torch.from_numpy(np.array(pil)).permute(2, 0, 1)[:, top : top + h, left : left + w]
        diff = pixels[i] - want.float()
        assert diff.abs().max() <= 1.001  # PIL rounds after its horizontal pass: ±1 level
        bias.append(diff.mean().item())
        offsets.add((top, left))
    assert len(offsets) > 1 and abs(np.mean(bias)) < 0.2, bias  # rounded (truncation: -0.5)


# --------------------------------------------------------------------------------- recolouring


def test_colours_match_matplotlib():
    mcolors = pytest.importorskip("matplotlib.colors")
    for name, rgb in L.COLOURS.items():
        assert rgb == tuple(int(v) for v in np.array(mcolors.to_rgb(name)) * 255)
    assert list(L.LAST_COLOURS) == ["green", "blue", "purple", "red", "yellow", "pink"]


def test_recolour_matches_per_pixel_formula():
    img = torch.tensor([[[100, 7], [200, 255]], [[0, 50], [13, 1]], [[77, 255], [128, 9]]],
                       dtype=torch.uint8)
    shirt = torch.tensor([[True, False], [False, True]])  # overlaps pant at (1,1)
    pant = torch.tensor([[False, False], [True, True]])
    table = list(L.COLOURS.values())
    si, pi = 4, 8  # black shirt, pink pants
    out = L.recolour_clothes(img[None], shirt[None, None], pant[None, None],
                             torch.tensor([si]), torch.tensor([pi]), L.COLOURS)[0]
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
    labels = L.synthetic_clothes_labels(
        torch.tensor([0, 2, 76]), torch.tensor([1, 8, 5]), torch.tensor([3, 0, 5]), 256, 9
    )
    # N_orig + pid*81 + pant*9 + shirt
    assert labels.tolist() == [256 + 0 + 27 + 1, 256 + 162 + 0 + 8, 256 + 76 * 81 + 45 + 5]
    orig = np.random.default_rng(0).random((77, 256)) < 0.05
    ext = L.extended_pid2clothes(orig, 9)
    assert ext.shape == (77, 6493) and ext.dtype == bool
    assert np.array_equal(ext[:, :256], orig)
    assert np.array_equal(ext[:, 256:].sum(axis=1), np.full(77, 81))
    assert ext[2, 256 + 2 * 81 : 256 + 3 * 81].all() and not ext[2, 256 + 3 * 81 :].any()
    assert ext[[0, 2, 76], labels.numpy()].all()


def test_sample_recolour_range_and_independence():
    shirt, pant = L.sample_recolour(torch.zeros(4000, dtype=torch.long), _gen(0), 6)
    assert shirt.shape == pant.shape == (4000,)
    assert set(shirt.tolist()) == set(range(6)) == set(pant.tolist())
    assert (shirt != pant).float().mean() > 0.7  # independent: P(equal) = 1/6


# ------------------------------------------------------------------------------------ decoding


def test_load_images_and_masks(tmp_path):
    rng = np.random.default_rng(0)
    arrays = [rng.integers(0, 256, shape, dtype=np.uint8) for shape in ((10, 6, 3), (8, 4, 3))]
    paths = [str(tmp_path / f"img{i}.png") for i in range(2)]
    for path, a in zip(paths, arrays):
        Image.fromarray(a).save(path)
    grey = str(tmp_path / "grey.png")
    Image.fromarray(arrays[0][..., 0]).save(grey)
    out = L.load_images(paths + [grey], (8, 4), workers=2)
    assert out.shape == (3, 3, 8, 4) and out.dtype == torch.uint8
    want0 = np.asarray(Image.fromarray(arrays[0]).resize((4, 8), Image.BILINEAR))
    assert np.array_equal(out[0].permute(1, 2, 0).numpy(), want0)
    assert np.array_equal(out[1].permute(1, 2, 0).numpy(), arrays[1])  # already at size
    assert torch.equal(out[2][0], out[2][1])  # grey expanded to RGB

    m = np.zeros((10, 6, 3), dtype=np.uint8)
    m[2:7, 1:4] = 255
    mpath = str(tmp_path / "m_shirt.png")
    Image.fromarray(m).save(mpath)
    masks = L.load_masks([mpath], (5, 3))
    want = np.asarray(Image.fromarray(m[..., 0]).resize((3, 5), Image.NEAREST)) > 0
    assert masks.shape == (1, 1, 5, 3) and masks.dtype == torch.bool
    assert np.array_equal(masks[0, 0].numpy(), want) and want.any() and not want.all()


def test_load_images_names_bad_file(tmp_path):
    good = tmp_path / "good.png"
    Image.fromarray(np.zeros((4, 4, 3), np.uint8)).save(good)
    bad = tmp_path / "broken_0042.png"
    bad.write_bytes(b"definitely not a png")
    with pytest.raises(DatasetError, match="broken_0042.png"):
        L.load_images([str(good), str(bad)], (4, 4))
    with pytest.raises(DatasetError, match="missing_7.png"):
        L.load_images([str(tmp_path / "missing_7.png")], (4, 4))


# ------------------------------------------------------------------------------------- batches


def test_train_batches_plain():
    images = _images(len(PIDS), 8, 4, seed=1)
    sampler = L.PKSampler(PIDS, p=2, k=4, seed=0)
    tb = L.TrainBatches(images, PIDS, np.array(PIDS) * 2, sampler, _gen(0))
    tb.set_epoch(3)
    assert sampler.epoch == 3
    batches = list(tb)
    assert len(batches) == len(tb) == 4
    for batch in batches:
        assert set(batch) == {"images", "pids", "clothes_ids", "index"}
        assert batch["images"].shape == (8, 3, 8, 4) and batch["images"].dtype == torch.float32
        assert torch.equal(batch["clothes_ids"], batch["pids"] * 2)
    with pytest.raises(ValueError, match="gender"):
        L.TrainBatches(images, PIDS, PIDS, sampler, _gen(0), extra={"gender": [0, 1]})


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
    ext = L.extended_pid2clothes(pid2clothes, c)
    gender = np.array([pid % 2 for pid in PIDS])
    single = np.zeros(n, dtype=bool)
    single[:10] = True  # identity 0 is "faulty": one colour for both parts
    tb = L.TrainBatches(
        images, PIDS, clothes, L.PKSampler(PIDS, p=2, k=4, seed=0), _gen(0),
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
        assert torch.equal(batch["images"][0::2], L.normalize(images[idx[0::2]]))
        outside = ~(shirt | pant)[idx[1::2]].expand(-1, 3, -1, -1)
        original = L.normalize(images[idx[1::2]])
        assert torch.equal(batch["images"][1::2][outside], original[outside])
        assert not torch.equal(batch["images"][1::2], original)
