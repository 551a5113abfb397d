"""Training batches on the device: sampled indices → in-memory images → recoloured replicas → LQ views → augmentation.

:class:`TrainBatches` joins the sampler (:mod:`rlqlib.data.sampler`), the clothes recolouring of docs/spec.md §3.7
(:mod:`rlqlib.data.recolour`), the "BM + LQ Aug." view of docs/spec.md §4 (:mod:`rlqlib.data.lq`) and the train
transform of docs/spec.md §3.5 (:mod:`rlqlib.data.transforms`); all of it runs batched on the training device,
drawing from one explicit ``torch.Generator``.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence

import numpy as np
import torch
from torch import Tensor

from rlqlib.data.lq import LQSource
from rlqlib.data.recolour import (COLOURS, colour_table, recolour_clothes, sample_recolour,
                                  synthetic_clothes_labels)
from rlqlib.data.sampler import PKSampler
from rlqlib.data.transforms import check_images, train_augment


class TrainBatches:
    """Augmented training batches on ``device`` from in-memory uint8 images and a sampler.

    Each item is a dict of tensors on ``device``: ``images`` (M,3,H,W) float, ``pids``,
    ``clothes_ids``, ``index`` (dataset indices) and one entry per ``extra`` label array.
    With ``recolour=True`` each sample is followed by its recoloured replica (docs/spec.md §3.2/§3.7):
    M = 2B in the order ``[x0, x0', x1, x1', ...]`` (the reference's (B,2) → (2B) flatten),
    labels repeated, the replica's ``clothes_ids`` set to its synthetic class, and ``replica``
    (M,) bool marking the copies. Original and replica are augmented independently, as in R.
    With ``lq_view`` each sample is also followed by a degraded view (the authors' "BM + LQ Aug.", docs/spec.md
    §4): ``[x0, x0', x0_lq, x1, ...]`` (M = 3B; 2B without replicas), with the sample's labels and its original
    clothes class, marked by ``lq_view`` (M,) bool; it is made from the stored image before the augmentation.

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
        single_colour: (N,) bool, True for "faulty" images that get one colour for both parts (pass their
            ``_clothes`` mask as both masks).
        lq_view: degraded copies of ``images`` by index (:class:`~rlqlib.data.lq.LQSource`): adds the LQ view.
        lq_view_p: probability that a sample's extra view is degraded (1 = the authors' code); the others carry
            an undegraded copy.
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
        lq_view: LQSource | None = None,
        lq_view_p: float = 1.0,
        augment: Mapping[str, float] | None = None,
    ) -> None:
        check_images(images)
        n = images.shape[0]
        if getattr(sampler, "num_indices", n) != n:
            raise ValueError(f"sampler covers {sampler.num_indices} samples, images has {n}")
        self.images, self.sampler, self.generator = images, sampler, generator
        self.device = torch.device(device)
        self.augment = dict(augment or {})
        labels = {"pids": pids, "clothes_ids": clothes_ids, **(extra or {})}
        self.labels = {name: self._per_sample(name, v, n) for name, v in labels.items()}
        if lq_view is not None and lq_view.inputs.shape[0] != n:
            raise ValueError(f"lq_view covers {lq_view.inputs.shape[0]} images, images has {n}")
        if not 0.0 <= lq_view_p <= 1.0:
            raise ValueError(f"lq_view_p must lie in [0, 1], got {lq_view_p}")
        self.lq_view, self.lq_view_p = lq_view, float(lq_view_p)
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
            views = 1
            if self.recolour:
                x, batch = self._with_replicas(x, batch)
                views = 2
            if self.lq_view is not None:
                x, batch = self._with_lq_view(x, batch, index, views)
            batch["images"] = train_augment(x, self.generator, **self.augment)
            yield batch

    def _with_lq_view(self, x: Tensor, batch: dict[str, Tensor], index: Tensor, views: int) -> tuple[Tensor, dict]:
        """Append each sample's LQ view after its ``views`` views: (B·views) → (B·(views + 1)) rows."""
        b = index.shape[0]
        lq = self.lq_view.make(index, self.generator).to(self.device)  # (B,3,H,W) uint8
        if self.lq_view_p < 1.0:
            clean = torch.rand(b, generator=self.generator, device=self.generator.device) >= self.lq_view_p  # (B,)
            lq = torch.where(clean.to(self.device)[:, None, None, None], x[::views], lq)
        out = {}
        for name, t in batch.items():
            per_sample = t.view(b, views, *t.shape[1:])  # (B, views, ...)
            extra = per_sample[:, :1] if name != "replica" else torch.zeros_like(per_sample[:, :1])
            out[name] = torch.cat((per_sample, extra), dim=1).flatten(0, 1)  # originals' labels and clothes class
        out["lq_view"] = torch.arange(b * (views + 1), device=self.device) % (views + 1) == views
        stacked = torch.cat((x.view(b, views, *x.shape[1:]), lq[:, None]), dim=1)  # (B, views + 1, 3, H, W)
        return stacked.flatten(0, 1), out

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
