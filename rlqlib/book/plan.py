"""What ``make book`` will train at a preset, read from an executed smaller book, and how much of it is done.

A page's run list is code (loops, overrides computed from its parameters), so it is known only by executing the page.
The smoke book executes every page in minutes, and its run cache keeps what is needed to replay the list elsewhere:
each run's full config (``config.json``) and, in the ledger, the page that asked for it (the book runner tags every
ledger line with the page, :data:`rlqlib.engine.runs.TAG_ENV`). :func:`plan` maps every such run to the target preset —
same variant, seed and config overrides — and looks it up in the target run cache::

    make book PRESET=smoke RUNS_DIR=runs-smoke        # a few minutes: every page, tiny models
    python -m rlqlib.book.runner plan --from runs-smoke --preset cpu --root data/synthcc-cpu --runs-dir runs

One row per distinct target run: the pages using it, variant, seed, overrides, its folder, its state (``done``: in
the cache; ``started``: a checkpoint to resume from; ``to do``), its epochs done of all, and an estimate of its
minutes — the median wall time of finished runs of the same variant in the target cache, else of its cost class
(:func:`cost_class`: the model's trunk layout, TAD, cloth augmentation), NaN when neither has finished yet; for a
started run, the share of its epochs still to train.

Limit: an override that a page sets to exactly the smoke preset's own value is indistinguishable from no override,
so the plan shows the target preset's default there (no page of this book does that).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from rlqlib.engine import config as C
from rlqlib.engine import hashing as H
from rlqlib.engine import presets as Pr
from rlqlib.engine import teacher as Tc
from rlqlib.engine import runs as R
from rlqlib.engine import train as T
from rlqlib.book.experiments import data_options

#: Config keys that come from the setting (or are derived), not from what a page asked for.
SETTING_KEYS = ("data.root", "data.dataset", "runtime.seed", "runtime.device", "tad.teacher_hash", *H.NOT_HASHED)
STATES = ("done", "started", "to do")


def _flat(d: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in d.items():
        if isinstance(value, Mapping) and key != "weights":
            out.update(_flat(value, f"{prefix}{key}."))
        else:
            out[f"{prefix}{key}"] = value
    return out


def requests(source: str | Path) -> pd.DataFrame:
    """The runs an executed book used: ``run`` (folder name), ``page`` (None for untagged lines) and ``config``,
    one row per (run, page), in ledger order.

    Raises:
        FileNotFoundError: ``source`` has no ledger, or a ledger run has no ``config.json``.
    """
    source = Path(source)
    ledger = source / R.LEDGER
    if not ledger.is_file():
        raise FileNotFoundError(f"{ledger} is missing: execute a book into it first, e.g. "
                                f"`make book PRESET=smoke RUNS_DIR={source}`")
    rows, seen = [], set()
    for line in ledger.read_text().splitlines():
        entry = json.loads(line)
        tag = entry.get("tag")
        key = (entry["run"], tag.split(":")[0] if tag else None)
        if key in seen:
            continue
        seen.add(key)
        path = source / entry["run"] / "config.json"
        if not path.is_file():
            raise FileNotFoundError(f"{path} is missing (the ledger names run {entry['run']}); was it deleted?")
        rows.append({"run": key[0], "page": key[1], "config": json.loads(path.read_text())["config"]})
    return pd.DataFrame(rows, columns=["run", "page", "config"])


def overrides(cfg: Mapping[str, Any]) -> dict[str, Any]:
    """What a run's config (:func:`rlqlib.engine.config.to_dict` form) sets beyond its preset and variant: dotted keys,
    without the setting's own (:data:`SETTING_KEYS`)."""
    base = Pr.make(cfg["preset"], cfg["variant"], seed=cfg["runtime"]["seed"], root=cfg["data"]["root"],
                   dataset=cfg["data"]["dataset"])
    default = _flat(C.to_dict(base))
    return {k: v for k, v in _flat(cfg).items() if k not in SETTING_KEYS and default.get(k) != v}


def target_dir(cfg: C.ExperimentConfig, runs_dir: str | Path) -> Path:
    """The run folder ``cfg`` trains into, with its teacher's hash resolved without training anything."""
    teacher_hash = H.run_hash(Tc.resolve(Tc.teacher_config(cfg))) if Tc.needs_teacher(cfg) else None
    return R.run_dir_for(Tc.resolve(cfg, teacher_hash), runs_dir)


