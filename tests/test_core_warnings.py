"""Every fstat warning names the user's line, whatever the depth at which it arises.

Warnings go through :func:`fstat._warnings.warn_user`, which walks the stack past
fstat's and scikit-learn's frames. A fixed ``stacklevel`` (used before) was right for
one call path only: the same helper reached from ``fit`` and from a module function,
or through scikit-learn's ``_fit_context`` wrapper, pointed inside the library.
"""

import ast
import pathlib
import warnings

import numpy as np
import pytest
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

import fstat
from fstat._warnings import warn_user


def _record(call):
    with warnings.catch_warnings(record=True) as record:
        warnings.simplefilter("always")
        call()
    return record


def _asymmetric_gram_fit():
    from fstat.kernels import NTKRidge

    K = np.array([[2.0, 1.0, 0.5], [0.9, 2.0, 0.4], [0.5, 0.4, 2.0]])
    NTKRidge(kernel="precomputed").fit(K, np.array([0.0, 1.0, 2.0]))


def _asymmetric_gram_in_pipeline():
    from fstat.kernels import NTKRidge

    K = np.array([[2.0, 1.0, 0.5], [0.9, 2.0, 0.4], [0.5, 0.4, 2.0]])
    make_pipeline(NTKRidge(kernel="precomputed")).fit(K, np.array([0.0, 1.0, 2.0]))


def _constant_u_fccov():
    from fstat.sdr import fccov

    rng = np.random.default_rng(0)
    fccov(np.ones(20), rng.standard_normal((20, 2)))


def _degenerate_kernel_width():
    from fstat.bottleneck import kernel_width

    kernel_width(np.ones((10, 3)))


def _silverman_on_one_row():
    from fstat.kernels._gram import silverman_width

    silverman_width(np.ones((1, 2)))


def _column_y_marginal_fit():
    from fstat.causal import MarginalDivergenceBounds

    rng = np.random.default_rng(0)
    a = rng.integers(0, 2, 60)
    y = rng.uniform(size=(60, 1))
    MarginalDivergenceBounds(outcome_bounds=(0.0, 1.0)).fit(None, y, treatment=a)


def _constant_feature_ebm_in_pipeline():
    from fstat.ebm import CompositionalEBM

    rng = np.random.default_rng(0)
    X = np.column_stack([rng.standard_normal(80), np.full(80, 3.0)])
    make_pipeline(StandardScaler(with_std=False),
                  CompositionalEBM(max_iter=2, random_state=0)).fit(X)


def _unbounded_outcome_in_cross_validate():
    from sklearn.model_selection import cross_validate

    from fstat.causal import MarginalDivergenceBounds

    rng = np.random.default_rng(0)
    X = np.column_stack([rng.integers(0, 2, 40), rng.normal(size=40)])
    cross_validate(MarginalDivergenceBounds(treatment_col=0), X, rng.normal(size=40), cv=2)


@pytest.mark.parametrize("call", [
    _asymmetric_gram_fit,
    _asymmetric_gram_in_pipeline,
    _constant_u_fccov,
    _degenerate_kernel_width,
    _silverman_on_one_row,
    _column_y_marginal_fit,
    _constant_feature_ebm_in_pipeline,
    _unbounded_outcome_in_cross_validate,
], ids=lambda f: f.__name__.strip("_"))
def test_warning_names_this_file(call):
    record = [w for w in _record(call) if not issubclass(w.category, DeprecationWarning)]
    assert record, "the call was expected to warn"
    assert {w.filename for w in record} == {__file__}, [(w.filename, w.message) for w in record]


def test_warn_user_from_outside_fstat_points_at_the_caller():
    record = _record(lambda: warn_user("direct", RuntimeWarning))
    assert record[0].filename == __file__
    assert record[0].category is RuntimeWarning


def test_no_fixed_stacklevel_left_in_the_library():
    """Every ``warnings.warn`` call in fstat (but the helper itself) goes through warn_user."""
    root = pathlib.Path(fstat.__file__).parent
    offenders = []
    for path in root.rglob("*.py"):
        if path == root / "_warnings.py":
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            if (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)
                    and node.func.attr == "warn" and isinstance(node.func.value, ast.Name)
                    and node.func.value.id == "warnings"):
                offenders.append(f"{path.relative_to(root)}:{node.lineno}")
    assert not offenders


def test_library_results_do_not_depend_on_other_threads_warnings():
    """The bandwidth rules detected a degenerate width by catching warnings, process-wide:
    a UserWarning raised by another thread at that moment turned the width into 1.0 (81 of
    200 calls), and CS-QMI values with it."""
    import threading

    from fstat.bottleneck import cs_mutual_information, kernel_width

    rng = np.random.default_rng(0)
    X = rng.standard_normal((300, 3))
    width = kernel_width(X)
    qmi = cs_mutual_information(X, X[:, :1] ** 2, device="cpu")
    stop = threading.Event()

    def noisy():
        while not stop.is_set():
            warnings.warn("unrelated warning from another thread", UserWarning, stacklevel=1)

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        thread = threading.Thread(target=noisy)
        thread.start()
        try:
            widths = [kernel_width(X) for _ in range(100)]
            values = [cs_mutual_information(X, X[:, :1] ** 2, device="cpu") for _ in range(20)]
        finally:
            stop.set()
            thread.join()
    assert all(w == width for w in widths)
    assert all(v == qmi for v in values)


def test_collected_warnings_stay_in_their_thread():
    import threading

    from fstat._warnings import collecting_warnings

    ready, done = threading.Event(), threading.Event()
    seen = []

    def other():
        ready.wait()
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            warn_user("from the other thread", RuntimeWarning)
        seen.extend(str(w.message) for w in caught)
        done.set()

    thread = threading.Thread(target=other)
    thread.start()
    with collecting_warnings() as collected:
        warn_user("collected here", UserWarning)
        ready.set()
        done.wait()
    thread.join()
    assert collected == [("collected here", UserWarning)]
    assert seen == ["from the other thread"]
    assert [str(w.message) for w in _record(lambda: warn_user("after", UserWarning))] == [
        "after"]
