"""Exact marginal (no covariates) f-divergence bounds with influence-function inference."""

from __future__ import annotations

import numpy as np
from sklearn.base import BaseEstimator

from .._sklearn_compat import (
    Integral,
    Interval,
    StrOptions,
    _fit_context,
    check_is_fitted,
    validate_data,
)
from .._validation import check_sample_weight, check_treatment
from ..divergences import get_divergence
from ._aggregate import AGGREGATIONS, aggregate_bounds
from ._base import (
    arm_weights,
    check_dense,
    check_divergences,
    check_outcome_bounds,
    check_outcome_y,
    check_scored_y,
    column_index,
    outcome_name,
    warn_constant_outcome,
)
from ._inference import AveragedBounds, build_table, weighted_se
from ._pointwise import pointwise_bounds
from ._risk import dual_risk

__all__ = ["MarginalDivergenceBounds"]

FIVE = ("kl", "hellinger", "chi2", "tv", "js")


def _influence_upper(values, in_arm, e_a, lam, u, div, weights):
    """IF of one arm's upper bound (values already signed: +y or -y)."""
    influence = np.zeros(values.size)
    if lam <= 0.0:  # non-binding ball: the bound is the support end, no first-order term
        return influence
    t = (values[in_arm] - u) / lam
    if div.domain_closed:
        # feasibility (u + lam f0 >= sup S) puts every t at or below the domain end f0; an
        # atom at sup S can land a rounding error above it (lam, u come back from
        # standardised units), where g* is +inf rather than its finite edge value
        t = np.minimum(t, div.f0)
    g = np.asarray(div.conjugate(t), dtype=np.float64)
    if not np.all(np.isfinite(g)):  # atoms on an open domain edge: use a finite limit
        g = np.where(np.isfinite(g), g, np.nan)
        g = np.where(np.isnan(g), np.nanmax(g) if np.any(np.isfinite(g)) else 0.0, g)
    wa = weights[in_arm]
    m = float(np.dot(wa, g) / wa.sum())
    influence[in_arm] = lam / e_a * (g - m)
    influence += lam * float(div.radius_derivative(e_a)) * (in_arm.astype(float) - e_a)
    return influence


def _selected(lower_if, upper_if, lower, upper, k_used):
    """IF of the aggregated endpoints: that of the divergence sitting at the k-th position."""
    lo_idx = np.argsort(-lower, kind="stable")[k_used - 1]
    up_idx = np.argsort(upper, kind="stable")[k_used - 1]
    return lower_if[lo_idx], upper_if[up_idx]