def cost_class(cfg: Mapping[str, Any]) -> str:
    """What a run's cost mostly depends on: trunk layout (``fire2``, one branch: ``cal``, two: the Base Model
    family), a TAD pass, the recoloured replica. E.g. ``two-branch+tad+cloth-aug`` for RLQ."""
    layout = {"fire2": "fire2", "cal": "one-branch"}.get(cfg["model"]["variant"], "two-branch")
    return layout + ("+tad" if cfg["tad"]["enabled"] else "") + ("+cloth-aug" if cfg["data"]["cloth_aug"] else "")


def _estimates(runs_dir: Path) -> tuple[dict[str, float], dict[str, float]]:
    """Median wall minutes of the finished runs in ``runs_dir``, per variant and per :func:`cost_class`."""
    by_variant: dict[str, list[float]] = {}
    by_class: dict[str, list[float]] = {}
    for prov in runs_dir.glob("*/provenance.json"):
        if (prov.parent / "metrics.json").is_file():
            cfg = json.loads((prov.parent / "config.json").read_text())["config"]
            minutes = json.loads(prov.read_text())["wall_s"] / 60
            by_variant.setdefault(cfg["variant"], []).append(minutes)
            by_class.setdefault(cost_class(cfg), []).append(minutes)
    return ({v: float(np.median(t)) for v, t in by_variant.items()},
            {c: float(np.median(t)) for c, t in by_class.items()})


def plan(source: str | Path, preset: str, dataset: str, root: str, runs_dir: str | Path,
         device: str | None = None) -> pd.DataFrame:
    """The target preset's run list (see the module docstring), in the order the pages first ask for the runs.

    Columns: ``pages`` (comma-separated), ``variant``, ``seed``, ``overrides`` (JSON), ``run`` (folder name in
    ``runs_dir``), ``state`` (:data:`STATES`), ``epochs`` (trained / all), ``minutes`` (estimate of the whole run,
    or for a started run of what is left; NaN: no finished run of the variant or its cost class yet).
    """
    runs_dir = Path(runs_dir)
    per_variant, per_class = _estimates(runs_dir)
    options = data_options(root)
    rows: dict[str, dict[str, Any]] = {}
    for req in requests(source).itertuples():
        cfg, extra = req.config, overrides(req.config)
        setting = {"seed": cfg["runtime"]["seed"], "dataset": dataset, "root": root,
                   **({"device": device} if device else {}), **options}  # as rlqlib.book.experiments.config builds it
        target = Pr.make(preset, cfg["variant"], **setting, **extra)
        folder = target_dir(target, runs_dir)
        minutes = per_variant.get(cfg["variant"], per_class.get(cost_class(C.to_dict(target)), float("nan")))
        epochs = target.schedule.epochs
        done = (folder / "metrics.json").is_file()
        trained = epochs if done else R.earlier_epochs(folder)[0]
        row = rows.setdefault(folder.name, {
            "pages": [], "variant": cfg["variant"], "seed": cfg["runtime"]["seed"],
            "overrides": json.dumps(extra, sort_keys=True), "run": folder.name,
            "state": "done" if done else "started" if (folder / T.CHECKPOINT).is_file() else "to do",
            "epochs": f"{trained}/{epochs}", "minutes": minutes * (1 - trained / epochs) if not done else minutes,
        })
        if req.page and req.page not in row["pages"]:
            row["pages"].append(req.page)
    table = pd.DataFrame(list(rows.values()), columns=["pages", "variant", "seed", "overrides", "run", "state",
                                                       "epochs", "minutes"])
    table["pages"] = table["pages"].map(", ".join)
    return table


def summary(table: pd.DataFrame) -> dict[str, Any]:
    """Counts per state and the estimated minutes left (runs not done; ``unestimated``: those without an estimate)."""
    left = table[table["state"] != "done"]
    return {**{s: int((table["state"] == s).sum()) for s in STATES}, "runs": len(table),
            "minutes_left": float(left["minutes"].sum()), "unestimated": int(left["minutes"].isna().sum())}
