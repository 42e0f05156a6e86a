"""make_frechet_sdr: shapes, determinism, validity, contamination, truth."""

import numpy as np
import pytest
from scipy.special import ndtr

from fstat.datasets import make_frechet_sdr

SHAPES = {"M1": (), "M1c": (), "M1o": (), "M2": (101,), "M2o": (101,), "M3": (2, 2),
          "M4": (3,)}


@pytest.mark.parametrize("model", sorted(SHAPES))
def test_shapes_determinism_and_truth(model):
    X, Y, H = make_frechet_sdr(model, n_samples=60, random_state=1)
    assert X.shape == (60, 10) and X.dtype == np.float64
    assert Y.shape == (60, *SHAPES[model])
    X2, Y2, H2 = make_frechet_sdr(model, n_samples=60, random_state=1)
    assert np.array_equal(X, X2) and np.array_equal(Y, Y2) and np.array_equal(H, H2)
    assert not np.array_equal(Y, make_frechet_sdr(model, n_samples=60, random_state=2)[1])
    r = X[:, 0] ** 2 + X[:, 1] ** 2
    if model.startswith("M1") or model == "M3":
        np.testing.assert_array_equal(H, r)
    elif model.startswith("M2"):
        np.testing.assert_array_equal(H, np.column_stack([np.sin(X[:, 0]) + X[:, 1] ** 2,
                                                          X[:, 2] * X[:, 3]]))
        assert np.all(np.diff(Y, axis=1) >= 0)
    if model == "M3":
        assert np.allclose(Y, np.swapaxes(Y, 1, 2))
        assert np.linalg.eigvalsh(Y).min() > 0
    if model == "M4":
        np.testing.assert_allclose(np.linalg.norm(Y, axis=1), 1.0, atol=1e-12)
        np.testing.assert_array_equal(H, np.column_stack([r, X[:, 2]]))
        theta = np.pi * ndtr((r - 2) / 2)
        assert np.corrcoef(np.cos(theta), Y[:, 2])[0, 1] > 0.9


@pytest.mark.parametrize("model", ["M1o", "M2o"])
def test_contamination(model):
    X, Y, H, mask = make_frechet_sdr(model, n_samples=200, contamination=0.1, random_state=0,
                                     return_outlier_mask=True)
    assert mask.sum() == 20
    _, Y0, _ = make_frechet_sdr(model[:-1], n_samples=200, random_state=0)
    if model == "M1o":
        assert np.all(Y[mask] - Y0[mask] >= 100)
        np.testing.assert_array_equal(Y[~mask], Y0[~mask])
    else:
        assert np.all(Y[mask].mean(1) > Y0[mask].mean(1) + 40)
    assert not make_frechet_sdr("M1", n_samples=50, return_outlier_mask=True,
                                random_state=0)[3].any()


def test_bad_arguments():
    with pytest.raises(ValueError, match="model"):
        make_frechet_sdr("M9")
    with pytest.raises(ValueError, match="n_features >= 4"):
        make_frechet_sdr("M2", n_features=3)
    with pytest.raises(ValueError, match="contamination"):
        make_frechet_sdr("M1o", contamination=0.5)
    for noise in (-0.1, float("nan"), float("inf")):
        with pytest.raises(ValueError, match="noise"):
            make_frechet_sdr("M1", noise=noise)
