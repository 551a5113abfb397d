"""What the book's notebooks call: one study setting, runs over seeds, cached features and results tables.

A notebook's ``parameters`` cell names the preset, dataset, data root, device, seeds and run cache; everything
else goes through this module so that runs shared between notebooks train once (:func:`rlqlib.engine.runs.run_or_load`)
and features shared between figures are extracted once per run::

    s = Setting(preset="cpu", dataset="synthcc", root="data/synthcc-cpu", device="cpu", runs_dir="runs")
    runs = {m: train(s, v, seeds=[0, 1, 2]) for m, v in [("CAL", "cal"), ("RLQ", "rlq")]}
    long = results(runs)                  # one row per (method, seed, protocol): top1, top5, mAP in %
    table = mean_std(long)                # "46.4 ± 1.2" per method and protocol/metric
    q = features(runs["RLQ"][0], s, "query")  # (N, D) L2-normalised, cached in the run folder
    cached(s, "rlq", [0, 1, 2])           # the same runs if all are finished in the cache, else None (no training)

Numbers are percentages everywhere in this module (the run's ``metrics.json`` stores fractions).
"""

from __future__ import annotations

import functools
import hashlib
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch

from rlqlib.engine import config as C
from rlqlib.engine.overrides import ALIASES
from rlqlib.engine import presets as Pr
from rlqlib.data import datasets as Dt
from rlqlib.engine.features import run_features, run_precision
from rlqlib.data.images import load_images
from rlqlib.engine import runs as R
from rlqlib.engine import teacher as Tc
from rlqlib.engine import train as T

METRICS = ("top1", "top5", "mAP")


@dataclass(frozen=True)
class Setting:
    """Where and at what scale a notebook's runs happen (its ``parameters`` cell, minus the seeds).

    Attributes:
        preset: ``smoke`` | ``cpu`` | ``paper`` (:data:`rlqlib.engine.presets.PRESETS`).
        dataset: target dataset key (``synthcc``, ``ltcc``, ``prcc``, ``last``, ``deepchange``, ``celebreid``).
        root: its folder.
        device: ``cpu`` | ``cuda`` (None = the preset's).
        runs_dir: the run cache shared by all notebooks.
        threads: CPU threads per run (0 = the preset's).
    """

    preset: str = "cpu"
    dataset: str = "synthcc"
    root: str = "data/synthcc-cpu"
    device: str | None = "cpu"
    runs_dir: str = "runs"
    threads: int = 0


OPTIONS_FILE = "rlq-options.json"


def data_options(root: str | Path) -> dict[str, Any]:
    """Config overrides stored with a dataset: ``<root>/rlq-options.json`` (absent: none).

    Real datasets need files that are not part of their archives — the authors' gender and pose-cluster tables,
    clothes masks, the Celeb-reID folder for TAD — and every notebook's runs need them. Write them once next to the
    data, as dotted config keys, e.g. ``{"data.gender_csv": "/data/annotations/LTCC_Gender.csv",
    "data.pose_csv": "/data/annotations/LTCC_Pose_Cluster.csv", "data.mask_root": "/data/LTCC_masks",
    "tad.external_root": "/data/Celeb-reID"}``.

    Raises:
        ValueError: the file is not a JSON object of dotted keys.
    """
    path = Path(root).expanduser() / OPTIONS_FILE
    if not path.is_file():
        return {}
    try:
        options = json.loads(path.read_text())
    except ValueError as err:
        raise ValueError(f"{path} is not valid JSON ({err}); it must be an object of dotted config keys") from None
    if not isinstance(options, dict) or not all(isinstance(k, str) and "." in k for k in options):
        raise ValueError(f"{path} must be a JSON object of dotted config keys such as "
                         '{"data.gender_csv": "...", "tad.external_root": "..."}')
    return options


def config(s: Setting, variant: str, seed: int = 0, **overrides: Any) -> C.ExperimentConfig:
    """The config of ``variant`` under the setting: the preset and variant, then the dataset's stored options
    (:func:`data_options`), then ``overrides`` (dotted keys as in :func:`rlqlib.engine.presets.make`)."""
    extra: dict[str, Any] = {"dataset": s.dataset, "root": s.root, "seed": int(seed), **data_options(s.root)}
    if s.device:
        extra["device"] = s.device
    if s.threads:
        extra["threads"] = s.threads
    try:
        return Pr.make(s.preset, variant, **{**extra, **overrides})
    except KeyError as err:
        raise KeyError(f"{err.args[0]} (check {Path(s.root) / OPTIONS_FILE} if the key comes from there)") from None


