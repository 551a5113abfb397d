"""The stable hash of a config and the run-cache key.

* **Hash** (:func:`config_hash`): sha256 of the canonical JSON of :func:`hashed_dict`. Excluded
  (:data:`NOT_HASHED`): purely cosmetic or placement fields that cannot change what is learned — ``data.root``
  (replaced by a data *fingerprint* at run time, :func:`data_fingerprint`), ``runtime.progress``,
  ``runtime.threads`` and ``runtime.eval_batch_size``. **Included on purpose**: ``runtime.device``
  type, ``runtime.amp`` and ``runtime.channels_last`` (bf16 autocast and memory layout change the
  numerics, hence the metrics) and the seed. Thread count can change CPU float summation order at
  the rounding level; runs differing only in threads share one cache entry.
* **Keys added later** (:data:`ADDED_LATER`): a field or section added after runs existed is left out of the
  hash while it cannot matter to the run, so that every earlier run keeps its cache key. The ``fire2`` section
  is hashed only for FIRe² runs (``model.variant == "fire2"``), so adding it left every other run's hash
  unchanged; ``model.init`` and ``model.init_hash`` only for runs that start from the pretrained trunk
  (``model.init != "scratch"``; the pretraining run's key then enters the hash through ``init_hash``). The fields
  added to be faithful to the authors' code on real datasets (``data.faulty_*``, ``data.lq_aug_*``,
  ``data.degrade_at``) only where they can change the run: faulty-silhouette recolouring where a faulty list can
  exist (a real dataset, or named lists), the LQ augmentation's mode and mix when it is on, ``degrade_at = "raw"``
  when LQ images are made (TAD, the extra LQ view); ``schedule.heads_lr_mult`` when it is not 1;
  ``schedule.ema_decay`` when it is not 0;
  ``tad.teacher_seed`` when a TAD student's teacher is trained with another seed than the student's (before it,
  every student had its own seed's teacher; the teacher's key also enters through ``tad.teacher_hash``).
* **Fields that follow the dataset** (``None``: ``data.colours``, ``data.degrade_at``) are hashed with their value
  (:func:`rlqlib.engine.config.effective`), so that ``None`` and the value it stands for are the same run.
* **Run-cache key** (:func:`run_hash`): adds the data fingerprint and the number of data-parallel processes
  (see :mod:`rlqlib.engine.runs`).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from rlqlib.engine.config import ExperimentConfig, effective, to_dict

NOT_HASHED = ("data.root", "model.init_root", "runtime.progress", "runtime.threads", "runtime.eval_batch_size")
# Keys added after runs existed, each left out of the hash while it cannot matter to the run (a field while it has
# its original meaning, a section the run does not use), so that every earlier run keeps its cache key.
ADDED_LATER: dict[str, Callable[[ExperimentConfig], bool]] = {
    "data.clothes_labels": lambda cfg: cfg.data.clothes_labels == "dataset",
    "fire2": lambda cfg: cfg.model.variant != "fire2",
    "model.init": lambda cfg: cfg.model.init == "scratch",
    "model.init_hash": lambda cfg: cfg.model.init == "scratch",
    "data.faulty_masks": lambda cfg: not (cfg.data.cloth_aug and cfg.data.faulty_masks
                                          and (cfg.data.dataset != "synthcc" or cfg.data.faulty_csvs)),
    "data.faulty_csvs": lambda cfg: cfg.data.faulty_csvs is None,
    "schedule.heads_lr_mult": lambda cfg: cfg.schedule.heads_lr_mult == 1.0,
    "schedule.ema_decay": lambda cfg: cfg.schedule.ema_decay == 0.0,
    "tad.teacher_seed": lambda cfg: not (cfg.tad.enabled and cfg.tad.teacher)
    or cfg.tad.teacher_seed in (None, cfg.runtime.seed),
    "data.lq_aug_mode": lambda cfg: cfg.data.lq_aug == 0,
    "data.lq_aug_mix": lambda cfg: cfg.data.lq_aug == 0,
    "data.degrade_at": lambda cfg: cfg.data.degrade_at == "input" or not (
        cfg.tad.enabled or (cfg.data.lq_aug > 0 and cfg.data.lq_aug_mode == "extra_view")),
}


def hashed_dict(cfg: ExperimentConfig) -> dict[str, Any]:
    """The dict the hash is computed over: :func:`~rlqlib.engine.config.to_dict` minus :data:`NOT_HASHED` and minus
    the :data:`ADDED_LATER` keys that do not matter to this run, device reduced to its type, terms sorted (their
    order does not matter); fields that follow the dataset enter with their value (:func:`effective`)."""
    cfg = effective(cfg)
    d = to_dict(cfg)
    for key in NOT_HASHED:
        section, name = key.split(".")
        d[section].pop(name, None)
    for key, unused in ADDED_LATER.items():
        if unused(cfg):
            section, _, name = key.partition(".")
            if name:
                d[section].pop(name)
            else:
                d.pop(section)
    d["runtime"]["device"] = d["runtime"]["device"].split(":")[0]
    d["terms"] = sorted(d["terms"])
    return d


def config_hash(cfg: ExperimentConfig, extra: Mapping[str, Any] | None = None) -> str:
    """sha256 hex of the canonical JSON (sorted keys, no spaces) of :func:`hashed_dict` (+ ``extra``)."""
    payload = {"config": hashed_dict(cfg), **({"extra": dict(extra)} if extra else {})}
    text = json.dumps(payload, sort_keys=True, separators=(",", ":"), ensure_ascii=True)
    return hashlib.sha256(text.encode()).hexdigest()


def data_fingerprint(cfg: ExperimentConfig) -> dict[str, Any]:
    """What identifies the training data without its location: SynthCC's manifest (format, preset, seed,
    generator version, image size, counts; and ``pretrain_counts`` for a run trained on the pretraining group
    only, so that adding that group to a folder moves no other run); for other datasets the name and the resolved
    root path."""
    root = Path(cfg.data.root).expanduser()
    manifest = root / "synthcc.json"
    if cfg.data.dataset == "synthcc" and manifest.is_file():
        m = json.loads(manifest.read_text())
        keep = ("format", "preset", "seed", "generator_version", "image_size", "counts")
        out = {"dataset": "synthcc", **{k: m.get(k) for k in keep}}
        if cfg.data.train_set == "pretrain":
            out["pretrain_counts"] = m.get("pretrain_counts")
        return out
    out = {"dataset": cfg.data.dataset, "root": str(root.resolve())}
    if cfg.tad.external_root:
        out["external_root"] = str(Path(cfg.tad.external_root).expanduser().resolve())
    return out


def run_hash(cfg: ExperimentConfig, world_size: int | None = None) -> str:
    """The run-cache key: :func:`config_hash` of the resolved config plus :func:`data_fingerprint` and the number
    of data-parallel processes (P×K is per process, so 2 processes train on 2× larger global batches).

    Args:
        world_size: default: from ``torch.distributed`` when initialised, else 1.
    """
    if world_size is None:
        import torch.distributed as dist

        world_size = dist.get_world_size() if dist.is_available() and dist.is_initialized() else 1
    return config_hash(cfg, {"data": data_fingerprint(cfg), "world_size": int(world_size)})
