"""MarginalDivergenceBounds: equals per-arm pointwise_bounds, weights, IF, warnings, summary."""

import pickle

import numpy as np
import pytest
from sklearn.base import clone

from fstat.causal import MarginalDivergenceBounds, UnboundedOutcomeWarning, pointwise_bounds
from fstat.datasets import make_confounded_discrete

FIVE = ("kl", "hellinger", "chi2", "tv", "js")


def _data(n=600, seed=0):
    rng = np.random.default_rng(seed)
    a = rng.integers(0, 2, n)
    y = rng.binomial(4, 0.3 + 0.2 * a).astype(float)
    return rng.normal(size=(n, 2)), y, a


def test_equals_per_arm_pointwise_bounds_and_ignores_covariates():
    X, y, a = _data()
    est = MarginalDivergenceBounds(outcome_bounds=(0, 4)).fit(X, y, treatment=a)
    e1 = a.mean()
    for i, name in enumerate(FIVE):
        for arm, e in ((0, 1 - e1), (1, e1)):
            ref = pointwise_bounds(y[a == arm], e, divergence=name, support=(0, 4))
            np.testing.assert_allclose(est.bounds_[i, arm], ref, atol=1e-10)
    other = MarginalDivergenceBounds(outcome_bounds=(0, 4)).fit(X[::-1] * 3, y, treatment=a)
    np.testing.assert_array_equal(other.bounds_, est.bounds_)
    lo = est.bounds_[:, 1, 0] - est.bounds_[:, 0, 1]
    np.testing.assert_allclose(est.effect_bounds_, [lo.max(), (est.bounds_[:, 1, 1]
                                                               - est.bounds_[:, 0, 0]).min()])
    assert np.all(est.converged_)
    # Manski contained in every f-interval (same support)
    for arm in (0, 1):
        assert np.all(est.bounds_[:, arm, 0] <= est.manski_bounds_[arm, 0] + 1e-9)
        assert np.all(est.bounds_[:, arm, 1] >= est.manski_bounds_[arm, 1] - 1e-9)
    assert est.predict(X[:3]).shape == (3, 2)


def test_integer_weights_equal_row_repetition():
    X, y, a = _data(200)
    w = np.random.default_rng(1).integers(1, 4, 200)
    weighted = MarginalDivergenceBounds(outcome_bounds=(0, 4)).fit(None, y, treatment=a,
                                                                    sample_weight=w)
    rep = np.repeat(np.arange(200), w)
    repeated = MarginalDivergenceBounds(outcome_bounds=(0, 4)).fit(None, y[rep], treatment=a[rep])
    np.testing.assert_allclose(weighted.bounds_, repeated.bounds_, atol=1e-10)
    for key in weighted.se_:
        np.testing.assert_allclose(weighted.se_[key], repeated.se_[key], rtol=1e-8)


@pytest.mark.parametrize("divergence", ["kl", "chi2", "hellinger", "js"])
def test_influence_function_matches_gateaux_derivative(divergence):
    _, y, a = _data(300, seed=2)
    y = y + np.random.default_rng(3).uniform(0, 0.5, 300)  # continuous-ish, interior optima
    est = MarginalDivergenceBounds((divergence,), outcome_bounds=(0, 5)).fit(None, y, treatment=a)
    from fstat.causal._marginal import _influence_upper
    from fstat.divergences import get_divergence

    lam, u = est.dual_params_[0, 1, 0]
    phi = _influence_upper(y, a == 1, est.propensity_[1], lam, u, get_divergence(divergence),
                           np.ones(300))
    eps = 1e-6
    for i in (0, 1, 5):
        w = np.ones(300)
        w[i] += eps
        moved = MarginalDivergenceBounds((divergence,), outcome_bounds=(0, 5)).fit(
            None, y, treatment=a, sample_weight=w)
        numeric = (moved.bounds_[0, 1, 1] - est.bounds_[0, 1, 1]) / eps
        assert numeric == pytest.approx(phi[i] / 300, rel=1e-3, abs=1e-9)


def test_unbounded_warning_iff_no_outcome_bounds():
    _, y, a = _data(100)
    with pytest.warns(UnboundedOutcomeWarning):
        MarginalDivergenceBounds().fit(None, y, treatment=a)
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("error")
        MarginalDivergenceBounds(outcome_bounds="observed").fit(None, y, treatment=a)
        MarginalDivergenceBounds(outcome_bounds=(0, 4)).fit(None, y, treatment=a)


