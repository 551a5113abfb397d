"""Training data: in-memory images, the PK sampler, batched augmentation, clothes recolouring.

Images are decoded once with Pillow into a uint8 tensor at the model input size
(:func:`load_images`) and kept in memory. Everything random after that runs **batched on the
training device** (CPU or GPU): the train transform of spec §3.5 (:func:`train_augment`) and the
clothes recolouring of spec §3.7 (:func:`recolour_clothes`). Neither decoding nor a per-image
Python loop sits in the training hot path.

Random numbers come from an explicit ``torch.Generator``, drawn on *its* device and then moved to
the data, so a seed gives the same crops, flips, boxes and colours on CPU and GPU. Each random step
draws the same numbers whatever its probability, so the stream never depends on the settings.

Deliberate differences from the reference (spec §3.5/§3.7): the reference recolours the raw image
and resizes afterwards, while here images and masks are stored at model size (masks resized with
nearest neighbour) and recoloured there; the 1.125× crop upscale is PyTorch's bilinear (PIL's
sampling grid, rounded to uint8; within 1 grey level of PIL, which also rounds between passes).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image
from torch import Tensor

from rlqlib.data.datasets import DatasetError

log = logging.getLogger(__name__)

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
ERASE_FILL = (0.4914, 0.4822, 0.4465)  # written into the *normalised* tensor, as in the reference
CROP_SCALE = 1.125

# matplotlib named colours as 0-255 RGB in the reference's order; a colour index is a position here.
COLOURS: dict[str, tuple[int, int, int]] = {
    "green": (0, 128, 0),
    "blue": (0, 0, 255),
    "purple": (128, 0, 128),
    "red": (255, 0, 0),
    "black": (0, 0, 0),
    "white": (255, 255, 255),
    "orange": (255, 165, 0),
    "yellow": (255, 255, 0),
    "pink": (255, 192, 203),
}
LAST_COLOURS: dict[str, tuple[int, int, int]] = {
    name: COLOURS[name] for name in ("green", "blue", "purple", "red", "yellow", "pink")
}

# ------------------------------------------------------------------------------------ decoding


def _read_rgb(path: str, size: tuple[int, int]) -> np.ndarray:
    with Image.open(path) as im:
        im = im.convert("RGB")
        if im.size != (size[1], size[0]):
            im = im.resize((size[1], size[0]), Image.BILINEAR)  # as T.Resize on a PIL image
        return np.array(im).transpose(2, 0, 1)  # (3,H,W)


def _read_mask(path: str, size: tuple[int, int]) -> np.ndarray:
    with Image.open(path) as im:
        im = im.convert("RGB")
        if im.size != (size[1], size[0]):
            im = im.resize((size[1], size[0]), Image.NEAREST)
        return np.array(im).any(axis=2)[None]  # (1,H,W): any non-zero channel (reference: sil != 0)


def _load_many(
    paths: Sequence[str],
    read: Callable[[str], np.ndarray],
    out: Tensor,
    workers: int,
    progress: bool,
    what: str,
) -> Tensor:
    if workers < 1:
        raise ValueError(f"workers must be >= 1, got {workers}")

    def work(i: int) -> None:
        try:
            arr = read(paths[i])
        except (OSError, ValueError, Image.DecompressionBombError) as err:
            raise DatasetError(
                f"cannot read {what} {paths[i]!r} ({type(err).__name__}: {err}); re-create or "
                "replace the file, or drop it from the annotation that lists it"
            ) from err
        out[i] = torch.from_numpy(arr)

    pool = ThreadPoolExecutor(max_workers=workers)
    try:
        done = pool.map(work, range(len(paths)))
        if progress:
            from tqdm.auto import tqdm

            done = tqdm(done, total=len(paths), desc=f"decoding {what}s", unit="img")
        for _ in done:
            pass
    finally:
        pool.shutdown(wait=True, cancel_futures=True)
    return out


def _check_size(size: tuple[int, int]) -> tuple[int, int]:
    if len(size) != 2 or min(size) < 1:
        raise ValueError(f"size must be (height, width) with positive ints, got {size!r}")
    return int(size[0]), int(size[1])


def load_images(
    paths: Sequence[str], size: tuple[int, int], workers: int = 2, progress: bool = False
) -> Tensor:
    """Decode images as RGB with Pillow and resize them bilinearly to ``size``, in a thread pool.

    Args:
        paths: image files.
        size: (height, width) of the model input, e.g. (384, 192).
        workers: decoding threads (Pillow releases the GIL while decoding and resizing).
        progress: show a tqdm bar.

    Returns:
        (N,3,H,W) uint8 tensor in the order of ``paths``.

    Raises:
        DatasetError: a file is missing or cannot be decoded; the message names it.
    """
    h, w = _check_size(size)
    out = torch.empty((len(paths), 3, h, w), dtype=torch.uint8)
    return _load_many(paths, lambda p: _read_rgb(p, (h, w)), out, workers, progress, "image")


def load_masks(
    paths: Sequence[str], size: tuple[int, int], workers: int = 2, progress: bool = False
) -> Tensor:
    """Decode 0/255 mask PNGs (any mode) to boolean masks at ``size`` (nearest-neighbour resize).

    A pixel is in the mask when any channel is non-zero.

    Returns:
        (N,1,H,W) bool tensor.

    Raises:
        DatasetError: a file is missing or cannot be decoded; the message names it.
    """
    h, w = _check_size(size)
    out = torch.empty((len(paths), 1, h, w), dtype=torch.bool)
    return _load_many(paths, lambda p: _read_mask(p, (h, w)), out, workers, progress, "mask")


# ------------------------------------------------------------------------------------- sampler


class PKSampler:
    """Identity-balanced batches of ``p*k`` dataset indices (spec §3.4).

    Per epoch, with a numpy ``Generator`` seeded with ``seed + epoch`` (so every rank computes the
    same global plan): identities are visited in sorted order; each one's indices are shuffled and
    cut into chunks of ``k`` (an identity with fewer than ``k`` images gives one chunk drawn with
    replacement; remainders are dropped); then the chunks are shuffled.

    * ``distinct_ids=False`` (default, as the reference): the chunks are truncated to a multiple of
      ``world_size``, dealt round-robin to the ranks, and each rank groups its chunks ``p`` at a
      time (drop_last). A batch may then hold two chunks of one identity, as in the reference.
    * ``distinct_ids=True``: the shuffled chunks are packed first-fit into batches of ``p``
      *distinct* identities (each chunk joins the oldest open batch that lacks its identity);
      complete batches are truncated to a multiple of ``world_size`` and dealt round-robin.
      Chunks left in incomplete batches are dropped, so the batch count can vary by epoch.

    Whatever is dropped by design is counted in :attr:`last_stats` for the last planned epoch
    (``upsampled_ids``, ``remainder_images_dropped``, ``chunks_dropped_*``/``batches_dropped_*``),
    and logged at debug level.

    Args:
        pids: identity of every dataset index.
        p: chunks (identities) per batch.
        k: images per chunk.
        seed: base seed, shared by all ranks.
        rank, world_size: this process's slot among the data-parallel processes.
        distinct_ids: guarantee ``p`` distinct identities per batch (see above).
    """

    def __init__(
        self,
        pids: Sequence[int],
        p: int,
        k: int,
        seed: int,
        rank: int = 0,
        world_size: int = 1,
        distinct_ids: bool = False,
    ) -> None:
        pid_arr = np.asarray(pids)
        if pid_arr.ndim != 1 or pid_arr.size == 0 or not np.issubdtype(pid_arr.dtype, np.integer):
            raise ValueError(f"pids must be a non-empty 1-D sequence of ints, got {pid_arr.shape}")
        if p < 1 or k < 1:
            raise ValueError(f"p and k must be >= 1, got p={p}, k={k}")
        if not 0 <= rank < world_size:
            raise ValueError(f"rank must be in [0, world_size={world_size}), got {rank}")
        self.p, self.k, self.seed, self.rank = int(p), int(k), int(seed), int(rank)
        self.world_size, self.distinct_ids = int(world_size), bool(distinct_ids)
        self.num_indices = pid_arr.size
        self.epoch = 0
        self.last_stats: dict[str, int] = {}
        order = np.argsort(pid_arr, kind="stable")
        uniq, starts = np.unique(pid_arr[order], return_index=True)
        self._groups = np.split(order, starts[1:])  # indices of each identity, sorted pids
        n_chunks = sum(max(1, len(g) // self.k) for g in self._groups)
        if n_chunks // self.world_size < self.p:
            raise ValueError(
                f"PKSampler: {n_chunks} chunks of k={k} over {world_size} rank(s) cannot fill "
                f"one batch of p={p} chunks; lower p or k"
            )
        if self.distinct_ids and len(uniq) < self.p:
            raise ValueError(f"distinct_ids=True needs >= p={p} identities, got {len(uniq)}")
        self._cache: tuple[int, list[np.ndarray]] | None = None

    def set_epoch(self, epoch: int) -> None:
        """Select the epoch whose shuffle the next iteration uses (seed ``seed + epoch``)."""
        self.epoch = int(epoch)

    def _chunks(self, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
        chunks, owners, remainder, upsampled = [], [], 0, 0
        for owner, idxs in enumerate(self._groups):
            if len(idxs) < self.k:
                upsampled += 1
                chunk = rng.choice(idxs, size=(1, self.k), replace=True)
            else:
                n = len(idxs) // self.k
                remainder += len(idxs) - n * self.k
                chunk = rng.permutation(idxs)[: n * self.k].reshape(n, self.k)
            chunks.append(chunk)
            owners.append(np.full(len(chunk), owner))
        perm = rng.permutation(sum(len(c) for c in chunks))
        self.last_stats = {"upsampled_ids": upsampled, "remainder_images_dropped": remainder}
        return np.concatenate(chunks)[perm], np.concatenate(owners)[perm]  # (n,k), (n,)

    def _pack_distinct(self, owners: np.ndarray) -> list[list[int]]:
        open_batches: list[tuple[set[int], list[int]]] = []
        full: list[list[int]] = []
        for ci, owner in enumerate(owners.tolist()):
            target = next((b for b in open_batches if owner not in b[0]), None)
            if target is None:
                target = (set(), [])
                open_batches.append(target)
            target[0].add(owner)
            target[1].append(ci)
            if len(target[1]) == self.p:
                full.append(target[1])
                open_batches.remove(target)
        self.last_stats["chunks_dropped_unpacked"] = sum(len(b[1]) for b in open_batches)
        return full

    def _plan(self) -> list[np.ndarray]:
        if self._cache is not None and self._cache[0] == self.epoch:
            return self._cache[1]
        chunks, owners = self._chunks(np.random.default_rng(self.seed + self.epoch))
        ws, stats = self.world_size, self.last_stats
        if self.distinct_ids:
            full = self._pack_distinct(owners)
            keep = len(full) // ws * ws
            stats["batches_dropped_world"] = len(full) - keep
            plan = [chunks[members].reshape(-1) for members in full[self.rank : keep : ws]]
        else:
            keep = len(chunks) // ws * ws
            mine = chunks[self.rank : keep : ws]  # (m,k)
            n = len(mine) // self.p
            stats["chunks_dropped_world"] = len(chunks) - keep
            stats["chunks_dropped_last_batch"] = len(mine) - n * self.p
            plan = list(mine[: n * self.p].reshape(n, self.p * self.k))
        log.debug("PKSampler epoch %d rank %d: %d batches, %s", self.epoch, self.rank, len(plan),
                  stats)
        self._cache = (self.epoch, plan)
        return plan

    def __iter__(self) -> Iterator[list[int]]:
        for batch in self._plan():
            yield batch.tolist()

    def __len__(self) -> int:
        return len(self._plan())


# -------------------------------------------------------------------------------- augmentation


def _check_images(x: Tensor) -> None:
    if x.dim() != 4 or x.shape[1] != 3:
        raise ValueError(f"expected images of shape (B,3,H,W), got {tuple(x.shape)}")
    if x.dtype != torch.uint8:
        raise TypeError(f"expected uint8 images, got {x.dtype}; keep the stored images as uint8")


def _rand(generator: torch.Generator, shape: tuple[int, ...], device: torch.device) -> Tensor:
    """Uniform [0,1) float64 draws on the generator's device, moved to ``device``."""
    u = torch.rand(shape, generator=generator, device=generator.device, dtype=torch.float64)
    return u.to(device)


