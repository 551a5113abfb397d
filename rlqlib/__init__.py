"""rlqlib: RLQ on CAL for clothes-changing person re-identification under low image quality.

The library behind the rlq-book, in tiers whose imports point down (``docs/architecture.md``):

* :mod:`rlqlib.data` — datasets (real layouts and SynthCC), annotations, pose labels, degradations, batches;
* :mod:`rlqlib.synthcc` — the SynthCC generator;
* :mod:`rlqlib.methods` — RLQ/CAL and FIRe²: networks, losses, training passes behind one ``Method`` interface;
* :mod:`rlqlib.engine` — experiment configs, the trainer, evaluation, the run cache;
* :mod:`rlqlib.book` — what the notebooks call (the book's public API).

The names below are the library's public API for users who build on it, e.g.::

    import rlqlib
    cfg = rlqlib.make("cpu", "rlq", root="data/synthcc-cpu", seed=0)
    run = rlqlib.run_or_load(cfg, runs_dir="runs")

They are imported on first use, so ``import rlqlib`` stays cheap (and works in the pose estimator's own
environment, which has no torch).
"""

from __future__ import annotations

import importlib
from typing import Any

__version__ = "0.1.0"

# public name -> module that defines it
_PUBLIC: dict[str, str] = {
    # data
    "ReIDDataset": "rlqlib.data.datasets",
    "load_dataset": "rlqlib.data.datasets",
    "DatasetError": "rlqlib.data.datasets",
    "degrade": "rlqlib.data.degrade",
    "DataConfig": "rlqlib.data.config",
    # benchmark
    "SynthConfig": "rlqlib.synthcc.config",
    "generate_synthcc": "rlqlib.synthcc.generate",
    # methods
    "Method": "rlqlib.methods.base",
    "METHODS": "rlqlib.methods.registry",
    "build_model": "rlqlib.methods.registry",
    "count_parameters": "rlqlib.methods.registry",
    "ModelConfig": "rlqlib.methods.model_config",
    # engine
    "ExperimentConfig": "rlqlib.engine.config",
    "PRESETS": "rlqlib.engine.presets",
    "VARIANTS": "rlqlib.engine.presets",
    "make": "rlqlib.engine.presets",
    "with_overrides": "rlqlib.engine.overrides",
    "run_hash": "rlqlib.engine.hashing",
    "fit": "rlqlib.engine.train",
    "load_run_model": "rlqlib.engine.train",
    "evaluate": "rlqlib.engine.evaluate",
    "extract_features": "rlqlib.engine.features",
    "Run": "rlqlib.engine.runs",
    "run_or_load": "rlqlib.engine.runs",
    "load_run": "rlqlib.engine.runs",
}
_RENAMED = {"generate_synthcc": "generate"}  # public name -> name in its module

__all__ = sorted(_PUBLIC)


def __getattr__(name: str) -> Any:
    if name not in _PUBLIC:
        raise AttributeError(f"module 'rlqlib' has no attribute {name!r}; public names: {', '.join(__all__)}")
    value = getattr(importlib.import_module(_PUBLIC[name]), _RENAMED.get(name, name))
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(list(globals()) + __all__)
