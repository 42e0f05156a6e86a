"""Every ``Examples`` section in fstat's docstrings runs and prints what it shows.

The examples are documentation users copy; running them here keeps them honest (three
had drifted from the code before this test existed).
"""

import doctest
import importlib
import pkgutil

import pytest

import fstat

_FINDER = doctest.DocTestFinder(exclude_empty=True)


def _examples(name):
    return [t for t in _FINDER.find(importlib.import_module(name), name, globs={})
            if t.examples]


MODULES = [
    name for name in ["fstat", *sorted(
        info.name for info in pkgutil.walk_packages(fstat.__path__, prefix="fstat.")
        if info.name != "fstat.__main__")]  # importing __main__ runs the tour
    if _examples(name)
]


def test_the_library_has_examples():
    assert len(MODULES) >= 20


@pytest.mark.parametrize("name", MODULES)
def test_docstring_examples(name):
    runner = doctest.DocTestRunner(optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE)
    for test in _examples(name):
        runner.run(test)
    result = runner.summarize(verbose=False)
    assert result.failed == 0, f"{result.failed} of {result.attempted} examples failed in {name}"
