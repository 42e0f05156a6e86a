"""Recovery of known true predictors on the simulators (slow tier)."""

import warnings

import numpy as np
import pytest
from _reference_sdr import dcor
from sklearn.exceptions import ConvergenceWarning

from fstat.datasets import make_frechet_sdr
from fstat.sdr import FCCovNet, LinearFCCov
from fstat.sdr._dcor import _distance_correlation

pytestmark = pytest.mark.slow

SEEDS = (1000, 1001, 1002, 1003)
CASES = [
    ("M1", "euclidean", 1, 0.80),
    ("M1c", "euclidean", 1, 0.70),
    ("M1o", "euclidean", 1, 0.80),
    ("M2", "wasserstein", 2, 0.65),
    ("M2o", "wasserstein", 2, 0.62),
    ("M3", "spd_frobenius", 1, 0.80),
    ("M3", "log_euclidean", 1, 0.80),
    ("M3", "affine_invariant", 1, 0.80),
    ("M4", "sphere", 2, 0.80),
]


def _fit_score(model, metric, d, seed, **params):
    X, Y, H = make_frechet_sdr(model, n_samples=1000, random_state=seed)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        est = FCCovNet(d, metric=metric, random_state=0, device="cpu", **params)
        est.fit(X[:500], Y[:500])
    return _distance_correlation(est.transform(X[500:]), H[500:]), est


def test_dcor_helper_matches_reference():
    rng = np.random.default_rng(0)
    A, B = rng.standard_normal((50, 2)), rng.standard_normal(50)
    assert _distance_correlation(A, B + A[:, 0]) == pytest.approx(dcor(A, B + A[:, 0]),
                                                                  rel=1e-12)


@pytest.mark.parametrize("model, metric, d, threshold", CASES,
                         ids=[f"{c[0]}-{c[1]}" for c in CASES])
def test_fccovnet_recovers_the_true_predictor(model, metric, d, threshold):
    scores = [_fit_score(model, metric, d, seed)[0] for seed in SEEDS]
    assert min(scores) >= threshold, scores


def test_fccov_beats_the_distance_objective_under_outliers():
    gains = []
    for seed in SEEDS:
        robust, _ = _fit_score("M1o", "euclidean", 1, seed)
        plain, _ = _fit_score("M1o", "euclidean", 1, seed, objective="distance")
        gains.append(robust - plain)
    assert np.mean(gains) >= 0.40, gains


def test_linear_methods_fail_on_the_nonlinear_model():
    from statsmodels.regression.dimred import SlicedInverseReg

    X, Y, H = make_frechet_sdr("M1", n_samples=1000, random_state=1000)
    sir = SlicedInverseReg(Y[:500], X[:500]).fit(slice_n=20)
    assert _distance_correlation(X[500:] @ sir.params[:, :1], H[500:]) <= 0.40
    lin = LinearFCCov(device="cpu").fit(X[:500], Y[:500])
    assert _distance_correlation(lin.transform(X[500:]), H[500:]) <= 0.40


def test_m1_mean_recovery_and_fit_time_over_seeds():
    # spec 6: M1 mean >= 0.85 over seeds 1000-1003 (the per-seed floor is checked above) and
    # CPU fit time at n = 500 < 10 s (median of the seeds), with the estimator's defaults
    scores, times = [], []
    for seed in SEEDS:
        score, est = _fit_score("M1", "euclidean", 1, seed)
        scores.append(score)
        times.append(est.fit_time_)
    assert np.mean(scores) >= 0.85, scores
    assert np.median(times) < 10.0, times


def test_statsmodels_sir_fails_on_m1_for_every_seed():
    from statsmodels.regression.dimred import SlicedInverseReg

    scores = []
    for seed in SEEDS:
        X, Y, H = make_frechet_sdr("M1", n_samples=1000, random_state=seed)
        sir = SlicedInverseReg(Y[:500], X[:500]).fit(slice_n=20)
        scores.append(_distance_correlation(X[500:] @ sir.params[:, :1], H[500:]))
    assert max(scores) <= 0.40, scores


DIGIT_SPLITS = (0, 1, 2)
_DIGITS = {}


def _digits_split(seed):
    """Test accuracy of FCCovNet(9, defaults, hidden (128, 64)) + 5NN and LDA(9) + 5NN."""
    if seed not in _DIGITS:
        from sklearn.datasets import load_digits
        from sklearn.discriminant_analysis import LinearDiscriminantAnalysis
        from sklearn.model_selection import train_test_split
        from sklearn.neighbors import KNeighborsClassifier
        from sklearn.pipeline import make_pipeline

        X, y = load_digits(return_X_y=True)
        Xtr, Xte, ytr, yte = train_test_split(X, y, test_size=0.33, stratify=y,
                                              random_state=seed)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)
            net = FCCovNet(9, metric="discrete", hidden_layer_sizes=(128, 64), random_state=0,
                           device="cpu")
            acc = make_pipeline(net, KNeighborsClassifier(5)).fit(Xtr, ytr).score(Xte, yte)
        lda = make_pipeline(LinearDiscriminantAnalysis(n_components=9),
                            KNeighborsClassifier(5)).fit(Xtr, ytr).score(Xte, yte)
        _DIGITS[seed] = (acc, lda)
    return _DIGITS[seed]


@pytest.mark.parametrize("seed", DIGIT_SPLITS)
def test_digits_accuracy_per_split_with_defaults(seed):
    acc, lda = _digits_split(seed)
    assert acc >= 0.93, (acc, lda)


def test_digits_mean_accuracy_against_lda():
    # reuses the fits of the per-split tests when they ran first in this process
    results = [_digits_split(seed) for seed in DIGIT_SPLITS]
    acc, lda = np.mean(results, axis=0)
    assert acc >= lda - 0.02, results
