"""The differences registry (rlqlib.engine.differences) and its book table: every field and switch exists, each
switch changes what it names, and every faithful-by-default field has a row."""

from __future__ import annotations

import dataclasses

import pytest

from rlqlib.data.config import DataConfig
from rlqlib.engine import differences as Df
from rlqlib.engine.config import effective
from rlqlib.engine.presets import PRESETS, make


@pytest.mark.parametrize("diff", Df.DIFFERENCES, ids=lambda d: d.key)
def test_each_field_exists_and_each_switch_changes_it(diff):
    assert diff.paper and diff.authors and diff.switch and diff.synthcc
    assert diff.fields or diff.fixed  # a config field, or this code's fixed behaviour
    for preset in PRESETS:
        cfg = Df.config_for(diff, preset, "ltcc")
        for field in diff.fields:
            Df.value(cfg, field)  # raises AttributeError for a stale name
    if diff.overrides:
        base = Df.config_for(diff, "paper", "ltcc")
        switched = Df.config_for(diff, "paper", "ltcc", **dict(diff.overrides))
        assert any(Df.value(base, f) != Df.value(switched, f) for f in diff.fields), diff.key
        for key, value in diff.overrides:  # the switch text names each override
            assert key in diff.switch, (diff.key, key)


def test_faithful_fields_all_have_a_row():
    named = {f for d in Df.DIFFERENCES for f in d.fields}
    data_fields = {f"data.{f.name}" for f in dataclasses.fields(DataConfig)}
    new = {"data.degrade_at", "data.lq_aug_mode", "data.lq_aug_mix", "data.faulty_masks", "data.colours"}
    assert new <= named and new <= data_fields
    assert [d.key for d in Df.DIFFERENCES][:8] == ["N1", "N2", "N3", "M1", "M2", "M3", "M4", "M5"]
    assert len({d.key for d in Df.DIFFERENCES}) == len(Df.DIFFERENCES)


def test_defaults_are_read_from_the_configs():
    n1 = Df.record("N1")
    assert Df.default_of(n1, "paper", "ltcc") == "data.degrade_at = raw"
    assert Df.default_of(n1, "smoke", "synthcc") == "data.degrade_at = input"
    assert Df.default_of(Df.record("M2"), "smoke", "last") == "data.colours = last"
    assert Df.default_of(Df.record("M3"), "paper", "ltcc") == "schedule.epochs = 200, data.p×k = 10×4"
    assert Df.default_of(Df.record("M4"), "paper", "ltcc") == "data.p×k = 4×8"
    assert effective(make("paper", "rlq")).data.degrade_at == "raw"
    for key, field, cpu, paper in (("C1", "schedule.heads_lr_mult", 20.0, 1.0), ("C2", "losses.adv_epsilon", 1.0, 0.1),
                                     ("C3", "schedule.ema_decay", 0.98, 0.0)):
        assert Df.default_of(Df.record(key), "cpu", "synthcc") == f"{field} = {cpu}"
        assert Df.default_of(Df.record(key), "paper", "ltcc") == f"{field} = {paper}"
        switched = Df.config_for(Df.record(key), "cpu", "synthcc", **{field: paper})  # the switch named
        assert Df.value(switched, field) == paper and f"{field}={paper:g}" in Df.record(key).switch
    with pytest.raises(KeyError, match="no difference"):
        Df.record("Z9")


def test_book_table_has_one_row_per_difference():
    from rlqlib.book.differences import differences_table

    table = differences_table("smoke", "synthcc")
    assert list(table.index) == [d.key for d in Df.DIFFERENCES]
    assert table.loc["N1", "ours (smoke, synthcc)"] == "data.degrade_at = input"
    assert table.loc["N1", "ours (paper, ltcc)"] == "data.degrade_at = raw"
    assert "ours (paper, ltcc)" not in differences_table("paper", "ltcc").columns
