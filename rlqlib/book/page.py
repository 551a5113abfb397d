"""A results page from its ``parameters`` cell to its saved claims: setting, protocol, runs, glue, records.

Every results page opens the same way — the :class:`~rlqlib.book.experiments.Setting` of its parameters, the
dataset's headline protocol (``cc`` where the dataset has one, else ``general``), glue values naming preset, dataset,
protocol and seeds for its prose — and ends the same way: its claims checked, glued and saved for the summary
page::

    p = open_page(preset, dataset, root, device, runs_dir, seeds, name="tab5_cal_fragility")
    glue_values(p.setting_glue("t5"))      # t5_preset, t5_dataset, t5_protocol, t5_seeds
    runs = p.train_all({"CAL": "cal", "BM (no triplet)": ("bm", {"terms": [...]})})
    checked = p.check_ablation(CLAIMS, results(runs, [p.protocol]), paper, "t5")
    p.save_table(checked.table)            # results/generated/tab5_cal_fragility_<dataset>_<preset>.csv

One-seed verdicts read the seed noise Table 2 measures (:func:`rlqlib.book.noise.table2_seed_noise`): a page gets it
from Table 2's runs in the run cache, so it depends on Table 2's *runs*, never on Table 2's page having run first.
Values returned here are plain strings (markdown); :func:`glue_values` is the one place that hands them to
``myst_nb.glue``.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from rlqlib.book import checks as K
from rlqlib.book import experiments as X
from rlqlib.book import noise as N
from rlqlib.book import reported
from rlqlib.book import verdicts as V
from rlqlib.book.names import DATASET_NAMES
from rlqlib.engine import runs as R

GENERATED = "results/generated"  # where pages write their results tables (CSV)


def headline_protocol(protocols: Sequence[str]) -> str:
    """The protocol a page's claims are read on: ``cc`` where the dataset has it, else ``general``."""
    return "cc" if "cc" in protocols else "general"


def seeds_text(seeds: Sequence[int]) -> str:
    """``1 seed (0)`` / ``3 seeds (0, 1, 2)``."""
    return f"{len(seeds)} seed{'' if len(seeds) == 1 else 's'} ({', '.join(str(x) for x in seeds)})"


def setup_text(cfg: Any, preset: str | None = None, batch: bool = True) -> str:
    """One markdown phrase describing a run's scale: ``\\`cpu\\` preset: \\`resnet18\\` backbone trained from
    scratch, input 128×64, 15 epochs, P×K = 8×4 images per step`` (``preset`` None: without the preset prefix;
    ``batch`` False: without P×K)."""
    h, w = cfg.data.image_size
    start = ("from ImageNet weights" if cfg.model.pretrained else
             "from the shared trunk pretrained on SynthCC's disjoint pretraining population"
             if getattr(cfg.model, "init", "scratch") == "synthcc" else "trained from scratch")
    text = f"`{cfg.model.backbone}` backbone {start}, input {h}×{w}, {cfg.schedule.epochs} epochs"
    if batch:
        text += f", P×K = {cfg.data.p}×{cfg.data.k} images per step"
    return text if preset is None else f"`{preset}` preset: {text}"


def glue_values(values: Mapping[str, Any]) -> None:
    """Glue every value under its key, without displaying it: strings as markdown, anything else as it is."""
    from IPython.display import Markdown  # the notebook side: imported where a page glues, not with the library
    from myst_nb import glue

    for key, value in values.items():
        glue(key, Markdown(value) if isinstance(value, str) else value, display=False)