def _per_channel(values: Sequence[float], like: Tensor) -> Tensor:
    return torch.tensor(values, dtype=like.dtype, device=like.device).view(1, -1, 1, 1)


def normalize(x_uint8: Tensor) -> Tensor:
    """ToTensor + ImageNet Normalize: (B,3,H,W) uint8 → float32 ``(x/255 − mean)/std``."""
    _check_images(x_uint8)
    out = x_uint8.float().div_(255)  # (B,3,H,W)
    return out.sub_(_per_channel(IMAGENET_MEAN, out)).div_(_per_channel(IMAGENET_STD, out))


def eval_transform(x_uint8: Tensor) -> Tensor:
    """The reference's test transform on already-resized images: normalise only."""
    return normalize(x_uint8)


def random_crop(x: Tensor, generator: torch.Generator, p: float = 0.5) -> Tensor:
    """The reference's RandomCroping, batched: with probability ``p`` per image, upscale by 1.125
    (bilinear) and crop back to H×W at offset (round(U(0, H'−H)), round(U(0, W'−W))).

    Draws: B apply-uniforms, then B×2 offset uniforms (row, column).

    Args:
        x: (B,3,H,W) images; uint8 input is rounded back to uint8 after the upscale, as PIL does.
    """
    b, _, h, w = x.shape
    apply = _rand(generator, (b,), x.device) < p  # (B,)
    offsets = _rand(generator, (b, 2), x.device)  # (B,2)
    h2, w2 = int(round(h * CROP_SCALE)), int(round(w * CROP_SCALE))
    top = torch.round(offsets[:, 0] * (h2 - h)).long()  # (B,)
    left = torch.round(offsets[:, 1] * (w2 - w)).long()  # (B,)
    sel = apply.nonzero().squeeze(1)  # (S,)
    if sel.numel() == 0:
        return x
    up = F.interpolate(x[sel].float(), size=(h2, w2), mode="bilinear", align_corners=False)
    rows = top[sel, None] + torch.arange(h, device=x.device)  # (S,H)
    cols = left[sel, None] + torch.arange(w, device=x.device)  # (S,W)
    item = torch.arange(sel.numel(), device=x.device)[:, None, None]  # (S,1,1)
    crop = up[item, :, rows[:, :, None], cols[:, None, :]].permute(0, 3, 1, 2)  # (S,3,H,W)
    if x.dtype == torch.uint8:
        crop = crop.round_().clamp_(0, 255)
    out = x.clone()
    out[sel] = crop.to(x.dtype)
    return out


