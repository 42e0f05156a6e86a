"""Simulators of fstat.kernels: determinism, shapes, and recovery by the NTK machines."""

import numpy as np
import pytest

from fstat.datasets import load_digits_pair, make_ntk_teacher
from fstat.kernels import NTKSVC, NTKRidge, NTKRidgeClassifier


def test_teacher_determinism_shapes_and_sphere():
    X1, y1 = make_ntk_teacher(200, 7, random_state=3)
    X2, y2 = make_ntk_teacher(200, 7, random_state=3)
    np.testing.assert_array_equal(X1, X2)
    np.testing.assert_array_equal(y1, y2)
    assert X1.shape == (200, 7) and y1.shape == (200,)
    np.testing.assert_allclose((X1**2).sum(1) / 7, 1.0, rtol=1e-12)
    assert set(np.unique(y1)) == {-1, 1} and abs(y1.sum()) <= 1
    Xr, yr = make_ntk_teacher(200, 7, task="regression", noise=0.0, random_state=3)
    np.testing.assert_array_equal(Xr, X1)
    assert abs(yr.mean()) < 1e-12 and abs(yr.std() - 1) < 1e-12
    Xf, yf = make_ntk_teacher(2000, 3, flip_y=0.5, random_state=0)
    Xc, yc = make_ntk_teacher(2000, 3, flip_y=0.0, random_state=0)
    assert 0.4 < np.mean(yf != yc) < 0.6
    with pytest.raises(ValueError, match="task"):
        make_ntk_teacher(task="ranking")
    with pytest.raises(ValueError, match="flip_y"):
        make_ntk_teacher(flip_y=2.0)
    for value in (0.0, -1.0, float("inf"), float("nan")):  # spec 2.1: w_std > 0
        with pytest.raises(ValueError, match="w_std"):
            make_ntk_teacher(w_std=value)
    with pytest.raises(ValueError, match="noise"):
        make_ntk_teacher(noise=float("inf"))


def test_teacher_recovery():
    for seed in range(3):
        X, y = make_ntk_teacher(1500, 10, random_state=seed)
        Xtr, ytr, Xte, yte = X[:1000], y[:1000], X[1000:], y[1000:]
        for lam in (0.1, 1.0):
            assert NTKSVC(lam, device="cpu").fit(Xtr, ytr).score(Xte, yte) >= 0.80
            assert NTKRidgeClassifier(lam, device="cpu").fit(Xtr, ytr).score(Xte, yte) >= 0.80
        X, y = make_ntk_teacher(1500, 10, task="regression", noise=0.1, random_state=seed)
        r2 = NTKRidge(1.0, device="cpu").fit(X[:1000], y[:1000]).score(X[1000:], y[1000:])
        assert r2 >= 0.80


def test_digits_pair():
    X, y = load_digits_pair()
    assert X.shape == (360, 64) and X.max() <= 1.0
    assert set(np.unique(y)) == {-1, 1}
    X2, _ = load_digits_pair((3, 8), scale=False)
    assert X2.max() == 16.0
    assert load_digits_pair((np.int64(9), 2))[0].shape[0] == 180 + 177
    for pair in [(0, 10), (-1, 3), (1.5, 2), (2, 2), (1,), (1, 2, 3), 5, (True, 2)]:
        with pytest.raises(ValueError, match="pair"):
            load_digits_pair(pair)
