"""CUDA against CPU (skipped without a GPU)."""

import pickle
import warnings

import numpy as np
import pytest

from fstat.datasets import make_frechet_sdr
from fstat.sdr import FCCovNet, ball_kernel, fccov, fccov_matrix

pytestmark = pytest.mark.gpu


def test_functions_agree_with_cpu():
    rng = np.random.default_rng(0)
    y = np.round(rng.standard_normal(300), 1)
    U = rng.standard_normal((300, 2))
    assert fccov(U, y, device="cuda") == pytest.approx(fccov(U, y, device="cpu"), rel=1e-12)
    np.testing.assert_allclose(fccov_matrix(U, y, device="cuda"),
                               fccov_matrix(U, y, device="cpu"), rtol=1e-12, atol=1e-18)
    np.testing.assert_allclose(ball_kernel(y, device="cuda"), ball_kernel(y, device="cpu"),
                               rtol=1e-12)


def test_fit_on_cuda_transform_on_cpu():
    X, Y, _ = make_frechet_sdr("M1", n_samples=200, random_state=0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        est = FCCovNet(max_epochs=50, random_state=0, device="cuda").fit(X, Y)
    assert est.device_.startswith("cuda")
    again = pickle.loads(pickle.dumps(est))
    assert np.array_equal(again.transform(X), est.transform(X))
    cpu = FCCovNet(max_epochs=1, early_stopping=False, dtype="float64", random_state=0,
                   device="cpu").fit(X, Y)
    gpu = FCCovNet(max_epochs=1, early_stopping=False, dtype="float32", random_state=0,
                   device="cuda").fit(X, Y)
    assert gpu.loss_curve_[0] == pytest.approx(cpu.loss_curve_[0], rel=1e-5)
