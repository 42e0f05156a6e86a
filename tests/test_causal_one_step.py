"""One-step averaged bounds of ConditionalDivergenceBounds (spec 2.8) against a slow,
sample-by-sample reference: cross-fitted on the training sample, and on new data (every
fold's models, the fold-averaged propensity)."""

import numpy as np
import pandas as pd
import pytest
from sklearn.linear_model import LogisticRegression

from fstat.causal import AveragedBounds, ConditionalDivergenceBounds
from fstat.datasets import make_confounded_discrete
from fstat.divergences import get_divergence

FAST = dict(divergences=("kl", "chi2", "tv"), max_iter=40, hidden_layer_sizes=(8,),
            device="cpu", random_state=0, propensity_model=LogisticRegression(C=1e6),
            outcome_bounds=(0, 4), dtype="float64", cv=3)


@pytest.fixture(scope="module")
def fitted():
    X, y, a = make_confounded_discrete(300, random_state=5)
    return ConditionalDivergenceBounds(**FAST).fit(X, y, treatment=a), (X, y, a)


def _reference(est, X, y, a, fold_of, e_own):
    """psi[target][d] = (lower, upper) per sample, one scalar at a time (spec 2.8)."""
    lam, u, m, e_folds, _ = est._fold_predictions(X)
    layout = est.dual_state_["layout"]
    n_folds = layout["n_folds"]
    c0, s0 = est.y_center_, est.y_scale_
    n, D = y.size, len(est.divergences_)
    psi = np.zeros((D, 2, n, 2))  # divergence, sign (+, -), sample, arm
    for d, name in enumerate(est.divergences_):
        div = get_divergence(name)
        t0 = div.f0 - est.domain_margin
        for s_i, s in enumerate((1.0, -1.0)):
            for i in range(n):
                for arm in (0, 1):
                    vals = []
                    for j in range(n_folds):
                        if j == fold_of[i]:
                            continue
                        gi = [g for g in range(len(layout["fold"]))
                              if layout["divergence"][g] == d and layout["fold"][g] == j
                              and layout["sign"][g] == s][0]
                        lm, uu, mm = lam[gi, i, arm], u[gi, i, arm], m[gi, i, arm]
                        e = e_own[i] if arm == 1 else 1.0 - e_own[i]
                        ind = float(a[i] == arm)
                        v = lm * (float(div.radius(e)) + mm) + uu
                        v += lm * float(div.radius_derivative(e)) * (ind - e)
                        if ind:
                            t = (s * (y[i] - c0) / s0 - uu) / lm
                            if t <= t0:
                                gz = float(div.conjugate(t))
                            else:  # outside the dual's domain: the tangent at t0
                                gz = float(div.conjugate(t0)
                                           + div.conjugate_derivative(t0) * (t - t0))
                            v += lm / e * (gz - mm)
                        vals.append(v)
                    psi[d, s_i, i, arm] = np.mean(vals)
    upper = c0 + s0 * psi[:, 0]
    lower = c0 - s0 * psi[:, 1]
    return {"Y(0)": (lower[..., 0], upper[..., 0]), "Y(1)": (lower[..., 1], upper[..., 1]),
            "effect": (lower[..., 1] - upper[..., 0], upper[..., 1] - lower[..., 0])}


def _check(table, ref, est):
    n = ref["Y(1)"][0].shape[1]
    for target, (lo, up) in ref.items():
        for d, name in enumerate(est.divergences_):
            row = table.loc[(target, name)]
            np.testing.assert_allclose(row["lower"], lo[d].mean(), rtol=1e-10, atol=1e-12)
            np.testing.assert_allclose(row["upper"], up[d].mean(), rtol=1e-10, atol=1e-12)
            np.testing.assert_allclose(row["se_lower"], lo[d].std() / np.sqrt(n), rtol=1e-9)
            np.testing.assert_allclose(row["se_upper"], up[d].std() / np.sqrt(n), rtol=1e-9)


def test_training_one_step_matches_the_sample_by_sample_reference(fitted):
    est, (X, y, a) = fitted
    fold_of = np.empty(y.size, dtype=int)
    for k, (_, te) in enumerate(est.folds_):
        fold_of[te] = k
    ref = _reference(est, X, y, a, fold_of, est.propensity_oof_)
    _check(est.average_bounds().table, ref, est)


def test_new_data_one_step_matches_the_sample_by_sample_reference(fitted):
    est, _ = fitted
    X, y, a = make_confounded_discrete(120, random_state=11)
    res = est.average_bounds(X, y, a)
    assert isinstance(res, AveragedBounds)
    assert "new data" in res.method
    ref = _reference(est, X, y, a, np.full(y.size, -1), est.predict_propensity(X))
    _check(res.table, ref, est)
    # Manski rows need no nuisance: plain means of the observed-arm formulas
    man = res.table.loc[("Y(1)", "manski")]
    np.testing.assert_allclose(man["upper"], np.mean(np.where(a == 1, y, 4.0)), rtol=1e-12)
    np.testing.assert_allclose(man["lower"], np.mean(np.where(a == 1, y, 0.0)), rtol=1e-12)
    assert res.header["Outcome"] == "y"


def test_new_data_one_step_resolves_treatment_like_score(fitted):
    est, _ = fitted
    X, y, a = make_confounded_discrete(80, random_state=2)
    by_arg = est.average_bounds(X, y, a).table
    Xa = pd.DataFrame(np.column_stack([X, a]), columns=[f"x{j}" for j in range(X.shape[1])]
                      + ["A"])
    with_col = ConditionalDivergenceBounds(**{**FAST, "treatment_col": "A"})
    Xt, yt, at = make_confounded_discrete(300, random_state=5)
    with_col.fit(pd.DataFrame(np.column_stack([Xt, at]), columns=Xa.columns), yt)
    res = with_col.average_bounds(Xa, pd.Series(y, name="wage"))
    np.testing.assert_allclose(res.table.to_numpy(), by_arg.to_numpy(), rtol=1e-12)
    assert res.header["Outcome"] == "wage"
    with pytest.raises(ValueError, match="need the outcome"):
        est.average_bounds(X)
    with pytest.raises(ValueError, match="need the treatment"):
        est.average_bounds(X, y)
    with pytest.raises(ValueError, match="outcome_bounds"):
        est.average_bounds(X, y + 10.0, a)
    plug = est.average_bounds(X, method="plugin")  # covariates alone are enough there
    assert np.all(np.isnan(plug.table["se_upper"]))
    with pytest.raises(ValueError, match="pass X"):  # X=None is the training sample
        est.average_bounds(None, y, a)


def test_observed_support_warns_for_held_out_values_beyond_it():
    # outcome_bounds="observed" fixes the training range; held-out y beyond it warns (CV folds
    # of a continuous outcome pass it routinely) instead of silently assuming it
    X, y, a = make_confounded_discrete(300, random_state=5)
    est = ConditionalDivergenceBounds(**{**FAST, "outcome_bounds": "observed",
                                         "divergences": ("kl",)}).fit(X, y, treatment=a)
    X2, y2, a2 = make_confounded_discrete(100, random_state=6)
    with pytest.warns(UserWarning, match="outside the training range"):
        est.average_bounds(X2, y2 + 10.0, a2)
    with pytest.warns(UserWarning, match="outside the training range"):
        est.score(X2, y2 + 10.0, treatment=a2)
    res = est.average_bounds(X2, y2, a2)  # inside the range: no warning
    assert "Max domain violation (fit)" in res.header
