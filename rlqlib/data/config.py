"""The data section of an experiment: which dataset, which split is trained on, and how batches are made.

Fields whose default is ``None`` follow the dataset (and, for ``degrade_at``, the preset):
:func:`rlqlib.engine.config.effective` gives their value, the authors' behaviour for that dataset. Every field
where this code can differ from the authors' code or the paper is listed, with both behaviours, in
:data:`rlqlib.engine.differences.DIFFERENCES`.
"""

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
        mask_root: folder of ``<image>_shirt.png``/``<image>_pant.png`` (and ``<image>_clothes.png``) masks, named by
            image identifier (file stem; PRCC/LaST ``<pid folder>_<stem>``, as the authors' SCHP folders); None =
            SynthCC's ``root/masks/train`` (a real dataset with ``cloth_aug`` must name one).
        colours: ``all`` (9 colours, 81 combinations) or ``last`` (6); None = the dataset's (the authors' code:
            ``last`` for LaST, ``all`` otherwise).
        faulty_masks: recolour the images of the authors' faulty-silhouette lists (docs/spec.md §3.7, §6) with
            their ``<stem>_clothes.png`` mask for both parts in one colour (clothes label of (c, c)), as the
            authors' code; False = their ``_shirt``/``_pant`` masks like every other image.
        faulty_csvs: the faulty lists (no header, one image identifier per line; the union is used); None = every
            ``*_faulty.csv`` in the mask folder (``mask_root``; SynthCC's exact masks have none).
        lq_aug: "BM + LQ Aug." (Table 9): with ``lq_aug_mode = "extra_view"`` the probability that a sample's
            extra view is degraded (1 = the authors' code: always); with ``"replace"`` the probability per image
            of replacing it by a degraded copy after augmentation. 0 = off.
        lq_aug_mode: ``extra_view`` (the authors' code: every sample adds a third view, degraded on the stored
            image before the train transform and labelled with its original clothes class: 3B images per batch
            with ``cloth_aug``) or ``replace`` (each augmented image, recoloured replicas included, is replaced).
        lq_aug_mix: degradation mix of the LQ augmentation (:data:`rlqlib.data.degrade.MIXES`; the authors' code
            always uses LTCC's) or ``target`` (the target dataset's).
        degrade_at: where synthetic LQ images (TAD's LQ twins, the ``extra_view`` LQ view) are made: ``raw``
            (the authors' code: on the stored image at its own resolution, then resized to ``image_size``) or
            ``input`` (on the image already resized to ``image_size``); None = ``raw``, except SynthCC under the
            smoke/cpu presets, whose images are stored at the input size (there both are the same).
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
    colours: str | None = None
    faulty_masks: bool = True
    faulty_csvs: tuple[str, ...] | None = None
    lq_aug: float = 0.0
    lq_aug_mode: str = "extra_view"
    lq_aug_mix: str = "ltcc"
    degrade_at: str | None = None
    gender_csv: str | None = None
    pose_csv: str | None = None
    pose_column: str = "R_LA_15"
    pose_k: int = 15
    clothes_labels: str = "dataset"
