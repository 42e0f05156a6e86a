"""ConditionalDivergenceBounds: batching, symmetry, determinism, accuracy, bad input."""

import pickle
import warnings

import numpy as np
import pytest
from sklearn.base import BaseEstimator, ClassifierMixin
from sklearn.linear_model import LogisticRegression

from fstat.causal import (
    ConditionalDivergenceBounds,
    UnboundedOutcomeWarning,
    aggregate_bounds,
    manski_bounds,
)
from fstat.datasets import make_confounded_discrete
from fstat.divergences import get_divergence

FAST = dict(max_iter=40, hidden_layer_sizes=(8,), device="cpu", random_state=0,
            propensity_model=LogisticRegression(C=1e6), outcome_bounds=(0, 4))


@pytest.fixture(scope="module")
def data():
    return make_confounded_discrete(400, random_state=0, return_truth=True)


def _fit(data, **kw):
    X, y, a, _ = data
    params = {**FAST, **kw}
    return ConditionalDivergenceBounds(**params).fit(X, y, treatment=a)


def test_groups_are_independent_of_the_batch(data):
    """A divergence's networks do not depend on which other divergences share the batch."""
    X = np.eye(4)
    both = _fit(data, divergences=("kl", "chi2"), dtype="float64")
    alone = _fit(data, divergences=("chi2",), dtype="float64")
    np.testing.assert_allclose(both.predict_outcome_bounds(X, 1, divergence="chi2"),
                               alone.predict_outcome_bounds(X, 1, divergence="chi2"),
                               rtol=1e-6, atol=1e-6)
    np.testing.assert_allclose(both.loss_curve_[:, :, 1], alone.loss_curve_[:, :, 0],
                               rtol=1e-6, atol=1e-8)


def test_refit_on_negated_outcome_swaps_bounds(data):
    X, y, a, _ = data
    params = {**FAST, "divergences": ("kl", "hellinger"), "dtype": "float64"}
    pos = ConditionalDivergenceBounds(**params).fit(X, y, treatment=a)
    params["outcome_bounds"] = (-4, 0)
    neg = ConditionalDivergenceBounds(**params).fit(X, -y, treatment=a)
    for arm in (0, 1):
        b = pos.predict_outcome_bounds(np.eye(4), arm, divergence="all")
        nb = neg.predict_outcome_bounds(np.eye(4), arm, divergence="all")
        np.testing.assert_allclose(nb[..., 0], -b[..., 1], atol=1e-5)
        np.testing.assert_allclose(nb[..., 1], -b[..., 0], atol=1e-5)


def test_determinism_pickle_and_attributes(data):
    X = data[0]
    est = _fit(data, divergences=("kl",))
    again = _fit(data, divergences=("kl",))
    np.testing.assert_array_equal(est.predict(X), again.predict(X))
    other = _fit(data, divergences=("kl",), random_state=1)
    assert not all(np.array_equal(f[1], g[1]) for f, g in zip(est.folds_, other.folds_))
    loaded = pickle.loads(pickle.dumps(est))
    np.testing.assert_array_equal(loaded.predict(X), est.predict(X))
    assert est.loss_curve_.shape == (40, 2, 1, 2)
    assert est.domain_violation_fraction_.shape == (2, 1, 2)
    assert est.device_ == "cpu" and est.support_source_ == "declared"
    assert est.predict_propensity(X).shape == (400,)
    for value in est.dual_state_["state_dict"].values():
        assert value.device.type == "cpu"
    # prediction does not depend on batch composition
    np.testing.assert_allclose(est.predict(X[:7]), est.predict(X)[:7], atol=1e-7)
    np.testing.assert_allclose(est.predict(X[::-1])[::-1], est.predict(X), atol=1e-7)


def test_cv_list_and_manski_containment(data):
    X, y, a, _ = data
    idx = np.arange(400)
    folds = [(idx[idx % 2 == 0], idx[idx % 2 == 1]), (idx[idx % 2 == 1], idx[idx % 2 == 0])]
    est = ConditionalDivergenceBounds(("kl",), **{**FAST, "max_iter": 200}, cv=folds)
    est.fit(X, y, treatment=a)
    for (tr, te), (ftr, fte) in zip(folds, est.folds_):
        np.testing.assert_array_equal(te, fte)
        np.testing.assert_array_equal(tr, ftr)
    m = est.predict_manski(np.eye(4), arm=1)
    # the plug-in as fitted (the returned bounds are clipped and widened to Manski's, which
    # would make these checks hold by construction)
    b = _unclipped_arm_bounds(est, np.eye(4))[:, 0, 1]
    assert np.all(b[:, 0] <= m[:, 0] + 0.3) and np.all(b[:, 1] >= m[:, 1] - 0.3)
    assert np.all((b >= -0.5) & (b <= 4.5))
    returned = est.predict_outcome_bounds(np.eye(4), 1)
    assert np.all((returned[:, 0] <= m[:, 0]) & (returned[:, 1] >= m[:, 1]))
    text = est.summary().as_text()
    assert "manski" in text and "std err" in text
    assert np.isfinite(est.score(X, y, treatment=a))


