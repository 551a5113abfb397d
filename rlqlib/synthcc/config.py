"""SynthCC's generator configuration (:class:`SynthConfig`) and its named presets (``smoke``, ``cpu``, ``large``).

The ``pretrain_*`` fields describe an optional fourth group, a large Celeb-reID-like population disjoint from the
target and external identities that a shared trunk is pretrained on (:func:`rlqlib.synthcc.generate.plan_external`,
:mod:`rlqlib.engine.pretrain`). ``pretrain_ids = 0`` (the default; the ``cpu`` preset has 600) writes no such group, and the
manifest then stores the config without the ``pretrain_*`` fields (:data:`PRETRAIN_FIELDS`), so that a preset
without it generates exactly the files it did before the group existed.
"""

from __future__ import annotations

from dataclasses import dataclass

from rlqlib.data import degrade
from rlqlib.synthcc.body import POSE_FAMILIES


@dataclass(frozen=True)
class SynthConfig:
    """Every knob of the generator; see :data:`PRESETS`."""

    name: str = "cpu"
    image_size: tuple[int, int] = (128, 64)  # stored (H, W); drawn at 2×
    train_ids: int = 136
    test_ids: int = 60
    images_per_id: int = 24  # mean, ±20 % per identity (test tracklets get at least 2 images)
    outfits_per_id: tuple[int, int] = (2, 4)
    outfit_pool: int = 72  # shared target outfits (~8 wearers each)
    cameras: int = 8
    cameras_per_id: int = 4
    cameras_per_outfit: tuple[int, int] = (2, 3)
    lq_cameras: tuple[tuple[int, str], ...] = ((2, "pixelation"), (5, "motion_blur"), (7, "out_of_focus"))
    lq_rate: float = 0.8  # share of an LQ camera's images with its dominant artifact
    lq_other_rate: float = 0.08  # ... with another artifact
    hq_artifact_rate: float = 0.03  # share of an HQ camera's images with a mild artifact
    lq_severity: tuple[float, float] = (0.4, 1.0)
    mild_severity: tuple[float, float] = (0.1, 0.5)
    query_fraction: float = 0.25
    external_train_ids: int = 110
    external_test_ids: int = 40
    external_images_per_id: int = 16
    external_scenes: int = 16
    ntu_train_ids: int = 24
    ntu_test_ids: int = 16
    ntu_images_per_id: int = 12
    ntu_families: tuple[str, ...] = ("front_stand", "arms_raised")
    pretrain_ids: int = 0  # training identities of the pretraining group (0: no group is written)
    pretrain_test_ids: int = 20  # its query/gallery identities (to report the pretraining run's own accuracy)
    pretrain_images_per_id: int = 16  # mean, ±20 % per identity; a fresh outfit per image
    pretrain_scenes: int = 32  # its HQ scenes (backgrounds and lighting), as the external set's

    def __post_init__(self):
        h, w = self.image_size
        checks = [
            (h >= 32 and w >= 16, f"image_size {self.image_size} is too small (at least 32×16)"),
            (self.train_ids >= 2 and self.test_ids >= 2, "train_ids and test_ids must be >= 2"),
            (self.train_ids + self.test_ids <= 1000, "train_ids + test_ids must be <= 1000 (3-digit PPP)"),
            (2 <= self.outfits_per_id[0] <= self.outfits_per_id[1], "outfits_per_id must be (lo, hi), 2 <= lo <= hi"),
            (self.outfit_pool >= self.outfits_per_id[1] + 2, "outfit_pool must exceed outfits_per_id[1] + 1"),
            (2 <= self.cameras_per_id <= self.cameras <= 99, "need 2 <= cameras_per_id <= cameras <= 99"),
            (2 <= self.cameras_per_outfit[0] <= self.cameras_per_outfit[1] <= self.cameras_per_id,
             "cameras_per_outfit must be (lo, hi) with 2 <= lo <= hi <= cameras_per_id"),
            (all(0 <= c < self.cameras and a in degrade.ARTIFACTS for c, a in self.lq_cameras),
             f"lq_cameras must be (camid < cameras, artifact in {degrade.ARTIFACTS}) pairs"),
            (self.images_per_id >= 2, "images_per_id must be >= 2"),
            (all(f in POSE_FAMILIES for f in self.ntu_families), f"ntu_families must be from {POSE_FAMILIES}"),
            (self.pretrain_ids >= 0, "pretrain_ids must be >= 0 (0 = no pretraining group)"),
            (self.pretrain_ids == 0 or (self.pretrain_test_ids >= 1 and self.pretrain_images_per_id >= 2
                                        and self.pretrain_scenes >= 1),
             "a pretraining group needs pretrain_test_ids >= 1, pretrain_images_per_id >= 2, pretrain_scenes >= 1"),
        ]
        for ok, msg in checks:
            if not ok:
                raise ValueError(f"SynthConfig {self.name!r}: {msg}")


# fields left out of the manifest's config while ``pretrain_ids == 0`` (added after SynthCC folders existed)
PRETRAIN_FIELDS = ("pretrain_ids", "pretrain_test_ids", "pretrain_images_per_id", "pretrain_scenes")

PRESETS: dict[str, SynthConfig] = {
    "smoke": SynthConfig(name="smoke", image_size=(64, 32), train_ids=12, test_ids=8, images_per_id=12,
                         outfits_per_id=(2, 3), outfit_pool=8, cameras_per_outfit=(2, 2), external_train_ids=7,
                         external_test_ids=3, external_images_per_id=8, external_scenes=6, ntu_train_ids=4,
                         ntu_test_ids=2, ntu_images_per_id=6),
    # the cpu preset's pretraining group: 600 identities x 10 images (a fresh outfit each), 40 test identities
    "cpu": SynthConfig(name="cpu", pretrain_ids=600, pretrain_images_per_id=10, pretrain_test_ids=40),
    "large": SynthConfig(name="large", image_size=(256, 128), train_ids=700, test_ids=300, images_per_id=30,
                         outfits_per_id=(2, 5), outfit_pool=400, external_train_ids=630, external_test_ids=420,
                         external_images_per_id=24, external_scenes=48, ntu_train_ids=61, ntu_test_ids=45,
                         ntu_images_per_id=24),
}
