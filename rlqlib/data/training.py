"""What a run trains on: the train dataset, clothes masks (and the authors' faulty-silhouette lists), gender and pose
labels, the P×K batches with their recoloured replicas and LQ views, TAD's LQ twins, the TAD subsample.

Helpers of :mod:`rlqlib.engine.train`; each takes the data section of the experiment (a
:class:`~rlqlib.data.config.DataConfig`, effective: the fields that follow the dataset filled in by
:func:`rlqlib.engine.config.effective`) and, where it needs more, an explicit argument (the external HQ root of
the TAD section). Defaults for SynthCC come from its folder (``masks/train``, ``annotations/SynthCC_Gender.csv``,
pose clusters of its ground-truth keypoints via :mod:`rlqlib.data.pose`); a real dataset must name its mask folder /
gender CSV / pose-cluster CSV in the config, else a clear error says which.
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import torch

from rlqlib.data import annotations as A
from rlqlib.data import datasets as Dt
from rlqlib.data.batches import TrainBatches
from rlqlib.data.config import DataConfig
from rlqlib.data.images import load_masks
from rlqlib.data.lq import LQSource, dataset_mix, lq_source
from rlqlib.data.recolour import COLOURS, LAST_COLOURS, extended_pid2clothes
from rlqlib.data.sampler import PKSampler

log = logging.getLogger(__name__)


def external_dataset(data: DataConfig, which: str, external_root: str | None = None) -> Dt.ReIDDataset:
    """The external HQ set ``which`` (``external``/``external_ntu``, or SynthCC's pretraining population
    ``pretrain``) of a SynthCC root, or ``external_root`` (the config's ``tad.external_root``, Celeb-reID layout)
    for a real target dataset."""
    if data.dataset == "synthcc":
        return Dt.load_synthcc_external(data.root, which=which)
    if which == "pretrain":
        raise ValueError(f"the pretraining set is a SynthCC group; a {data.dataset} run has none")
    if external_root is None:
        raise ValueError(f"the external HQ set of a {data.dataset} run needs tad.external_root (a Celeb-reID "
                         "folder); set it with --set tad.external_root=DIR")
    return Dt.load_celebreid(external_root)


def load_train_dataset(data: DataConfig, external_root: str | None = None) -> Dt.ReIDDataset:
    """The dataset whose train split is trained on and whose query/gallery splits are evaluated
    (``external_root``: see :func:`external_dataset`)."""
    if data.train_set == "target":
        return Dt.load_dataset(data.dataset, data.root)
    return external_dataset(data, data.train_set, external_root)


def clothes_labels(data: DataConfig, ds: Dt.ReIDDataset) -> tuple[np.ndarray, np.ndarray]:
    """(N,) clothes class of every train sample and the (num_ids, num_clothes) bool ``pid2clothes`` table.

    ``data.clothes_labels="dataset"``: the dataset's (one class per identity and outfit). ``"outfit"`` (SynthCC):
    one class per pooled outfit of ``annotations/metadata.csv``, relabelled 0…C−1 in order of outfit number, so that
    two identities in the same outfit share a clothes class.
    """
    if data.clothes_labels == "dataset":
        return np.array([s.clothes_id for s in ds.train], dtype=np.int64), ds.pid2clothes
    meta = Dt.synthcc_metadata(data.root)
    folder = "train" if data.train_set == "target" else f"{data.train_set}/train"
    outfit_of = dict(zip(meta.loc[meta["split"] == folder, "image"], meta.loc[meta["split"] == folder, "outfit"]))
    names = [Path(s.path).name for s in ds.train]
    missing = [n for n in names if n not in outfit_of]
    if missing:
        raise Dt.DatasetError(f"{data.root}/annotations/metadata.csv has no outfit for {len(missing)} train images "
                              f"(e.g. {missing[0]}); regenerate the folder with `rlq synth`")
    outfits = np.array([int(outfit_of[n]) for n in names], dtype=np.int64)
    _, clothes = np.unique(outfits, return_inverse=True)  # (N,) 0…C−1
    pids = np.array([s.pid for s in ds.train], dtype=np.int64)
    table = np.zeros((ds.num_train_pids, int(clothes.max()) + 1), dtype=bool)
    table[pids, clothes] = True
    return clothes.astype(np.int64), table


def mask_folder(data: DataConfig) -> Path:
    """The folder of the train images' clothes masks: ``data.mask_root`` or SynthCC's ``masks/train``."""
    if data.mask_root is not None:
        return Path(data.mask_root)
    if data.dataset != "synthcc" or data.train_set != "target":
        raise ValueError(f"data.cloth_aug needs clothes masks: set data.mask_root to a folder of "
                         f"<image>_shirt.png / <image>_pant.png for {data.dataset} (docs/spec.md §3.7), or "
                         "disable it with --set data.cloth_aug=false")
    return Path(data.root) / "masks" / "train"


def faulty_images(data: DataConfig, ds: Dt.ReIDDataset) -> np.ndarray:
    """(N,) bool: the train images of the authors' faulty-silhouette lists (docs/spec.md §3.7, §6), which are
    recoloured with their ``_clothes`` mask in one colour; all False with ``data.faulty_masks = False``.

    The lists are ``data.faulty_csvs`` (``()``: none), else every ``*_faulty.csv`` of the mask folder; a real
    dataset without any is an error (SynthCC's masks are exact: it has none unless named).
    """
    if not data.faulty_masks or (data.faulty_csvs is None and data.dataset == "synthcc"):
        return np.zeros(len(ds.train), dtype=bool)
    paths = list(data.faulty_csvs) if data.faulty_csvs is not None else sorted(mask_folder(data).glob("*_faulty.csv"))
    if not paths and data.faulty_csvs is None:
        raise ValueError(f"data.faulty_masks: no *_faulty.csv in {mask_folder(data)}; copy the authors' "
                         f"faulty lists there (e.g. LTCC_Pant_faulty.csv, LTCC_Shirt_faulty.csv), name them with "
                         "data.faulty_csvs, or set data.faulty_masks=false")
    flags = A.faulty_flags(ds, A.read_faulty_lists(paths))
    log.info("%d of %d train images are recoloured with their _clothes mask (faulty lists %s)", int(flags.sum()),
             len(flags), ", ".join(map(str, paths)) or "none")
    return flags


def clothes_masks(data: DataConfig, ds: Dt.ReIDDataset, workers: int,
                  faulty: np.ndarray | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """(shirt, pant) bool masks (N,1,H,W) of the train images, named by image identifier (file stem; PRCC/LaST
    ``<pid folder>_<stem>``, as the authors' mask folders) in :func:`mask_folder`; a ``faulty`` image (N,) bool
    gets its ``_clothes`` mask as both."""
    root = mask_folder(data)
    names = [A.image_identifier(ds.name, s.path) for s in ds.train]
    bad = np.zeros(len(names), dtype=bool) if faulty is None else np.asarray(faulty, dtype=bool)
    shirt = load_masks([str(root / f"{n}_{'clothes' if f else 'shirt'}.png") for n, f in zip(names, bad)],
                       data.image_size, workers)
    pant = load_masks([str(root / f"{n}_{'clothes' if f else 'pant'}.png") for n, f in zip(names, bad)],
                      data.image_size, workers)
    return shirt, pant


def _resolved(data: DataConfig) -> None:
    if data.colours is None or data.degrade_at is None:
        raise ValueError("data.colours / data.degrade_at follow the dataset: pass the effective config "
                         "(rlqlib.engine.config.effective)")


def lq_aug_mix(data: DataConfig) -> str:
    """The mix of the LQ augmentation: ``data.lq_aug_mix``, or the target dataset's for ``target``."""
    return dataset_mix(data.dataset) if data.lq_aug_mix == "target" else data.lq_aug_mix


def train_batches(data: DataConfig, ds: Dt.ReIDDataset, images: torch.Tensor, clothes: np.ndarray,
                  pid2clothes: np.ndarray, sampler: PKSampler, generator: torch.Generator, device: torch.device,
                  extra: dict[str, np.ndarray], workers: int) -> tuple[TrainBatches, np.ndarray]:
    """The P×K batches of the train set as ``data`` (effective: colours and degrade_at set) asks for: recoloured
    replicas (``cloth_aug``; faulty images with their ``_clothes`` mask in one colour), the extra LQ view
    (``lq_aug`` with ``lq_aug_mode = "extra_view"``, made at ``degrade_at``), and ``pid2clothes`` extended by the
    synthetic clothes classes.

    Args:
        images: (N,3,H,W) uint8 train images at the input size; clothes: (N,) clothes classes; pid2clothes:
            (num_ids, num_clothes) bool; extra: more per-sample labels (gender, pose).
    """
    _resolved(data)
    pids = np.array([s.pid for s in ds.train], dtype=np.int64)
    options: dict = {}
    if data.cloth_aug:
        colours = COLOURS if data.colours == "all" else LAST_COLOURS
        faulty = faulty_images(data, ds)
        shirt, pant = clothes_masks(data, ds, workers, faulty)
        options.update(recolour=True, shirt_masks=shirt.to(device), pant_masks=pant.to(device),
                       num_orig_clothes=int(pid2clothes.shape[1]), colours=colours, single_colour=faulty)
        pid2clothes = extended_pid2clothes(pid2clothes, len(colours))
    if data.lq_aug > 0 and data.lq_aug_mode == "extra_view":
        view = lq_source([s.path for s in ds.train], images, lq_aug_mix(data), data.degrade_at, workers)
        options.update(lq_view=view, lq_view_p=data.lq_aug)
    batches = TrainBatches(images, pids, clothes, sampler, generator, device, extra=extra, **options)
    return batches, pid2clothes


def hq_lq_source(data: DataConfig, paths: list[str], images: torch.Tensor, mix: str, workers: int) -> LQSource:
    """TAD's LQ twins of the HQ set (``paths``, loaded as ``images``), made at ``data.degrade_at``."""
    _resolved(data)
    return lq_source(paths, images, mix, data.degrade_at, workers)


def gender_per_sample(data: DataConfig, ds: Dt.ReIDDataset) -> np.ndarray:
    """(N,) gender (1 male, 0 female) of every train sample, joined by raw identity from the gender CSV."""
    path = data.gender_csv
    if path is None:
        if data.dataset != "synthcc":
            raise ValueError(f"term 'gender' needs data.gender_csv for {data.dataset} "
                             "(e.g. the reference's LTCC_Gender.csv)")
        files = {"target": "SynthCC_Gender.csv", "external": "External_Gender.csv"}
        if data.train_set not in files:
            raise ValueError(f"SynthCC has no gender table for train_set={data.train_set!r} (only "
                             f"{sorted(files)}); drop the 'gender' term or set data.gender_csv")
        path = Path(data.root) / "annotations" / files[data.train_set]
    return A.gender_labels(ds, path)[[s.pid for s in ds.train]]  # (N,) per sample


def pose_per_sample(data: DataConfig, ds: Dt.ReIDDataset) -> np.ndarray:
    """(N,) pose cluster (0…k) of every train sample: ``data.pose_csv`` if given, else (SynthCC) K-means of the
    ground-truth keypoints (:func:`rlqlib.data.pose.clusters.cluster_poses`, R_LA, k = ``data.pose_k``) at run time."""
    if data.pose_csv is not None:
        labels = A.pose_labels(ds, A.read_pose_cluster_csv(data.pose_csv, data.pose_column))
    elif data.dataset == "synthcc":
        splits = {"target": "train", "external": "external_train"}
        if data.train_set not in splits:
            raise ValueError(f"SynthCC has no keypoints for train_set={data.train_set!r} (only "
                             f"{sorted(splits)}); drop the 'pose'/'cos' terms or set data.pose_csv")
        labels = A.pose_labels(ds, synthcc_pose_table(data.root, data.pose_k, splits[data.train_set]))
    else:
        raise ValueError(f"terms 'pose'/'cos' need data.pose_csv (a *_Pose_Cluster.csv) for {data.dataset}")
    if labels.max() > data.pose_k:
        raise ValueError(f"pose labels reach {labels.max()} but data.pose_k={data.pose_k}; set data.pose_k to "
                         f"the k of column {data.pose_column}")
    return labels


_POSE_TABLES: dict[tuple, dict[str, int]] = {}


def synthcc_pose_table(root: str | Path, k: int, split: str = "train") -> dict[str, int]:
    """Image stem → pose cluster (0…k) of a SynthCC train split (``train`` or ``external_train``): K-means (R_LA,
    k clusters) of its ground-truth
    keypoints, computed once per process and keypoint file (keyed by the resolved path, the file's size and
    mtime, and k), since every pose run on the same data would otherwise repeat the same ~2 s fit."""
    from rlqlib.data.pose import clusters as PC  # sklearn: imported when first needed
    from rlqlib.data.pose.config import PoseConfig
    from rlqlib.data.pose.keypoints import read_synthcc_keypoints

    kp_file = Path(root).expanduser().resolve() / "annotations" / f"keypoints_{split}.json"
    stat = kp_file.stat() if kp_file.is_file() else None
    key = (str(kp_file), stat.st_size if stat else None, stat.st_mtime_ns if stat else None, int(k))
    if key not in _POSE_TABLES:
        clusters = PC.cluster_poses(read_synthcc_keypoints(root, split), PoseConfig(k=k))
        _POSE_TABLES[key] = clusters.label_table()
    else:
        log.debug("pose clusters of %s (k=%d) reused from this process's cache", kp_file, k)
    return dict(_POSE_TABLES[key])


def subsample_per_identity(pids: np.ndarray, fraction: float, seed: int) -> np.ndarray:
    """Indices keeping floor(n·fraction) random images of each identity (docs/spec.md §3.9), same on every rank."""
    if fraction >= 1.0:
        return np.arange(len(pids))
    rng = np.random.default_rng(seed)
    keep = []
    for pid in np.unique(pids):
        idx = np.flatnonzero(pids == pid)
        keep.extend(rng.choice(idx, size=int(len(idx) * fraction), replace=False).tolist())
    if not keep:
        raise ValueError(f"tad.subsample={fraction} keeps no image; raise it")
    log.info("TAD subsample %.3f: %d of %d images kept", fraction, len(keep), len(pids))
    return np.sort(np.array(keep, dtype=np.int64))
