"""The training engine: the part every method shares (docs/spec.md §3.3), resumable, CPU/GPU/DDP.

:func:`fit` trains the run of an :class:`~rlqlib.engine.config.ExperimentConfig` into a run folder::

    metrics = fit(cfg, "runs/bm-0123456789ab", teacher_dir=None)

The :class:`Trainer` loads the data, seeds the generators, writes the checkpoints and resumes from them, evaluates
and shows progress; the run's :class:`~rlqlib.methods.base.Method` (picked by ``model.variant`` through
:func:`rlqlib.methods.registry.method_for`) builds the network and trains it. Per epoch e: (a) the method's passes
(RLQ/CAL, :class:`~rlqlib.methods.rlq.method.RLQMethod`: the TAD pass if enabled, the CAP pass, the LR step;
FIRe², :class:`~rlqlib.methods.fire2.method.FIRe2Method`: its one pass, recorded under ``cap``), (b) evaluation if
due, (c) an **atomic checkpoint** (temp file in the run folder, fsync, ``os.replace``) holding the model, the
method's state (heads, optimisers, scheduler, scalers), generator states, epoch and history. A killed run resumes
from its last checkpoint and ends with the same weights and metrics as an uninterrupted one (the PK sampler is
stateless: its epoch-e plan is a function of seed + e). A fresh run with ``model.init = "synthcc"`` first copies
the shared pretraining run's trunk into every trunk copy of its network (:meth:`Trainer.start`); a resumed run
restores its own checkpoint instead.

Evaluation happens after the last epoch (and every ``schedule.eval_every`` epochs for curves); the final epoch
is reported, there is **no checkpoint selection on the test set** (the reference selects the best test epoch).

Files written in ``run_dir`` (rank 0 only), each whole or not at all (temp file, ``os.replace``): ``checkpoint.pt``,
``metrics.jsonl`` (one JSON line per finished epoch, rewritten whole each epoch so that it always matches the
checkpoint) and ``metrics.json`` (final, written last: a folder holding it is a finished run).
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import logging
import os
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.distributed as dist
from torch import nn

from rlqlib.data import training as TD
from rlqlib.data.images import load_images
from rlqlib.data.lq import dataset_mix
from rlqlib.data.sampler import PKSampler
from rlqlib.engine.config import SECTIONS, ExperimentConfig, effective, to_dict
from rlqlib.engine.ema import WeightAverage
from rlqlib.engine.features import run_features
from rlqlib.engine.hashing import run_hash
from rlqlib.engine.pretrain import needs_pretrain
from rlqlib.engine.teacher import needs_teacher
from rlqlib.methods.base import Placement, Recipe, TrainData
from rlqlib.methods.model_config import ModelConfig
from rlqlib.methods.registry import build_model, method_for
from rlqlib.methods.rlq.model import trunk_state

log = logging.getLogger(__name__)

CHECKPOINT_FORMAT = "rlqlib-checkpoint-1"
CHECKPOINT = "checkpoint.pt"


class CheckpointError(RuntimeError):
    """A checkpoint file is truncated, foreign or belongs to another configuration."""


class TrainingInterrupted(RuntimeError):
    """Raised by the ``stop_after_epoch`` test hook after that epoch's checkpoint is written (simulates a kill)."""


# ------------------------------------------------------------------------------------------ checkpoints


def save_checkpoint(state: dict[str, Any], path: str | Path) -> None:
    """Write ``state`` atomically: temp file in the same folder, flush + fsync, ``os.replace``."""
    path = Path(path)
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    with open(tmp, "wb") as fh:
        torch.save(state, fh)
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, path)