@pytest.mark.slow
@pytest.mark.parametrize("seed", [0, 1, 2])
@pytest.mark.parametrize("propensity", ["default", "logistic"])
def test_accuracy_against_exact_population_bounds(seed, propensity):
    # spec 6.9: defaults, n = 4000, outcome_bounds (0, 4); endpoint errors against the exact
    # population bounds, truth coverage per divergence and for the intersection, Manski
    # containment (shrunk by 0.25 per side) and no domain violations
    X, y, a, truth = make_confounded_discrete(4000, random_state=seed, return_truth=True)
    extra = {} if propensity == "default" else {"propensity_model": LogisticRegression(C=1e6)}
    five = ("kl", "hellinger", "chi2", "tv", "js")
    est = ConditionalDivergenceBounds(five, outcome_bounds=(0, 4), device="cpu",
                                      random_state=seed, **extra).fit(X, y, treatment=a)
    cells = np.eye(4)
    # the plug-in as fitted: the returned bounds are clipped and widened to the estimated
    # Manski interval, which would make the containment checks below hold by construction
    # (they are checked on the returned bounds too)
    both = np.transpose(_unclipped_arm_bounds(est, cells), (2, 0, 1, 3))
    returned = np.stack([est.predict_outcome_bounds(cells, arm, divergence="all")
                         for arm in (0, 1)])  # (arm, cell, divergence, end)
    mu = truth.cell_mu[..., None]
    manski = np.array([[manski_bounds(np.arange(5.0), truth.cell_propensity[arm, c],
                                      weights=truth.cell_pmf[arm, c], support=(0.0, 4.0))
                        for c in range(4)] for arm in (0, 1)])
    for d, name in enumerate(five):
        b = both[:, :, d]
        err = np.abs(b - truth.population_bounds(name))
        max_err, mean_err = (0.75, 0.20) if name == "tv" else (0.30, 0.09)
        assert err.max() <= max_err and err.mean() <= mean_err, (name, err)
        inside = (b[..., 0] <= mu[..., 0]) & (mu[..., 0] <= b[..., 1])
        assert inside.sum() >= 7, (name, b, truth.cell_mu)
        assert np.all(b[..., 0] <= manski[..., 0] + 0.25), (name, b, manski)
        assert np.all(b[..., 1] >= manski[..., 1] - 0.25), (name, b, manski)
        r = returned[:, :, d]
        assert np.all(r[..., 0] <= manski[..., 0] + 0.25) and np.all(
            r[..., 1] >= manski[..., 1] - 0.25), (name, r, manski)
        assert np.all(np.abs(r - truth.population_bounds(name)) <= max_err + 1e-12)
    lo, hi, _ = aggregate_bounds(both[..., 0].reshape(8, 5), both[..., 1].reshape(8, 5),
                                 method="intersection")
    mu8 = truth.cell_mu.reshape(8)
    assert ((lo <= mu8) & (mu8 <= hi)).sum() >= 7
    assert est.domain_violation_fraction_.max() == 0.0


def test_unbounded_warning_and_sample_support(data):
    X, y, a, _ = data
    with pytest.warns(UnboundedOutcomeWarning):
        est = ConditionalDivergenceBounds(("kl",), **{**FAST, "outcome_bounds": None}).fit(
            X, y, treatment=a)
    assert est.support_source_ == "sample"
    assert np.all(np.isfinite(est.predict(X)))
    with warnings.catch_warnings():
        warnings.simplefilter("error", UnboundedOutcomeWarning)
        ConditionalDivergenceBounds(("kl",), **{**FAST, "outcome_bounds": "observed"}).fit(
            X, y, treatment=a)


def test_treatment_column_and_grid_search(data):
    from sklearn.model_selection import GridSearchCV

    X, y, a, _ = data
    Xa = np.column_stack([a, X])
    est = ConditionalDivergenceBounds(("kl",), **FAST, treatment_col=0)
    by_col = est.fit(Xa, y).predict(Xa)
    by_arg = ConditionalDivergenceBounds(("kl",), **FAST).fit(X, y, treatment=a).predict(X)
    np.testing.assert_allclose(by_col, by_arg, atol=1e-12)
    grid = GridSearchCV(ConditionalDivergenceBounds(("kl",), **{**FAST, "max_iter": 20},
                                                    treatment_col=0),
                        {"learning_rate": [1e-3, 3e-3]}, cv=2).fit(Xa, y)
    assert np.isfinite(grid.best_score_)


