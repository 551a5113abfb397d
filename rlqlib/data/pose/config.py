"""How pose classes are made: :class:`PoseConfig` and its presets (docs/spec.md §5)."""

from __future__ import annotations

from dataclasses import dataclass

VARIANTS = ("R_LA", "R_LAC", "R_A")  # reference column order within one k
ENCODINGS = ("reference", "improved")


@dataclass(frozen=True)
class PoseConfig:
    """How pose classes are made; the defaults are the reference's (:data:`PRESETS` ``"reference"``).

    Attributes:
        variant: ``R_LA`` (13 lengths + 13 angles), ``R_LAC`` (34 canvas coordinates + R_LA) or ``R_A`` (angles).
        k: clusters (5…40; the paper uses 15); classes are 0…k.
        encoding: ``reference`` (raw pixels and degrees) or ``improved`` (standardised lengths/coordinates, angles
            as (sin, cos)); improved labels are written to ``Z_…`` columns instead of ``R_…``.
        min_score: an image whose mean keypoint confidence is below this gets class 0; None (the reference)
            ignores confidences.
        n_init: K-means restarts. Pinned to 10 because scikit-learn's default changed from 10 to "auto" (a single
            k-means++ run) in 1.4, so the reference's labels depend on the version it happened to run.
        max_iter: K-means iterations (reference: 1000).
        seed: K-means ``random_state`` (reference: 0).
    """

    variant: str = "R_LA"
    k: int = 15
    encoding: str = "reference"
    min_score: float | None = None
    n_init: int = 10
    max_iter: int = 1000
    seed: int = 0

    def __post_init__(self):
        if self.variant not in VARIANTS:
            raise ValueError(f"PoseConfig: variant {self.variant!r} is not one of {VARIANTS}")
        if self.encoding not in ENCODINGS:
            raise ValueError(f"PoseConfig: encoding {self.encoding!r} is not one of {ENCODINGS}")
        if not 5 <= self.k <= 40:
            raise ValueError(f"PoseConfig: k={self.k} is outside 5…40 (the reference's range; the paper uses 15)")
        if self.min_score is not None and not 0.0 <= self.min_score <= 1.0:
            raise ValueError(f"PoseConfig: min_score={self.min_score} must be in [0, 1] or None")
        if self.n_init < 1 or self.max_iter < 1:
            raise ValueError("PoseConfig: n_init and max_iter must be >= 1")

    @property
    def column(self) -> str:
        """The label column name: ``R_LA_15`` (reference) or ``Z_LA_15`` (improved)."""
        prefix = "R" if self.encoding == "reference" else "Z"
        return f"{prefix}{self.variant[1:]}_{self.k}"


PRESETS: dict[str, PoseConfig] = {
    "reference": PoseConfig(),
    "improved": PoseConfig(encoding="improved"),
}