def load_checkpoint(path: str | Path, map_location: str | torch.device = "cpu") -> dict[str, Any]:
    """Load a checkpoint with ``weights_only=True``; a truncated or foreign file raises :class:`CheckpointError`."""
    path = Path(path)
    try:
        state = torch.load(path, map_location=map_location, weights_only=True)
    except FileNotFoundError:
        raise
    except Exception as err:  # noqa: BLE001 - torch raises many types for damaged files
        raise CheckpointError(
            f"checkpoint {path} cannot be read ({type(err).__name__}: {err}); it is truncated or not a "
            f"PyTorch file. Delete it (and the run's metrics files) to retrain the run from scratch") from err
    if not isinstance(state, dict) or state.get("format") != CHECKPOINT_FORMAT:
        raise CheckpointError(f"{path} is not an rlqlib training checkpoint (format "
                              f"{state.get('format') if isinstance(state, dict) else type(state).__name__!r}, "
                              f"expected {CHECKPOINT_FORMAT!r}); move it away or delete it to retrain")
    return state


# ------------------------------------------------------------------------------------------ helpers


def _dist() -> tuple[int, int]:
    if dist.is_available() and dist.is_initialized():
        return dist.get_rank(), dist.get_world_size()
    return 0, 1


def _device(cfg: ExperimentConfig) -> torch.device:
    dev = torch.device(cfg.runtime.device)
    if dev.type == "cuda":
        if not torch.cuda.is_available():
            raise RuntimeError(f"runtime.device={cfg.runtime.device!r} but CUDA is not available; use --device cpu")
        if dev.index is None:
            dev = torch.device("cuda", int(os.environ.get("LOCAL_RANK", 0)))
        torch.cuda.set_device(dev)
    return dev


def _seed(cfg: ExperimentConfig, stream: int, rank: int = 0) -> int:
    return int(cfg.runtime.seed) * 1_000_003 + 7919 * stream + rank


def _generator(device: torch.device, seed: int) -> torch.Generator:
    g = torch.Generator(device=device)
    g.manual_seed(seed)
    return g


def _recipe(cfg: ExperimentConfig, model_cfg: ModelConfig) -> Recipe:
    """The sub-configs a method reads: every config section :class:`~rlqlib.methods.base.Recipe` names (the model
    section with the train set's sizes filled in), the terms, weights, LQ augmentation and seed."""
    sections = {f.name: getattr(cfg, f.name) for f in dataclasses.fields(Recipe) if f.name in SECTIONS}
    lq_aug = cfg.data.lq_aug if cfg.data.lq_aug_mode == "replace" else 0.0  # extra_view: made in the batches
    return Recipe(**{**sections, "model": model_cfg}, terms=tuple(cfg.terms), weights=cfg.weights,
                  lq_aug=lq_aug, seed=cfg.runtime.seed)


def _floats(d: dict) -> dict:
    """Metrics as plain JSON: numbers → float, NaN (no valid query, e.g. SC on one-clothes-per-image sets) → None."""
    def num(v):
        if isinstance(v, dict):
            return _floats(v)
        if isinstance(v, (int, float, np.number)) and not isinstance(v, bool):
            return None if np.isnan(v) else float(v)
        return v

    return {k: num(v) for k, v in d.items()}


# ------------------------------------------------------------------------------------------ trainer


