"""Generalisation bound: formula, monotonicity, errors, non-vacuous on digits."""

import math

import numpy as np
import pytest

from fstat.datasets import load_digits_pair, make_ntk_teacher
from fstat.kernels import NTKSVC, NTKKernelMachine, NTKRidgeClassifier, ntk_kernel


def test_formula_and_properties():
    X, y = make_ntk_teacher(100, 5, random_state=0)
    m = NTKSVC(0.5, device="cpu").fit(X, y)
    K = ntk_kernel(X, device="cpu")
    beta = m.dual_coef_
    g = K @ beta
    n = len(y)
    ramp = np.mean(np.minimum(1, np.maximum(0, 1 - y * g)))
    hinge = np.mean(np.maximum(0, 1 - y * g))
    comp = 2 * math.sqrt(beta @ K @ beta) * math.sqrt(np.trace(K)) / n
    conf = 3 * math.sqrt(math.log(2 / 0.05) / (2 * n))
    out = m.generalization_bound(0.05)
    assert out.bound == pytest.approx(ramp + comp + conf, rel=1e-10)
    assert out.empirical_loss == pytest.approx(ramp, rel=1e-10)
    h = m.generalization_bound(0.05, loss="hinge")
    assert h.bound == pytest.approx(hinge + comp + conf, rel=1e-10)
    assert out.bound <= h.bound
    assert m.generalization_bound(0.2).bound < m.generalization_bound(0.01).bound
    assert out.bound >= out.empirical_loss
    for delta in (0.0, 1.0, -0.1, 1.5):
        with pytest.raises(ValueError, match="delta"):
            m.generalization_bound(delta)
    with pytest.raises(NotImplementedError, match="intercept"):
        NTKSVC(fit_intercept=True, device="cpu").fit(X, y).generalization_bound()
    with pytest.raises(AttributeError):
        NTKKernelMachine("squared", device="cpu").fit(X, y.astype(float)).generalization_bound
    with pytest.raises(ValueError, match="binary"):
        NTKRidgeClassifier(device="cpu").fit(X, np.arange(100) % 3).generalization_bound()


def test_indefinite_gram_raises():
    X, y = make_ntk_teacher(30, 3, random_state=1)
    K = -np.eye(30)  # negative definite "kernel": only the subgradient solver accepts it
    m = NTKSVC(1.0, kernel="precomputed", solver="subgradient", max_iter=50,
               device="cpu").fit(K, y)
    assert m.dual_coef_ @ K @ m.dual_coef_ < 0
    with pytest.raises(ValueError, match="not PSD"):
        m.generalization_bound()


def test_psd_threshold_scales_with_the_largest_diagonal_entry():
    # spec 2.7: beta'K beta below -1e-10 ||beta||^2 max(diag K) raises; between that and 0 it
    # is rounding (warning, 0). tr K = n max(diag K) here would hide the first case.
    n = 50
    y = np.where(np.random.default_rng(0).random(n) > 0.5, 1.0, -1.0)
    for excess, clearly_negative in [(1e-9, True), (1e-12, False)]:
        K = np.eye(n) - (1.0 + excess) * np.outer(y, y) / n
        m = NTKSVC(1.0, kernel="precomputed", solver="subgradient", max_iter=1, lr=0.1,
                   device="cpu").fit(K, y)
        ratio = m.dual_coef_ @ K @ m.dual_coef_ / (m.dual_coef_ @ m.dual_coef_)
        assert ratio < 0
        if clearly_negative:
            assert ratio < -1e-10 * K.diagonal().max()
            with pytest.raises(ValueError, match="not PSD"):
                m.generalization_bound()
        else:
            assert ratio > -1e-10 * K.diagonal().max()
            with pytest.warns(RuntimeWarning, match="rounding"):
                assert m.generalization_bound().rkhs_norm == 0.0


def test_non_vacuous_on_digits():
    X, y = load_digits_pair()
    m = NTKSVC(2.4, device="cpu").fit(X, y)
    assert m.generalization_bound(0.05).bound < 1
