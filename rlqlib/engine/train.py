"""The training engine: per epoch one TAD pass then one CAP pass (spec §3.3), resumable, CPU/GPU/DDP.

:func:`fit` trains the run of an :class:`~rlqlib.engine.config.ExperimentConfig` into a run folder::

    metrics = fit(cfg, "runs/bm-0123456789ab", teacher_dir=None)

Per epoch e: (a) if TAD is on, one pass over the HQ set (HQ + synthetic LQ pairs made on the device with
:func:`rlqlib.data.degrade.degrade` using the target dataset's mix, frozen teacher on the HQ half), (b) one CAP pass
over the target train set (CAL's two-step iteration, :func:`rlqlib.methods.rlq.steps.cap_step`), (c) evaluation if due,
(d) the LR scheduler step, (e) an **atomic checkpoint** (temp file in the run folder, fsync, ``os.replace``)
holding model, heads, optimisers, scheduler, scalers, generator states, epoch and history. A killed run resumes
from its last checkpoint and ends with the same weights and metrics as an uninterrupted one (the PK sampler is
stateless: its epoch-e plan is a function of seed + e).

FIRe² runs (``model.variant == "fire2"``) use the same data, evaluation, checkpoints and files; their training pass
is :meth:`rlqlib.methods.fire2.model.FIRe2Method.epoch` (two stages, per-epoch FFM re-clustering, its own optimiser and
warm-up schedule), recorded under ``cap`` like the CAP pass.

Evaluation happens after the last epoch (and every ``schedule.eval_every`` epochs for curves); the final epoch
is reported, there is **no checkpoint selection on the test set** (the reference selects the best test epoch).

Files written in ``run_dir`` (rank 0 only): ``checkpoint.pt``, ``metrics.jsonl`` (one JSON line per finished
epoch, rewritten whole each epoch so that it always matches the checkpoint) and ``metrics.json`` (final).
"""

from __future__ import annotations

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

from rlqlib.methods.fire2 import model as F2
from rlqlib.data import loader as Ld
from rlqlib.data import training as TD
from rlqlib.engine.config import ExperimentConfig, run_hash, to_dict
from rlqlib.data.degrade import MIXES
from rlqlib.methods.rlq.model import ModelConfig, build_heads, build_model, make_teacher
from rlqlib.methods.rlq.steps import StepContext, Student, cap_step, tad_step

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


def _amp_dtype(amp: str) -> torch.dtype | None:
    return {"none": None, "bf16": torch.bfloat16, "fp16": torch.float16}[amp]


def _seed(cfg: ExperimentConfig, stream: int, rank: int = 0) -> int:
    return int(cfg.runtime.seed) * 1_000_003 + 7919 * stream + rank


