"""Reporting around the causal bounds: CIs of aggregate rows, summaries, argument checks,
inverted-interval warnings, BoundsDisplay input checks."""

import warnings

import numpy as np
import pandas as pd
import pytest
from scipy.stats import norm
from sklearn.dummy import DummyRegressor
from sklearn.linear_model import LogisticRegression

from fstat.causal import (
    ConditionalDivergenceBounds,
    InvertedBoundsWarning,
    MarginalDivergenceBounds,
)
from fstat.causal._inference import AveragedBounds, build_table
from fstat.datasets import make_confounded_discrete

FAST = dict(max_iter=30, hidden_layer_sizes=(8,), device="cpu", random_state=0,
            propensity_model=LogisticRegression(C=1e6), outcome_bounds=(0, 4))
NAMES = ("kl", "chi2", "tv")


@pytest.fixture(scope="module")
def data():
    return make_confounded_discrete(300, random_state=0, return_truth=True)


@pytest.fixture(scope="module")
def fitted(data):
    X, y, a, _ = data
    return ConditionalDivergenceBounds(("kl", "tv"), **FAST).fit(X, y, treatment=a)


def _table(aggregation):
    """A synthetic AveragedBounds with three divergences (values, SEs chosen by hand)."""
    rng = np.random.default_rng(3)
    values, ses = {}, {}
    for target in ("Y(0)", "Y(1)", "effect"):
        lo = rng.uniform(0.0, 1.0, 3)
        up = lo + rng.uniform(0.5, 2.0, 3)
        rows = np.column_stack([lo, up])
        se = rng.uniform(0.05, 0.3, (3, 2))
        values[target] = np.vstack([rows, [lo.max(), up.min()], [lo.min() - 1, up.max() + 1]])
        ses[target] = np.vstack([se, se[0], [0.1, 0.1]])
    table = build_table(values, ses, [*NAMES, "aggregate", "manski"])
    return AveragedBounds(table, n_samples=100.0, method="test", aggregation=aggregation,
                          divergences=NAMES)


def _wald(point, se, alpha):
    z = norm.ppf(1 - alpha / 2)
    return point - z * se, point + z * se


@pytest.mark.parametrize("kind", ["outer", "endpoint", "imbens-manski"])
def test_intersection_aggregate_row_is_bonferroni_for_every_kind(kind):
    ab = _table("intersection")
    alpha = 0.1
    got = ab.conf_int(alpha, kind)
    per = ab.conf_int(alpha / 3, kind)  # every divergence at level 1 - alpha / D
    for target in ("Y(0)", "Y(1)", "effect"):
        rows = per.loc[target].loc[list(NAMES)].to_numpy()
        aggregate = got.loc[(target, "aggregate")].to_numpy()
        if kind == "endpoint":
            expected = [rows[:, 0].max(), rows[:, 1].max(), rows[:, 2].min(), rows[:, 3].min()]
        else:
            expected = [rows[:, 0].max(), rows[:, 1].min()]
        np.testing.assert_allclose(aggregate, expected, rtol=0, atol=1e-12)
    # by hand for "endpoint": the Bonferroni Wald interval of the largest lower bound
    t = ab.table.loc["Y(1)"].loc[list(NAMES)]
    lows = [_wald(p, s, alpha / 3) for p, s in zip(t["lower"], t["se_lower"])]
    if kind == "endpoint":
        np.testing.assert_allclose(got.loc[("Y(1)", "aggregate")].to_numpy()[:2],
                                   [max(lo for lo, _ in lows), max(hi for _, hi in lows)],
                                   atol=1e-12)
    # the other rows keep the plain level: the same table without aggregation
    plain = _table(None).conf_int(alpha, kind)
    for source in (*NAMES, "manski"):
        np.testing.assert_allclose(got.loc[("Y(1)", source)].to_numpy(),
                                   plain.loc[("Y(1)", source)].to_numpy())


@pytest.mark.parametrize("kind", ["outer", "endpoint", "imbens-manski"])
def test_other_aggregates_take_the_union(kind):
    ab = _table("union")
    got = ab.conf_int(0.05, kind)
    for target in ("Y(0)", "Y(1)", "effect"):
        rows = got.loc[target].loc[list(NAMES)].to_numpy()
        expected = [f(rows[:, j]) for j, f in enumerate(
            (np.min, np.max, np.min, np.max) if kind == "endpoint" else (np.min, np.max))]
        np.testing.assert_allclose(got.loc[(target, "aggregate")].to_numpy(), expected)


def test_no_aggregate_rows_without_aggregation():
    ab = _table(None)
    assert ab.conf_int(0.05, "endpoint").shape == (15, 4)