def asked(cfg: C.ExperimentConfig, overrides: Mapping[str, Any]) -> dict[str, Any]:
    """``overrides`` as ``cfg`` holds them: dotted keys (aliases resolved, :data:`rlqlib.engine.overrides.ALIASES`)
    with the config's JSON values (coerced: tuples as lists, ints as floats where the field is a float), so that
    :func:`rlqlib.engine.presets.make` with them sets exactly what the page asked for — what the ledger records for
    the book's run plan (:mod:`rlqlib.book.plan`)."""
    d = C.to_dict(cfg)
    out: dict[str, Any] = {}
    for key, value in overrides.items():
        key = ALIASES.get(key, key)
        if key == "weights":
            out.update({f"weights.{name}": d["weights"][name] for name in value})
        elif key == "terms":
            out[key] = d["terms"]
        else:
            section, _, name = key.partition(".")
            out[key] = d[section][name]
    return out


def train(s: Setting, variant: str, seeds: Sequence[int] = (0,), **overrides: Any) -> list[R.Run]:
    """Train (or load from the cache) ``variant`` once per seed; the runs in seed order. The ledger line of each run
    records the overrides (:func:`asked`)."""
    out = []
    for seed in seeds:
        cfg = config(s, variant, seed, **overrides)
        out.append(R.run_or_load(cfg, s.runs_dir, asked=asked(cfg, overrides)))
    return out


def declare(s: Setting, variant: str, seeds: Sequence[int] = (0,), **overrides: Any) -> None:
    """Declare runs a page skips at this scale but trains at another (e.g. an external subsample that keeps no image
    of the smoke set), once per seed: a ``planned`` ledger line each (:func:`rlqlib.engine.runs.record_planned`), so
    that the book's run plan includes them at any other preset. Nothing is trained; the overrides are checked as
    :func:`train` would."""
    for seed in seeds:
        R.record_planned(s.runs_dir, variant, seed, asked(config(s, variant, seed, **overrides), overrides),
                         skipped_at=s.preset)


def _finished(cfg: C.ExperimentConfig, runs_dir: str | Path) -> R.Run | None:
    """The finished run of a resolved config in the cache, or None (nothing is trained)."""
    d = R.run_dir_for(cfg, runs_dir)
    return R.load_run(d) if (d / "metrics.json").is_file() else None


def cached(s: Setting, variant: str, seeds: Sequence[int] = (0,), **overrides: Any) -> list[R.Run] | None:
    """The runs :func:`train` would return, if all of them (and their TAD teachers) are finished in the cache;
    None otherwise. Trains nothing and writes nothing (not even the cache's ledger)."""
    out = []
    for seed in seeds:
        cfg = config(s, variant, seed, **overrides)
        teacher_hash = None
        if Tc.needs_teacher(cfg):
            teacher = _finished(Tc.resolve(Tc.teacher_config(cfg)), s.runs_dir)
            if teacher is None:
                return None
            teacher_hash = teacher.hash
        run = _finished(Tc.resolve(cfg, teacher_hash), s.runs_dir)
        if run is None:
            return None
        out.append(run)
    return out


def teachers(runs: Mapping[str, Sequence[R.Run]]) -> list[R.Run]:
    """The TAD teacher runs that ``runs`` distilled from, each once, in seed order (loaded from the students' run
    cache, :func:`rlqlib.engine.runs.run_dir_for`).

    Raises:
        FileNotFoundError: a teacher is not in the cache (or not the one the student recorded).
    """
    found: dict[str, R.Run] = {}
    for rs in runs.values():
        for run in rs:
            want = run.config.tad.teacher_hash
            if not want or want in found:
                continue
            teacher = _finished(Tc.resolve(Tc.teacher_config(run.config)), run.dir.parent)
            if teacher is None or teacher.hash != want:
                raise FileNotFoundError(f"{run.dir}: its teacher run {want[:12]} is not in {run.dir.parent}")
            found[want] = teacher
    return sorted(found.values(), key=lambda r: (r.config.runtime.seed, r.hash))


# ------------------------------------------------------------------------------------------ tables


def run_metrics(run: R.Run, protocols: Sequence[str] | None = None) -> dict[str, dict[str, float]]:
    """``{protocol: {top1, top5, mAP}}`` of a run's final evaluation, in %."""
    ev = run.metrics["eval"]
    keys = list(ev) if protocols is None else list(protocols)
    missing = [p for p in keys if p not in ev]
    if missing:
        raise KeyError(f"{run.dir}: no {missing} results (has {sorted(ev)}); the dataset's protocols differ")
    return {p: {m: 100.0 * float(ev[p][m]) for m in METRICS if m in ev[p]} for p in keys}


