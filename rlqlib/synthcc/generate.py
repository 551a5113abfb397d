"""SynthCC: a procedurally generated clothes-changing re-id benchmark with low-quality cameras.

Identities fix biometrics (gender, height, build, skin, hair, head size, glasses, beard, bag, shoulder tilt,
gait); outfits come from one shared pool, each worn by several identities, so clothes mislead across people as
in real CC-ReID. Eight cameras each have a background, lighting and a quality profile: the low-quality ones
pixelate or blur most of their images with :mod:`rlqlib.data.degrade`, on the 2× canvas before downsampling. The
output is LTCC's layout (target set), Celeb-reID's layout (an external HQ set and a few-viewpoint NTU-like
set) and the annotations of the real datasets (gender CSVs, AlphaPose keypoints, clothes masks), plus a
per-image metadata table. With ``SynthConfig.pretrain_ids > 0`` a fourth group is written under ``pretrain/``, in
Celeb-reID's layout like the external set (a fresh outfit per image, many scenes, own identities and seed streams):
the population a shared trunk is pretrained on (:mod:`rlqlib.engine.pretrain`). Its images and identities are
counted under the manifest's ``pretrain_counts``, not ``counts``, and without it the manifest, the metadata and
every file are what they were before the group existed.

Files: :mod:`rlqlib.synthcc.config` (configuration, presets); this module (identities/outfits/cameras/splits planning, annotations,
:func:`generate`); :mod:`rlqlib.synthcc.body` (person model, poses, skeleton); :mod:`rlqlib.synthcc.draw`
(painting); :mod:`rlqlib.synthcc.render` (cameras, scenes, per-image pipeline, chunk writer).

Every image is rendered from its own ``np.random.Generator`` seeded by (seed, stream, image index), and images
are processed in fixed chunks, so the same seed gives byte-identical files whatever the number of workers.
"""

from __future__ import annotations

import csv
import json
import logging
import math
import os
from concurrent.futures import ProcessPoolExecutor
from dataclasses import asdict
from multiprocessing import get_context
from pathlib import Path

import numpy as np

from rlqlib.data import degrade
from rlqlib.data.progress import bar as progress_bar
from rlqlib.synthcc.body import POSE_FAMILIES, Body, Outfit, sample_body, sample_family_yaw, sample_outfit
from rlqlib.synthcc.config import PRESETS, PRETRAIN_FIELDS, SynthConfig
from rlqlib.synthcc.render import (GROUPS, ID_STREAM, OUTFIT_STREAM, PLAN_STREAM, Camera, ImageSpec, init_worker,
                                 make_cameras, render_chunk, render_person, rng_for)

__all__ = ["PRESETS", "SynthConfig", "generate", "render_person", "sample_body", "sample_outfit", "Body", "Outfit",
           "Camera", "make_cameras"]

logger = logging.getLogger(__name__)

FORMAT = "synthcc-1"
GENERATOR_VERSION = "1.0"
CHUNK = 32  # images per work unit; fixed so that output does not depend on the number of workers
FOLDERS = ("train", "query", "test", "external/train", "external/query", "external/gallery", "external_ntu/train",
           "external_ntu/query", "external_ntu/gallery")  # image folders, in metadata order
PRETRAIN_FOLDERS = ("pretrain/train", "pretrain/query", "pretrain/gallery")  # only when cfg.pretrain_ids > 0
KEYPOINT_SPLITS = {"train": "train", "query": "query", "test": "test", "external/train": "external_train"}


# ---------------------------------------------------------------------------------------------- planning


def _balanced_choice(rng: np.random.Generator, usage: np.ndarray, k: int, allowed: np.ndarray) -> list[int]:
    """k distinct indices among ``allowed``, favouring the least used (keeps sharing even)."""
    w = allowed / (1.0 + usage) ** 2
    picks = rng.choice(len(usage), size=min(k, int(allowed.sum())), replace=False, p=w / w.sum())
    usage[picks] += 1
    return sorted(int(i) for i in picks)


def _split_counts(rng: np.random.Generator, total: int, slots: int, minimum: int) -> list[int]:
    """``total`` images over ``slots`` tracklets, each at least ``minimum`` (so the sum may exceed ``total``)."""
    extra = rng.multinomial(max(0, total - minimum * slots), np.full(slots, 1.0 / slots))
    return [minimum + int(e) for e in extra]