def test_summary_names_the_outcome_and_counts_tangent_uses(data):
    X, y, a, _ = data
    series = pd.Series(y, name="visits")
    est = ConditionalDivergenceBounds(("kl",), **FAST).fit(X, series, treatment=a)
    text = est.summary().as_text()
    assert "visits" in text and "One-step tangent uses" in text
    for plugin in (est.average_bounds(method="plugin"), est.average_bounds(X, method="plugin")):
        assert plugin.header["Outcome"] == "visits"  # the plug-in tables name it too
        assert plugin.header["Support"] == "[0, 4] (declared)"
    marginal = MarginalDivergenceBounds(outcome_bounds=(0, 4)).fit(None, series, treatment=a)
    assert "visits" in marginal.summary().as_text()
    plain = MarginalDivergenceBounds(outcome_bounds=(0, 4)).fit(None, y, treatment=a)
    assert "Outcome:" in plain.summary().as_text()


def _tangent_uses(est):
    used = est.averaged_bounds_.header["One-step tangent uses"]
    return tuple(int(v) for v in used.split(" (")[0].split(" of "))


def test_tangent_uses_are_counted_without_a_declared_support(data):
    """Without a declared support, held-out samples can fall outside a fold's dual domain;
    the one-step estimate uses the tangent there and the header counts them (spec 2.8).
    With a declared support the duals are feasible by construction: none."""
    X, y, a = make_confounded_discrete(300, random_state=2)
    y = y + np.random.default_rng(0).standard_normal(y.size) * 0.5  # continuous tails
    params = {**FAST, "outcome_bounds": None, "max_iter": 60}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # UnboundedOutcomeWarning
        est = ConditionalDivergenceBounds(("kl", "chi2"), **params).fit(X, y, treatment=a)
    count, total = _tangent_uses(est)
    assert total == 2 * 2 * 300 * (est.dual_state_["layout"]["n_folds"] - 1)
    assert 0 < count < total
    declared = ConditionalDivergenceBounds(("kl",), **FAST).fit(data[0], data[1], treatment=data[2])
    assert _tangent_uses(declared)[0] == 0


def test_score_rejects_treatment_twice(data):
    X, y, a, _ = data
    XA = np.column_stack([X, a])
    est = ConditionalDivergenceBounds(("kl",), treatment_col=X.shape[1], **FAST).fit(XA, y)
    assert np.isfinite(est.score(XA, y))
    with pytest.raises(ValueError, match="treatment_col"):
        est.score(XA, y, treatment=1 - a)


@pytest.mark.parametrize("arm", [True, False, 1.0, 0.0, 2, -1, "1"])
def test_arm_must_be_the_integer_0_or_1(fitted, data, arm):
    X = data[0][:5]
    with pytest.raises(ValueError, match="arm must be"):
        fitted.predict_outcome_bounds(X, arm)
    with pytest.raises(ValueError, match="arm must be"):
        fitted.predict_manski(X, arm=arm)


def test_numpy_integer_arm_is_accepted(fitted, data):
    X = data[0][:5]
    np.testing.assert_array_equal(fitted.predict_outcome_bounds(X, np.int64(1)),
                                  fitted.predict_outcome_bounds(X, 1))
    assert fitted.predict_manski(X, arm=np.int32(0)).shape == (5, 2)


def test_inverted_intervals_warn_with_and_without_aggregation(data):
    """Pseudo-outcome regressions far below the data invert the intervals; every
    prediction path warns (spec section 4), not only the aggregated one."""
    X, y, a, _ = data
    params = {**FAST, "pseudo_outcome_model": DummyRegressor(strategy="constant", constant=-3.0)}
    for aggregation in ("intersection", None):
        est = ConditionalDivergenceBounds(("kl",), aggregation=aggregation, **params)
        est.fit(X, y, treatment=a)
        with pytest.warns(InvertedBoundsWarning):
            out = est.predict(X[:20])
        assert np.all(out[..., 0] > out[..., 1])
        with pytest.warns(InvertedBoundsWarning):
            est.predict_outcome_bounds(X[:20], 1, divergence="all")
        with pytest.warns(InvertedBoundsWarning):
            est.predict_outcome_bounds(X[:20], 1, divergence="kl")