class MarginalDivergenceBounds(BaseEstimator):
    """Exact f-divergence bounds on E[Y | do(A=a)] and the ATE without covariates.

    For each arm ``a`` with estimated share :math:`\\hat e_a`, the interventional law lies in
    the ball :math:`D_f(P_a \\| Q_a) \\le B_f(\\hat e_a)` around the observed arm law; the bounds
    are the largest and smallest :math:`E_Q[Y]` over that ball, computed exactly by
    :func:`pointwise_bounds` (no stochastic optimisation). ATE bounds are
    ``[lower(1) - upper(0), upper(1) - lower(0)]``; the Manski interval is always reported next
    to them (on the same support the f-bounds contain it).

    Parameters
    ----------
    divergences : sequence of str, default=("kl", "hellinger", "chi2", "tv", "js")
    aggregation : {"intersection", "union", "kth", "adaptive"} or None, default="intersection"
    k : int, optional
        For ``aggregation="kth"``.
    outcome_bounds : None, (lo, hi) or "observed", default=None
        Outcome support. ``None`` uses each arm's observed atoms and emits an
        :class:`UnboundedOutcomeWarning` (the population upper bound of an unbounded outcome is
        infinite); ``"observed"`` treats the global training range as declared.
    treatment_col : int or str, optional
        Column of X holding the binary treatment (alternative to ``fit(..., treatment=)``).

    Attributes
    ----------
    propensity_ : ndarray of shape (2,)
        Estimated arm shares :math:`(\\hat e_0, \\hat e_1)`.
    bounds_ : ndarray of shape (D, 2, 2)
        Per divergence, per arm: (lower, upper).
    outcome_bounds_ : ndarray of shape (2, 2)
        Aggregated per-arm bounds.
    effect_bounds_ : ndarray of shape (2,)
        The aggregation applied to the per-divergence effect intervals
        ``effect_bounds_all_`` (rows of ``[lower_d(1) - upper_d(0), upper_d(1) - lower_d(0)]``),
        not the difference of the aggregated arm bounds ``outcome_bounds_``.
    effect_bounds_all_ : ndarray of shape (D, 2)
    manski_bounds_ : ndarray of shape (2, 2)
        Per arm, on ``support_``. With ``outcome_bounds=None`` that is the range of all
        observed ``y`` while each f-bound uses its own arm's observed values, so a Manski
        end can then lie outside an f-interval; declare the support (or ``"observed"``) to
        compare the two on the same support.
    manski_effect_bounds_ : ndarray of shape (2,)
    dual_params_ : ndarray of shape (D, 2, 2, 2)
        (lambda*, u*) per divergence, arm and sign (0: upper, 1: the ``-y`` problem).
    converged_ : ndarray of bool of shape (D, 2, 2)
    se_ : dict
        Target ("Y(0)", "Y(1)", "effect") -> (D + 2, 2) standard errors of (lower, upper) for
        the divergences, the aggregate and Manski.
    support_ : tuple
    support_source_ : {"declared", "observed", "sample"}
    constant_outcome_ : bool
        True when ``y`` is constant and no wider support is declared: every bound is that
        constant (with a ``UserWarning``), and ``score`` refuses other held-out values.
    n_samples_ : float
        Sum of the sample weights.
    averaged_bounds_ : AveragedBounds
    divergences_ : tuple of str

    Notes
    -----
    Influence functions (an fstat extension, not in the paper): with :math:`(\\lambda^*, u^*)`
    the dual optimum, :math:`T^* = (y - u^*)/\\lambda^*` and :math:`m^* = E_{P_a}[g^*(T^*)]`,

    .. math::

        IF = \\lambda^* \\frac{1\\{A=a\\}}{e_a}(g^*(T^*) - m^*)
             + \\lambda^* B_f'(e_a)(1\\{A=a\\} - e_a),

    and ``SE = sd(IF)/sqrt(n)``. Valid for bounded outcomes with interior optima; with observed
    (not declared) support the bounds depend on the sample extremes, which the SEs ignore.

    Examples
    --------
    >>> import numpy as np
    >>> from fstat.causal import MarginalDivergenceBounds
    >>> rng = np.random.default_rng(0)
    >>> a = rng.integers(0, 2, 500)
    >>> y = rng.binomial(4, 0.3 + 0.2 * a).astype(float)
    >>> est = MarginalDivergenceBounds(outcome_bounds=(0, 4)).fit(None, y, treatment=a)
    >>> lower, upper = est.effect_bounds_
    >>> bool(lower < 0.8 < upper)
    True
    """

    _parameter_constraints = {
        "divergences": [tuple, list, str],
        "aggregation": [StrOptions(set(AGGREGATIONS)), None],
        "k": [Interval(Integral, 1, None, closed="left"), None],
        "outcome_bounds": [tuple, list, StrOptions({"observed"}), None],
        "treatment_col": [Integral, str, None],
    }

    def __init__(self, divergences=FIVE, *, aggregation="intersection", k=None,
                 outcome_bounds=None, treatment_col=None):
        self.divergences = divergences
        self.aggregation = aggregation
        self.k = k
        self.outcome_bounds = outcome_bounds
        self.treatment_col = treatment_col

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.target_tags.required = True
        tags.non_deterministic = False
        return tags

    # ------------------------------------------------------------------------------------------
    def _resolve(self, X, y, treatment, *, reset):
        if X is None:
            if treatment is None:
                raise ValueError(
                    "X is None, so pass treatment= (a binary 0/1 vector) to fit."
                )
            y = check_outcome_y(y)
            if reset:
                for attr in ("n_features_in_", "feature_names_in_", "treatment_col_"):
                    self.__dict__.pop(attr, None)
            return y, check_treatment(treatment, n_samples=y.size)
        if (treatment is None) == (self.treatment_col is None):
            raise ValueError(
                "pass treatment= or set treatment_col, not both/neither."
            )
        X_in = X
        check_dense(X)
        X, y = validate_data(self, X, y, reset=reset, y_numeric=True)
        y = check_outcome_y(y)  # y_numeric converts object arrays only, not strings
        if treatment is None:
            col = (column_index(X_in, self.treatment_col, X.shape[1]) if reset
                   else self.treatment_col_)
            treatment = X[:, col]
            self.treatment_col_ = col
        elif reset:
            self.treatment_col_ = None
        return y, check_treatment(treatment, n_samples=X.shape[0])

    @_fit_context(prefer_skip_nested_validation=True)
    def fit(self, X, y, treatment=None, sample_weight=None):
        """Compute exact per-arm, effect and Manski bounds with standard errors.

        Parameters
        ----------
        X : array-like of shape (n, d) or None
            Covariates are ignored; X may be None when ``treatment`` is given. With
            ``treatment_col``, X holds the treatment column.
        y : array-like of shape (n,)
        treatment : array-like of shape (n,), optional
        sample_weight : array-like of shape (n,), optional
            Frequency weights: a weight of k counts the row k times, and the standard
            errors use n = sum of the weights (weights scaled to sum to 1 give the SEs of a
            single observation; rescale survey weights to sum to the number of rows).

        Returns
        -------
        self
        """
        names = check_divergences(self.divergences, self.aggregation, self.k)
        outcome = outcome_name(y)
        y, a = self._resolve(X, y, treatment, reset=True)
        w = check_sample_weight(sample_weight, y)
        lo, hi, source = check_outcome_bounds(self.outcome_bounds, y, w)
        if not hi > lo:
            warn_constant_outcome(lo)
        arm_weight = arm_weights(a, w)
        e = arm_weight / arm_weight.sum()
        support = None if source == "sample" else (lo, hi)
        d_count = len(names)
        bounds = np.empty((d_count, 2, 2))
        params = np.empty((d_count, 2, 2, 2))
        converged = np.empty((d_count, 2, 2), dtype=bool)
        n = y.size
        infl = np.zeros((d_count, 2, 2, n))  # divergence, arm, (lower, upper), sample
        for i, name in enumerate(names):
            div = get_divergence(name)
            for arm in (0, 1):
                in_arm = a == arm
                lower, upper, info = pointwise_bounds(
                    y[in_arm], e[arm], divergence=div, weights=w[in_arm], support=support,
                    return_info=True,
                )
                bounds[i, arm] = lower, upper
                for s, side in enumerate(("upper", "lower")):
                    params[i, arm, s] = info[side]["lam"], info[side]["u"]
                    converged[i, arm, s] = info[side]["converged"]
                    sign = 1.0 if side == "upper" else -1.0
                    phi = _influence_upper(sign * y, in_arm, e[arm], info[side]["lam"],
                                           info[side]["u"], div, w)
                    infl[i, arm, 1 if side == "upper" else 0] = sign * phi
        self.divergences_ = names
        self.propensity_ = e
        self.bounds_ = bounds
        self.dual_params_ = params
        self.converged_ = converged
        self.support_ = (lo, hi)
        self.support_source_ = source
        self.constant_outcome_ = not hi > lo
        self.n_samples_ = float(w.sum())
        self.effect_bounds_all_ = np.column_stack(
            [bounds[:, 1, 0] - bounds[:, 0, 1], bounds[:, 1, 1] - bounds[:, 0, 0]]
        )
        # Manski bounds and their influence functions
        manski = np.empty((2, 2))
        manski_if = np.empty((2, 2, n))
        for arm in (0, 1):
            ind = (a == arm).astype(float)
            for s, end in enumerate((lo, hi)):
                summand = ind * y + (1.0 - ind) * end
                manski[arm, s] = float(np.dot(w, summand) / w.sum())
                manski_if[arm, s] = summand - manski[arm, s]
        self.manski_bounds_ = manski
        self.manski_effect_bounds_ = np.array([manski[1, 0] - manski[0, 1],
                                               manski[1, 1] - manski[0, 0]])
        self._build_inference(names, infl, manski_if, w, outcome)
        return self

    def _build_inference(self, names, infl, manski_if, w, outcome):
        bounds, agg = self.bounds_, self.aggregation
        values, ses = {}, {}
        targets = {"Y(0)": 0, "Y(1)": 1, "effect": None}
        self.outcome_bounds_ = np.empty((2, 2))
        for target, arm in targets.items():
            if arm is None:
                vals = self.effect_bounds_all_
                lo_if = infl[:, 1, 0] - infl[:, 0, 1]
                up_if = infl[:, 1, 1] - infl[:, 0, 0]
                m_vals = self.manski_effect_bounds_
                m_if = (manski_if[1, 0] - manski_if[0, 1], manski_if[1, 1] - manski_if[0, 0])
            else:
                vals = bounds[:, arm]
                lo_if, up_if = infl[:, arm, 0], infl[:, arm, 1]
                m_vals = self.manski_bounds_[arm]
                m_if = (manski_if[arm, 0], manski_if[arm, 1])
            rows = [tuple(v) for v in vals]
            se_rows = [(weighted_se(lo_if[i], w), weighted_se(up_if[i], w))
                       for i in range(len(names))]
            sources = list(names)
            if agg is not None:
                a_lo, a_up, k_used = aggregate_bounds(vals[:, 0], vals[:, 1], method=agg, k=self.k)
                s_lo, s_up = _selected(lo_if, up_if, vals[:, 0], vals[:, 1], k_used)
                rows.append((a_lo, a_up))
                se_rows.append((weighted_se(s_lo, w), weighted_se(s_up, w)))
                sources.append("aggregate")
                if arm is not None:
                    self.outcome_bounds_[arm] = a_lo, a_up
                else:
                    self.effect_bounds_ = np.array([a_lo, a_up])
            rows.append(tuple(m_vals))
            se_rows.append((weighted_se(m_if[0], w), weighted_se(m_if[1], w)))
            sources.append("manski")
            values[target] = np.array(rows, dtype=float)
            ses[target] = np.array(se_rows, dtype=float)
        if agg is None:
            self.outcome_bounds_ = bounds.copy()
            self.effect_bounds_ = self.effect_bounds_all_.copy()
        self.se_ = ses
        self.averaged_bounds_ = AveragedBounds(
            build_table(values, ses, sources), n_samples=self.n_samples_,
            method="exact marginal dual, influence-function SEs (fstat extension)",
            aggregation=agg, divergences=names,
            header={"Outcome": outcome,
                    "Support": f"[{self.support_[0]:.4g}, {self.support_[1]:.4g}] "
                               f"({self.support_source_})",
                    "Propensity e1": f"{self.propensity_[1]:.4f}"},
        )

    # ------------------------------------------------------------------------------------------
    def predict(self, X):
        """Effect bounds repeated for every row: (n, 2), or (n, D, 2) with aggregation=None."""
        check_is_fitted(self)
        if X is None:
            raise ValueError("X is required by predict (its rows are counted).")
        if hasattr(self, "n_features_in_"):
            check_dense(X)
            X = validate_data(self, X, reset=False)
        n = len(X)
        return np.repeat(self.effect_bounds_[None, ...], n, axis=0).astype(np.float64)

    def average_bounds(self):
        """The :class:`AveragedBounds` of the training sample."""
        check_is_fitted(self)
        return self.averaged_bounds_

    def summary(self, alpha=0.05, kind="outer"):
        """statsmodels Summary of the bounds, standard errors and confidence intervals."""
        check_is_fitted(self)
        return self.averaged_bounds_.summary(alpha, kind)

    def score(self, X, y, treatment=None, sample_weight=None):
        """Minus the held-out debiased dual risk of both signs, averaged over divergences.

        Its population meaning is minus the mean interval width: higher is better.
        """
        check_is_fitted(self)
        y, a = self._resolve(X, y, treatment, reset=False)
        check_scored_y(self, y)
        n = y.size
        e1 = np.full(n, self.propensity_[1])
        total = 0.0
        for i, name in enumerate(self.divergences_):
            for s, sign in enumerate((1.0, -1.0)):
                lam = np.repeat(self.dual_params_[i, :, s, 0][None, :], n, axis=0)
                u = np.repeat(self.dual_params_[i, :, s, 1][None, :], n, axis=0)
                lam = np.maximum(lam, 1e-12)
                total += dual_risk(sign * y, a, e1, lam, u, divergence=name,
                                   sample_weight=sample_weight, surrogate=(1e-3, 1e3))
        return -total / len(self.divergences_)