def results(runs: Mapping[str, Sequence[R.Run]], protocols: Sequence[str] | None = None) -> pd.DataFrame:
    """Long table of every run's final metrics: columns ``method, seed, protocol, top1, top5, mAP`` (in %).

    Args:
        runs: row label (method) → its runs (one per seed), e.g. from :func:`train`.
        protocols: protocols to keep (default: all the run evaluated).
    """
    rows = []
    for method, rs in runs.items():
        for run in rs:
            for protocol, values in run_metrics(run, protocols).items():
                rows.append({"method": method, "seed": run.config.runtime.seed, "protocol": protocol, **values})
    return pd.DataFrame(rows, columns=["method", "seed", "protocol", *METRICS])


def aggregate(long: pd.DataFrame) -> pd.DataFrame:
    """Mean, sample std (ddof=1; NaN for one seed) and seed count per method × protocol × metric.

    Returns:
        Columns ``method, protocol, metric, mean, std, n`` (methods in first-appearance order).
    """
    melted = long.melt(id_vars=["method", "seed", "protocol"], value_vars=[m for m in METRICS if m in long],
                       var_name="metric")
    g = melted.groupby(["method", "protocol", "metric"], sort=False)["value"]
    out = g.agg(mean="mean", std=lambda v: v.std(ddof=1) if len(v) > 1 else np.nan, n="count").reset_index()
    return out


def mean_std(long: pd.DataFrame, metrics: Sequence[str] = ("top1", "mAP"), digits: int = 1) -> pd.DataFrame:
    """A display table: rows = methods, columns = (protocol, metric), cells ``mean ± std`` (one seed: ``mean``)."""
    agg = aggregate(long)
    agg = agg[agg["metric"].isin(metrics)]

    def cell(r: pd.Series) -> str:
        return f"{r['mean']:.{digits}f}" if np.isnan(r["std"]) else f"{r['mean']:.{digits}f} ± {r['std']:.{digits}f}"

    agg = agg.assign(cell=agg.apply(cell, axis=1))
    table = agg.pivot(index="method", columns=["protocol", "metric"], values="cell")
    order = list(dict.fromkeys(long["method"]))
    cols = [(p, m) for p in dict.fromkeys(long["protocol"]) for m in metrics if (p, m) in table.columns]
    return table.loc[order, cols]


def paired_delta(long: pd.DataFrame, method: str, baseline: str, protocol: str, metric: str = "top1"
                 ) -> tuple[float, float, int]:
    """Mean and std (ddof=1, NaN for one seed) of ``method − baseline`` over the seeds both have, and their count."""
    sel = long[long["protocol"] == protocol].pivot_table(index="seed", columns="method", values=metric)
    if method not in sel or baseline not in sel:
        raise KeyError(f"paired_delta: {method!r} or {baseline!r} has no {protocol!r} results")
    d = (sel[method] - sel[baseline]).dropna()
    return float(d.mean()), float(d.std(ddof=1)) if len(d) > 1 else float("nan"), int(len(d))


# ------------------------------------------------------------------------------------------ features


@functools.lru_cache(maxsize=4)
def dataset(name: str, root: str) -> Dt.ReIDDataset:
    """The dataset (loaded once per process)."""
    return Dt.load_dataset(name, Path(root))


def external_stats(root: str | Path, which: str = "external") -> dict:
    """Table-1 statistics (:func:`rlqlib.data.datasets.dataset_stats`) of a SynthCC folder's external HQ set
    (``external``: Celeb-like, ``external_ntu``: NTU-like)."""
    return Dt.dataset_stats(Dt.load_synthcc_external(root, which))


@functools.lru_cache(maxsize=8)
def _images(name: str, root: str, split: str, size: tuple[int, int]) -> torch.Tensor:
    ds = dataset(name, root)
    return load_images([x.path for x in ds.splits[split]], size)


def split_images(s: Setting, split: str, size: tuple[int, int]) -> torch.Tensor:
    """(N,3,H,W) uint8 images of a split of the setting's dataset, in dataset order (cached per process)."""
    return _images(s.dataset, str(s.root), split, tuple(size))


def _device(s: Setting, run: R.Run) -> torch.device:
    return torch.device(s.device or run.config.runtime.device)


@functools.lru_cache(maxsize=8)
def _loaded_model(run_dir: str, checkpoint_mtime_ns: int, device: str) -> torch.nn.Module:
    return T.load_run_model(run_dir, device)


def run_model(run: R.Run, device: str | torch.device) -> torch.nn.Module:
    """``run``'s trained model in eval mode on ``device``, kept for the process: the last 8 loaded are reused while
    their checkpoint is unchanged (a page embeds many image sets with the same few models; each load reads the
    checkpoint, optimizer state included, ~0.2 s for the ``cpu`` preset). Callers must not modify it."""
    stamp = (run.dir / T.CHECKPOINT).stat().st_mtime_ns
    return _loaded_model(str(run.dir), stamp, str(torch.device(device)))