def test_bad_input(data):
    X, y, a, _ = data
    est = ConditionalDivergenceBounds(("kl",), **FAST)
    with pytest.raises(ValueError, match="not both/neither"):
        est.fit(X, y)
    with pytest.raises(ValueError, match="binary"):
        est.fit(X, y, treatment=a + 2)
    with pytest.raises(ValueError, match="outside outcome_bounds"):
        ConditionalDivergenceBounds(("kl",), **{**FAST, "outcome_bounds": (0, 3)}).fit(
            X, y, treatment=a)
    with pytest.raises(ValueError, match="covariates"):
        ConditionalDivergenceBounds(("kl",), **FAST, treatment_col=0).fit(a[:, None], y)
    with pytest.raises(ValueError, match="cuda|CUDA"):
        if not __import__("torch").cuda.is_available():
            ConditionalDivergenceBounds(("kl",), **{**FAST, "device": "cuda"}).fit(
                X, y, treatment=a)
        else:
            raise ValueError("cuda available")
    with pytest.raises(ValueError):
        ConditionalDivergenceBounds(("kl",), **{**FAST, "propensity_clip": 0.7}).fit(
            X, y, treatment=a)
    with pytest.raises(ValueError, match="fewer folds"):
        ConditionalDivergenceBounds(("kl",), **FAST, cv=5).fit(X[:12], y[:12],
                                                               treatment=a[:12])
    with pytest.raises(ValueError, match="arm"):
        _fit(data, divergences=("kl",)).predict_outcome_bounds(X, arm=2)
    with pytest.raises(ValueError, match="single arm"):  # not blamed on the folds
        ConditionalDivergenceBounds(("kl",), **FAST).fit(X, y, treatment=np.ones_like(a))
    with pytest.raises(ValueError, match="could not convert"):  # a numpy UFuncTypeError before
        ConditionalDivergenceBounds(("kl",), **FAST).fit(X, np.array(["a"] * len(y)), treatment=a)
    with pytest.raises(ValueError, match="single arm with positive weight"):  # not a Ridge error
        ConditionalDivergenceBounds(("kl",), **FAST).fit(X, y, treatment=a,
                                                         sample_weight=a.astype(float))
    with pytest.raises(ValueError, match=r"found values \['c', 't'\]"):  # plain values
        ConditionalDivergenceBounds(("kl",), **FAST).fit(X, y, treatment=np.where(a, "t", "c"))
    with pytest.raises(ValueError, match="min -1.0"):
        ConditionalDivergenceBounds(("kl",), **FAST).fit(X, y, treatment=a,
                                                         sample_weight=-np.ones(a.size))
    from sklearn.exceptions import NotFittedError

    with pytest.raises(NotFittedError):
        ConditionalDivergenceBounds().predict(X)
    # spec 4 (each passed or raised a TypeError before): a (n, 1) treatment column, sparse X,
    # a pseudo-outcome model without sample_weight while weights are given
    from scipy.sparse import csr_matrix
    from sklearn.neighbors import KNeighborsRegressor

    from fstat.causal import MarginalDivergenceBounds

    for model in (ConditionalDivergenceBounds(("kl",), **FAST),
                  MarginalDivergenceBounds(outcome_bounds=(0, 4))):
        with pytest.raises(ValueError, match="1-D"):
            model.fit(X, y, treatment=a[:, None])
        with pytest.raises(ValueError, match="Sparse data"):
            model.fit(csr_matrix(X), y, treatment=a)
    with pytest.raises(ValueError, match="does not accept sample_weight"):
        ConditionalDivergenceBounds(("kl",), **{**FAST, "pseudo_outcome_model":
                                                KNeighborsRegressor()}).fit(
            X, y, treatment=a, sample_weight=np.ones(a.size))
    # a fit(**params) that forwards the weights (a search) is not refused
    from sklearn.linear_model import Ridge
    from sklearn.model_selection import GridSearchCV

    search = GridSearchCV(Ridge(), {"alpha": [0.1, 1.0]}, cv=2)
    ConditionalDivergenceBounds(("kl",), **{**FAST, "pseudo_outcome_model": search}).fit(
        X, y, treatment=a, sample_weight=np.ones(a.size))


def test_bounds_display(data):
    pytest.importorskip("matplotlib")
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from fstat.causal import BoundsDisplay, MarginalDivergenceBounds

    X, y, a, truth = data
    est = _fit(data, divergences=("kl",))
    fig, ax = plt.subplots()
    disp = BoundsDisplay.from_estimator(est, X, feature="propensity", arm=1, ax=ax,
                                        truth=truth.mu1)
    assert disp.ax_ is ax and disp.band_ is not None and disp.manski_band_ is not None
    assert disp.truth_line_ is not None
    disp = BoundsDisplay.from_estimator(est, X, feature=0, kind="individual")
    assert disp.figure_ is not None
    disp = BoundsDisplay.from_predictions(np.arange(5.0), np.zeros(5), np.ones(5))
    assert disp.manski_band_ is None
    marg = MarginalDivergenceBounds(outcome_bounds=(0, 4)).fit(X, y, treatment=a)
    with pytest.raises(ValueError, match="do not vary"):
        BoundsDisplay.from_estimator(marg, X)
    plt.close("all")