def random_flip(x: Tensor, generator: torch.Generator, p: float = 0.5) -> Tensor:
    """Horizontal flip with probability ``p`` per image. Draws: B uniforms."""
    flip = _rand(generator, (x.shape[0],), x.device) < p  # (B,)
    return torch.where(flip.view(-1, 1, 1, 1), x.flip(-1), x)


def random_erase(
    x: Tensor,
    generator: torch.Generator,
    p: float = 0.5,
    area: tuple[float, float] = (0.02, 0.4),
    min_aspect: float = 0.3,
    attempts: int = 100,
    fill: Sequence[float] = ERASE_FILL,
    inplace: bool = False,
) -> Tensor:
    """The reference's RandomErasing, batched, on normalised float images (B,3,H,W).

    Per image, with probability ``p``: draw ``attempts`` candidate boxes (area fraction U(area),
    aspect r ~ U(min_aspect, 1/min_aspect), ``h = round(sqrt(A·r))``, ``w = round(sqrt(A/r))``),
    take the first with ``h < H`` and ``w < W`` (if none fits, the image is unchanged), place it
    uniformly (top ∈ [0, H−h], left ∈ [0, W−w]) and write ``fill`` into it.

    Draws: B apply-uniforms, B×attempts area, B×attempts aspect, B×2 position (row, column).
    """
    b, _, h, w = x.shape
    dev = x.device
    apply = _rand(generator, (b,), dev) < p  # (B,)
    frac = area[0] + (area[1] - area[0]) * _rand(generator, (b, attempts), dev)  # (B,A)
    aspect = min_aspect + (1 / min_aspect - min_aspect) * _rand(generator, (b, attempts), dev)
    pos = _rand(generator, (b, 2), dev)  # (B,2)
    target = frac * (h * w)  # (B,A)
    bh = torch.round(torch.sqrt(target * aspect)).long()  # (B,A)
    bw = torch.round(torch.sqrt(target / aspect)).long()  # (B,A)
    fits = (bh < h) & (bw < w)  # (B,A)
    first = fits.to(torch.uint8).argmax(dim=1, keepdim=True)  # (B,1) first fitting candidate
    bh, bw = bh.gather(1, first).squeeze(1), bw.gather(1, first).squeeze(1)  # (B,)
    apply &= fits.any(dim=1)
    top = torch.floor(pos[:, 0] * (h - bh + 1)).long()  # (B,) uniform integer in [0, H-h]
    left = torch.floor(pos[:, 1] * (w - bw + 1)).long()  # (B,)
    r, q = torch.arange(h, device=dev), torch.arange(w, device=dev)
    in_rows = (r >= top[:, None]) & (r < (top + bh)[:, None])  # (B,H)
    in_cols = (q >= left[:, None]) & (q < (left + bw)[:, None])  # (B,W)
    box = in_rows[:, :, None] & in_cols[:, None, :] & apply[:, None, None]  # (B,H,W)
    out = x if inplace else x.clone()
    for channel, value in enumerate(fill):
        out[:, channel].masked_fill_(box, value)
    return out


