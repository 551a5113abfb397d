"""The authors' per-image degradations (docs/spec.md §4), restated one image at a time, and a SynthCC-like test image.

The straightforward baseline that ``bench/degrade.py`` times and that ``tests/data/test_degrade.py`` checks the batched
:mod:`rlqlib.data.degrade` against (within one uint8 level). Inputs and outputs are (H, W, 3) uint8 arrays, as the
reference's PIL/cv2 code sees them; needs ``opencv-python-headless`` (in the lock file).
"""

from __future__ import annotations

import cv2
import numpy as np
import torch
from PIL import Image, ImageDraw

from rlqlib.methods.tv import import_torchvision


def scene(seed: int, h: int = 384, w: int = 192) -> np.ndarray:
    """A SynthCC-like (H, W, 3) uint8 image: textured gradient, a flat-coloured figure with hard edges, noise."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    c0, c1, t = rng.uniform(40, 220, 3), rng.uniform(40, 220, 3), (yy / h)[..., None]
    bg = c0 * (1 - t) + c1 * t + 12 * np.sin(xx / rng.uniform(5, 30))[..., None]
    img = Image.fromarray(np.clip(bg, 0, 255).astype(np.uint8))
    d, cx, s = ImageDraw.Draw(img), w / 2 + rng.uniform(-0.1, 0.1) * w, h / 384

    def col():
        return tuple(int(v) for v in rng.integers(0, 256, 3))

    d.ellipse([cx - 18 * s, 30 * s, cx + 18 * s, 75 * s], fill=col())  # head
    d.rectangle([cx - 40 * s, 80 * s, cx + 40 * s, 210 * s], fill=col())  # top
    for y in np.arange(85, 210, 12) * s if rng.random() < 0.5 else []:  # stripes
        d.rectangle([cx - 40 * s, y, cx + 40 * s, y + 5 * s], fill=col())
    for side in (-1, 1):
        leg = cx + side * 20 * s
        d.rectangle([leg - 15 * s, 210 * s, leg + 15 * s, 350 * s], fill=col())  # legs
        d.line([cx + side * 40 * s, 90 * s, cx + side * 70 * s, 200 * s], fill=col(), width=int(14 * s))  # arms
    noisy = np.asarray(img).astype(np.float32) + rng.normal(0, 2, (h, w, 3))  # sensor noise
    return np.clip(np.round(noisy), 0, 255).astype(np.uint8)


def pixelate(a: np.ndarray, r: int) -> np.ndarray:
    """PIL bicubic down to short side ``r``, bilinear back up (the reference's pixelation + dataset resize)."""
    img = Image.fromarray(a)
    w, h = img.size
    scale = r / min(w, h)
    small = img.resize((round(w * scale), round(h * scale)), Image.BICUBIC)
    return np.asarray(small.resize((w, h), Image.BILINEAR))


def motion_kernel(k: int, angle: float) -> np.ndarray:
    """(k, k) float64 line kernel: a horizontal line through the centre row rotated by ``angle`` with cv2."""
    ker = np.zeros((k, k))
    ker[(k - 1) // 2, :] = np.ones(k)
    ker = cv2.warpAffine(ker, cv2.getRotationMatrix2D((k / 2 - 0.5, k / 2 - 0.5), angle, 1.0), (k, k))
    return ker * (1.0 / np.sum(ker))


def motion(a: np.ndarray, k: int, angle: float) -> np.ndarray:
    """cv2.filter2D with :func:`motion_kernel`."""
    return cv2.filter2D(a, -1, motion_kernel(k, angle))


def gauss(a: np.ndarray, k: int, sigma: float) -> np.ndarray:
    """torchvision's ``gaussian_blur`` with a full k×k kernel, as ``GaussianBlur`` applies it to a PIL image."""
    t = torch.from_numpy(a).permute(2, 0, 1)  # (3, H, W) uint8
    return import_torchvision().transforms.functional.gaussian_blur(t, [k, k], [sigma, sigma]).permute(1, 2, 0).numpy()


REFERENCE = {"pixelation": pixelate, "motion_blur": motion, "out_of_focus": gauss}
ARGS = {"pixelation": ("r",), "motion_blur": ("k", "angle"), "out_of_focus": ("k", "sigma")}


def per_image_args(artifact: str, params: dict[str, torch.Tensor]) -> list[tuple]:
    """Each image's arguments from batched parameters, as the Python scalars the reference passes."""
    cols = [params[k].tolist() for k in ARGS[artifact]]
    ints = [k not in ("sigma", "angle") for k in ARGS[artifact]]
    return [tuple(int(v) if i else float(v) for v, i in zip(vals, ints)) for vals in zip(*cols)]
