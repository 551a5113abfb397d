"""What ``make book`` will train at a preset, read from an executed smaller book, and how much of it is done.

A page's run list is code (loops, overrides computed from its parameters), so it is known only by executing the page.
The smoke book executes every page in minutes, and its run cache keeps what is needed to replay the list elsewhere:
in the ledger, each run's folder, the overrides the page asked for (:func:`rlqlib.book.experiments.train` records
them) and the page that asked (the book runner tags every ledger line with the page,
:data:`rlqlib.engine.runs.TAG_ENV`); runs a page skips at the smoke scale are declared there too (``planned`` lines,
:func:`rlqlib.book.experiments.declare`: Fig. 7a's 8 % external subsample keeps no smoke image). :func:`targets`
maps every such run to the target preset — same variant, seed and overrides — with the runs it depends on (a TAD
student's teacher), and :func:`plan` looks them up in the target run cache::

    make book PRESET=smoke RUNS_DIR=runs-smoke        # a few minutes: every page, tiny models
    python -m rlqlib.book.runner plan --from runs-smoke --preset cpu --root data/synthcc-cpu --runs-dir runs

One row per distinct target run: the pages using it, variant, seed, overrides, its folder, its state (``done``: in
the cache; ``started``: a checkpoint to resume from; ``to do``), its epochs done of all, and an estimate of its
minutes — the median wall time of finished runs of the same variant in the target cache, else of its cost class
(:func:`cost_class`: the model's trunk layout, TAD, cloth augmentation), NaN when neither has finished yet; for a
started run, the share of its epochs still to train. ``rlq runs`` trains the rows not
done in parallel (:mod:`rlqlib.book.train_plan`).

Ledgers written before the overrides were recorded are still read: there the overrides are the run config's
difference from its preset and variant (:func:`overrides`), which misses an override equal to the smoke preset's own
value (Fig. 7c's ``data.pose_k=5``); the setting (root, dataset, seed, device) always comes from the target.
Overrides a page computes from its parameters (e.g. a preset's epochs times two) are replayed as the smoke values.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from rlqlib.engine import config as C
from rlqlib.engine import hashing as H
from rlqlib.engine import presets as Pr
from rlqlib.engine import pretrain as Pt
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
    """The runs an executed book used or declared: ``run`` (folder name; None for a ``planned`` line), ``page`` (None
    for untagged lines), ``config`` (the run's ``config.json`` config; None for a planned line), ``variant``, ``seed``,
    ``overrides`` (the page's, as recorded on the ledger, else :func:`overrides` of the config; setting keys left
    out) and ``skipped_at`` (a planned line's preset, where the page does not train it; else None), one row per
    (run, page, overrides), in ledger order. A teacher or pretraining run trained or loaded for another run
    (:data:`rlqlib.engine.presets.DEPENDENCY_VARIANTS`, no overrides on its line, in a ledger that records them) is
    left out: :func:`targets` derives it from that run at
    the target, so that a smoke book executed before a change of who depends on what (e.g. one teacher for every
    seed, ``tad.teacher_seed``) does not plan the runs nothing depends on any more.

    Raises:
        FileNotFoundError: ``source`` has no ledger, or a ledger run has no ``config.json``.
    """
    source = Path(source)
    ledger = source / R.LEDGER
    if not ledger.is_file():
        raise FileNotFoundError(f"{ledger} is missing: execute a book into it first, e.g. "
                                f"`make book PRESET=smoke RUNS_DIR={source}`")
    entries = [json.loads(line) for line in ledger.read_text().splitlines()]
    records_overrides = any("overrides" in entry for entry in entries)
    rows, seen = [], set()
    for entry in entries:
        tag, event = entry.get("tag"), entry.get("event")
        page = tag.split(":")[0] if tag else None
        skipped_at = entry.get("skipped_at")
        if event == "planned":
            run, cfg, variant, seed = None, None, entry["variant"], int(entry["seed"])
        elif event in ("trained", "loaded"):
            run = entry["run"]
            path = source / run / "config.json"
            if not path.is_file():
                raise FileNotFoundError(f"{path} is missing (the ledger names run {run}); was it deleted?")
            cfg = json.loads(path.read_text())["config"]
            variant, seed = cfg["variant"], int(cfg["runtime"]["seed"])
            if records_overrides and "overrides" not in entry and variant in Pr.DEPENDENCY_VARIANTS:
                continue
        else:
            continue
        asked = entry.get("overrides")
        extra = overrides(cfg) if asked is None else {k: v for k, v in asked.items() if k not in SETTING_KEYS}
        key = (run, page, variant, seed, json.dumps(extra, sort_keys=True))
        if key in seen:
            continue
        seen.add(key)
        rows.append({"run": run, "page": page, "config": cfg, "variant": variant, "seed": seed, "overrides": extra,
                     "skipped_at": skipped_at})
    return pd.DataFrame(rows, columns=["run", "page", "config", "variant", "seed", "overrides", "skipped_at"])


def overrides(cfg: Mapping[str, Any]) -> dict[str, Any]:
    """What a run's config (:func:`rlqlib.engine.config.to_dict` form) sets beyond its preset and variant: dotted keys,
    without the setting's own (:data:`SETTING_KEYS`)."""
    base = Pr.make(cfg["preset"], cfg["variant"], seed=cfg["runtime"]["seed"], root=cfg["data"]["root"],
                   dataset=cfg["data"]["dataset"])
    default = _flat(C.to_dict(base))
    return {k: v for k, v in _flat(cfg).items() if k not in SETTING_KEYS and default.get(k) != v}


def make_args(cfg: C.ExperimentConfig) -> dict[str, Any]:
    """Keyword arguments of :func:`rlqlib.engine.presets.make` that rebuild ``cfg`` from its preset and variant: the
    dotted keys (JSON values) whose values differ from their defaults, setting keys included, the teacher hash left
    out (it is resolved when the run trains)."""
    default = _flat(C.to_dict(Pr.make(cfg.preset, cfg.variant)))
    return {k: v for k, v in _flat(C.to_dict(cfg)).items() if k != "tad.teacher_hash" and default.get(k) != v}


def target_dir(cfg: C.ExperimentConfig, runs_dir: str | Path) -> Path:
    """The run folder ``cfg`` trains into, with its teacher's hash resolved without training anything."""
    teacher_hash = H.run_hash(Tc.resolve(Tc.teacher_config(cfg))) if Tc.needs_teacher(cfg) else None
    return R.run_dir_for(Tc.resolve(cfg, teacher_hash), runs_dir)


def cost_class(cfg: Mapping[str, Any]) -> str:
    """What a run's cost mostly depends on: trunk layout (``fire2``, one branch: ``cal``, two: the Base Model
    family), a TAD pass, the recoloured replica. E.g. ``two-branch+tad+cloth-aug`` for RLQ."""
    layout = {"fire2": "fire2", "cal": "one-branch"}.get(cfg["model"]["variant"], "two-branch")
    return layout + ("+tad" if cfg["tad"]["enabled"] else "") + ("+cloth-aug" if cfg["data"]["cloth_aug"] else "")


def _estimates(runs_dir: Path, preset: str) -> tuple[dict[str, float], dict[str, float]]:
    """Median wall minutes of the finished runs of ``preset`` in ``runs_dir``, per variant and per :func:`cost_class`
    (a run cache may hold runs of other presets too: their times say nothing about this one's)."""
    by_variant: dict[str, list[float]] = {}
    by_class: dict[str, list[float]] = {}
    for prov in runs_dir.glob("*/provenance.json"):
        if (prov.parent / "metrics.json").is_file():
            cfg = json.loads((prov.parent / "config.json").read_text())["config"]
            if cfg.get("preset") != preset:
                continue
            minutes = json.loads(prov.read_text())["wall_s"] / 60
            by_variant.setdefault(cfg["variant"], []).append(minutes)
            by_class.setdefault(cost_class(cfg), []).append(minutes)
    return ({v: float(np.median(t)) for v, t in by_variant.items()},
            {c: float(np.median(t)) for c, t in by_class.items()})


@dataclass(frozen=True)
class Planned:
    """One run of the target preset's list (:func:`targets`).

    Attributes:
        config: its config at the target preset (unresolved: a student's teacher hash is filled in when it trains).
        run: its folder name in the target run cache.
        pages: the pages asking for it (for a TAD teacher: its students' pages), in order.
        overrides: what the pages set beyond preset, variant and setting (dotted keys).
        after: the folder names of the runs it trains after (:func:`dependencies`).
    """

    config: C.ExperimentConfig
    run: str
    pages: tuple[str, ...]
    overrides: dict[str, Any]
    after: tuple[str, ...] = ()


def dependencies(cfg: C.ExperimentConfig) -> list[C.ExperimentConfig]:
    """The runs ``cfg`` needs finished before it trains, as :func:`rlqlib.engine.runs.resolve_with_teacher` trains
    or loads them: the shared pretraining run of a run that starts from it (:func:`rlqlib.engine.pretrain.
    pretrain_config`), then a TAD student's teacher run (:func:`rlqlib.engine.teacher.teacher_config`)."""
    return ([Pt.pretrain_config(cfg)] if Pt.needs_pretrain(cfg) else []) + \
        ([Tc.teacher_config(cfg)] if Tc.needs_teacher(cfg) else [])


def targets(source: str | Path, preset: str, dataset: str, root: str, runs_dir: str | Path,
            device: str | None = None) -> list[Planned]:
    """The runs of an executed book (:func:`requests`) at the target preset and setting, one per target folder, in
    the order the pages first ask for them; the runs a run depends on (:func:`dependencies`) come before it, also
    when the ledger does not name them. A declared run is left out at the preset its page skipped it at."""
    options = data_options(root)
    found: dict[str, dict[str, Any]] = {}

    def place(cfg: C.ExperimentConfig, page: str | None, extra: dict[str, Any]) -> str:
        after = tuple(place(dep, page, overrides(C.to_dict(dep))) for dep in dependencies(cfg))
        folder = target_dir(cfg, runs_dir).name
        entry = found.setdefault(folder, {"config": cfg, "run": folder, "pages": [], "overrides": extra,
                                          "after": after})
        if page and page not in entry["pages"]:
            entry["pages"].append(page)
        return folder

    for req in requests(source).itertuples():
        if req.skipped_at == preset:  # the page skips it at this preset too
            continue
        setting = {"seed": req.seed, "dataset": dataset, "root": root, **({"device": device} if device else {}),
                   **options}  # as rlqlib.book.experiments.config builds it
        place(Pr.make(preset, req.variant, **setting, **req.overrides), req.page, req.overrides)
    return [Planned(**{**e, "pages": tuple(e["pages"])}) for e in found.values()]


def plan(source: str | Path, preset: str, dataset: str, root: str, runs_dir: str | Path,
         device: str | None = None) -> pd.DataFrame:
    """The target preset's run list (see the module docstring and :func:`targets`).

    Columns: ``pages`` (comma-separated), ``variant``, ``seed``, ``overrides`` (JSON), ``run`` (folder name in
    ``runs_dir``), ``state`` (:data:`STATES`), ``epochs`` (trained / all), ``minutes`` (estimate of the whole run,
    or for a started run of what is left; NaN: no finished run of the variant or its cost class yet).
    """
    runs_dir = Path(runs_dir)
    per_variant, per_class = _estimates(runs_dir, preset)
    rows = []
    for t in targets(source, preset, dataset, root, runs_dir, device):
        folder, cfg = runs_dir / t.run, t.config
        minutes = per_variant.get(cfg.variant, per_class.get(cost_class(C.to_dict(cfg)), float("nan")))
        epochs = cfg.schedule.epochs
        done = (folder / "metrics.json").is_file()
        trained = epochs if done else R.earlier_epochs(folder)[0]
        rows.append({
            "pages": ", ".join(t.pages), "variant": cfg.variant, "seed": cfg.runtime.seed,
            "overrides": json.dumps(t.overrides, sort_keys=True), "run": t.run,
            "state": "done" if done else "started" if (folder / T.CHECKPOINT).is_file() else "to do",
            "epochs": f"{trained}/{epochs}", "minutes": minutes * (1 - trained / epochs) if not done else minutes,
        })
    return pd.DataFrame(rows, columns=["pages", "variant", "seed", "overrides", "run", "state", "epochs", "minutes"])


def summary(table: pd.DataFrame) -> dict[str, Any]:
    """Counts per state and the estimated minutes left (runs not done; ``unestimated``: those without an estimate)."""
    left = table[table["state"] != "done"]
    return {**{s: int((table["state"] == s).sum()) for s in STATES}, "runs": len(table),
            "minutes_left": float(left["minutes"].sum()), "unestimated": int(left["minutes"].isna().sum())}