def test_support_edge_samples_feasible_and_hellinger_correction_scales_with_margin(data):
    """Documented caveat of the one-step averaged bounds (user guide, section 8).

    With a declared support every fold's dual is feasible for every sample, held-out ones
    included (T <= f(0) - delta). A dual at the boundary (phantom mass at the support edge)
    gives held-out samples at that edge T = f(0) - delta, whose Hellinger pseudo-outcome
    g*(f(0) - delta) = (1 - 2 delta) / (4 delta) then dominates the correction term and the
    standard error; it shrinks roughly like 1/delta with a larger ``domain_margin``.
    """
    X, y, a, _ = data
    est = _fit(data, divergences=("kl", "hellinger"), dtype="float64")
    _, (lam, u, _, _, _) = est._theta(X)
    ytil = (y - est.y_center_) / est.y_scale_
    layout = est.dual_state_["layout"]
    rows = np.arange(y.size)
    for gi, (d, s) in enumerate(zip(layout["divergence"], layout["sign"])):
        t0 = get_divergence(est.divergences_[d]).f0 - est.domain_margin
        t_obs = (s * ytil - u[gi][rows, a]) / lam[gi][rows, a]
        t_edge = (1.0 - u[gi]) / lam[gi]  # the support's end, both arms, every sample
        assert t_obs.max() <= t0 + 1e-12 and t_edge.max() <= t0 + 1e-12
    assert np.all(est.domain_violation_fraction_ == 0)

    # force every dual to the boundary: softplus(v) ~ 0, so u = 1 - lam (f(0) - delta)
    state = est.dual_state_["state_dict"]
    last = max(int(k.split(".")[1]) for k in state if k.startswith("weights."))
    state[f"weights.{last}"][..., 2:] = 0.0
    state[f"biases.{last}"][..., 2:] = -60.0
    cov = X
    w = np.ones(y.size)
    se = {}
    for margin in (1e-3, 1e-2):
        est.set_params(domain_margin=margin)
        _, (lam, u, _, _, _) = est._theta(X)
        top = y == 4
        for gi, (d, s) in enumerate(zip(layout["divergence"], layout["sign"])):
            if s > 0:
                t = (ytil[top] - u[gi][rows[top], a[top]]) / lam[gi][rows[top], a[top]]
                f0 = get_divergence(est.divergences_[d]).f0
                np.testing.assert_allclose(t, f0 - margin, atol=1e-9)
        table = est._one_step(cov, y, a, w).table
        se[margin] = table.loc[("Y(1)", "hellinger"), "se_upper"], table.loc[
            ("Y(1)", "kl"), "se_upper"]
    hel = se[1e-3][0] / se[1e-2][0]
    kl = se[1e-3][1] / se[1e-2][1]
    assert 5.0 < hel < 12.0  # g* ratio 249.5 / 24.5 ~ 10
    assert kl < 2.5  # KL: g*(-delta) = -1 - log(delta), 5.9 vs 3.6
    assert se[1e-3][0] > 5 * se[1e-3][1]


@pytest.mark.parametrize("outcome_bounds", ["observed", None, (2.0, 2.0001)])
def test_constant_outcome_gives_the_constant(data, outcome_bounds):
    # spec §4: y constant and no support wider than it -> UserWarning, every bound equals the
    # constant, no training (networks trained on zeros used to give bounds like [0.97, 3.03])
    X, _, a, _ = data
    y = np.full(a.size, 2.0)
    wider = isinstance(outcome_bounds, tuple)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        est = ConditionalDivergenceBounds(**{**FAST, "outcome_bounds": outcome_bounds}).fit(
            X, y, treatment=a)
    constant = [w for w in caught if "y is constant" in str(w.message)]
    assert bool(constant) == (not wider) == est.constant_outcome_
    if wider:  # a declared support wider than the constant: the f-balls have room
        assert np.all(est.predict_outcome_bounds(X[:5])[:, 1] > 2.0)
        return
    assert est.n_iter_ == 1
    np.testing.assert_array_equal(est.predict_outcome_bounds(X[:5]), 2.0)
    np.testing.assert_array_equal(est.predict_outcome_bounds(X[:5], 0, divergence="all"), 2.0)
    np.testing.assert_array_equal(est.predict(X[:5]), 0.0)
    table = est.average_bounds().table  # weighted means of the constant: rounding only
    np.testing.assert_allclose(table.loc["Y(1)", ["lower", "upper"]], 2.0, rtol=1e-13)
    np.testing.assert_allclose(table.loc["effect", ["lower", "upper"]], 0.0, atol=1e-13)
    np.testing.assert_allclose(table[["se_lower", "se_upper"]], 0.0, atol=1e-13)
    # score is minus the mean interval width (spec 3): zero here, as the predictions say
    # (the one-step-trained duals gave about -1.7)
    assert est.score(X, y, treatment=a) == 0.0
    with pytest.raises(ValueError, match="non-negative"):  # weights checked all the same
        est.score(X, y, treatment=a, sample_weight=-np.ones(a.size))
    with pytest.raises(ValueError, match="constant outcome"):  # the point mass does not apply
        est.score(X, np.where(a == 1, 3.0, 2.0), treatment=a)