def plan_target(cfg: SynthConfig, seed: int) -> tuple[list[ImageSpec], list[Outfit], list[Body]]:
    """The target set: identities, pool outfits, (outfit, camera) tracklets, query/test choice, frame numbers."""
    rng = rng_for(seed, PLAN_STREAM, 0)
    n_ids = cfg.train_ids + cfg.test_ids
    bodies = [sample_body(rng_for(seed, ID_STREAM, 0, pid)) for pid in range(n_ids)]
    pool = [sample_outfit(rng_for(seed, OUTFIT_STREAM, 0, k)) for k in range(cfg.outfit_pool)]
    skirt = np.array([o.bottom_type == "skirt" for o in pool])
    outfit_use, cam_use = np.zeros(len(pool)), np.zeros(cfg.cameras)
    specs: list[ImageSpec] = []
    frame = 0
    for pid, body in enumerate(bodies):
        test = pid >= cfg.train_ids
        n_out = int(rng.integers(cfg.outfits_per_id[0], cfg.outfits_per_id[1] + 1))
        outfits = _balanced_choice(rng, outfit_use, n_out, (~skirt if body.gender else np.ones(len(pool), bool)) * 1.0)
        cams = _balanced_choice(rng, cam_use, cfg.cameras_per_id, np.ones(cfg.cameras))
        order = [cams[i] for i in rng.permutation(len(cams))]
        tracklets, ptr = [], 0
        for j in range(len(outfits)):
            m = int(rng.integers(cfg.cameras_per_outfit[0], cfg.cameras_per_outfit[1] + 1))
            for _ in range(m):
                tracklets.append((j, order[ptr % len(order)]))
                ptr += 1
        total = int(round(cfg.images_per_id * rng.uniform(0.8, 1.2)))
        counts = _split_counts(rng, total, len(tracklets), 2 if test else 1)
        n_query = [min(n - 1, int(math.floor(cfg.query_fraction * n + rng.random()))) if test else 0 for n in counts]
        if test and sum(n_query) == 0:
            n_query[int(np.argmax(counts))] = 1
        for (j, cam), n, nq in zip(tracklets, counts, n_query):
            family, yaw = sample_family_yaw(rng)
            phase = float(rng.random())
            is_query = set(rng.choice(n, size=nq, replace=False).tolist()) if nq else set()
            frame += int(rng.integers(5, 60))
            for f in range(n):
                frame += int(rng.integers(1, 4))
                folder = ("query" if f in is_query else "test") if test else "train"
                specs.append(ImageSpec(
                    folder=folder, name=f"{pid:03d}_{j + 1}_c{cam + 1:02d}_{frame:06d}.png", group="target",
                    index=len(specs), pid=pid, camid=cam, outfit_id=outfits[j], clothes_key=f"{pid:03d}_{j + 1}",
                    body=body, outfit=pool[outfits[j]], family=family, yaw=yaw, phase=(phase + 0.21 * f) % 1.0,
                    mask=not test))
    if frame > 999_999:
        raise ValueError(f"SynthConfig {cfg.name!r}: {frame} frames do not fit the 6-digit frame field")
    return specs, pool, bodies


def _group_sizes(cfg: SynthConfig, which: str) -> tuple[int, int, int, int]:
    """(train identities, query/gallery identities, mean images per identity, scenes) of a Celeb-reID-layout group."""
    return {"external": (cfg.external_train_ids, cfg.external_test_ids, cfg.external_images_per_id,
                         cfg.external_scenes),
            "external_ntu": (cfg.ntu_train_ids, cfg.ntu_test_ids, cfg.ntu_images_per_id, 1),
            "pretrain": (cfg.pretrain_ids, cfg.pretrain_test_ids, cfg.pretrain_images_per_id,
                         cfg.pretrain_scenes)}[which]