def test_bounds_display_rejects_bad_input(fitted, data):
    pytest.importorskip("matplotlib")
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from fstat.causal import BoundsDisplay

    x, lo, up = np.arange(5.0), np.zeros(5), np.ones(5)
    cases = [
        (dict(lower=np.zeros(4)), "lower has 4 values"),
        (dict(manski_lower=np.zeros(5)), "manski_lower and manski_upper"),
        (dict(truth=np.zeros(6)), "truth has 6 values"),
        (dict(upper=np.array([1.0, np.nan, 1.0, 1.0, 1.0])), "upper contains NaN"),
        (dict(x=np.zeros((5, 2))), "x must be a non-empty 1-D"),
        (dict(x=np.array([]), lower=np.array([]), upper=np.array([])), "non-empty"),
        (dict(kind="bogus"), "kind must be"),
        (dict(n_bins=0), "n_bins"),
        (dict(n_bins=2.5), "n_bins"),
    ]
    for change, message in cases:
        args = {"x": x, "lower": lo, "upper": up, **change}
        with pytest.raises(ValueError, match=message):
            BoundsDisplay.from_predictions(**args)
    X = data[0]
    with pytest.raises(ValueError, match="feature"):
        BoundsDisplay.from_estimator(fitted, X, feature=X.shape[1])
    with pytest.raises(ValueError, match="feature"):
        BoundsDisplay.from_estimator(fitted, pd.DataFrame(X, columns=["a", "b", "c", "d"]),
                                     feature="zz")
    # extra keywords style the band
    disp = BoundsDisplay.from_predictions(x, lo, up, color="red")
    np.testing.assert_allclose(disp.band_.get_facecolor()[0][:3], (1.0, 0.0, 0.0))
    disp = BoundsDisplay.from_predictions(x, lo, up, kind="individual", color="red")
    np.testing.assert_allclose(disp.band_.get_color()[0][:3], (1.0, 0.0, 0.0))
    disp = BoundsDisplay.from_predictions(x, lo, up, kind="individual", colors="red")
    np.testing.assert_allclose(disp.band_.get_color()[0][:3], (1.0, 0.0, 0.0))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        BoundsDisplay.from_estimator(fitted, X, feature=0, color="green")
    # one divergence's CATE bounds (this raised "divergence= applies to arm bounds")
    per_divergence = ConditionalDivergenceBounds(("kl", "tv"), aggregation=None,
                                                 **FAST).fit(X, data[1], treatment=data[2])
    for d, name in enumerate(("kl", "tv")):
        disp = BoundsDisplay.from_estimator(fitted, X, divergence=name, kind="individual")
        expected = per_divergence.predict(X)[:, d]
        np.testing.assert_allclose(np.column_stack([disp.lower, disp.upper]), expected,
                                   rtol=0, atol=1e-12)
    plt.close("all")


def test_score_refuses_y_outside_the_declared_support(fitted, data):
    """Spec section 4: y outside a declared outcome_bounds is a ValueError, at score as at
    fit (it returned a meaningless risk of about -27000)."""
    X, y, a, _ = data
    bad = y.copy()
    bad[:3] = 9.0
    with pytest.raises(ValueError, match="3 value.*outside outcome_bounds"):
        fitted.score(X, bad, treatment=a)
    marginal = MarginalDivergenceBounds(outcome_bounds=(0, 4)).fit(None, y, treatment=a)
    with pytest.raises(ValueError, match="outside outcome_bounds"):
        marginal.score(None, bad, treatment=a)
    observed = MarginalDivergenceBounds(outcome_bounds="observed").fit(None, y, treatment=a)
    assert np.isfinite(observed.score(None, bad, treatment=a))  # no declared support
    # the support declared at fit counts, not a parameter changed afterwards
    marginal.set_params(outcome_bounds="observed")
    with pytest.raises(ValueError, match="outside outcome_bounds"):
        marginal.score(None, bad, treatment=a)
    marginal.set_params(outcome_bounds=(0, 1))
    assert np.isfinite(marginal.score(None, y, treatment=a))


def test_bounds_display_names_what_it_draws(fitted, data):
    """Review of the reporting: one divergence's band was labelled like the aggregate, an
    integer feature of a DataFrame by its position, and the errors for divergence='all' and
    for a Pipeline gave reasons that did not apply."""
    pytest.importorskip("matplotlib")
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    from fstat.causal import BoundsDisplay

    X = data[0]
    frame = pd.DataFrame(X, columns=["age", "b", "bmi", "d"])
    disp = BoundsDisplay.from_estimator(fitted, frame, feature=2, divergence="tv")
    assert disp.ax_.get_xlabel() == "bmi"
    assert [t.get_text() for t in disp.ax_.get_legend().get_texts()][-1] == (
        "f-divergence bounds (tv)")
    np.testing.assert_array_equal(disp.x, X[:, 2])
    disp = BoundsDisplay.from_estimator(fitted, X, feature=-1, divergence="tv", label="mine")
    assert disp.ax_.get_xlabel() == f"x[{X.shape[1] - 1}]"
    assert "mine" in [t.get_text() for t in disp.ax_.get_legend().get_texts()]
    with pytest.raises(ValueError, match="divergence='all'"):
        BoundsDisplay.from_estimator(fitted, X, divergence="all")
    with pytest.raises(ValueError, match="got Pipeline; pass the fitted estimator itself"):
        BoundsDisplay.from_estimator(make_pipeline(StandardScaler(), fitted), X)
    plt.close("all")


