"""CPU vs CUDA agreement (skipped without a CUDA device)."""

import pickle

import numpy as np
import pytest

from fstat.datasets import make_ntk_teacher
from fstat.kernels import NTKSVC, NTKRidge, ntk_kernel

pytestmark = pytest.mark.gpu


def test_gram_cpu_vs_cuda():
    X = np.random.default_rng(0).standard_normal((300, 20))
    for dtype, tol in (("float64", 1e-10), ("float32", 1e-4)):
        a = ntk_kernel(X, depth=3, w_std=1.4, b_std=0.1, dtype=dtype, device="cpu")
        b = ntk_kernel(X, depth=3, w_std=1.4, b_std=0.1, dtype=dtype, device="cuda")
        assert np.abs(a - b).max() <= tol * np.abs(a).max()


def test_solvers_and_pickle_cpu_vs_cuda():
    X, y = make_ntk_teacher(300, 10, random_state=0)
    # the same solver on both devices ("auto" is coordinate descent on the CPU, Newton on
    # CUDA, which agree only to the KKT tolerance)
    a = NTKSVC(0.5, solver="newton", device="cpu").fit(X, y)
    b = NTKSVC(0.5, solver="newton", device="cuda").fit(X, y)
    assert abs(a.objective_ - b.objective_) <= 1e-8 * abs(a.objective_)
    assert NTKSVC(0.5, device="cuda").fit(X, y).solver_ == "newton"
    r = NTKRidge(0.5, device="cuda").fit(X, y.astype(float))
    state = pickle.loads(pickle.dumps(r))
    assert isinstance(state.dual_coef_, np.ndarray)
    np.testing.assert_allclose(state.predict(X), r.predict(X), atol=1e-10)


def test_certify_cpu_vs_cuda():
    X, y = make_ntk_teacher(300, 10, random_state=1)
    a = NTKSVC(0.5, solver="newton", device="cpu").fit(X[:200], y[:200])
    b = NTKSVC(0.5, solver="newton", device="cuda").fit(X[:200], y[:200])
    ra, rb = a.certify(X[200:]), b.certify(X[200:])
    assert np.abs(ra - rb).max() <= 1e-8 * np.abs(ra).max()