class Trainer:
    """Everything one run needs, built from the config; :meth:`fit` runs the epochs.

    Args:
        cfg: the (resolved) experiment config.
        run_dir: where checkpoints and metric files go (None: nothing is written; for tests).
        teacher_dir: run folder of the teacher (needed when ``cfg.tad.teacher``).
        init_dir: run folder of the shared pretraining run (needed for a fresh start when ``model.init`` is
            ``synthcc``; :mod:`rlqlib.engine.pretrain`).
    """

    def __init__(self, cfg: ExperimentConfig, run_dir: str | Path | None = None,
                 teacher_dir: str | Path | None = None, init_dir: str | Path | None = None) -> None:
        self.cfg = cfg = effective(cfg)  # fields that follow the dataset, filled in (the hash is the same)
        self.run_dir = Path(run_dir) if run_dir is not None else None
        self.init_dir = Path(init_dir) if init_dir is not None else None
        self.rank, self.world = _dist()
        self.device = _device(cfg)
        if cfg.runtime.threads:
            torch.set_num_threads(cfg.runtime.threads)
        self.hash = run_hash(cfg)
        workers = max(1, cfg.runtime.threads or 2)
        size = cfg.data.image_size
        self.ds = ds = TD.load_train_dataset(cfg.data, cfg.tad.external_root)
        # uint8 images stay where batches are made: on a GPU the whole set is indexed there (no host copies)
        self.images = load_images([s.path for s in ds.train], size, workers).to(self.device)
        self.eval_splits = sorted({s for pair in ds.query_sets.values() for s in pair})
        self.eval_images = {s: load_images([x.path for x in ds.splits[s]], size, workers)
                            for s in self.eval_splits}
        self.gen_cap = _generator(self.device, _seed(cfg, 1, self.rank))
        self.gen_tad = _generator(self.device, _seed(cfg, 2, self.rank))
        self.data = self._train_data(workers)
        self.model_cfg = ModelConfig(**{**to_dict(cfg)["model"], "num_ids": ds.num_train_pids,
                                        "num_clothes": int(self.data.pid2clothes.shape[1]),
                                        "num_pose_classes": cfg.data.pose_k + 1})
        place = Placement(device=self.device, amp=cfg.runtime.amp, channels_last=cfg.runtime.channels_last,
                          world_size=self.world, eval_batch_size=cfg.runtime.eval_batch_size)
        teacher = self._teacher_state(teacher_dir) if needs_teacher(cfg) else None
        self.method = method_for(self.model_cfg.variant)(_recipe(cfg, self.model_cfg), self.data, place,
                                                         teacher=teacher)
        self.history: list[dict] = []
        self.start_epoch = 0
        # schedule.ema_decay: a moving average of the weights (its first update replaces the starting weights)
        self.ema = WeightAverage(self.model, cfg.schedule.ema_decay) if cfg.schedule.ema_decay else None

    @property
    def model(self) -> nn.Module:
        """The method's network (what is checkpointed as ``model`` and evaluated)."""
        return self.method.model

    def _train_data(self, workers: int) -> TrainData:
        """Labels, cloth-recolouring masks, the P×K batches of the train set and the TAD pass's HQ set."""
        cfg, ds = self.cfg, self.ds
        pids = np.array([s.pid for s in ds.train], dtype=np.int64)
        clothes, pid2clothes = TD.clothes_labels(cfg.data, ds)  # (N,), (num_ids, num_clothes)
        extra = {}
        if "gender" in cfg.terms:
            extra["gender"] = TD.gender_per_sample(cfg.data, ds)
        if "pose" in cfg.terms:
            extra["pose"] = TD.pose_per_sample(cfg.data, ds)
        sampler = PKSampler(pids, cfg.data.p, cfg.data.k, _seed(cfg, 3), self.rank, self.world)
        batches, pid2clothes = TD.train_batches(cfg.data, ds, self.images, clothes, pid2clothes, sampler,
                                                self.gen_cap, self.device, extra, workers)
        mix = cfg.tad.mix or dataset_mix(cfg.data.dataset)
        hq_images, hq_sampler, hq_lq = self._hq_set(pids, mix)
        return TrainData(images=self.images, pids=pids, pid2clothes=pid2clothes, batches=batches,
                         generator=self.gen_cap, hq_images=hq_images, hq_sampler=hq_sampler,
                         hq_generator=self.gen_tad, mix=mix, hq_lq=hq_lq, lq_aug_mix=TD.lq_aug_mix(cfg.data))

    def _hq_set(self, target_pids: np.ndarray, mix: str) -> tuple:
        """The HQ images of the TAD pass on the device, their P×K sampler and their LQ twins' source
        (:func:`rlqlib.data.training.hq_lq_source`); (None, None, None) without TAD."""
        cfg = self.cfg
        if not cfg.tad.enabled:
            return None, None, None
        if cfg.tad.source == "target":
            images, pids, paths = self.images, target_pids, [s.path for s in self.ds.train]
        else:
            ext = TD.external_dataset(cfg.data, cfg.tad.source, cfg.tad.external_root)
            pids, paths = np.array([s.pid for s in ext.train], dtype=np.int64), [s.path for s in ext.train]
            images = load_images(paths, cfg.data.image_size, max(1, cfg.runtime.threads))
        keep = TD.subsample_per_identity(pids, cfg.tad.subsample, _seed(cfg, 4))
        hq_images, hq_pids = images[torch.from_numpy(keep).to(images.device)].to(self.device), pids[keep]
        hq_lq = TD.hq_lq_source(cfg.data, [paths[i] for i in keep], hq_images, mix, max(1, cfg.runtime.threads))
        return hq_images, PKSampler(hq_pids, cfg.data.p, cfg.data.k, _seed(cfg, 5), self.rank, self.world), hq_lq

    def _teacher_state(self, teacher_dir: str | Path | None) -> dict[str, Any]:
        """The checkpoint state of the teacher run this run distils from, checked against ``tad.teacher_hash``."""
        if teacher_dir is None:
            raise ValueError("this TAD run distils from a teacher: pass teacher_dir (rlqlib.engine.runs.run_or_load "
                             "trains or finds it), or set tad.teacher=false")
        state = load_checkpoint(Path(teacher_dir) / CHECKPOINT)
        if self.cfg.tad.teacher_hash and state.get("config_hash") != self.cfg.tad.teacher_hash:
            raise CheckpointError(f"teacher checkpoint in {teacher_dir} has config hash {state.get('config_hash')}, "
                                  f"the student expects {self.cfg.tad.teacher_hash}; retrain the teacher run")
        return state

    def _pretrain_state(self) -> dict[str, Any]:
        """The checkpoint state of the finished pretraining run this run starts from, checked against
        ``model.init_hash``."""
        want = self.cfg.model.init_hash
        if want is None:
            raise ValueError("model.init='synthcc' but model.init_hash is unset: resolve the config first "
                             "(rlqlib.engine.teacher.resolve; rlqlib.engine.runs.run_or_load does it)")
        if self.init_dir is None:
            raise ValueError("this run starts from the pretrained trunk (model.init='synthcc'): pass init_dir "
                             "(rlqlib.engine.runs.run_or_load trains or finds the pretraining run)")
        path = self.init_dir / CHECKPOINT
        if not path.is_file():
            raise FileNotFoundError(f"pretraining checkpoint {path} is missing: train the pretraining run first "
                                    "(rlqlib.engine.runs.run_or_load does)")
        state = load_checkpoint(path)
        if state.get("config_hash") != want:
            raise CheckpointError(f"pretraining checkpoint {path} has config hash {state.get('config_hash')}, this "
                                  f"run expects {want} (model.init_hash); retrain the pretraining run")
        if int(state["epoch"]) != int(state["config"]["schedule"]["epochs"]):
            raise CheckpointError(f"pretraining run {self.init_dir} is unfinished (epoch {state['epoch']} of "
                                  f"{state['config']['schedule']['epochs']}); finish it with run_or_load")
        return state

    def start(self) -> None:
        """Set up a fresh run (not a resumed one): with ``model.init = "synthcc"``, every trunk copy of the network
        (stem, layer2 and each branch's layers; FIRe²'s chain) takes the pretraining run's trunk, through the same
        seam as ImageNet weights (:func:`rlqlib.methods.backbone.build_trunk`): the network is rebuilt from the same
        seed with that trunk and copied in, so BN necks and classifiers keep their fresh initialisation."""
        if not needs_pretrain(self.cfg):
            return
        state = self._pretrain_state()
        fresh = build_model(self.model_cfg, self.cfg.runtime.seed, trunk_state(state["model"]))
        self.model.load_state_dict(fresh.state_dict())
        log.info("trunk initialised from the pretraining run %s", self.init_dir)

    # -------------------------------------------------------------------------------- passes

    def _bar(self, it, total: int, desc: str):
        from rlqlib.data.progress import bar

        return bar(it, total=total, desc=desc, unit="step", leave=False,
                   disable=not self.cfg.runtime.progress or self.rank != 0)

    def evaluate(self) -> dict[str, dict]:
        """Score the current model on the dataset's query/gallery splits (rank 0 computes, all ranks get it)."""
        from rlqlib.engine import evaluate as E

        result = None
        if self.rank == 0:
            feats = {s: run_features(self.model, self.eval_images[s], self.cfg.runtime, self.device)
                     for s in self.eval_splits}
            result = _floats(E.evaluate_dataset(self.ds, feats))
            self.model.train()
        if self.world > 1:
            box = [result]
            dist.broadcast_object_list(box, src=0)
            result = box[0]
        return result

    # -------------------------------------------------------------------------------- state

    def state(self, epoch: int) -> dict[str, Any]:
        """Everything needed to continue after ``epoch`` (0-indexed, finished): the shared entries, then the
        method's (:meth:`rlqlib.methods.base.Method.state_dict`)."""
        return {
            "format": CHECKPOINT_FORMAT, "config_hash": self.hash, "config": to_dict(self.cfg),
            "model_config": to_dict(self.cfg)["model"] | {"num_ids": self.model_cfg.num_ids,
                                                           "num_clothes": self.model_cfg.num_clothes,
                                                           "num_pose_classes": self.model_cfg.num_pose_classes},
            "epoch": epoch + 1, "model": self.model.state_dict(),
            "rng": {"cap": self.gen_cap.get_state(), "tad": self.gen_tad.get_state()},
            "sampler_epoch": epoch + 1, "history": self.history,
            **({"ema": self.ema.state_dict()} if self.ema is not None else {}),
            **self.method.state_dict(),
        }

    def restore(self, path: Path) -> None:
        """Continue from a checkpoint of this same configuration."""
        state = load_checkpoint(path, map_location=self.device)
        if state.get("config_hash") != self.hash:
            raise CheckpointError(f"{path} belongs to config {state.get('config_hash', '?')[:12]}, not "
                                  f"{self.hash[:12]}; use a fresh run folder or delete the checkpoint")
        if self.world > 1:
            raise CheckpointError("resuming is supported in single-process runs; restart DDP runs from scratch")
        self.model.load_state_dict(state["model"])
        if self.ema is not None:
            self.ema.load_state_dict(state["ema"])
        self.method.load_state_dict(state, next_epoch=int(state["epoch"]))
        self.gen_cap.set_state(state["rng"]["cap"].cpu())
        self.gen_tad.set_state(state["rng"]["tad"].cpu())
        self.history = list(state["history"])
        self.start_epoch = int(state["epoch"])
        log.info("resumed %s at epoch %d", path, self.start_epoch)

    def _write(self, epoch: int) -> None:
        if self.run_dir is None or self.rank != 0:
            return
        self.run_dir.mkdir(parents=True, exist_ok=True)
        save_checkpoint(self.state(epoch), self.run_dir / CHECKPOINT)
        lines = "".join(json.dumps(h, sort_keys=True) + "\n" for h in self.history)
        tmp = self.run_dir / f".metrics.jsonl.tmp-{os.getpid()}"
        tmp.write_text(lines)
        os.replace(tmp, self.run_dir / "metrics.jsonl")

    # -------------------------------------------------------------------------------- loop

    def fit(self, resume: bool = True, stop_after_epoch: int | None = None,
            on_epoch: Callable[[dict], None] | None = None) -> dict[str, Any]:
        """Run the remaining epochs; returns the final metrics (also written to ``metrics.json``)."""
        cfg = self.cfg
        ckpt = self.run_dir / CHECKPOINT if self.run_dir is not None else None
        if resume and ckpt is not None and ckpt.exists():
            self.restore(ckpt)
        else:
            self.start()
        final_eval = None
        for epoch in range(self.start_epoch, cfg.schedule.epochs):
            t0 = time.perf_counter()
            record: dict[str, Any] = {"epoch": epoch, "lr": self.method.lr_at(epoch)}
            with self.ema.tracking(self.model) if self.ema is not None else contextlib.nullcontext():
                record.update(self.method.epoch(epoch, self._bar))  # pass name → record
            last = epoch == cfg.schedule.epochs - 1
            if last and self.ema is not None:
                self.ema.copy_to(self.model)  # the run ends with the averaged weights: evaluated and checkpointed
            every = cfg.schedule.eval_every
            if last or (every and (epoch + 1) % every == 0):
                record["eval"] = self.evaluate()
                final_eval = record["eval"] if last else final_eval
            record["seconds"] = round(time.perf_counter() - t0, 3)
            self.history.append(record)
            self._write(epoch)
            if on_epoch is not None:
                on_epoch(record)
            if stop_after_epoch is not None and epoch + 1 >= stop_after_epoch and not last:
                raise TrainingInterrupted(f"stopped after epoch {epoch} by the test hook")
        if final_eval is None:  # the run was already complete when loaded
            final_eval = self.history[-1].get("eval") if self.history else self.evaluate()
        last_rec = self.history[-1]
        untimed = {k: {t: v for t, v in rec.items() if not t.endswith("seconds")}  # timings: history only
                   for k, rec in last_rec.items() if isinstance(rec, dict) and k != "eval"}  # the passes
        metrics = {"variant": cfg.variant, "config_hash": self.hash, "epochs": cfg.schedule.epochs,
                   "eval": final_eval, "train": untimed}
        if self.run_dir is not None and self.rank == 0:  # last and atomic: its presence marks a finished run
            tmp = self.run_dir / f".metrics.json.tmp-{os.getpid()}"
            tmp.write_text(json.dumps(metrics, indent=1, sort_keys=True) + "\n")
            os.replace(tmp, self.run_dir / "metrics.json")
        if self.world > 1:
            dist.barrier()
        return metrics