def train_augment(
    x: Tensor,
    generator: torch.Generator,
    *,
    crop_p: float = 0.5,
    flip_p: float = 0.5,
    erase_p: float = 0.5,
) -> Tensor:
    """The reference's train transform (spec §3.5) on already-resized images, per-image random.

    RandomCroping(crop_p) → RandomHorizontalFlip(flip_p) → ToTensor → Normalize →
    RandomErasing(erase_p). Crop and flip run on uint8, so only one float copy is made.

    Args:
        x: (B,3,H,W) uint8 images on any device.
        generator: source of all randomness (drawn on its own device).

    Returns:
        (B,3,H,W) float32 normalised images on ``x.device``.
    """
    _check_images(x)
    x = random_flip(random_crop(x, generator, crop_p), generator, flip_p)
    return random_erase(normalize(x), generator, erase_p, inplace=True)


# ------------------------------------------------------------------------- clothes recolouring


def colour_table(colours: Mapping[str, Sequence[int]] | Tensor) -> Tensor:
    """(C,3) float64 0-255 RGB from a name→RGB mapping (in its order) or a (C,3) tensor."""
    table = torch.as_tensor(list(colours.values()) if isinstance(colours, Mapping) else colours)
    if table.dim() != 2 or table.shape[1] != 3:
        raise ValueError(f"colours must be C RGB triples, got shape {tuple(table.shape)}")
    return table.to(torch.float64)


