"""Shared fixtures: SynthCC-smoke, generated once per test session, and smoke-preset configs on it.

The generated folder is shared by every test that asks for it, so it is **read-only** for tests: a test that writes
into its dataset folder must work on a copy (``shutil.copytree(synthcc_smoke, tmp_path / "smoke")``).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest


@pytest.fixture(scope="session")
def _synthcc_smoke_generated(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict]:
    from rlqlib.synthcc.generate import PRESETS, generate

    root = tmp_path_factory.mktemp("synthcc") / "smoke"
    manifest = generate(PRESETS["smoke"], root, seed=0, workers=1, progress=False)
    return root, manifest


@pytest.fixture(scope="session")
def synthcc_smoke(_synthcc_smoke_generated) -> Path:
    """SynthCC ``smoke`` preset, seed 0 (in-process render); read-only, shared by the whole session."""
    return _synthcc_smoke_generated[0]


@pytest.fixture(scope="session")
def synthcc_smoke_manifest(_synthcc_smoke_generated) -> dict:
    """The manifest :func:`rlqlib.synthcc.generate.generate` returned for :func:`synthcc_smoke`."""
    return _synthcc_smoke_generated[1]


@pytest.fixture(scope="session")
def smoke_config(synthcc_smoke) -> Callable:
    """Factory: ``smoke_config(variant, **overrides)`` is the ``smoke`` preset's (unresolved) experiment config of
    ``variant`` on :func:`synthcc_smoke`; overrides as for :func:`rlqlib.engine.presets.make`."""
    from rlqlib.engine.presets import make

    def config(variant: str, **overrides):
        return make("smoke", variant, root=str(synthcc_smoke), **overrides)

    return config


# the smoke preset plus a tiny pretraining group (rlqlib.engine.pretrain); the other groups are SynthCC-smoke's
SMOKE_PRETRAIN = {"pretrain_ids": 10, "pretrain_test_ids": 3, "pretrain_images_per_id": 6, "pretrain_scenes": 4}


@pytest.fixture(scope="session")
def synthcc_smoke_pretrain(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """SynthCC ``smoke`` seed 0 with a small ``pretrain/`` group (:data:`SMOKE_PRETRAIN`); read-only, shared."""
    from dataclasses import replace

    from rlqlib.synthcc.generate import PRESETS, generate

    root = tmp_path_factory.mktemp("synthcc") / "smoke-pretrain"
    generate(replace(PRESETS["smoke"], **SMOKE_PRETRAIN), root, seed=0, workers=1, progress=False)
    return root


@pytest.fixture(autouse=True)
def _no_image_cache(monkeypatch: pytest.MonkeyPatch) -> None:
    """Tests decode their images themselves unless they set ``RLQ_IMAGE_CACHE`` (:mod:`rlqlib.data.images`), even
    when the calling shell has it (``make`` sets it for the book)."""
    monkeypatch.delenv("RLQ_IMAGE_CACHE", raising=False)