def test_observation_counts_print_every_digit(data):
    X, y, a, _ = data
    w = np.ones(len(y))
    w[0] = 1_234_567 - (len(y) - 1)
    est = MarginalDivergenceBounds(("kl",), outcome_bounds=(0, 4)).fit(
        X, y, treatment=a, sample_weight=w)
    assert "1234567" in str(est.summary()) and "1.23457e+06" not in str(est.summary())
    assert "n_samples=1234567)" in repr(est.averaged_bounds_)


def test_inverted_estimates_are_returned_unchanged_beyond_the_support():
    """Spec section 4: inverted intervals are returned unchanged (never collapsed), with the
    warning, also where both ends lie beyond one end of the support (clipping them would
    make a point at that end)."""
    from sklearn.linear_model import LogisticRegression, Ridge

    from fstat.datasets import make_probit_sine

    X, y, a = make_probit_sine(300, random_state=0)
    est = ConditionalDivergenceBounds(
        max_iter=20, outcome_bounds=None, aggregation=None,
        propensity_model=LogisticRegression(), pseudo_outcome_model=Ridge(), device="cpu",
        random_state=0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        est.fit(X, y, treatment=a)
    lo, hi = est.support_
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        both = np.stack([est.predict_outcome_bounds(X, arm, divergence="all")
                         for arm in (0, 1)], axis=2)  # (n, D, arm, 2)
    # the plug-in as fitted, independent of the repair: fold-averaged theta in y's units
    theta, _ = est._theta(X)
    theta = theta.reshape(len(est.divergences_), est.dual_state_["layout"]["n_folds"], 2,
                          X.shape[0], 2).mean(axis=1)
    raw = np.stack([est.y_center_ - est.y_scale_ * theta[:, 1],
                    est.y_center_ + est.y_scale_ * theta[:, 0]], axis=-1).transpose(1, 0, 2, 3)
    inverted = raw[..., 0] > raw[..., 1]
    np.testing.assert_array_equal(both[inverted], raw[inverted])  # every one unchanged
    beyond = inverted & ((raw[..., 1] > hi) | (raw[..., 0] < lo))
    rows, d, arm = np.nonzero(beyond)
    assert rows.size > 0
    keep = (d == d[0]) & (arm == arm[0])
    name = est.divergences_[d[0]]
    with pytest.warns(InvertedBoundsWarning, match="returned unchanged"):
        out = est.predict_outcome_bounds(X[rows[keep]], arm[0], divergence=name)
    assert np.all(out[:, 0] > out[:, 1]) and np.all((out[:, 1] > hi) | (out[:, 0] < lo))


@pytest.mark.parametrize("aggregation", [None, "intersection"])
def test_effects_built_from_an_inverted_arm_interval_warn(aggregation):
    """An inverted arm interval is returned unchanged; its difference with the other arm's
    interval (widened to Manski's) can look valid, so predict counts such effects (and the
    aggregated rows built from them) as inverted instead of staying silent."""
    from sklearn.linear_model import LogisticRegression, Ridge

    from fstat.datasets import make_probit_sine

    X, y, a = make_probit_sine(300, random_state=0)
    est = ConditionalDivergenceBounds(
        max_iter=20, outcome_bounds="observed", aggregation=aggregation,
        propensity_model=LogisticRegression(), pseudo_outcome_model=Ridge(), device="cpu",
        random_state=0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        est.fit(X, y, treatment=a)
        arms = np.stack([est.predict_outcome_bounds(X, arm, divergence="all")
                         for arm in (0, 1)], axis=2)  # (n, D, arm, 2)
        per_divergence = est.set_params(aggregation=None).predict(X)
        est.set_params(aggregation=aggregation)
    hidden = ((arms[..., 0] > arms[..., 1]).any(axis=-1)
              & (per_divergence[..., 0] <= per_divergence[..., 1])).any(axis=1)
    assert hidden.any()
    with pytest.warns(InvertedBoundsWarning, match="built from an inverted interval"):
        out = est.predict(X[hidden])
    assert out.shape == ((hidden.sum(), len(est.divergences_), 2) if aggregation is None
                         else (hidden.sum(), 2))
