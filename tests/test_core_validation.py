"""Tests of the shared input checks and of the light top-level import."""

import subprocess
import sys

import numpy as np
import pytest

from fstat._validation import (
    check_array_finite,
    check_matching_length,
    check_positive,
    check_probability,
    check_sample_weight,
    check_treatment,
    check_unit_interval,
)


def test_check_array_finite_names_argument_and_value():
    with pytest.raises(ValueError, match=r"Xtest contains non-finite .*nan.*\(1, 0\)"):
        check_array_finite([[1.0, 2.0], [np.nan, 1.0]], "Xtest")
    with pytest.raises(ValueError, match="inf"):
        check_array_finite([1.0, np.inf], "y", ensure_2d=False)
    with pytest.raises(ValueError, match="at least 3"):
        check_array_finite([[1.0], [2.0]], "X", min_samples=3)
    with pytest.raises(ValueError, match="y must be 1-D"):
        check_array_finite(np.ones((3, 2)), "y", ensure_2d=False)
    out = check_array_finite([[1, 2]], "X")
    assert out.dtype == np.float64


def test_check_treatment():
    np.testing.assert_array_equal(check_treatment([True, False]), [1, 0])
    np.testing.assert_array_equal(check_treatment(np.array([0.0, 1.0])), [0, 1])
    with pytest.raises(ValueError, match=r"treatment must be binary .*2"):
        check_treatment([0, 1, 2])
    # up to five offending values, not the valid levels (spec 4)
    with pytest.raises(ValueError, match=r"found \[2, 3, 4, 5, 6\]\.$"):
        check_treatment(np.arange(8) % 8)
    with pytest.raises(ValueError, match=r"found \[-1\]\.$"):
        check_treatment([0, 1, -1, 1])
    with pytest.raises(ValueError, match="missing"):
        check_treatment([0, np.nan])
    with pytest.raises(ValueError, match="binary"):
        check_treatment(["a", "b"])
    with pytest.raises(ValueError, match="required"):
        check_treatment(None)
    with pytest.raises(ValueError, match="3 entries"):
        check_treatment([0, 1, 1], n_samples=2)


def test_scalar_checks():
    assert check_positive(2, "alpha") == 2.0
    with pytest.raises(ValueError, match=r"alpha must be > 0; got alpha=0.0"):
        check_positive(0, "alpha")
    assert check_positive(0, "alpha", strict=False) == 0.0
    with pytest.raises(TypeError, match="alpha"):
        check_positive("1", "alpha")
    with pytest.raises(ValueError, match="finite"):
        check_positive(np.nan, "alpha")
    assert check_unit_interval(1.0, "e") == 1.0
    with pytest.raises(ValueError, match=r"e must lie in \(0, 1\]; got e=0.0"):
        check_unit_interval(0.0, "e")
    with pytest.raises(ValueError, match=r"\[0, 1\)"):
        check_probability([0.0, 1.0], "p", closed_left=True, closed_right=False)


def test_sample_weight_and_lengths():
    X = np.ones((3, 1))
    np.testing.assert_array_equal(check_sample_weight(None, X), [1, 1, 1])
    with pytest.raises(ValueError, match="non-negative"):
        check_sample_weight([1, -1, 1], X)
    with pytest.raises(ValueError, match="non-zero|positive sum"):
        check_sample_weight([0, 0, 0], X)
    # finite weights whose sum overflows (frequency weights then mean nothing): a clear error,
    # not a NaN propensity deep inside an estimator
    with pytest.raises(ValueError, match="sample_weight sums beyond the float64 range"):
        check_sample_weight([1e308, 1e308, 1.0], X)
    with pytest.raises(ValueError, match="X has 3, y has 2"):
        check_matching_length(("X", X), ("y", [1, 2]))


def test_import_fstat_does_not_import_torch():
    code = (
        "import sys, fstat, fstat.datasets, fstat.utils;"
        "assert 'torch' not in sys.modules, 'torch imported';"
        "print(fstat.__version__)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr


def test_tour_runs_and_prints_table():
    out = subprocess.run([sys.executable, "-m", "fstat", "--device", "cpu"],
                         capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert "device cpu" in out.stdout