def fit(cfg: ExperimentConfig, run_dir: str | Path, resume: bool = True, *, teacher_dir: str | Path | None = None,
        init_dir: str | Path | None = None, stop_after_epoch: int | None = None,
        on_epoch: Callable[[dict], None] | None = None) -> dict[str, Any]:
    """Train ``cfg`` into ``run_dir`` (resuming from its checkpoint when ``resume``) and return the final metrics.

    Args:
        cfg: resolved config (:func:`rlqlib.engine.teacher.resolve`; :mod:`rlqlib.engine.runs` does it).
        run_dir: the run folder.
        resume: continue from ``run_dir/checkpoint.pt`` if present.
        teacher_dir: the teacher's run folder (TAD runs with a teacher).
        init_dir: the pretraining run's folder (runs with ``model.init = "synthcc"``).
        stop_after_epoch: test hook: raise :class:`TrainingInterrupted` after this many epochs (checkpoint saved).
        on_epoch: called with each epoch's record after its checkpoint is written (it may raise to stop the run:
            :meth:`rlqlib.engine.locks.Lock.check`).
    """
    return Trainer(cfg, run_dir, teacher_dir, init_dir).fit(resume=resume, stop_after_epoch=stop_after_epoch,
                                                            on_epoch=on_epoch)


def load_run_model(run_dir: str | Path, device: str | torch.device = "cpu") -> nn.Module:
    """The trained model of a run folder (eval mode), from its checkpoint."""
    state = load_checkpoint(Path(run_dir) / CHECKPOINT)
    model = build_model(ModelConfig(**state["model_config"]), 0)
    model.load_state_dict(state["model"])
    return model.to(device).eval()


def evaluate_run(run_dir: str | Path, cfg: ExperimentConfig) -> dict[str, dict]:
    """Re-score the checkpoint of ``run_dir`` on the query/gallery splits of ``cfg``'s dataset."""
    from rlqlib.engine import evaluate as E

    device = _device(cfg)
    if cfg.runtime.threads:
        torch.set_num_threads(cfg.runtime.threads)
    model = load_run_model(run_dir, device)
    ds = TD.load_train_dataset(cfg.data, cfg.tad.external_root)
    splits = sorted({s for pair in ds.query_sets.values() for s in pair})
    feats = {s: run_features(model, load_images([x.path for x in ds.splits[s]], cfg.data.image_size), cfg.runtime,
                             device) for s in splits}
    return _floats(E.evaluate_dataset(ds, feats))
