"""FIRe²'s section of an experiment: its switches and hyper-parameters."""

from __future__ import annotations

from dataclasses import dataclass

from rlqlib.methods.fire2.ffm import PADDINGS as KNN_PADDINGS

@dataclass(frozen=True)
class FIRe2Config:
    """FIRe² (docs/fire2-spec.md §1–§5): its switches and hyper-parameters; defaults are the reference's (paper preset).

    Used only when ``model.variant == "fire2"`` (and hashed only then). Stage boundaries are fractions of
    ``schedule.epochs``, like :attr:`ScheduleConfig.cc_start`: the reference's 25 and 10 of 80 epochs.

    Attributes:
        attr_loss: the FFM attribute-aware loss L_attr (weight 1) in stage 2.
        far: the FAR recomposition loss (weight ``far_weight``) in stage 2. FFM clustering runs when either is on
            (FAR needs the fine-grained ids to pick donors).
        fg_start: stage 2 (triplet + FFM + FAR, per-epoch re-clustering and optimiser rebuild) from the 0-indexed
            epoch round(fg_start · E); 25/80 ⇒ the reference's epochs 26–80 (1-based).
        warmup: linear warm-up over round(warmup · E) epochs (10/80), factor ``warmup_factor`` → 1.
        warmup_factor: LR factor of the first epoch (0.01).
        k1, k2: k-reciprocal neighbours and query-expansion size of the Jaccard distance (20, 6).
        eps: DBSCAN radius on the Jaccard distance (inclusive, min_samples 1) (0.4).
        knn_padding: ``"reference"`` (default, faithful to the code): an identity with fewer than k1 images gets
            k1-long kNN lists padded like faiss (label −1), which numpy reads as the identity's last image
            (docs/fire2-spec.md §8-P1); ``"fixed"``: the lists are clamped to the identity's size.
        scale: 1/τ of the cosine fine-grained logits (16).
        epsilon: label smoothing of L_attr over the identity's own clusters (0.1).
        far_weight: λ4 (0.3).
        parts, times: FAR body parts P (2) and recomposition times K (1).
        pad: zero padding before the random crop of the train transform (10 px).
    """

    attr_loss: bool = True
    far: bool = True
    fg_start: float = 25 / 80
    warmup: float = 10 / 80
    warmup_factor: float = 0.01
    k1: int = 20
    k2: int = 6
    eps: float = 0.4
    knn_padding: str = "reference"
    scale: float = 16.0
    epsilon: float = 0.1
    far_weight: float = 0.3
    parts: int = 2
    times: int = 1
    pad: int = 10

    def __post_init__(self) -> None:
        if self.knn_padding not in KNN_PADDINGS:
            raise ValueError(f"fire2.knn_padding={self.knn_padding!r}; choose from {KNN_PADDINGS}")
        if not (0.0 <= self.fg_start <= 1.0 and 0.0 <= self.warmup <= 1.0 and 0.0 < self.warmup_factor <= 1.0):
            raise ValueError("fire2: fg_start and warmup are fractions of the run in [0, 1], warmup_factor in (0, 1]")
        if min(self.k1, self.k2, self.parts, self.times) < 1 or self.pad < 0:
            raise ValueError("fire2: k1, k2, parts and times must be >= 1 and pad >= 0")
        if self.eps <= 0 or self.scale <= 0 or self.far_weight < 0 or not 0.0 <= self.epsilon < 1.0:
            raise ValueError("fire2: eps and scale must be positive, far_weight >= 0, epsilon in [0, 1)")

    def fg_start_epoch(self, epochs: int) -> int:
        """First (0-indexed) stage-2 epoch (80 epochs ⇒ 25, i.e. the reference's 1-based epoch 26)."""
        return int(round(self.fg_start * epochs))

    def warmup_epochs(self, epochs: int) -> int:
        """Warm-up length in epochs (80 epochs ⇒ 10)."""
        return int(round(self.warmup * epochs))
