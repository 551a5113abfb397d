"""The method registry: every model variant has a method, networks are built through it, counts per method."""

import pytest
import torch

from rlqlib.methods import registry as Rg
from rlqlib.methods.base import Method, NonFiniteLossError, Placement, check_finite
from rlqlib.methods.fire2.method import FIRe2Method
from rlqlib.methods.fire2.model import FIRe2Net
from rlqlib.methods.model_config import MODEL_VARIANTS, ModelConfig
from rlqlib.methods.rlq import model as M
from rlqlib.methods.rlq.method import RLQMethod


def _cfg(variant):
    return ModelConfig(variant=variant, backbone="resnet_micro", num_ids=7, num_clothes=11, num_pose_classes=5)


def test_every_model_variant_has_a_method():
    assert {spec.method for spec in MODEL_VARIANTS.values()} == set(Rg.METHODS)
    assert all(issubclass(m, Method) for m in Rg.METHODS.values())
    assert Rg.method_for("fire2") is FIRe2Method
    assert all(Rg.method_for(v) is RLQMethod for v in MODEL_VARIANTS if v != "fire2")
    assert set(M.VARIANTS) == set(MODEL_VARIANTS) - {"fire2"}
    with pytest.raises(ValueError, match="variant='nope' is unknown"):
        ModelConfig(variant="nope")


def test_build_model_dispatches_by_variant_with_the_same_seeding():
    fire2 = Rg.build_model(_cfg("fire2"), seed=3)
    assert isinstance(fire2, FIRe2Net)
    bm, direct = Rg.build_model(_cfg("bm"), seed=3), M.build_model(_cfg("bm"), seed=3)
    assert isinstance(bm, M.RLQNet)
    assert all(torch.equal(a, b) for a, b in zip(bm.state_dict().values(), direct.state_dict().values()))
    with pytest.raises(ValueError, match="RLQNet builds the variants"):
        M.build_model(_cfg("fire2"))


def test_fire2_counts_have_no_external_heads():
    counts = Rg.count_parameters("fire2", "resnet50", num_ids=77)
    assert not any(k.startswith("heads.") for k in counts["by_part"])
    assert sum(counts["by_part"].values()) == counts["params"] > counts["params_inference"]
    assert set(Rg.count_parameters("bm", "resnet_micro")["by_part"]) >= {"heads.cal_classifier",
                                                                         "heads.clothes_classifier"}


def test_placement_and_check_finite():
    place = Placement(torch.device("cpu"), amp="none", channels_last=True)
    x = torch.zeros(2, 3, 4, 4)
    assert place.amp_dtype is None and place.layout(x).is_contiguous(memory_format=torch.channels_last)
    assert not place.grad_scaler().is_enabled()
    assert Placement(torch.device("cpu"), amp="bf16").amp_dtype is torch.bfloat16
    values = check_finite({"a": torch.tensor(1.0), "b": torch.tensor(2.0)}, phase="X", epoch=0, step=0,
                          index=torch.arange(3))
    assert values.tolist() == [1.0, 2.0]
    with pytest.raises(NonFiniteLossError, match=r"X loss term\(s\) \['b'\] became non-finite at epoch 1, step 2"):
        check_finite({"a": torch.tensor(1.0), "b": torch.tensor(float("nan"))}, phase="X", epoch=1, step=2,
                     index=torch.arange(3))