def plan_external(cfg: SynthConfig, seed: int, which: str) -> tuple[list[ImageSpec], list[Body]]:
    """Celeb-reID-like set (``external``, and the larger ``pretrain`` population: a fresh outfit per image, many
    scenes) or NTU-like set (``external_ntu``: one camera, few poses). Each group draws its identities, plan and
    images from its own seed streams (:data:`~rlqlib.synthcc.render.GROUPS`), so its people are independent of every
    other group's and adding a group changes nothing in the others."""
    gi = GROUPS[which]
    ntu = which == "external_ntu"
    n_train, n_test, per_id, scenes = _group_sizes(cfg, which)
    n_ids = n_train + n_test
    rng = rng_for(seed, PLAN_STREAM, gi)
    bodies = [sample_body(rng_for(seed, ID_STREAM, gi, pid)) for pid in range(n_ids)]
    fams = cfg.ntu_families if ntu else POSE_FAMILIES
    specs: list[ImageSpec] = []
    idx = {"train": 0, "query": 0, "gallery": 0}
    for k, body in enumerate(bodies):
        pid, test = k + 1, k >= n_train
        n = max(2, int(round(per_id * rng.uniform(0.8, 1.2))))
        queries = set(rng.choice(n, size=max(1, int(round(cfg.query_fraction * n))), replace=False).tolist())
        sessions = [sample_outfit(rng, not body.gender) for _ in range(int(rng.integers(1, 3)))] if ntu else []
        for f in range(n):
            split = ("query" if f in queries else "gallery") if test else "train"
            idx[split] += 1
            name = f"{pid}_{idx[split]}_0.png"
            family, yaw = sample_family_yaw(rng, fams)
            if ntu:  # one camera facing the subject: front views only
                yaw = float(np.clip(rng.normal(0, 12), -30, 30))
                s = f * len(sessions) // n
                outfit, key = sessions[s], f"{pid}_{s + 1}"
                cam = 0
            else:
                outfit, key, cam = None, name[:-4], int(rng.integers(scenes))
            specs.append(ImageSpec(folder=f"{which}/{split}", name=name, group=which, index=len(specs), pid=pid,
                                   camid=cam, outfit_id=-1, clothes_key=key, body=body, outfit=outfit, family=family,
                                   yaw=yaw, phase=float(rng.random()), families=fams))
    return specs, bodies


# ---------------------------------------------------------------------------------------------- writing


def config_dict(cfg: SynthConfig) -> dict:
    """The config as plain JSON values (tuples become lists), as stored in the manifest; without a pretraining
    group the ``pretrain_*`` fields are left out (:data:`~rlqlib.synthcc.config.PRETRAIN_FIELDS`), so that such a
    manifest is the one written before they existed."""
    d = json.loads(json.dumps(asdict(cfg)))
    if not cfg.pretrain_ids:
        for name in PRETRAIN_FIELDS:
            d.pop(name)
    return d


def _check_out(out: Path, cfg: SynthConfig, seed: int) -> None:
    """Refuse a non-empty folder unless it is (a partial run of) this very preset, config and seed."""
    if not out.exists():
        return
    if not out.is_dir():
        raise NotADirectoryError(f"SynthCC output {out} exists and is not a folder; choose another --out")
    if not any(out.iterdir()):
        return
    for marker in (out / "synthcc.json", out / ".synthcc-partial.json"):
        try:
            m = json.loads(marker.read_text())
        except (OSError, json.JSONDecodeError):
            continue
        if (m.get("format") == FORMAT and m.get("preset") == cfg.name and m.get("seed") == seed
                and m.get("config") == config_dict(cfg)):
            return
    raise FileExistsError(
        f"SynthCC output {out} is not empty and does not hold SynthCC preset={cfg.name!r} seed={seed} with this "
        f"config; remove it or choose another --out")


def _write_csv(path: Path, header: list[str], rows: list) -> None:
    with path.open("w", newline="") as fh:
        writer = csv.writer(fh, lineterminator="\n")
        writer.writerow(header)
        writer.writerows(rows)


def _write_annotations(out: Path, records: list[dict], target_bodies: list[Body], cfg: SynthConfig,
                       ext_bodies: list[Body]) -> None:
    ann = out / "annotations"
    _write_csv(ann / "SynthCC_Gender.csv", ["Category", "ID", "Gender"],
               [("train", f"{pid:03d}", target_bodies[pid].gender) for pid in range(cfg.train_ids)])
    test = range(cfg.train_ids, cfg.train_ids + cfg.test_ids)
    _write_csv(ann / "SynthCC_test_Gender.csv", ["Category", "ID", "Gender"],
               [(cat, f"{pid:03d}", target_bodies[pid].gender) for cat in ("query", "test") for pid in test])
    _write_csv(ann / "External_Gender.csv", ["Category", "ID", "Gender"],
               [("train", k + 1, ext_bodies[k].gender) for k in range(cfg.external_train_ids)])
    for folder, split in KEYPOINT_SPLITS.items():
        entries = [r["keypoints"] for r in records if r["folder"] == folder]
        (ann / f"keypoints_{split}.json").write_text(json.dumps(entries, sort_keys=True, separators=(",", ":")))
    cols = ["split", "image", "pid", "camid", "outfit", "clothes_key", "gender", "pose_family", "view", "artifact",
            "artifact_param", "artifact_strength"]
    _write_csv(ann / "metadata.csv", cols,
               [[r["folder"] if c == "split" else r[c] for c in cols] for r in records])


