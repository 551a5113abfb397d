"""Seeded random inputs shared by the data-tier tests (image batches, generators)."""

import torch


def random_images(b: int = 6, h: int = 24, w: int = 12, seed: int = 0) -> torch.Tensor:
    """(b, 3, h, w) uint8 images drawn from ``seed``."""
    g = torch.Generator().manual_seed(seed)
    return torch.randint(0, 256, (b, 3, h, w), generator=g, dtype=torch.uint8)


def generator(seed: int) -> torch.Generator:
    """A CPU generator seeded with ``seed``."""
    return torch.Generator().manual_seed(seed)