@dataclass(frozen=True)
class Page:
    """What a results page works with: its setting, seeds, headline protocol and name (see :func:`open_page`)."""

    setting: X.Setting
    seeds: tuple[int, ...]
    protocol: str
    name: str = ""

    @property
    def preset(self) -> str:
        return self.setting.preset

    @property
    def dataset(self) -> str:
        return self.setting.dataset

    @property
    def dataset_name(self) -> str:
        """The dataset's display name (:data:`rlqlib.book.names.DATASET_NAMES`)."""
        return DATASET_NAMES.get(self.dataset, self.dataset)

    @property
    def ref(self) -> str:
        """The paper dataset our differences are compared against: PRCC for PRCC, LTCC otherwise (SynthCC has
        LTCC's layout)."""
        return "PRCC" if self.dataset == "prcc" else "LTCC"

    def reported(self, index: str | None = None) -> pd.DataFrame:
        """The paper's table of the same name (:func:`rlqlib.book.reported.load`), indexed by ``index``."""
        table = reported.load(self.name)
        return table if index is None else table.set_index(index)

    # ---------------------------------------------------------------------------------------------- runs

    def config(self, variant: str, seed: int | None = None, **overrides: Any):
        """The config of ``variant`` under the page's setting (seed: the first of the page's seeds)."""
        return X.config(self.setting, variant, self.seeds[0] if seed is None else seed, **overrides)

    def train(self, variant: str, **overrides: Any) -> list[R.Run]:
        """``variant`` trained (or loaded) once per page seed."""
        return X.train(self.setting, variant, self.seeds, **overrides)

    def declare(self, variant: str, **overrides: Any) -> None:
        """Declare ``variant``'s runs (one per page seed) that the page skips at this scale, for the book's run plan
        (:func:`rlqlib.book.experiments.declare`)."""
        X.declare(self.setting, variant, self.seeds, **overrides)

    def train_all(self, methods: Mapping[str, str | tuple[str, Mapping[str, Any]]]) -> dict[str, list[R.Run]]:
        """Every method's runs, in order: ``methods`` maps a row label to its variant, or to ``(variant,
        overrides)``."""
        out = {}
        for label, spec in methods.items():
            variant, overrides = (spec, {}) if isinstance(spec, str) else spec
            out[label] = self.train(variant, **dict(overrides))
        return out

    # ---------------------------------------------------------------------------------------------- glue

    def setup(self, variant: str = "rlq", batch: bool = True, with_preset: bool = True) -> str:
        """:func:`setup_text` of ``variant``'s config at this page's setting."""
        return setup_text(self.config(variant), self.preset if with_preset else None, batch)

    def setting_glue(self, prefix: str) -> dict[str, str]:
        """Glue values naming the setting: ``<prefix>_preset`` (`` `cpu` ``), ``<prefix>_dataset`` (`` `synthcc` ``),
        ``<prefix>_protocol`` (``CC`` or the protocol's key) and ``<prefix>_seeds`` (:func:`seeds_text`)."""
        return {f"{prefix}_preset": f"`{self.preset}`", f"{prefix}_dataset": f"`{self.dataset}`",
                f"{prefix}_protocol": "CC" if self.protocol == "cc" else self.protocol,
                f"{prefix}_seeds": seeds_text(self.seeds)}

    # ---------------------------------------------------------------------------------------------- claims

    @functools.cached_property
    def seed_noise(self) -> dict:
        """The seed noise of one-seed verdicts, from Table 2's runs in the cache
        (:func:`rlqlib.book.noise.table2_seed_noise`)."""
        return N.table2_seed_noise(self.setting)

    def check_ablation(self, claims: Sequence[tuple[str, str, str, str]], long: pd.DataFrame | None,
                       paper: pd.DataFrame, prefix: str, protocol: str | None = None) -> K.Checked:
        """:func:`rlqlib.book.checks.ablation` under ``protocol`` (default: the page's) and the page's seed noise;
        glues its values and ``<prefix>_one_seed`` (:func:`rlqlib.book.verdicts.one_seed_rule`), saves its claims."""
        checked = K.ablation(claims, long, paper, protocol or self.protocol, prefix, self.seed_noise["std"])
        self.publish(checked, {f"{prefix}_one_seed": V.one_seed_rule(self.seed_noise)})
        return checked

    def check_differences(self, claims: Sequence[tuple[str, str, str, str]], long: pd.DataFrame, paper: pd.Series,
                          datasets: Sequence[str], prefix: str, one_seed: bool = True, **options: Any) -> K.Checked:
        """:func:`rlqlib.book.checks.differences` (``options`` are its keywords); with ``one_seed`` under the
        page's seed noise, glued as ``<prefix>_one_seed``. Glues its values and saves its claims."""
        seed_std = self.seed_noise["std"] if one_seed else float("nan")
        checked = K.differences(claims, long, paper, datasets, prefix, seed_std=seed_std, **options)
        self.publish(checked, {f"{prefix}_one_seed": V.one_seed_rule(self.seed_noise)} if one_seed else {})
        return checked

    def publish(self, checked: K.Checked, extra: Mapping[str, Any] | None = None) -> None:
        """Glue a check's values (and ``extra``) and save its claims record, if it has one."""
        glue_values({**checked.glue, **(extra or {})})
        if checked.record is not None:
            self.save_claims(checked.record)

    def save_claims(self, record: pd.DataFrame) -> None:
        """Save the page's claims record for the summary page (:func:`rlqlib.book.verdicts.save_claims`)."""
        V.save_claims(record, self.name, self.dataset, self.preset)

    def save_table(self, frame: pd.DataFrame) -> Path:
        """Write a results table to ``results/generated/<page>_<dataset>_<preset>.csv``; its path."""
        path = Path(GENERATED) / f"{self.name}_{self.dataset}_{self.preset}.csv"
        path.parent.mkdir(parents=True, exist_ok=True)
        frame.to_csv(path, index=False)
        return path


def open_page(preset: str, dataset: str, root: str, device: str | None = "cpu", runs_dir: str = "runs",
              seeds: Sequence[int] = (0,), threads: int = 0, name: str = "") -> Page:
    """A page's set-up from its parameters (the dataset is loaded once to find its protocols); ``name`` is the
    notebook's (``tab5_cal_fragility``), under which it saves its claims and results."""
    s = X.Setting(preset, dataset, root, device, runs_dir, threads)
    return Page(s, tuple(int(x) for x in seeds), headline_protocol(X.dataset(dataset, root).protocols), name)
