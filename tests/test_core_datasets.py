"""Conventions every simulator and loader in fstat.datasets follows."""

import inspect
import subprocess
import sys

import pytest

import fstat.datasets as datasets

SIMULATORS = [name for name in datasets.__all__ if name.startswith("make_")]


def test_exports_follow_naming_convention():
    assert all(name.startswith(("make_", "load_")) for name in datasets.__all__)
    assert datasets.__all__ == sorted(datasets.__all__)


@pytest.mark.parametrize("name", SIMULATORS)
def test_simulators_take_random_state_and_document_it(name):
    function = getattr(datasets, name)
    assert "random_state" in inspect.signature(function).parameters
    assert function.__doc__ and "random_state" in function.__doc__


def test_datasets_do_not_import_torch():
    code = "import sys, fstat.datasets; assert 'torch' not in sys.modules"
    assert subprocess.run([sys.executable, "-c", code]).returncode == 0