def test_bad_hyperparameters_and_propensity_model(data):
    # spec section 4: invalid hyperparameters -> InvalidParameterError at fit (listing the valid
    # options where there are any); a propensity model without predict_proba -> TypeError
    from sklearn.base import BaseEstimator, ClassifierMixin

    from fstat._sklearn_compat import InvalidParameterError
    from fstat.causal import MarginalDivergenceBounds

    X, y, a, _ = data
    for params, match in ((dict(device="tpu"), "device"), (dict(hidden_layer_sizes=(0,)), "hidden"),
                          (dict(hidden_layer_sizes=()), "hidden"),
                          (dict(divergences=("foo",)), "kl"),
                          (dict(divergences=("kl", "kl")), "duplicates")):
        with pytest.raises(InvalidParameterError, match=match):
            ConditionalDivergenceBounds(**{**FAST, **params}).fit(X, y, treatment=a)
    with pytest.raises(InvalidParameterError, match="kl"):
        MarginalDivergenceBounds(("foo",), outcome_bounds=(0, 4)).fit(None, y, treatment=a)

    class NoProba(ClassifierMixin, BaseEstimator):
        def fit(self, X, y):
            return self

        def predict(self, X):
            return np.zeros(len(X), dtype=int)

    with pytest.raises(TypeError, match="predict_proba"):
        ConditionalDivergenceBounds(**{**FAST, "propensity_model": NoProba()}).fit(
            X, y, treatment=a)


@pytest.mark.slow
def test_paper_dgp_sanity():
    # spec 6.11 on make_confounded_paper(4000), 400 points uniform on [-2, 2]^5. The width
    # comparison by e uses the treated arm's bounds, whose radius B_f(e) shrinks as e grows
    # (the CATE width adds the control arm's, which grows with e, and is flat in e)
    from fstat.datasets import make_confounded_paper

    X, y, a, truth = make_confounded_paper(4000, random_state=0, return_truth=True)
    with pytest.warns(UnboundedOutcomeWarning):
        est = ConditionalDivergenceBounds(("kl", "chi2"), aggregation=None, device="cpu",
                                          random_state=0).fit(X, y, treatment=a)
    Xe = np.random.default_rng(1).uniform(-2, 2, (400, 5))
    tau = truth.mu_fn(1, Xe) - truth.mu_fn(0, Xe)
    e = truth.propensity_fn(Xe)
    cate = est.predict(Xe)  # (400, divergence, 2)
    for d, name in enumerate(("kl", "chi2")):
        lower, upper = cate[:, d, 0], cate[:, d, 1]
        assert np.mean((lower <= tau) & (tau <= upper)) >= 0.85, name
        assert 3.0 <= np.mean(upper - lower) <= 40.0, name
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # a few inverted sample-support intervals
            treated = est.predict_outcome_bounds(Xe, 1, divergence=name)
        width = treated[:, 1] - treated[:, 0]
        assert width[e > 0.7].mean() < width[e < 0.5].mean(), name
    assert est.domain_violation_fraction_.max() < 0.05


class _PerturbedOracle(ClassifierMixin, BaseEstimator):
    """The exact cell propensity of make_confounded_discrete plus, for every row asked,
    N(n^(-1/4), n^(-1/4)) noise, clipped to [0.01, 0.99] (spec 6.10); deterministic given
    the seed and the order of calls."""

    def __init__(self, cell_propensity=None, n=4000, random_state=None):
        self.cell_propensity = cell_propensity
        self.n = n
        self.random_state = random_state

    def fit(self, X, y, sample_weight=None):
        self.classes_ = np.array([0, 1])
        self.rng_ = np.random.RandomState(self.random_state)
        return self

    def predict_proba(self, X):
        scale = self.n ** -0.25
        e = np.asarray(self.cell_propensity)[np.argmax(np.asarray(X), axis=1)]
        e = np.clip(e + self.rng_.normal(scale, scale, len(e)), 0.01, 0.99)
        return np.column_stack([1.0 - e, e])


@pytest.mark.slow
def test_debiasing_ablation_with_a_perturbed_propensity():
    # spec 6.10: with an oracle propensity perturbed at rate n^(-1/4), the debiased bounds'
    # mean endpoint error (against the exact population bounds) is at most the plug-in's
    # + 0.05, over seeds 0-2
    errors = {True: [], False: []}
    for seed in range(3):
        X, y, a, truth = make_confounded_discrete(4000, random_state=seed, return_truth=True)
        for debiased in (True, False):
            oracle = _PerturbedOracle(truth.cell_propensity[1], 4000, random_state=seed)
            est = ConditionalDivergenceBounds(("kl", "chi2"), outcome_bounds=(0, 4),
                                              debiased=debiased, propensity_model=oracle,
                                              device="cpu", random_state=seed)
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")  # clipped propensities
                est.fit(X, y, treatment=a)
            for name in ("kl", "chi2"):
                fitted = np.stack([est.predict_outcome_bounds(np.eye(4), arm, divergence=name)
                                   for arm in (0, 1)])
                errors[debiased].append(np.abs(fitted - truth.population_bounds(name)).mean())
    assert np.mean(errors[True]) <= np.mean(errors[False]) + 0.05, errors


