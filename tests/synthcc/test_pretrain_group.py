"""SynthCC's pretraining group: Celeb-reID layout under ``pretrain/``, own identities, nothing else changes."""

from __future__ import annotations

import csv
import hashlib
import json
import re
from dataclasses import replace
from pathlib import Path

import pytest

from rlqlib.data import datasets as Dt
from rlqlib.synthcc import generate as synth
from rlqlib.synthcc.config import PRETRAIN_FIELDS, SynthConfig

CELEB_RE = re.compile(r"^([1-9]\d*)_([1-9]\d*)_0\.png$")


def _hashes(root: Path) -> dict[str, str]:
    return {str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(root.rglob("*")) if p.is_file()}


def _rows(root: Path) -> list[dict]:
    return list(csv.DictReader((root / "annotations" / "metadata.csv").read_text().splitlines()))


def test_pretrain_group_is_celeb_layout_with_its_own_people(synthcc_smoke_pretrain):
    root = synthcc_smoke_pretrain
    manifest = json.loads((root / "synthcc.json").read_text())
    sizes = {k: manifest["config"][k] for k in PRETRAIN_FIELDS}
    counts = manifest["pretrain_counts"]
    for split in ("train", "query", "gallery"):
        names = sorted(p.name for p in (root / "pretrain" / split).iterdir())
        assert names and all(CELEB_RE.match(n) for n in names), split
        assert counts[f"{split}_images"] == len(names)
    assert counts["train_ids"] == sizes["pretrain_ids"] > 0
    assert counts["query_ids"] == sizes["pretrain_test_ids"]
    assert counts["images"] == sum(counts[f"{s}_images"] for s in ("train", "query", "gallery"))
    ds = Dt.load_synthcc_external(root, "pretrain")
    assert ds.num_train_pids == sizes["pretrain_ids"] and len(ds.train) == counts["train_images"]
    assert len({s.clothes_id for s in ds.train}) == len(ds.train)  # a fresh outfit (clothes class) per image
    rows = [r for r in _rows(root) if r["split"].startswith("pretrain/")]
    assert len(rows) == counts["images"] and {r["outfit"] for r in rows} == {"-1"}
    # identities of its own: no body of the pretraining group is a target or external one
    cfg = replace(synth.PRESETS["smoke"], **sizes)
    _, _, target = synth.plan_target(cfg, 0)
    _, external = synth.plan_external(cfg, 0, "external")
    _, ntu = synth.plan_external(cfg, 0, "external_ntu")
    _, pretrain = synth.plan_external(cfg, 0, "pretrain")
    assert len(pretrain) == sizes["pretrain_ids"] + sizes["pretrain_test_ids"]
    assert not set(pretrain) & set(target + external + ntu)


def test_pretrain_group_changes_nothing_else(synthcc_smoke, synthcc_smoke_manifest, synthcc_smoke_pretrain):
    plain, with_group = _hashes(synthcc_smoke), _hashes(synthcc_smoke_pretrain)
    changed = {"synthcc.json", "annotations/metadata.csv"}
    assert {k: v for k, v in with_group.items() if not k.startswith("pretrain/") and k not in changed} == \
        {k: v for k, v in plain.items() if k not in changed}
    assert [r for r in _rows(synthcc_smoke_pretrain) if not r["split"].startswith("pretrain/")] == \
        _rows(synthcc_smoke)
    manifest = json.loads((synthcc_smoke_pretrain / "synthcc.json").read_text())
    assert manifest["counts"] == synthcc_smoke_manifest["counts"]  # the data fingerprint of target runs
    assert not set(PRETRAIN_FIELDS) & set(synthcc_smoke_manifest["config"])  # no group: the config of before
    assert "pretrain_counts" not in synthcc_smoke_manifest and not (synthcc_smoke / "pretrain").exists()
    with pytest.raises(Dt.DatasetError, match="no pretraining group"):
        Dt.load_synthcc_external(synthcc_smoke, "pretrain")


def test_pretrain_config_validation():
    assert {n: p.pretrain_ids for n, p in synth.PRESETS.items()} == {"smoke": 0, "cpu": 600, "large": 0}
    assert (synth.PRESETS["cpu"].pretrain_images_per_id, synth.PRESETS["cpu"].pretrain_test_ids) == (10, 40)
    with pytest.raises(ValueError, match="pretrain_ids"):
        SynthConfig(pretrain_ids=-1)
    with pytest.raises(ValueError, match="pretrain_test_ids"):
        SynthConfig(pretrain_ids=5, pretrain_test_ids=0)