def test_column_y_and_constant_y_rows():
    # spec 4: y of shape (n, 1) -> DataConversionWarning and raveled; (n, k > 1) -> ValueError;
    # a constant y without a wider support -> UserWarning, every bound equals the constant
    import warnings

    from sklearn.exceptions import DataConversionWarning

    _, y, a = _data(100)
    flat = MarginalDivergenceBounds(outcome_bounds=(0, 4)).fit(None, y, treatment=a)
    with pytest.warns(DataConversionWarning) as record:
        column = MarginalDivergenceBounds(outcome_bounds=(0, 4)).fit(None, y[:, None],
                                                                    treatment=a)
    assert record[0].filename == __file__
    np.testing.assert_array_equal(column.bounds_, flat.bounds_)
    with pytest.warns(DataConversionWarning) as record:  # score reaches it by another path
        assert column.score(None, y[:, None], treatment=a) == flat.score(None, y, treatment=a)
    assert record[0].filename == __file__
    with pytest.raises(ValueError, match="y"):
        MarginalDivergenceBounds(outcome_bounds=(0, 4)).fit(None, np.c_[y, y], treatment=a)
    for support in ("observed", None):
        with warnings.catch_warnings(record=True) as record:
            warnings.simplefilter("always")
            est = MarginalDivergenceBounds(outcome_bounds=support).fit(
                None, np.full(100, 2.5), treatment=a)
        constant = [w for w in record if "y is constant" in str(w.message)]
        assert len(constant) == 1 and constant[0].category is UserWarning
        assert all(w.filename == __file__ for w in record)  # every warning names this line
        np.testing.assert_array_equal(est.bounds_, 2.5)
        np.testing.assert_array_equal(est.effect_bounds_, 0.0)
    with warnings.catch_warnings():  # a declared wider support: informative bounds, quiet
        warnings.simplefilter("error")
        MarginalDivergenceBounds(outcome_bounds=(0, 4)).fit(None, np.full(100, 2.5),
                                                            treatment=a)


def test_treatment_col_dataframe_and_errors():
    pd = pytest.importorskip("pandas")
    X, y, a = _data(200)
    df = pd.DataFrame({"x0": X[:, 0], "treat": a, "x1": X[:, 1]})
    by_name = MarginalDivergenceBounds(outcome_bounds=(0, 4), treatment_col="treat").fit(df, y)
    by_arg = MarginalDivergenceBounds(outcome_bounds=(0, 4)).fit(None, y, treatment=a)
    np.testing.assert_array_equal(by_name.bounds_, by_arg.bounds_)
    assert list(by_name.feature_names_in_) == ["x0", "treat", "x1"]
    est = MarginalDivergenceBounds(outcome_bounds=(0, 4), treatment_col=1)
    np.testing.assert_array_equal(est.fit(df.to_numpy(), y).bounds_, by_arg.bounds_)
    with pytest.raises(ValueError, match="not both/neither"):
        est.fit(df.to_numpy(), y, treatment=a)
    with pytest.raises(ValueError, match="not both/neither"):
        MarginalDivergenceBounds().fit(X, y)
    with pytest.raises(ValueError, match="not a column"):
        MarginalDivergenceBounds(treatment_col="nope").fit(df, y)
    with pytest.raises(ValueError, match="binary"):
        MarginalDivergenceBounds(outcome_bounds=(0, 4)).fit(None, y, treatment=a + 1)
    with pytest.raises(ValueError, match="both treatment arms"):
        MarginalDivergenceBounds(outcome_bounds=(0, 4)).fit(None, y, treatment=np.ones(200))
    with pytest.raises(ValueError, match="could not convert"):  # a numpy UFuncTypeError before
        MarginalDivergenceBounds().fit(df, np.array(["a"] * 200), treatment=a)
    # a constant outcome: score refuses other held-out values, as the conditional estimator
    # does (it returned about -8.8e14 with no error)
    with pytest.warns(UserWarning):
        flat = MarginalDivergenceBounds().fit(None, np.full(200, 2.0), treatment=a)
    assert flat.constant_outcome_
    with pytest.raises(ValueError, match="constant outcome"):
        flat.score(None, y, treatment=a)
    assert not by_arg.constant_outcome_
    with pytest.raises(ValueError, match="outside outcome_bounds"):
        MarginalDivergenceBounds(outcome_bounds=(0, 3)).fit(None, y, treatment=a)
    with pytest.raises(ValueError, match="lo < hi"):
        MarginalDivergenceBounds(outcome_bounds=(4, 0)).fit(None, y, treatment=a)
    with pytest.raises(ValueError, match="k"):
        MarginalDivergenceBounds(aggregation="kth", outcome_bounds=(0, 4)).fit(None, y,
                                                                                treatment=a)
    with pytest.raises(ValueError):
        MarginalDivergenceBounds(divergences=("nope",), outcome_bounds=(0, 4)).fit(
            None, y, treatment=a)


def test_summary_pickle_clone_and_determinism():
    X, y, a = make_confounded_discrete(1000, random_state=0)
    est = MarginalDivergenceBounds(outcome_bounds=(0, 4)).fit(X, y, treatment=a)
    text = est.summary().as_text()
    for word in ("kl", "chi2", "manski", "std err", "[0.025", "0.975]"):
        assert word in text
    assert "<table" in est.summary().as_html()
    ci = est.average_bounds().conf_int(kind="imbens-manski")
    assert np.all(ci.iloc[:, 0] <= ci.iloc[:, 1])
    assert est.average_bounds().conf_int(kind="endpoint").shape[1] == 4
    again = pickle.loads(pickle.dumps(est))
    np.testing.assert_array_equal(again.predict(X), est.predict(X))
    assert clone(est).get_params() == est.get_params()
    np.testing.assert_array_equal(
        MarginalDivergenceBounds(outcome_bounds=(0, 4)).fit(X, y, treatment=a).bounds_,
        est.bounds_)
    assert np.isfinite(est.score(X, y, treatment=a))