def _mapped_folds(folds, keep):
    """Explicit (train, test) folds of the full sample, re-indexed to the rows ``keep``."""
    new_index = -np.ones(len(keep), dtype=int)
    new_index[keep] = np.arange(keep.sum())
    return [(new_index[tr[keep[tr]]], new_index[te[keep[te]]]) for tr, te in folds]


def _sample_folds(n):
    odd = np.arange(n) % 2 == 1
    return [(np.flatnonzero(odd), np.flatnonzero(~odd)), (np.flatnonzero(~odd),
                                                         np.flatnonzero(odd))]


@pytest.mark.parametrize("outcome_bounds", [(0, 4), None])
def test_zero_weights_equal_dropped_rows(data, outcome_bounds):
    """Each fold's dual inputs were cut to its count of positive weights, which drops real
    rows at the end of a fold when zero-weight rows sit inside it (about 14% of the rows
    here, 0.2-1.0 off in predictions); without declared bounds the outcome scale was the
    unweighted sd of every row."""
    from sklearn.linear_model import Ridge

    X, y, a, _ = data
    w = np.ones(len(y))
    w[::7] = 0.0
    keep = w > 0
    folds = _sample_folds(len(y))
    params = {**FAST, "divergences": ("kl", "chi2"), "dtype": "float64",
              "pseudo_outcome_model": Ridge(), "outcome_bounds": outcome_bounds}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UnboundedOutcomeWarning)
        weighted = ConditionalDivergenceBounds(**params, cv=folds).fit(
            X, y, treatment=a, sample_weight=w)
        dropped = ConditionalDivergenceBounds(**params, cv=_mapped_folds(folds, keep)).fit(
            X[keep], y[keep], treatment=a[keep])
    assert weighted.y_scale_ == pytest.approx(dropped.y_scale_, rel=1e-14)
    grid = np.random.default_rng(1).uniform(0, 1, size=(20, X.shape[1]))
    np.testing.assert_allclose(weighted.predict(grid), dropped.predict(grid), atol=1e-10)
    np.testing.assert_allclose(weighted.averaged_bounds_.table.values,
                               dropped.averaged_bounds_.table.values, atol=1e-10)


def test_integer_weights_equal_repeated_rows_without_declared_support(data):
    """Frequency weights: the outcome centre and scale are the weighted median and sd
    (y_scale_ 0.9937 against 0.9958 for the repeated rows before)."""
    from sklearn.linear_model import Ridge

    X, y, a, _ = data
    w = np.random.default_rng(2).integers(1, 4, size=len(y)).astype(float)
    repeat = np.repeat(np.arange(len(y)), w.astype(int))
    folds = _sample_folds(len(y))
    position = np.concatenate([[0], np.cumsum(w.astype(int))])
    expand = [(np.concatenate([np.arange(position[i], position[i + 1]) for i in tr]),
               np.concatenate([np.arange(position[i], position[i + 1]) for i in te]))
              for tr, te in folds]
    params = {**FAST, "divergences": ("kl",), "dtype": "float64",
              "pseudo_outcome_model": Ridge(), "outcome_bounds": None}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UnboundedOutcomeWarning)
        weighted = ConditionalDivergenceBounds(**params, cv=folds).fit(
            X, y, treatment=a, sample_weight=w)
        repeated = ConditionalDivergenceBounds(**params, cv=expand).fit(
            X[repeat], y[repeat], treatment=a[repeat])
    assert weighted.y_center_ == repeated.y_center_
    assert weighted.y_scale_ == pytest.approx(repeated.y_scale_, rel=1e-13)
    grid = np.random.default_rng(1).uniform(0, 1, size=(20, X.shape[1]))
    np.testing.assert_allclose(weighted.predict(grid), repeated.predict(grid), atol=1e-9)
    # the averaged bounds and their influence-function SEs: frequency weights
    np.testing.assert_allclose(weighted.averaged_bounds_.table.values,
                               repeated.averaged_bounds_.table.values, rtol=1e-9, atol=1e-9)


