"""Experiment configuration: the frozen dataclasses, their validation and their plain-dict form.

An :class:`ExperimentConfig` is everything a training run depends on: one section per tier
(:class:`~rlqlib.data.config.DataConfig`, :class:`~rlqlib.methods.model_config.ModelConfig`,
:class:`~rlqlib.methods.rlq.losses.LossConfig`, :class:`~rlqlib.methods.schedule.ScheduleConfig`,
:class:`~rlqlib.methods.rlq.config.TADConfig`, :class:`~rlqlib.methods.fire2.config.FIRe2Config`) plus the one
defined here, :class:`RuntimeConfig`. Every config is checked by :func:`validate` when it is built. Build one with
:func:`rlqlib.engine.presets.make` (``preset`` × ``variant`` + overrides), never by hand-editing fields in place.
:func:`to_dict` / :func:`from_dict` convert to and from the JSON stored in a run folder; the hash of a config
is in :mod:`rlqlib.engine.hashing`.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from typing import Any

from rlqlib.data.config import DataConfig
from rlqlib.data.degrade import MIXES
from rlqlib.methods.fire2.config import FIRe2Config
from rlqlib.methods.schedule import ScheduleConfig
from rlqlib.methods.rlq.losses import CAP_KEYS, TAD_KEYS, LossConfig
from rlqlib.methods.model_config import ModelConfig
from rlqlib.methods.rlq.config import TADConfig

SELF_MSE_KEYS = ("self_mse_cal", "self_mse_bot")  # SS_MSE (docs/spec.md §2 pair10/pair11): ||n(S_HQ) - n(S_LQ)||^2
ALL_WEIGHT_KEYS = CAP_KEYS + TAD_KEYS + SELF_MSE_KEYS
AMP_MODES = ("none", "bf16", "fp16")
TAD_SOURCES = ("external", "external_ntu", "target")
TRAIN_SETS = ("target", "external", "external_ntu", "pretrain")
CLOTHES_LABELS = ("dataset", "outfit")
COLOUR_SETS = ("all", "last")
LQ_AUG_MODES = ("extra_view", "replace")
DEGRADE_AT = ("raw", "input")
# presets whose SynthCC folder stores every image at the preset's input size (smoke: 64×32, cpu*: 128×64), so that
# degrading the stored image and degrading the model input are the same there
INPUT_SIZED_SYNTHCC_PRESETS = ("smoke", "cpu", "cpu-long", "cpu-scratch")


# ------------------------------------------------------------------------------------------ sections


@dataclass(frozen=True)
class RuntimeConfig:
    """Where and how the computation runs.

    Attributes:
        device: ``cpu``, ``cuda`` or ``cuda:N`` (under torchrun each process uses ``cuda:LOCAL_RANK``).
        amp: autocast dtype for the forward passes: ``none``, ``bf16`` or ``fp16`` (losses in fp32).
        channels_last: NHWC memory format for the model and its inputs.
        seed: seeds model init, heads, sampler and every augmentation/degradation generator.
        threads: ``torch.set_num_threads`` (0 = leave as is). Not hashed. More threads than free cores is
            very costly on CPU (OpenMP workers wait on the busiest core): with another 2-thread process on a
            2-core machine a ``cpu`` step takes 5–60× longer, while 1 thread each loses only ~2–3×.
        progress: tqdm bars per pass. Not hashed.
        eval_batch_size: feature-extraction batch. Not hashed.
    """

    device: str = "cpu"
    amp: str = "none"
    channels_last: bool = False
    seed: int = 0
    threads: int = 0
    progress: bool = True
    eval_batch_size: int = 128


@dataclass(frozen=True)
class ExperimentConfig:
    """One training run.

    Attributes:
        variant: name in :data:`rlqlib.engine.presets.VARIANTS` (for run folder names and reports).
        preset: name in :data:`rlqlib.engine.presets.PRESETS`.
        terms: the CAP backbone terms that are computed (subset of :data:`rlqlib.methods.rlq.losses.CAP_KEYS`).
        weights: loss name → weight, for every CAP/TAD/SS_MSE term (all 1 in the paper).
        fire2: FIRe² settings (used when ``model.variant == "fire2"``).
    """

    variant: str
    preset: str
    data: DataConfig
    model: ModelConfig
    losses: LossConfig
    schedule: ScheduleConfig
    tad: TADConfig
    runtime: RuntimeConfig
    terms: tuple[str, ...] = ("id_cal", "id_bot", "triplet", "kl_branches", "adv")
    weights: Mapping[str, float] = field(default_factory=lambda: {k: 1.0 for k in ALL_WEIGHT_KEYS})
    fire2: FIRe2Config = field(default_factory=FIRe2Config)

    def __post_init__(self) -> None:
        validate(self)


#: section name → its dataclass, in field order of :class:`ExperimentConfig`.
SECTIONS: dict[str, type] = {"data": DataConfig, "model": ModelConfig, "losses": LossConfig,
                             "schedule": ScheduleConfig, "tad": TADConfig, "runtime": RuntimeConfig,
                             "fire2": FIRe2Config}


def validate(cfg: ExperimentConfig) -> None:
    """Raise ValueError naming the field and the fix when ``cfg`` is inconsistent."""
    d, s, t, r = cfg.data, cfg.schedule, cfg.tad, cfg.runtime
    unknown = set(cfg.terms) - set(CAP_KEYS)
    if unknown:
        raise ValueError(f"terms {sorted(unknown)} are not CAP terms; choose from {CAP_KEYS}")
    bad_w = set(cfg.weights) - set(ALL_WEIGHT_KEYS)
    if bad_w:
        raise ValueError(f"weights for unknown terms {sorted(bad_w)}; known: {ALL_WEIGHT_KEYS}")
    missing_w = [k for k in ALL_WEIGHT_KEYS if k not in cfg.weights]
    if missing_w:
        raise ValueError(f"weights missing for {missing_w}; give every term a weight (0 switches it off)")
    if d.train_set not in TRAIN_SETS:
        raise ValueError(f"data.train_set={d.train_set!r}; choose from {TRAIN_SETS}")
    if d.train_set == "pretrain" and d.dataset != "synthcc":
        raise ValueError(f"data.train_set='pretrain' is SynthCC's pretraining group; data.dataset={d.dataset!r}")
    if cfg.model.init == "synthcc" and d.train_set == "pretrain":
        raise ValueError("model.init='synthcc' starts from the shared pretraining run's trunk; it is not for the "
                         "pretraining run itself (data.train_set='pretrain')")
    if cfg.model.init == "synthcc" and d.dataset != "synthcc" and not cfg.model.init_root:
        raise ValueError(f"model.init='synthcc' on data.dataset={d.dataset!r}: set model.init_root to a SynthCC folder "
                         "with a pretraining group (make synth PRESET=cpu writes data/synthcc-cpu), e.g. in the "
                         "dataset's rlq-options.json, or use a preset that starts from scratch (cpu-scratch)")
    if d.p < 1 or d.k < 1 or min(d.image_size) < 16 or not 0.0 <= d.lq_aug <= 1.0:
        raise ValueError("data: p, k >= 1, image_size >= 16 px per side, lq_aug in [0, 1]")
    if d.clothes_labels not in CLOTHES_LABELS or (d.clothes_labels == "outfit" and d.dataset != "synthcc"):
        raise ValueError(f"data.clothes_labels={d.clothes_labels!r}; choose from {CLOTHES_LABELS} ('outfit' needs "
                         "SynthCC's outfit metadata)")
    if d.colours not in (None, *COLOUR_SETS):
        raise ValueError(f"data.colours={d.colours!r}; use 'all', 'last' or none (the dataset's)")
    if d.lq_aug_mode not in LQ_AUG_MODES:
        raise ValueError(f"data.lq_aug_mode={d.lq_aug_mode!r}; choose from {LQ_AUG_MODES}")
    if d.lq_aug_mix not in (*MIXES, "target"):
        raise ValueError(f"data.lq_aug_mix={d.lq_aug_mix!r}; choose from {sorted(MIXES)} or 'target'")
    if d.degrade_at not in (None, *DEGRADE_AT):
        raise ValueError(f"data.degrade_at={d.degrade_at!r}; choose from {DEGRADE_AT} or none (the dataset's)")
    if s.epochs < 1 or not all(0.0 <= m <= 1.0 for m in s.milestones) or not 0.0 <= s.cc_start <= 1.0:
        raise ValueError("schedule: epochs >= 1; milestones and cc_start are fractions of the run in [0, 1]")
    if t.source not in TAD_SOURCES or not 0.0 < t.subsample <= 1.0:
        raise ValueError(f"tad.source in {TAD_SOURCES} and tad.subsample in (0, 1], got {t.source!r}, "
                         f"{t.subsample}")
    if t.enabled and not (t.teacher or t.self_mse or t.self_ss):
        raise ValueError("tad.enabled with no teacher, no self_ss and no self_mse has no loss; enable one")
    if r.amp not in AMP_MODES:
        raise ValueError(f"runtime.amp={r.amp!r}; choose from {AMP_MODES}")
    pose_terms = {"pose", "cos"} & set(cfg.terms)
    if pose_terms and cfg.model.variant not in ("bm+p", "rlq"):
        raise ValueError(f"terms {sorted(pose_terms)} need a pose branch; model.variant={cfg.model.variant!r}")
    if "gender" in cfg.terms and cfg.model.variant not in ("bm+g", "rlq"):
        raise ValueError(f"term 'gender' needs a gender head; model.variant={cfg.model.variant!r}")
    if cfg.model.variant == "cal" and ({"id_bot", "kl_branches"} & set(cfg.terms)):
        raise ValueError("vanilla CAL has no BOT branch: drop id_bot and kl_branches from terms")
    if t.enabled and cfg.model.variant == "cal":
        raise ValueError("TAD needs the two-branch Base Model (model.variant bm or larger), not vanilla CAL")
    if cfg.model.variant == "fire2":
        if cfg.terms:
            raise ValueError(f"FIRe² runs have their own losses (fire2.attr_loss, fire2.far); terms={cfg.terms} would "
                             "be ignored: set terms to []")
        if d.cloth_aug or d.lq_aug or t.enabled:
            raise ValueError("FIRe² uses neither cloth_aug, lq_aug nor TAD: set data.cloth_aug=false, data.lq_aug=0 "
                             "and tad.enabled=false")


def effective(cfg: ExperimentConfig) -> ExperimentConfig:
    """``cfg`` with every field that follows the dataset or preset (``None``) replaced by its value: what a run
    actually does, and what its hash is computed over (:mod:`rlqlib.engine.hashing`).

    * ``data.colours``: ``last`` (6 colours) for LaST, ``all`` (9) otherwise — the authors' choice per dataset.
    * ``data.degrade_at``: ``raw`` (the authors' code), except SynthCC under a preset of
      :data:`INPUT_SIZED_SYNTHCC_PRESETS`, stored at the input size: ``input`` there, the same images.
    """
    d = cfg.data
    colours = d.colours or ("last" if d.dataset == "last" else "all")
    at = d.degrade_at or ("input" if d.dataset == "synthcc" and cfg.preset in INPUT_SIZED_SYNTHCC_PRESETS
                          else "raw")
    if (colours, at) == (d.colours, d.degrade_at):
        return cfg
    return dataclasses.replace(cfg, data=dataclasses.replace(d, colours=colours, degrade_at=at))


# ------------------------------------------------------------------------------------------ dict


def coerce(cls: type, name: str, value: Any) -> Any:
    """JSON-ish values → the type of field ``name`` of section ``cls`` (lists → tuples for tuple fields)."""
    f = {f.name: f for f in fields(cls)}[name]
    if isinstance(value, list) and "tuple" in str(f.type):
        return tuple(tuple(v) if isinstance(v, list) else v for v in value)
    if "float" in str(f.type) and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    return value


def to_dict(cfg: ExperimentConfig) -> dict[str, Any]:
    """Plain JSON-serialisable dict (tuples become lists)."""
    return json.loads(json.dumps(dataclasses.asdict(cfg)))


def from_dict(d: Mapping[str, Any]) -> ExperimentConfig:
    """Inverse of :func:`to_dict`; unknown keys are errors."""
    d = dict(d)
    parts: dict[str, Any] = {}
    for section, cls in SECTIONS.items():
        values = dict(d.pop(section, {}) if section == "fire2" else d.pop(section))  # absent before FIRe² existed
        known = {f.name for f in fields(cls)}
        extra = set(values) - known
        if extra:
            raise KeyError(f"config section {section!r} has unknown keys {sorted(extra)}")
        parts[section] = cls(**{k: coerce(cls, k, v) for k, v in values.items()})
    variant, preset = d.pop("variant"), d.pop("preset")
    terms, weights = tuple(d.pop("terms")), {k: float(v) for k, v in d.pop("weights").items()}
    if d:
        raise KeyError(f"config has unknown top-level keys {sorted(d)}")
    return ExperimentConfig(variant=variant, preset=preset, terms=terms, weights=weights, **parts)