def test_large_n_speed():
    import time

    rng = np.random.default_rng(0)
    a = rng.integers(0, 2, 100_000)
    y = rng.binomial(4, 0.4, 100_000).astype(float)
    start = time.perf_counter()
    MarginalDivergenceBounds(outcome_bounds=(0, 4)).fit(None, y, treatment=a)
    assert time.perf_counter() - start < 3.0  # spec §6 item 5 (about 0.3 s on an idle core)


def test_standard_errors_match_gateaux_when_support_ends_are_atoms():
    # count outcomes on their declared support: the worst-case law puts mass on observed atoms
    # at the support ends, where closed-domain conjugates (tv, chi2) sit on their domain end
    # and a rounding error above it used to give g* = +inf (a wrong IF, SE off by ~5% for tv)
    rng = np.random.default_rng(11)
    n = 150
    a = rng.integers(0, 2, n)
    y = rng.binomial(4, 0.3 + 0.3 * a).astype(float)
    w = rng.integers(1, 4, n).astype(float)
    est = MarginalDivergenceBounds(outcome_bounds=(0, 4)).fit(None, y, treatment=a,
                                                              sample_weight=w)
    total, eps = w.sum(), 1e-7
    gateaux = np.empty((n, 5, 2, 2))
    for i in range(n):  # the IF is the Gateaux derivative in the direction of one sample
        moved = w.copy()
        moved[i] += eps * total
        gateaux[i] = (MarginalDivergenceBounds(outcome_bounds=(0, 4)).fit(
            None, y, treatment=a, sample_weight=moved).bounds_ - est.bounds_) / eps
    centred = gateaux - np.tensordot(w, gateaux, 1) / total
    se = np.sqrt(np.tensordot(w, centred ** 2, 1) / total / total)
    for arm in (0, 1):
        np.testing.assert_allclose(est.se_[f"Y({arm})"][:5], se[:, arm], rtol=2e-3, atol=1e-9)


@pytest.mark.slow
def test_wald_intervals_cover_the_exact_population_bounds():
    # spec 6.6: 200 samples of n = 2000 from make_confounded_discrete; the population
    # marginal bounds follow from the simulator's exact cell laws pooled over x (R4).
    # |MC mean - truth| < 0.01, mean SE within 25% of the MC SD, outer 95% coverage of the
    # identified interval in [0.88, 0.99]; nominal endpoint intervals cover about 95%
    divergences, support = ("kl", "hellinger", "chi2", "tv", "js"), (0.0, 4.0)
    *_, truth = make_confounded_discrete(10, random_state=0, return_truth=True)
    e = truth.cell_propensity.mean(axis=1)  # P(A = a)
    pmf = np.einsum("ax,axy->ay", 0.25 * truth.cell_propensity, truth.cell_pmf) / e[:, None]
    values = np.arange(pmf.shape[1], dtype=float)
    rows = [(f"Y({a})", d) for d in divergences for a in (0, 1)]
    exact = np.array([pointwise_bounds(values, e[int(arm[2])], divergence=d,
                                       weights=pmf[int(arm[2])], support=support)
                      for arm, d in rows])
    R = 200
    estimates, ses = np.empty((R, len(rows), 2)), np.empty((R, len(rows), 2))
    endpoint_covered, outer_covered = 0, 0
    for r in range(R):
        X, y, a = make_confounded_discrete(2000, random_state=10_000 + r)
        bounds = MarginalDivergenceBounds(divergences, outcome_bounds=support).fit(
            None, y, treatment=a).averaged_bounds_
        estimates[r] = bounds.table.loc[rows, ["lower", "upper"]].to_numpy()
        ses[r] = bounds.table.loc[rows, ["se_lower", "se_upper"]].to_numpy()
        ci = bounds.conf_int(0.05, kind="endpoint").loc[rows].to_numpy().reshape(-1, 2, 2)
        endpoint_covered = endpoint_covered + ((ci[..., 0] <= exact) & (exact <= ci[..., 1]))
        outer = bounds.conf_int(0.05, kind="outer").loc[rows].to_numpy()
        outer_covered = outer_covered + ((outer[:, 0] <= exact[:, 0])
                                         & (exact[:, 1] <= outer[:, 1]))
    outer_coverage = outer_covered / R
    assert np.all((outer_coverage >= 0.88) & (outer_coverage <= 0.99)), outer_coverage
    coverage = endpoint_covered / R
    assert coverage.min() >= 0.88, coverage
    assert 0.93 <= coverage.mean() <= 0.97, coverage.mean()
    ratio = ses.mean(axis=0) / estimates.std(axis=0, ddof=1)
    assert np.all((ratio > 0.8) & (ratio < 1.25)), ratio
    np.testing.assert_allclose(estimates.mean(axis=0), exact, atol=0.01)
