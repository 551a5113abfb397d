"""The override syntax: how one ``key=value`` edits an experiment config.

A key is a dotted ``section.field`` (``schedule.epochs``, ``data.p``; sections: :data:`rlqlib.engine.config.SECTIONS`),
``terms`` (replaces the CAP terms), ``weights`` (a mapping merged into the weights), ``weights.<term>`` (one weight)
or a short alias of :data:`ALIASES` (``seed``, ``root``, ``device``, ...). JSON-ish values are converted to the
field's type (lists → tuples, ints → floats). :func:`rlqlib.engine.presets.make` applies the variant's deltas and
the caller's overrides this way; :func:`with_overrides` applies them to an existing config::

    cfg = with_overrides(cfg, seed=1, **{"schedule.epochs": 4, "weights.triplet": 0.5})
"""

from __future__ import annotations

from dataclasses import fields, replace
from typing import Any

from rlqlib.engine.config import SECTIONS, ExperimentConfig, coerce

ALIASES = {"seed": "runtime.seed", "device": "runtime.device", "amp": "runtime.amp", "root": "data.root",
           "dataset": "data.dataset", "epochs": "schedule.epochs", "threads": "runtime.threads",
           "progress": "runtime.progress"}


def apply(parts: dict[str, Any], key: str, value: Any) -> None:
    """Set ``key`` to ``value`` in ``parts`` (section name → section dataclass, plus ``terms`` and ``weights``),
    in place.

    Raises:
        KeyError: naming the known sections or fields when ``key`` is none of them.
    """
    key = ALIASES.get(key, key)
    if key in ("terms", "weights"):
        parts[key] = tuple(value) if key == "terms" else {**parts[key], **dict(value)}
        return
    if key.startswith("weights."):
        parts["weights"] = {**parts["weights"], key.split(".", 1)[1]: float(value)}
        return
    section, _, name = key.partition(".")
    if section not in SECTIONS or not name:
        raise KeyError(f"unknown config key {key!r}; use section.field with section in {sorted(SECTIONS)}, "
                       f"'terms', 'weights.<term>' or an alias {sorted(ALIASES)}")
    cls = SECTIONS[section]
    if name not in {f.name for f in fields(cls)}:
        raise KeyError(f"unknown config key {key!r}; {section} has {[f.name for f in fields(cls)]}")
    parts[section] = replace(parts[section], **{name: coerce(cls, name, value)})


def with_overrides(cfg: ExperimentConfig, **overrides: Any) -> ExperimentConfig:
    """A copy of ``cfg`` with dotted-key overrides (same keys as :func:`rlqlib.engine.presets.make`)."""
    parts = {s: getattr(cfg, s) for s in SECTIONS}
    parts.update(terms=cfg.terms, weights=dict(cfg.weights))
    for key, value in overrides.items():
        apply(parts, key, value)
    return ExperimentConfig(variant=cfg.variant, preset=cfg.preset, **parts)