def recolour_clothes(
    x_uint8: Tensor,
    shirt_mask: Tensor,
    pant_mask: Tensor,
    shirt_colour_idx: Tensor,
    pant_colour_idx: Tensor,
    colours: Mapping[str, Sequence[int]] | Tensor,
    alpha: float = 0.7,
) -> Tensor:
    """Spec §3.7 blend, batched, with m = m_pant ∪ m_shirt:
    ``out = img·(1−m) + (1−α)·img·m + α·(m_pant·c_pant + m_shirt·c_shirt)``.

    Computed in float64 and truncated to uint8, bit-identical to the reference's numpy code. Its
    masks are disjoint by construction; where they overlap here, the pant colour wins (rather than
    adding both). For a "faulty" image pass the ``_clothes`` mask twice and one colour twice.

    Args:
        x_uint8: (B,3,H,W) images.
        shirt_mask, pant_mask: (B,1,H,W) bool.
        shirt_colour_idx, pant_colour_idx: (B,) indices into ``colours``.
        colours: name→RGB (0-255) mapping such as :data:`COLOURS`, or a (C,3) tensor.
        alpha: weight of the colour inside the mask.

    Returns:
        (B,3,H,W) uint8.
    """
    _check_images(x_uint8)
    want = (x_uint8.shape[0], 1, *x_uint8.shape[2:])
    for name, m in (("shirt_mask", shirt_mask), ("pant_mask", pant_mask)):
        if m.dtype != torch.bool or tuple(m.shape) != want:
            raise ValueError(f"{name} must be bool {want}, got {m.dtype} {tuple(m.shape)}")
    table = colour_table(colours).to(x_uint8.device)  # (C,3)
    c_shirt = table[shirt_colour_idx].view(-1, 3, 1, 1)  # (B,3,1,1)
    c_pant = table[pant_colour_idx].view(-1, 3, 1, 1)  # (B,3,1,1)
    img = x_uint8.to(torch.float64)  # (B,3,H,W)
    layer = torch.where(pant_mask, c_pant, c_shirt)  # (B,3,H,W) colour under the masks
    out = torch.where(pant_mask | shirt_mask, img * (1 - alpha) + alpha * layer, img)
    return out.floor_().clamp_(0, 255).to(torch.uint8)