def embed(run: R.Run, images: torch.Tensor, s: Setting, tag: str | None = None) -> torch.Tensor:
    """Inference features (docs/spec.md §1.5: flip TTA, L2 norm) of ``images`` under ``run``'s model, on CPU.

    Args:
        run: a finished run.
        images: (N,3,H,W) uint8 at the run's input size.
        s: the setting (device).
        tag: cache name; with a tag the features are saved as ``<run>/features/<tag>-<precision>.pt`` and reused
            (the tag must identify the images: :func:`features` builds one from the dataset, split and a fingerprint;
            the precision is :func:`rlqlib.engine.features.run_precision`).
    """
    path = run.dir / "features" / f"{tag}-{run_precision(run.config.runtime)}.pt" if tag else None
    if path is not None and path.is_file():
        return torch.load(path, weights_only=True)
    dev = _device(s, run)
    model = run_model(run, dev)
    feats = run_features(model, images, run.config.runtime, dev).cpu()
    if path is not None:
        path.parent.mkdir(exist_ok=True)
        tmp = path.with_suffix(".tmp")
        torch.save(feats, tmp)
        tmp.replace(path)
    return feats


def _fingerprint(s: Setting, split: str) -> str:
    ds = dataset(s.dataset, str(s.root))
    names = "\n".join(str(x.path) for x in ds.splits[split])
    return hashlib.sha256(names.encode()).hexdigest()[:12]


def features(run: R.Run, s: Setting, split: str) -> torch.Tensor:
    """(N, D) features of a split of the setting's dataset under ``run``'s model (cached in the run folder)."""
    size = tuple(run.config.data.image_size)
    tag = f"{s.dataset}-{split}-{size[0]}x{size[1]}-{_fingerprint(s, split)}"
    return embed(run, split_images(s, split, size), s, tag)


def labels(s: Setting, split: str) -> pd.DataFrame:
    """Per-image ``path, pid, camid, clothes_id`` of a split, in dataset order; for SynthCC also its metadata
    columns (``outfit, gender, pose_family, view, artifact, artifact_param, artifact_strength``)."""
    ds = dataset(s.dataset, str(s.root))
    df = pd.DataFrame([{"path": str(x.path), "pid": x.pid, "camid": x.camid, "clothes_id": x.clothes_id}
                       for x in ds.splits[split]])
    if s.dataset == "synthcc":
        meta = Dt.synthcc_metadata(Path(s.root))
        folder = {"gallery": "test"}.get(split, split)  # SynthCC keeps LTCC's folder names
        meta = meta[meta["split"] == folder].drop(columns=["split", "pid", "camid"]).set_index("image")
        names = df["path"].map(lambda p: Path(p).name)
        missing = sorted(set(names) - set(meta.index))
        if missing:
            raise Dt.DatasetError(f"{s.root}/annotations/metadata.csv has no rows for {len(missing)} {split} images "
                                  f"(e.g. {missing[0]}); regenerate the folder with `rlq synth`")
        df = pd.concat([df, meta.loc[names].reset_index(drop=True)], axis=1)
    return df


def describe_runs(runs: Mapping[str, Sequence[R.Run]]) -> pd.DataFrame:
    """Which run folder backs each (method, seed), whether it was trained now, and its wall time (minutes)."""
    rows = []
    for method, rs in runs.items():
        for run in rs:
            prov = run.dir / "provenance.json"
            wall = json.loads(prov.read_text()).get("wall_s") if prov.is_file() else None
            rows.append({"method": method, "seed": run.config.runtime.seed, "run": run.dir.name,
                         "trained_now": run.trained, "minutes": None if wall is None else round(wall / 60, 1)})
    return pd.DataFrame(rows, columns=["method", "seed", "run", "trained_now", "minutes"])


def describe_teachers(runs: Mapping[str, Sequence[R.Run]]) -> pd.DataFrame:
    """:func:`describe_runs` of the TAD teacher runs behind ``runs`` (:func:`teachers`), one row per teacher, without
    ``trained_now`` (a teacher is trained by its first student)."""
    table = describe_runs({"TAD teacher": teachers(runs)}).drop(columns=["trained_now"])
    return table.sort_values("seed", ignore_index=True)


def describe_configs(s: Setting, variant: str, rows: Mapping[str, Mapping[str, Any]], seed: int = 0) -> pd.DataFrame:
    """How each row's overrides change ``variant``'s config as :func:`config` builds (and validates) it: its
    overrides, the clothes augmentation and the loss terms, one row per label."""
    out = []
    for label, overrides in rows.items():
        cfg = config(s, variant, seed, **overrides)
        out.append({"method": label, "variant": variant, "overrides": dict(overrides) or "(none)",
                    "cloth aug": cfg.data.cloth_aug, "terms": ", ".join(cfg.terms)})
    return pd.DataFrame(out).set_index("method")