def test_user_pseudo_outcome_models_are_seeded_by_fold_and_divergence(data):
    """A stochastic sklearn pseudo-outcome model was seeded by its group's position: the
    order of `divergences` changed the KL bounds by 0.40, and refitting on -y did not swap
    the arms' bounds (0.52 off), unlike the default batched MLP."""
    from sklearn.ensemble import RandomForestRegressor

    X, y, a, _ = data
    params = {**FAST, "dtype": "float64",
              "pseudo_outcome_model": RandomForestRegressor(n_estimators=5, max_depth=3)}
    grid = np.eye(4)
    one = ConditionalDivergenceBounds(**params, divergences=("kl", "chi2")).fit(
        X, y, treatment=a)
    other = ConditionalDivergenceBounds(**params, divergences=("chi2", "kl")).fit(
        X, y, treatment=a)
    alone = ConditionalDivergenceBounds(**params, divergences=("kl",)).fit(X, y, treatment=a)
    neg = ConditionalDivergenceBounds(**{**params, "outcome_bounds": (-4, 0)},
                                      divergences=("kl", "chi2")).fit(X, -y, treatment=a)
    for arm in (0, 1):
        kl = one.predict_outcome_bounds(grid, arm, divergence="kl")
        np.testing.assert_allclose(other.predict_outcome_bounds(grid, arm, divergence="kl"),
                                   kl, atol=1e-10)
        np.testing.assert_allclose(alone.predict_outcome_bounds(grid, arm, divergence="kl"),
                                   kl, atol=1e-10)
        np.testing.assert_allclose(neg.predict_outcome_bounds(grid, arm, divergence="kl"),
                                   -kl[..., ::-1], atol=1e-8)


def _unclipped_arm_bounds(est, X):
    """(n, D, arm, [lower, upper]) of the plug-in lambda (B_f(e_a) + m) + u, fold-averaged and
    mapped to y's units, from the fitted pieces (written out here, no clipping)."""
    lam, u, m, e1, _ = est._fold_predictions(X)
    layout = est.dual_state_["layout"]
    n_div, n_folds = len(est.divergences_), layout["n_folds"]
    theta = np.empty_like(lam)
    for gi in range(lam.shape[0]):
        k, d = layout["fold"][gi], layout["divergence"][gi]
        div = get_divergence(est.divergences_[d])
        for arm in (0, 1):
            e = e1[k] if arm == 1 else 1.0 - e1[k]
            theta[gi, :, arm] = lam[gi, :, arm] * (div.radius(e) + m[gi, :, arm]) + u[gi, :, arm]
    theta = theta.reshape(n_div, n_folds, 2, X.shape[0], 2).mean(axis=1)
    upper = est.y_center_ + est.y_scale_ * theta[:, 0]
    lower = est.y_center_ - est.y_scale_ * theta[:, 1]
    return np.stack([lower, upper], axis=-1).transpose(1, 0, 2, 3)


@pytest.mark.parametrize("outcome_bounds", [(-10.0, 10.0), None])
def test_pointwise_bounds_are_the_plug_in_repaired_with_support_and_manski(outcome_bounds):
    """Every population bound lies in the support and every f-interval contains the Manski
    interval, so a plug-in end beyond the support is moved to it and the interval is widened
    to Manski's (short fits extrapolate: about 30% of these raw bounds lay outside, chi2
    reaching -97 and 83 on the support [-10, 10]); inverted estimates stay unchanged."""
    from sklearn.linear_model import Ridge

    from fstat.datasets import make_probit_sine

    X, y, a = make_probit_sine(300, random_state=0)
    est = ConditionalDivergenceBounds(
        divergences=("kl", "chi2"), max_iter=50, hidden_layer_sizes=(8,), device="cpu",
        random_state=0, outcome_bounds=outcome_bounds, dtype="float64",
        propensity_model=LogisticRegression(), pseudo_outcome_model=Ridge(),
        aggregation=None)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        est.fit(X, y, treatment=a)
    lo, hi = est.support_
    raw = _unclipped_arm_bounds(est, X)
    assert ((raw < lo - 1.0) | (raw > hi + 1.0)).mean() > 0.05  # the case needs clipping
    # conditional Manski bounds written out: fold-averaged e and clipped outcome mean
    _, _, _, e1, mu = est._fold_predictions(X)
    ebar = np.stack([1.0 - e1.mean(axis=0), e1.mean(axis=0)], axis=-1)  # (n, arm)
    mean = np.clip(est.y_center_ + est.y_scale_ * mu.mean(axis=0), lo, hi)
    manski = np.stack([ebar * mean + (1 - ebar) * lo, ebar * mean + (1 - ebar) * hi], axis=-1)
    repaired = np.clip(raw, lo, hi)
    if outcome_bounds is not None:  # a fixed support: the f-interval contains Manski's
        repaired[..., 0] = np.minimum(repaired[..., 0], manski[:, None, :, 0])
        repaired[..., 1] = np.maximum(repaired[..., 1], manski[:, None, :, 1])
        assert np.mean(repaired != np.clip(raw, lo, hi)) > 0.01
    else:  # the duals' local support: only the clipping
        assert est.support_source_ == "sample"
    inverted = raw[..., 0] > raw[..., 1]
    assert np.any(inverted)
    expected = np.where(inverted[..., None], raw, repaired)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", category=UserWarning)  # inverted intervals
        for arm in (0, 1):
            got = est.predict_outcome_bounds(X, arm, divergence="all")
            np.testing.assert_allclose(got, expected[:, :, arm], rtol=0, atol=1e-12)
            np.testing.assert_allclose(est.predict_manski(X, arm=arm), manski[:, arm], rtol=0,
                                       atol=1e-12)
        cate = est.predict(X)
        np.testing.assert_allclose(cate[..., 0], expected[:, :, 1, 0] - expected[:, :, 0, 1],
                                   rtol=0, atol=1e-12)
        np.testing.assert_allclose(cate[..., 1], expected[:, :, 1, 1] - expected[:, :, 0, 0],
                                   rtol=0, atol=1e-12)
        valid = ~inverted.any(axis=-1)  # (n, D): both arms' intervals valid
        assert np.all((cate[valid] >= lo - hi) & (cate[valid] <= hi - lo))
        if outcome_bounds is not None:
            effect_manski = est.predict_manski(X)
            assert np.all((cate[..., 0] <= effect_manski[:, None, 0] + 1e-12)[valid])
            assert np.all((cate[..., 1] >= effect_manski[:, None, 1] - 1e-12)[valid])
        plugin = est.average_bounds(X, method="plugin").table
    for name in est.divergences_:
        np.testing.assert_allclose(plugin.loc[("Y(1)", name), ["lower", "upper"]].to_numpy(float),
                                   expected[:, est.divergences_.index(name), 1].mean(axis=0),
                                   rtol=0, atol=1e-12)