def sample_recolour(
    pids: Tensor, generator: torch.Generator, num_colours: int
) -> tuple[Tensor, Tensor]:
    """Uniform, independent shirt and pant colour indices, one pair per entry of ``pids``.

    Draws: one (2,B) ``randint`` on the generator's device (row 0 shirt, row 1 pant).

    Returns:
        (shirt_idx, pant_idx), each (B,) long on ``pids.device``.
    """
    shape = (2, pids.shape[0])
    draws = torch.randint(num_colours, shape, generator=generator, device=generator.device)
    draws = draws.to(pids.device)
    return draws[0], draws[1]


def synthetic_clothes_labels(
    pids: Tensor, shirt_idx: Tensor, pant_idx: Tensor, num_orig_clothes: int, num_colours: int
) -> Tensor:
    """Synthetic clothes class of a recoloured replica: ``N_orig + pid·C² + pant·C + shirt``.

    The combination index follows the reference, whose table is built as
    ``(top, bottom) → top·C + bottom`` but looked up with ``(pant, shirt)``: the *pant* colour is
    the major digit. A single-colour ("faulty") replica of colour c gets ``c·C + c``.
    """
    c = int(num_colours)
    return num_orig_clothes + pids * (c * c) + pant_idx * c + shirt_idx


def extended_pid2clothes(pid2clothes: np.ndarray, num_colours: int) -> np.ndarray:
    """Append each identity's own C² synthetic clothes classes, marked positive.

    Args:
        pid2clothes: (N_id, N_orig) bool or 0/1 matrix of the train set.
        num_colours: C.

    Returns:
        (N_id, N_orig + C²·N_id) bool; LTCC: 256 + 81·77 = 6,493 columns.
    """
    n_id, n_orig = pid2clothes.shape
    block = num_colours * num_colours
    out = np.zeros((n_id, n_orig + block * n_id), dtype=bool)
    out[:, :n_orig] = pid2clothes.astype(bool)
    for pid in range(n_id):
        out[pid, n_orig + pid * block : n_orig + (pid + 1) * block] = True
    return out


# ------------------------------------------------------------------------------------- batches


