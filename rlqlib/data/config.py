"""The data section of an experiment: which dataset, which split is trained on, and how batches are made."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class DataConfig:
    """What is trained on and how batches are made.

    Attributes:
        dataset: target dataset (a key of :data:`rlqlib.data.datasets.DATASETS`).
        root: its folder (SynthCC: the generator's output; also holds masks, annotations, external sets).
        train_set: ``target`` (the dataset's train split) or an external set (``external``/``external_ntu``,
            Celeb-reID layout, one clothes class per image) — the teacher is trained on the external set — or
            ``pretrain`` (SynthCC's pretraining population, the same layout; the shared trunk is trained on it).
        image_size: (H, W) of the model input.
        p, k: identities per batch and images per identity (per process).
        cloth_aug: add a recoloured replica of every sample (docs/spec.md §3.7); needs clothes masks.
        mask_root: folder of ``<stem>_shirt.png``/``<stem>_pant.png`` masks; None = SynthCC's ``root/masks/train``
            (a real dataset with ``cloth_aug`` must name one).
        colours: ``all`` (9 colours, 81 combinations) or ``last`` (6, for LaST).
        lq_aug: probability per target image of a synthetic LQ artifact in the CAP pass ("BM + LQ Aug.").
        gender_csv: gender table; None = the dataset's default (SynthCC ``annotations/SynthCC_Gender.csv``).
        pose_csv: pose-cluster table in the reference's format; None = SynthCC: cluster its ground-truth
            keypoints with :mod:`rlqlib.data.pose` (R_LA, ``pose_k`` clusters) at run time.
        pose_column: column of ``pose_csv`` (``R_LA_15``).
        pose_k: clusters k (the pose head has k + 1 classes).
        clothes_labels: ``dataset`` (the dataset's clothes ids: one per identity and outfit, as in LTCC/PRCC) or
            ``outfit`` (SynthCC only: one class per *pooled outfit*, shared by every identity wearing it — an
            experiment on how CAL's adversarial loss reacts to look-alike clothes of different people).
    """

    dataset: str = "synthcc"
    root: str = "data/synthcc-cpu"
    train_set: str = "target"
    image_size: tuple[int, int] = (128, 64)
    p: int = 8
    k: int = 4
    cloth_aug: bool = True
    mask_root: str | None = None
    colours: str = "all"
    lq_aug: float = 0.0
    gender_csv: str | None = None
    pose_csv: str | None = None
    pose_column: str = "R_LA_15"
    pose_k: int = 15
    clothes_labels: str = "dataset"