def _generator(device: torch.device, seed: int) -> torch.Generator:
    g = torch.Generator(device=device)
    g.manual_seed(seed)
    return g


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
    """

    def __init__(self, cfg: ExperimentConfig, run_dir: str | Path | None = None,
                 teacher_dir: str | Path | None = None) -> None:
        self.cfg = cfg
        self.run_dir = Path(run_dir) if run_dir is not None else None
        self.rank, self.world = _dist()
        self.device = _device(cfg)
        if cfg.runtime.threads:
            torch.set_num_threads(cfg.runtime.threads)
        self.hash = run_hash(cfg)
        workers = max(1, cfg.runtime.threads or 2)
        size = cfg.data.image_size
        self.ds = ds = TD.load_train_dataset(cfg)
        # uint8 images stay where batches are made: on a GPU the whole set is indexed there (no host copies)
        self.images = Ld.load_images([s.path for s in ds.train], size, workers).to(self.device)
        self.eval_splits = sorted({s for pair in ds.query_sets.values() for s in pair})
        self.eval_images = {s: Ld.load_images([x.path for x in ds.splits[s]], size, workers)
                            for s in self.eval_splits}
        pids = np.array([s.pid for s in ds.train], dtype=np.int64)
        clothes, pid2clothes = TD.clothes_labels(cfg, ds)  # (N,), (num_ids, num_clothes)
        extra = {}
        if "gender" in cfg.terms:
            extra["gender"] = TD.gender_per_sample(cfg, ds)
        if "pose" in cfg.terms:
            extra["pose"] = TD.pose_per_sample(cfg, ds)
        colours = Ld.COLOURS if cfg.data.colours == "all" else Ld.LAST_COLOURS
        num_orig_clothes = int(pid2clothes.shape[1])
        recolour = {}
        if cfg.data.cloth_aug:
            shirt, pant = TD.clothes_masks(cfg, ds, workers)
            pid2clothes = Ld.extended_pid2clothes(pid2clothes, len(colours))
            recolour = dict(recolour=True, shirt_masks=shirt.to(self.device), pant_masks=pant.to(self.device),
                            num_orig_clothes=num_orig_clothes, colours=colours)
        self.model_cfg = ModelConfig(**{**to_dict(cfg)["model"], "num_ids": ds.num_train_pids,
                                        "num_clothes": int(pid2clothes.shape[1]),
                                        "num_pose_classes": cfg.data.pose_k + 1})
        self.gen_cap = _generator(self.device, _seed(cfg, 1, self.rank))
        self.gen_tad = _generator(self.device, _seed(cfg, 2, self.rank))
        sampler = Ld.PKSampler(pids, cfg.data.p, cfg.data.k, _seed(cfg, 3), self.rank, self.world)
        self.cap_batches = Ld.TrainBatches(self.images, pids, clothes, sampler, self.gen_cap, self.device,
                                           extra=extra, **recolour)
        self.mix = cfg.tad.mix or (cfg.data.dataset if cfg.data.dataset in MIXES else "generic")
        self._build_tad(pids)
        self._build_modules(pid2clothes, teacher_dir)
        self.history: list[dict] = []
        self.start_epoch = 0

    def _build_tad(self, target_pids: np.ndarray) -> None:
        cfg = self.cfg
        self.tad_images = self.tad_sampler = None
        if not cfg.tad.enabled:
            return
        if cfg.tad.source == "target":
            images, pids = self.images, target_pids
        else:
            ext = TD.external_dataset(cfg, cfg.tad.source)
            pids = np.array([s.pid for s in ext.train], dtype=np.int64)
            images = Ld.load_images([s.path for s in ext.train], cfg.data.image_size, max(1, cfg.runtime.threads))
        keep = TD.subsample_per_identity(pids, cfg.tad.subsample, _seed(cfg, 4))
        self.tad_images, tad_pids = images[torch.from_numpy(keep).to(images.device)].to(self.device), pids[keep]
        self.tad_sampler = Ld.PKSampler(tad_pids, cfg.data.p, cfg.data.k, _seed(cfg, 5), self.rank, self.world)

    def _build_modules(self, pid2clothes: np.ndarray, teacher_dir: str | Path | None) -> None:
        cfg, dev = self.cfg, self.device
        seed = cfg.runtime.seed
        self.fire2 = None
        self.model = build_model(self.model_cfg, seed)
        if self.model_cfg.variant == "fire2":
            self._build_fire2()
            return
        self.heads = build_heads(self.model_cfg, seed + 1)
        self.student = Student(self.model, self.heads.cal_classifier).to(dev)
        self.clothes_classifier = self.heads.clothes_classifier.to(dev)
        if cfg.runtime.channels_last:
            self.student.to(memory_format=torch.channels_last)
        self.teacher = self._load_teacher(teacher_dir) if cfg.tad.enabled and cfg.tad.teacher else None
        s = cfg.schedule
        self.opt = torch.optim.Adam(self.student.parameters(), lr=s.lr, weight_decay=s.weight_decay)
        self.opt_cc = torch.optim.Adam(self.clothes_classifier.parameters(), lr=s.lr, weight_decay=s.weight_decay)
        self.sched = torch.optim.lr_scheduler.MultiStepLR(self.opt, s.milestone_epochs(), gamma=s.gamma)
        fp16 = cfg.runtime.amp == "fp16"
        self.scaler = torch.amp.GradScaler(dev.type, enabled=fp16)
        self.scaler_cc = torch.amp.GradScaler(dev.type, enabled=fp16)
        wrapped: nn.Module = self.student
        if self.world > 1:
            spec_parts = self.model_cfg.variant in ("bm+g", "bm+p", "rlq")
            unused = cfg.tad.enabled and spec_parts  # the TAD pass skips the pose branch / gender head
            wrapped = nn.parallel.DistributedDataParallel(
                self.student, device_ids=[dev.index] if dev.type == "cuda" else None,
                find_unused_parameters=unused)
        self.ctx = StepContext(
            student=wrapped, clothes_classifier=self.clothes_classifier, teacher=self.teacher, opt=self.opt,
            opt_cc=self.opt_cc, scaler=self.scaler, scaler_cc=self.scaler_cc, loss_cfg=cfg.losses,
            weights=dict(cfg.weights), terms=tuple(cfg.terms),
            pid2clothes=torch.as_tensor(pid2clothes, dtype=torch.bool, device=dev), device=dev,
            amp_dtype=_amp_dtype(cfg.runtime.amp), channels_last=cfg.runtime.channels_last,
            tad_teacher=cfg.tad.teacher, tad_self_ss=cfg.tad.self_ss, tad_self_mse=cfg.tad.self_mse,
            mix=self.mix,
            lq_aug=cfg.data.lq_aug, world_size=self.world, cos_from=tuple(self.model.disentangle_from) or ("f_bot",))

    def _build_fire2(self) -> None:
        if self.world > 1:
            raise ValueError("FIRe² runs are single-process (its per-epoch FFM and optimiser rebuilds are not "
                             "distributed); run without torchrun")
        self.student = self.model.to(self.device)
        if self.cfg.runtime.channels_last:
            self.model.to(memory_format=torch.channels_last)
        pids = np.array([s.pid for s in self.ds.train], dtype=np.int64)
        self.fire2 = F2.FIRe2Method(self.cfg, self.model, self.images, pids, self.cap_batches.sampler, self.gen_cap,
                                    self.device)

    def _load_teacher(self, teacher_dir: str | Path | None) -> nn.Module:
        if teacher_dir is None:
            raise ValueError("this TAD run distils from a teacher: pass teacher_dir (rlqlib.engine.runs.run_or_load "
                             "trains or finds it), or set tad.teacher=false")
        state = load_checkpoint(Path(teacher_dir) / CHECKPOINT)
        if self.cfg.tad.teacher_hash and state.get("config_hash") != self.cfg.tad.teacher_hash:
            raise CheckpointError(f"teacher checkpoint in {teacher_dir} has config hash {state.get('config_hash')}, "
                                  f"the student expects {self.cfg.tad.teacher_hash}; retrain the teacher run")
        net = build_model(ModelConfig(**state["model_config"]), 0)
        net.load_state_dict(state["model"])
        teacher = make_teacher(net.to(self.device))
        if self.cfg.runtime.channels_last:
            teacher.to(memory_format=torch.channels_last)
        return teacher

    # -------------------------------------------------------------------------------- passes

    def _bar(self, it, total: int, desc: str):
        from tqdm.auto import tqdm

        return tqdm(it, total=total, desc=desc, unit="step", leave=False,
                    disable=not self.cfg.runtime.progress or self.rank != 0)

    def tad_epoch(self, epoch: int) -> dict[str, float]:
        """One TAD pass over the HQ set; returns mean terms, the step count and the pass's seconds."""
        t0 = time.perf_counter()
        self.student.train()
        self.tad_sampler.set_epoch(epoch)
        sums, names, n = None, [], 0
        for step, idx in enumerate(self._bar(self.tad_sampler, len(self.tad_sampler), f"TAD {epoch}")):
            index = torch.as_tensor(idx, dtype=torch.long, device=self.device)
            hq = self.tad_images[index]  # (B,3,H,W) uint8
            values, names = tad_step(self.ctx, hq, index, epoch=epoch, step=step, generator=self.gen_tad)
            sums = values if sums is None else sums + values
            n += 1
        out = {k: float(v) / n for k, v in zip(names, sums.tolist())} if n else {}
        return {**out, "steps": n, "seconds": round(time.perf_counter() - t0, 3)}

    def cap_epoch(self, epoch: int) -> dict[str, float]:
        """One CAP/ReID pass over the target train set; returns mean terms, steps, clothes-optimiser steps and the
        pass's seconds. FIRe² runs: :meth:`rlqlib.methods.fire2.model.FIRe2Method.epoch` instead."""
        if self.fire2 is not None:
            return self.fire2.epoch(epoch, self._bar)
        t0 = time.perf_counter()
        self.student.train()
        self.cap_batches.set_epoch(epoch)
        cc_active = epoch >= self.cfg.schedule.cc_start_epoch()
        sums, names, n = None, [], 0
        for step, batch in enumerate(self._bar(self.cap_batches, len(self.cap_batches), f"CAP {epoch}")):
            values, names = cap_step(self.ctx, batch, cc_active=cc_active, epoch=epoch, step=step,
                                     generator=self.gen_cap)
            sums = values if sums is None else sums + values
            n += 1
        out = {k: float(v) / n for k, v in zip(names, sums.tolist())} if n else {}
        cc_steps = n if (cc_active and "adv" in self.cfg.terms) else 0
        return {**out, "steps": n, "cc_steps": cc_steps, "seconds": round(time.perf_counter() - t0, 3)}

    def evaluate(self) -> dict[str, dict]:
        """Score the current model on the dataset's query/gallery splits (rank 0 computes, all ranks get it)."""
        from rlqlib.engine import evaluate as E

        result = None
        if self.rank == 0:
            amp = self.device.type == "cuda" and self.cfg.runtime.amp != "none"
            feats = {s: E.extract_features(self.model, self.eval_images[s], self.cfg.runtime.eval_batch_size,
                                           self.device, amp=amp, channels_last=self.cfg.runtime.channels_last)
                     for s in self.eval_splits}
            result = _floats(E.evaluate_dataset(self.ds, feats))
            self.student.train()
        if self.world > 1:
            box = [result]
            dist.broadcast_object_list(box, src=0)
            result = box[0]
        return result

    # -------------------------------------------------------------------------------- state

    def state(self, epoch: int) -> dict[str, Any]:
        """Everything needed to continue after ``epoch`` (0-indexed, finished)."""
        common = {
            "format": CHECKPOINT_FORMAT, "config_hash": self.hash, "config": to_dict(self.cfg),
            "model_config": to_dict(self.cfg)["model"] | {"num_ids": self.model_cfg.num_ids,
                                                           "num_clothes": self.model_cfg.num_clothes,
                                                           "num_pose_classes": self.model_cfg.num_pose_classes},
            "epoch": epoch + 1, "model": self.model.state_dict(),
            "rng": {"cap": self.gen_cap.get_state(), "tad": self.gen_tad.get_state()},
            "sampler_epoch": epoch + 1, "history": self.history,
        }
        if self.fire2 is not None:
            return {**common, "fire2": self.fire2.state_dict()}
        return {
            **common,
            "cal_classifier": self.heads.cal_classifier.state_dict(),
            "clothes_classifier": self.clothes_classifier.state_dict(),
            "opt": self.opt.state_dict(), "opt_cc": self.opt_cc.state_dict(), "sched": self.sched.state_dict(),
            "scaler": self.scaler.state_dict(), "scaler_cc": self.scaler_cc.state_dict(),
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
        if self.fire2 is not None:
            self.fire2.load_state_dict(state["fire2"], next_epoch=int(state["epoch"]))
        else:
            self.heads.cal_classifier.load_state_dict(state["cal_classifier"])
            self.clothes_classifier.load_state_dict(state["clothes_classifier"])
            self.opt.load_state_dict(state["opt"])
            self.opt_cc.load_state_dict(state["opt_cc"])
            self.sched.load_state_dict(state["sched"])
            self.scaler.load_state_dict(state["scaler"])
            self.scaler_cc.load_state_dict(state["scaler_cc"])
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
        tmp = self.run_dir / ".metrics.jsonl.tmp"
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
        final_eval = None
        for epoch in range(self.start_epoch, cfg.schedule.epochs):
            t0 = time.perf_counter()
            lr = self.fire2.lr_at(epoch) if self.fire2 is not None else self.opt.param_groups[0]["lr"]
            record: dict[str, Any] = {"epoch": epoch, "lr": lr}
            if cfg.tad.enabled:
                record["tad"] = self.tad_epoch(epoch)
            record["cap"] = self.cap_epoch(epoch)
            last = epoch == cfg.schedule.epochs - 1
            every = cfg.schedule.eval_every
            if last or (every and (epoch + 1) % every == 0):
                record["eval"] = self.evaluate()
                final_eval = record["eval"] if last else final_eval
            if self.fire2 is None:  # FIRe² sets its epoch's LR itself (warm-up, rebuilt optimisers)
                self.sched.step()
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
        untimed = {k: {t: v for t, v in last_rec[k].items() if not t.endswith("seconds")}  # timings: history only
                   for k in ("tad", "cap") if k in last_rec}
        metrics = {"variant": cfg.variant, "config_hash": self.hash, "epochs": cfg.schedule.epochs,
                   "eval": final_eval, "train": untimed}
        if self.run_dir is not None and self.rank == 0:
            (self.run_dir / "metrics.json").write_text(json.dumps(metrics, indent=1, sort_keys=True) + "\n")
        if self.world > 1:
            dist.barrier()
        return metrics


def fit(cfg: ExperimentConfig, run_dir: str | Path, resume: bool = True, *, teacher_dir: str | Path | None = None,
        stop_after_epoch: int | None = None) -> dict[str, Any]:
    """Train ``cfg`` into ``run_dir`` (resuming from its checkpoint when ``resume``) and return the final metrics.

    Args:
        cfg: resolved config (:func:`rlqlib.engine.config.resolve`; :mod:`rlqlib.engine.runs` does it).
        run_dir: the run folder.
        resume: continue from ``run_dir/checkpoint.pt`` if present.
        teacher_dir: the teacher's run folder (TAD runs with a teacher).
        stop_after_epoch: test hook: raise :class:`TrainingInterrupted` after this many epochs (checkpoint saved).
    """
    return Trainer(cfg, run_dir, teacher_dir).fit(resume=resume, stop_after_epoch=stop_after_epoch)


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
    ds = TD.load_train_dataset(cfg)
    splits = sorted({s for pair in ds.query_sets.values() for s in pair})
    amp = device.type == "cuda" and cfg.runtime.amp != "none"
    feats = {s: E.extract_features(model, Ld.load_images([x.path for x in ds.splits[s]], cfg.data.image_size),
                                   cfg.runtime.eval_batch_size, device, amp=amp,
                                   channels_last=cfg.runtime.channels_last) for s in splits}
    return _floats(E.evaluate_dataset(ds, feats))
