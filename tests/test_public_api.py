"""The library's public API (rlqlib/__init__.py): every name resolves, and importing rlqlib stays cheap."""

import subprocess
import sys

import rlqlib


def test_every_public_name_resolves_to_the_object_of_its_module():
    import importlib

    for name in rlqlib.__all__:
        module = importlib.import_module(rlqlib._PUBLIC[name])
        assert getattr(rlqlib, name) is getattr(module, rlqlib._RENAMED.get(name, name)), name


def test_unknown_name_is_a_clear_attribute_error():
    try:
        rlqlib.no_such_thing  # noqa: B018
    except AttributeError as err:
        assert "no_such_thing" in str(err) and "public names" in str(err)
    else:
        raise AssertionError("expected AttributeError")


def test_import_rlqlib_loads_no_torch():
    """The pose estimator runs `python -m rlqlib.data.pose.mediapipe` in an environment without torch."""
    code = "import sys, rlqlib, rlqlib.data, rlqlib.data.pose; print('torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "False"