def test_conditional_manski_bounds_use_the_outcome_mean_clipped_to_the_support():
    """The Manski interval e mu + (1 - e) [lo, hi] with mu = E[y | a, x] in the support: a
    fitted mean that extrapolates beyond an end (far from the data) is moved to it, so each
    arm's interval lies in the support and the effect's in [lo - hi, hi - lo] (x2 = -20 gave
    [-17.8, -12.6] for arm 0 on the support [-5, 5])."""
    from sklearn.linear_model import Ridge

    rng = np.random.default_rng(0)
    X = rng.normal(size=(300, 2))
    a = (rng.uniform(size=300) < 1 / (1 + np.exp(-2 * X[:, 0]))).astype(int)
    y = np.clip(X[:, 1] + a + rng.normal(size=300), -5, 5)
    est = ConditionalDivergenceBounds(
        divergences=("kl",), max_iter=20, hidden_layer_sizes=(4,), device="cpu",
        random_state=0, outcome_bounds=(-5, 5), propensity_model=LogisticRegression(),
        pseudo_outcome_model=Ridge()).fit(X, y, treatment=a)
    Xo = np.array([[0.0, 20.0], [0.0, -20.0], [0.5, 0.1]])
    _, (_, _, _, e, mu) = est._theta(Xo)
    mean = est.y_center_ + est.y_scale_ * mu.mean(axis=0)  # (3, 2), Ridge: linear in x2
    assert mean[0].min() > 5 and mean[1].max() < -5 and np.all(np.abs(mean[2]) < 5)
    ebar = e.mean(axis=0)
    clipped = np.clip(mean, -5, 5)
    for arm in (0, 1):
        expected = np.column_stack([ebar[:, arm] * clipped[:, arm] - 5 * (1 - ebar[:, arm]),
                                    ebar[:, arm] * clipped[:, arm] + 5 * (1 - ebar[:, arm])])
        np.testing.assert_allclose(est.predict_manski(Xo, arm=arm), expected, rtol=0,
                                   atol=1e-12)
    effect = est.predict_manski(Xo)
    assert np.all((effect >= -10) & (effect <= 10))
    inside = est.predict_manski(Xo[2:], arm=1)  # a mean inside the support is unchanged
    np.testing.assert_allclose(inside[0], [ebar[2, 1] * mean[2, 1] - 5 * (1 - ebar[2, 1]),
                                           ebar[2, 1] * mean[2, 1] + 5 * (1 - ebar[2, 1])],
                               rtol=0, atol=1e-12)


def test_predict_manski_never_returns_nan():
    # spec 3.4: never NaN; a fitted mean overflowing far from the data (inf - inf inside the
    # outcome MLP) raises instead ([[nan, nan]] came back)
    rng = np.random.default_rng(0)
    X = rng.normal(size=(200, 2))
    a = (rng.uniform(size=200) < 0.5).astype(int)
    y = np.clip(X[:, 1] + a + rng.normal(size=200), -4, 4)
    est = ConditionalDivergenceBounds(
        divergences=("kl",), max_iter=10, hidden_layer_sizes=(4,), device="cpu",
        random_state=0, outcome_bounds=(-4, 4),
        propensity_model=LogisticRegression()).fit(X, y, treatment=a)
    far = np.array([[-1e308, 1e308]])
    for call in (lambda: est.predict_manski(far), lambda: est.predict_manski(far, arm=1),
                 lambda: est.predict(far)):
        with pytest.raises(RuntimeError, match="non-finite"), warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)  # numpy overflow inside
            call()