def _folder_counts(records: list[dict], prefix: str = "") -> dict[str, int]:
    """Images and identities per folder of ``records`` (folder names without ``prefix``)."""
    counts: dict[str, int] = {}
    for folder in sorted({r["folder"] for r in records}):
        rows = [r for r in records if r["folder"] == folder]
        key = folder.removeprefix(prefix).replace("/", "_")
        counts[f"{key}_images"] = len(rows)
        counts[f"{key}_ids"] = len({r["pid"] for r in rows})
    return counts


def _counts(records: list[dict], pool: int) -> dict:
    """Images and identities per folder, train clothes keys, pool size and total, for the manifest (the target and
    external groups; the pretraining group is counted apart, :func:`generate`)."""
    counts = _folder_counts(records)
    counts["train_clothes"] = len({r["clothes_key"] for r in records if r["folder"] == "train"})
    counts["outfit_pool"] = pool
    counts["images"] = len(records)
    return counts


def generate(cfg: SynthConfig, out: str | Path, seed: int = 0, workers: int | None = None,
             progress: bool = False) -> dict:
    """Write a SynthCC folder and return its manifest.

    Args:
        cfg: the configuration (e.g. ``PRESETS["cpu"]``).
        out: output folder; created if absent. A non-empty folder is refused unless it already holds (a
            finished or interrupted run of) the same preset, config and seed, which is then regenerated in place.
        seed: same seed ⇒ byte-identical files, whatever ``workers``.
        workers: processes (default ``os.cpu_count()``); 1 renders in this process.
        progress: show a progress bar over chunks (a line every few seconds in a log: :mod:`rlqlib.data.progress`).

    Returns:
        The manifest written to ``synthcc.json`` (format, preset, seed, image_size, counts, cameras, config; with a
        pretraining group also ``pretrain_counts``: ``{train,query,gallery}_{images,ids}`` and ``images``).
    """
    out = Path(out).expanduser()
    _check_out(out, cfg, seed)
    workers = (os.cpu_count() or 1) if workers is None else workers
    if workers < 1:
        raise ValueError(f"workers must be >= 1, got {workers}")
    cams = make_cameras(cfg, seed)
    target, pool, bodies = plan_target(cfg, seed)
    external, ext_bodies = plan_external(cfg, seed, "external")
    ntu, _ = plan_external(cfg, seed, "external_ntu")
    pretrain = plan_external(cfg, seed, "pretrain")[0] if cfg.pretrain_ids else []
    specs = target + external + ntu + pretrain
    folders = FOLDERS + (PRETRAIN_FOLDERS if pretrain else ())
    manifest = {"format": FORMAT, "preset": cfg.name, "seed": seed, "image_size": list(cfg.image_size),
                "generator_version": GENERATOR_VERSION, "config": config_dict(cfg),
                "cameras": [{"camid": k, "artifact": c.artifact} for k, c in enumerate(cams["target"])]}
    (out / "synthcc.json").unlink(missing_ok=True)  # the manifest marks a finished folder: written last
    for d in (*folders, "masks/train", "annotations"):
        (out / d).mkdir(parents=True, exist_ok=True)
    (out / ".synthcc-partial.json").write_text(json.dumps(manifest, sort_keys=True))
    jobs = [(specs[i:i + CHUNK], cfg, seed, cams, out) for i in range(0, len(specs), CHUNK)]
    records: list[dict] = []
    with progress_bar(total=len(specs), desc=f"SynthCC {cfg.name}", unit="img", disable=not progress) as bar:
        if workers == 1 or len(jobs) == 1:
            for job in jobs:
                records.extend(render_chunk(job))
                bar.update(len(job[0]))
        else:
            with ProcessPoolExecutor(min(workers, len(jobs)), mp_context=get_context("spawn"),
                                     initializer=init_worker) as executor:
                for rec in executor.map(render_chunk, jobs):  # results in job order
                    records.extend(rec)
                    bar.update(len(rec))
    records.sort(key=lambda r: (folders.index(r["folder"]), r["image"]))
    _write_annotations(out, records, bodies, cfg, ext_bodies)
    manifest["counts"] = _counts([r for r in records if r["folder"] in FOLDERS], len(pool))
    if pretrain:
        rows = [r for r in records if r["folder"] in PRETRAIN_FOLDERS]
        manifest["pretrain_counts"] = {**_folder_counts(rows, "pretrain/"), "images": len(rows)}
    (out / "synthcc.json").write_text(json.dumps(manifest, sort_keys=True, indent=1) + "\n")
    (out / ".synthcc-partial.json").unlink()
    logger.info("SynthCC %s (seed %d) written to %s: %s", cfg.name, seed, out, manifest["counts"])
    return manifest