class TrainBatches:
    """Augmented training batches on ``device`` from in-memory uint8 images and a sampler.

    Each item is a dict of tensors on ``device``: ``images`` (M,3,H,W) float, ``pids``,
    ``clothes_ids``, ``index`` (dataset indices) and one entry per ``extra`` label array.
    With ``recolour=True`` each sample is followed by its recoloured replica (spec §3.2/§3.7):
    M = 2B in the order ``[x0, x0', x1, x1', ...]`` (the reference's (B,2) → (2B) flatten),
    labels repeated, the replica's ``clothes_ids`` set to its synthetic class, and ``replica``
    (M,) bool marking the copies. Original and replica are augmented independently, as in R.

    Args:
        images: (N,3,H,W) uint8, indexed where it lives (keep it on the GPU when it fits).
        pids, clothes_ids: (N,) train labels.
        sampler: yields lists of indices, e.g. a :class:`PKSampler`.
        generator: source of all randomness (colours and augmentation).
        device: where batches are produced.
        extra: more per-sample label arrays, name → (N,) (e.g. ``gender``, ``pose``).
        recolour: add the recoloured replicas; needs both masks and ``num_orig_clothes``.
        shirt_masks, pant_masks: (N,1,H,W) bool, as from :func:`load_masks`.
        num_orig_clothes: number of real train clothes classes (N_orig).
        colours: colour table (:data:`COLOURS`; :data:`LAST_COLOURS` for LaST).
        single_colour: (N,) bool, True for "faulty" images that get one colour for both parts.
        augment: keyword arguments of :func:`train_augment` (crop_p, flip_p, erase_p).
    """

    def __init__(
        self,
        images: Tensor,
        pids: Sequence[int] | np.ndarray | Tensor,
        clothes_ids: Sequence[int] | np.ndarray | Tensor,
        sampler: PKSampler,
        generator: torch.Generator,
        device: torch.device | str = "cpu",
        *,
        extra: Mapping[str, Sequence | np.ndarray | Tensor] | None = None,
        recolour: bool = False,
        shirt_masks: Tensor | None = None,
        pant_masks: Tensor | None = None,
        num_orig_clothes: int | None = None,
        colours: Mapping[str, Sequence[int]] | Tensor = COLOURS,
        single_colour: Sequence[bool] | np.ndarray | Tensor | None = None,
        augment: Mapping[str, float] | None = None,
    ) -> None:
        _check_images(images)
        n = images.shape[0]
        if getattr(sampler, "num_indices", n) != n:
            raise ValueError(f"sampler covers {sampler.num_indices} samples, images has {n}")
        self.images, self.sampler, self.generator = images, sampler, generator
        self.device = torch.device(device)
        self.augment = dict(augment or {})
        labels = {"pids": pids, "clothes_ids": clothes_ids, **(extra or {})}
        self.labels = {name: self._per_sample(name, v, n) for name, v in labels.items()}
        self.recolour = recolour
        if not recolour:
            return
        if shirt_masks is None or pant_masks is None or num_orig_clothes is None:
            raise ValueError("recolour=True needs shirt_masks, pant_masks and num_orig_clothes")
        for name, m in (("shirt_masks", shirt_masks), ("pant_masks", pant_masks)):
            if m.dtype != torch.bool or tuple(m.shape) != (n, 1, *images.shape[2:]):
                got = f"{m.dtype} {tuple(m.shape)}"
                raise ValueError(f"{name} must be bool (N,1,H,W) like images, got {got}")
        self.shirt_masks, self.pant_masks = shirt_masks, pant_masks
        self.num_orig_clothes = int(num_orig_clothes)
        self.colours = colour_table(colours).to(self.device)
        single = np.zeros(n, dtype=bool) if single_colour is None else single_colour
        self.single_colour = self._per_sample("single_colour", single, n).bool()

    def _per_sample(self, name: str, values: Sequence | np.ndarray | Tensor, n: int) -> Tensor:
        t = values if isinstance(values, Tensor) else torch.as_tensor(np.asarray(values))
        if t.dim() != 1 or t.shape[0] != n:
            raise ValueError(f"label array {name!r} must have shape ({n},), got {tuple(t.shape)}")
        return t.to(self.device)

    def set_epoch(self, epoch: int) -> None:
        """Forward the epoch to the sampler."""
        self.sampler.set_epoch(epoch)

    def __len__(self) -> int:
        return len(self.sampler)

    def __iter__(self) -> Iterator[dict[str, Tensor]]:
        for idx in self.sampler:
            index = torch.as_tensor(idx, dtype=torch.long)
            x = self.images[index.to(self.images.device)].to(self.device)  # (B,3,H,W) uint8
            index = index.to(self.device)
            batch = {name: t[index] for name, t in self.labels.items()}
            batch["index"] = index
            if self.recolour:
                x, batch = self._with_replicas(x, batch)
            batch["images"] = train_augment(x, self.generator, **self.augment)
            yield batch

    def _with_replicas(self, x: Tensor, batch: dict[str, Tensor]) -> tuple[Tensor, dict]:
        index, pids = batch["index"], batch["pids"]
        src = index.to(self.shirt_masks.device)
        shirt_m = self.shirt_masks[src].to(self.device)  # (B,1,H,W)
        pant_m = self.pant_masks[src].to(self.device)  # (B,1,H,W)
        c = self.colours.shape[0]
        shirt, pant = sample_recolour(pids, self.generator, c)  # (B,), (B,)
        pant = torch.where(self.single_colour[index], shirt, pant)
        replica = recolour_clothes(x, shirt_m, pant_m, shirt, pant, self.colours)  # (B,3,H,W)
        synthetic = synthetic_clothes_labels(pids, shirt, pant, self.num_orig_clothes, c)  # (B,)
        out = {name: t.repeat_interleave(2, dim=0) for name, t in batch.items()}
        out["clothes_ids"] = torch.stack((batch["clothes_ids"], synthetic), dim=1).flatten()
        out["replica"] = torch.arange(2 * x.shape[0], device=self.device) % 2 == 1  # (2B,)
        return torch.stack((x, replica), dim=1).flatten(0, 1), out  # (2B,3,H,W)
