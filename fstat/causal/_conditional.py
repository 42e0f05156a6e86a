"""Cross-fitted, debiased, amortised neural dual for conditional f-divergence bounds."""

from __future__ import annotations

import math
import time

import numpy as np
import torch
from joblib import Parallel, delayed
from sklearn.base import BaseEstimator
from sklearn.model_selection import StratifiedKFold, check_cv

from .._sklearn_compat import (
    HasMethods,
    Integral,
    Interval,
    InvalidParameterError,
    Real,
    StrOptions,
    _fit_context,
    check_is_fitted,
    validate_data,
)
from .._torch import parse_dtype, resolve_device
from .._training import validation_split
from .._validation import check_layer_sizes, check_sample_weight, check_treatment
from .._warnings import warn_user
from .._weighted import weighted_median
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
    split_treatment,
    warn_constant_outcome,
)
from ._batched_mlp import BatchedMLP
from ._dualnet import dual_outputs, fit_dual_groups, group_generator, group_seed
from ._exceptions import DomainViolationWarning, InvertedBoundsWarning
from ._inference import AveragedBounds, build_table, weighted_se
from ._nuisance import (
    _fit_with_weight,
    fit_batched_regression,
    fit_propensities,
    positive_class_proba,
    predict_batched_regression,
    seeded_clone,
    select_groups,
)
from ._risk import dual_risk

__all__ = ["ConditionalDivergenceBounds"]

FIVE = ("kl", "hellinger", "chi2", "tv", "js")


def _tangent_conjugate(t, div, t0):
    """g*(t) inside ``t <= t0``, its tangent at ``t0`` beyond (pseudo-outcomes; never dropped)."""
    g0 = float(div.conjugate(np.float64(t0)))
    d0 = float(div.conjugate_derivative(np.float64(t0)))
    inside = t <= t0
    exact = div.conjugate(torch.where(inside, t, torch.full_like(t, t0)))
    return torch.where(inside, exact, g0 + d0 * (t - t0)), ~inside


def _check_arm(arm, *, allow_none=False):
    """``arm`` as the int 0 or 1 (an integer type, not a bool or a float)."""
    if isinstance(arm, bool) or not isinstance(arm, Integral) or arm not in (0, 1):
        allowed = "0, 1 or None" if allow_none else "0 or 1"
        raise ValueError(f"arm must be {allowed}; got arm={arm!r}.")
    return int(arm)


def _warn_inverted(intervals, from_inverted=None):
    """``intervals`` (..., 2) unchanged, with an InvertedBoundsWarning if any lower > upper or
    ``from_inverted`` (shape ``intervals.shape[:-1]``) marks one built from an inverted interval
    (an effect from an inverted arm, an aggregate from an inverted divergence)."""
    inverted = intervals[..., 0] > intervals[..., 1]
    if from_inverted is not None:
        inverted = inverted | from_inverted
    if np.any(inverted):
        built = "" if from_inverted is None else " or built from an inverted interval"
        warn_user(f"{inverted.mean():.1%} of the predicted intervals are inverted "
                  f"(lower > upper){built}; returned unchanged.", InvertedBoundsWarning)
    return intervals


def _check_finite(bounds):
    """``bounds`` unchanged, or a RuntimeError if any is not finite (never NaN: spec 3.4)."""
    if not np.all(np.isfinite(bounds)):
        raise RuntimeError("non-finite bound produced; please report this.")
    return bounds


class ConditionalDivergenceBounds(BaseEstimator):
    """Cross-fitted, debiased neural bounds on E[Y | do(A=a), X=x] and the CATE.

    For each fold k, divergence d and sign (upper bound of ``y`` and of ``-y``) a network maps
    covariates to the dual variables :math:`(\\lambda(a,x), u(a,x))` of both arms. All
    ``K x D x 2`` networks are trained jointly in one batched full-batch model on the debiased
    amortised risk

    .. math::

        \\ell_{db} = \\lambda_A [B_f(\\hat e_A) + g^*((y - u_A)/\\lambda_A)] + u_A
        + \\sum_a \\hat e_a \\lambda_a B_f'(\\hat e_a)(1\\{A=a\\} - \\hat e_a),

    with out-of-fold propensities :math:`\\hat e`. Pseudo-outcomes :math:`g^*(T)` are regressed
    on covariates per arm, and the bound at x is
    :math:`\\lambda(B_f(\\hat e_a(x)) + \\hat m(a,x)) + u`, averaged over folds, clipped
    to the support ``support_`` and, with a declared or observed support, widened to contain
    the conditional Manski interval (both hold for the population bounds); inverted
    estimates are returned unchanged.

    Parameters
    ----------
    divergences : sequence of str, default=("kl", "hellinger", "chi2", "tv", "js")
    aggregation : {"intersection", "union", "kth", "adaptive"} or None, default="intersection"
    k : int, optional
    outcome_bounds : None, (lo, hi) or "observed", default=None
        Declared support (recommended). ``None`` warns (:class:`UnboundedOutcomeWarning`).
    treatment_col : int or str, optional
    propensity_model : classifier with predict_proba, optional
        Default: :class:`~sklearn.ensemble.HistGradientBoostingClassifier`.
    pseudo_outcome_model : "mlp" or regressor, default="mlp"
    cv : int, splitter or iterable, default=2
    debiased : bool, default=True
    hidden_layer_sizes : tuple of int, default=(64, 64)
    activation : {"relu", "tanh", "elu"}, default="relu"
    max_iter : int, default=500
    learning_rate : float, default=3e-3
    weight_decay : float, default=1e-4
    batch_size : "auto", default="auto"
        Full batch, except for folds longer than 131,072 rows, which take one Adam step per
        minibatch of 65,536 rows (reshuffled every pass; ``max_iter`` counts steps).
    early_stopping : bool, default=False
        Hold out a stratified (by arm) ``validation_fraction`` of each fold, evaluate every
        group's debiased risk on it every 10 steps, keep a snapshot of each group's best
        parameters and stop once no group improved by ``1e-4 * |best|`` for
        ``n_iter_no_change`` checks; every group is restored to its best snapshot. The held-out
        rows still enter the pseudo-outcome regressions and the inference.
    validation_fraction : float, default=0.2
    n_iter_no_change : int, default=10
    propensity_clip : float in (0, 0.5), default=1e-3
    domain_margin : float, default=1e-3
    domain_penalty : float, default=1e3
    dual_batching : {"all", "per_fold"}, default="all"
        "all": one batched model for every group. "per_fold": one batched model per fold,
        dispatched with joblib (``n_jobs``; on a CUDA device the folds run here one after
        another). Groups are independent and Adam is per-coordinate, so both give the same
        networks up to float rounding.
    n_jobs : int, optional
        Parallel propensity fits and, with ``dual_batching="per_fold"``, fold trainings
        (joblib; results do not depend on it).
    device : {"auto", "cpu", "cuda", "cuda:N"}, default="auto"
    dtype : {"float32", "float64"}, default="float32"
    random_state : int, RandomState or None
    verbose : int, default=0

    Attributes
    ----------
    divergences_, support_, support_source_, y_center_, y_scale_, folds_, propensity_models_,
    propensity_oof_, propensity_clipped_fraction_, dual_state_, pseudo_outcome_models_,
    outcome_models_, domain_violation_fraction_ (K, D, 2), loss_curve_ (n_iter, K, D, 2),
    validation_curve_ (n_checks, K, D, 2) or None, n_iter_, device_, fit_time_,
    averaged_bounds_, covariate_indices_, treatment_col_, n_features_in_, feature_names_in_,
    constant_outcome_ (True when ``y`` is constant and no wider support is declared: every
    bound is that constant, with a ``UserWarning``, and the dual networks take one step only).

    Notes
    -----
    See the user guide for the departures from Jung & Kang (2026): exact marginal solver, arms
    as output heads, one batched model, feasible-by-construction ``u`` under a declared
    support, domain violations kept (tangent value) and counted, IF-based averaged bounds.

    Examples
    --------
    >>> from fstat.causal import ConditionalDivergenceBounds
    >>> from fstat.datasets import make_confounded_discrete
    >>> X, y, a = make_confounded_discrete(600, random_state=0)
    >>> est = ConditionalDivergenceBounds(("kl",), outcome_bounds=(0, 4), max_iter=50,
    ...                                   hidden_layer_sizes=(8,), random_state=0,
    ...                                   device="cpu").fit(X, y, treatment=a)
    >>> est.predict(X[:2]).shape
    (2, 2)
    """

    _parameter_constraints = {
        "divergences": [tuple, list, str],
        "aggregation": [StrOptions(set(AGGREGATIONS)), None],
        "k": [Interval(Integral, 1, None, closed="left"), None],
        "outcome_bounds": [tuple, list, StrOptions({"observed"}), None],
        "treatment_col": [Integral, str, None],
        # predict_proba is checked at fit (TypeError, spec section 4)
        "propensity_model": [HasMethods(["fit"]), None],
        "pseudo_outcome_model": [StrOptions({"mlp"}), HasMethods(["fit", "predict"])],
        "cv": ["cv_object"],
        "debiased": ["boolean"],
        "hidden_layer_sizes": [tuple, list],
        "activation": [StrOptions({"relu", "tanh", "elu"})],
        "max_iter": [Interval(Integral, 1, None, closed="left")],
        "learning_rate": [Interval(Real, 0, None, closed="neither")],
        "weight_decay": [Interval(Real, 0, None, closed="left")],
        "batch_size": [StrOptions({"auto"})],
        "early_stopping": ["boolean"],
        "validation_fraction": [Interval(Real, 0, 1, closed="neither")],
        "n_iter_no_change": [Interval(Integral, 1, None, closed="left")],
        "propensity_clip": [Interval(Real, 0, 0.5, closed="neither")],
        "domain_margin": [Interval(Real, 0, None, closed="neither")],
        "domain_penalty": [Interval(Real, 0, None, closed="neither")],
        "dual_batching": [StrOptions({"all", "per_fold"})],
        "n_jobs": [Integral, None],
        "device": [str],
        "dtype": [StrOptions({"float32", "float64"})],
        "random_state": ["random_state"],
        "verbose": ["verbose"],
    }

    def __init__(self, divergences=FIVE, *, aggregation="intersection", k=None,
                 outcome_bounds=None, treatment_col=None, propensity_model=None,
                 pseudo_outcome_model="mlp", cv=2, debiased=True, hidden_layer_sizes=(64, 64),
                 activation="relu", max_iter=500, learning_rate=3e-3, weight_decay=1e-4,
                 batch_size="auto", early_stopping=False, validation_fraction=0.2,
                 n_iter_no_change=10, propensity_clip=1e-3, domain_margin=1e-3,
                 domain_penalty=1e3, dual_batching="all", n_jobs=None, device="auto",
                 dtype="float32", random_state=None, verbose=0):
        self.divergences = divergences
        self.aggregation = aggregation
        self.k = k
        self.outcome_bounds = outcome_bounds
        self.treatment_col = treatment_col
        self.propensity_model = propensity_model
        self.pseudo_outcome_model = pseudo_outcome_model
        self.cv = cv
        self.debiased = debiased
        self.hidden_layer_sizes = hidden_layer_sizes
        self.activation = activation
        self.max_iter = max_iter
        self.learning_rate = learning_rate
        self.weight_decay = weight_decay
        self.batch_size = batch_size
        self.early_stopping = early_stopping
        self.validation_fraction = validation_fraction
        self.n_iter_no_change = n_iter_no_change
        self.propensity_clip = propensity_clip
        self.domain_margin = domain_margin
        self.domain_penalty = domain_penalty
        self.dual_batching = dual_batching
        self.n_jobs = n_jobs
        self.device = device
        self.dtype = dtype
        self.random_state = random_state
        self.verbose = verbose

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.target_tags.required = True
        tags.non_deterministic = False
        return tags

    # ------------------------------------------------------------------------------------------
    # input handling
    # ------------------------------------------------------------------------------------------
    def _covariates(self, X, y, treatment, *, reset, need_y=True, need_treatment=True):
        """Validated covariates, y (or None) and treatment (or None when not needed/resolvable)."""
        if reset and (treatment is None) == (self.treatment_col is None):
            raise ValueError(
                "pass treatment= to fit or set treatment_col, not both/neither. With "
                "metadata routing, use set_fit_request(treatment=True)."
            )
        check_dense(X)
        # float64 covariates: the nuisance models of float32 input would otherwise fit in
        # float32, and the bounds amplify their rounding (about 8e-8 -> 8e-3 measured)
        if need_y:
            Xv, y = validate_data(self, X, y, reset=reset, y_numeric=True, dtype=np.float64,
                                  order="C")
            y = check_outcome_y(y)  # y_numeric converts object arrays only, not strings
        else:
            Xv = validate_data(self, X, reset=reset, dtype=np.float64, order="C")
        if reset:
            col = (None if treatment is not None
                   else column_index(X, self.treatment_col, Xv.shape[1]))
        else:
            col = self.treatment_col_
            if col is not None and treatment is not None:
                raise ValueError(
                    "treatment= was passed but the estimator reads the treatment from column "
                    f"treatment_col={self.treatment_col!r}; pass one of them, not both."
                )
        if col is not None:
            if treatment is None and need_treatment:
                treatment = Xv[:, col]
            cov, idx = split_treatment(Xv, col)
        else:
            cov, idx = Xv, np.arange(Xv.shape[1])
        if reset:
            self.treatment_col_ = col
            self.covariate_indices_ = idx
        if cov.shape[1] == 0:
            raise ValueError(
                "no covariates are left after removing the treatment column; use "
                "MarginalDivergenceBounds for bounds without covariates."
            )
        a = None
        if need_treatment and treatment is not None:
            a = check_treatment(treatment, n_samples=Xv.shape[0])
        return cov, y, a

    def _folds(self, a, n):
        cv = self.cv
        if isinstance(cv, Integral):
            cv = StratifiedKFold(int(cv), shuffle=True, random_state=self._seeds[0] % (2**31))
        folds = [(np.asarray(tr), np.asarray(te))
                 for tr, te in check_cv(cv, classifier=True).split(np.zeros((n, 1)), a)]
        if len(folds) < 2:
            raise ValueError("cv must produce at least 2 folds.")
        if len(np.unique(a)) < 2:
            raise ValueError(f"treatment has a single arm (all {int(a[0])}); bounds on both "
                             "arms need samples of each.")
        for k, (tr, te) in enumerate(folds):
            if len(np.unique(a[tr])) < 2:
                raise ValueError(
                    f"fold {k}: the training part lacks a treatment arm; use fewer folds (cv)."
                )
            if min(np.sum(a[te] == 0), np.sum(a[te] == 1)) < 2:
                raise ValueError(
                    f"fold {k}: the test part has fewer than 2 samples of an arm; use fewer "
                    "folds (cv)."
                )
        return folds

    # ------------------------------------------------------------------------------------------
    # fit
    # ------------------------------------------------------------------------------------------
    @_fit_context(prefer_skip_nested_validation=True)
    def fit(self, X, y, treatment=None, sample_weight=None):
        """Fit propensities, the batched dual networks and the pseudo-outcome regressions.

        Parameters
        ----------
        X : array-like or DataFrame of shape (n, d)
        y : array-like of shape (n,)
        treatment : array-like of shape (n,), optional
            Binary treatment; alternatively set ``treatment_col``.
        sample_weight : array-like of shape (n,), optional
            Frequency weights: a weight of k counts the row k times, and the standard
            errors use n = sum of the weights (weights scaled to sum to 1 give the SEs of a
            single observation; rescale survey weights to sum to the number of rows).

        Returns
        -------
        self
        """
        times = {}
        start = time.perf_counter()
        names = check_divergences(self.divergences, self.aggregation, self.k)
        hidden = check_layer_sizes(self.hidden_layer_sizes, allow_empty=False)
        try:
            device = resolve_device(self.device)
        except ValueError as exc:  # an unknown device, or CUDA requested but not available
            raise InvalidParameterError(str(exc)) from None
        dtype = parse_dtype(self.dtype)
        for name in names:
            if get_divergence(name).numeric:
                raise ValueError(
                    f"divergence {name!r} has no closed-form torch conjugate; the conditional "
                    "estimator needs one."
                )
        outcome = outcome_name(y)
        cov, y, a = self._covariates(X, y, treatment, reset=True)
        n = y.size
        w = check_sample_weight(sample_weight, y)
        arm_weights(a, w)
        w_or_none = None if sample_weight is None else w
        lo, hi, source = check_outcome_bounds(self.outcome_bounds, y, w)
        rng = np.random.RandomState(self.random_state) if not isinstance(
            self.random_state, np.random.RandomState) else self.random_state
        self._seeds = [int(s) for s in rng.randint(0, 2**31 - 1, size=3)]
        self.divergences_ = names
        self.support_ = (lo, hi)
        self.support_source_ = source
        self.constant_outcome_ = not hi > lo
        if self.constant_outcome_:
            warn_constant_outcome(lo, " (the dual networks take a single step)")
        self.device_ = str(device)
        declared = source != "sample"
        if declared:
            c0, s0 = (lo + hi) / 2.0, (hi - lo) / 2.0
        elif w_or_none is None:
            c0, s0 = float(np.median(y)), float(np.std(y))
        else:  # frequency weights: the median and sd of the repeated sample
            c0 = weighted_median(y, w)
            s0 = float(np.sqrt(np.average((y - np.average(y, weights=w)) ** 2, weights=w)))
        if not s0 > 0:
            s0 = 1.0
        self.y_center_, self.y_scale_ = c0, s0
        folds = self._folds(a, n)
        self.folds_ = folds
        times["folds"] = time.perf_counter() - start

        tick = time.perf_counter()
        n_folds = len(folds)
        prop_seeds = [int(s) for s in np.random.RandomState(self._seeds[1]).randint(
            0, 2**31 - 1, size=n_folds)]
        models, e_oof, clipped = fit_propensities(
            self.propensity_model, cov, a, w_or_none, folds, prop_seeds, self.propensity_clip,
            self.n_jobs)
        self.propensity_models_ = models
        self.propensity_oof_ = e_oof
        self.propensity_clipped_fraction_ = clipped
        times["propensity"] = time.perf_counter() - tick

        tick = time.perf_counter()
        layout = self._layout(names, n_folds)
        ytil = (y - c0) / s0
        data = self._pad(cov, ytil, a, e_oof, w, folds)
        self._train_dual(data, layout, names, declared, hidden, dtype, device)
        times["dual"] = time.perf_counter() - tick

        tick = time.perf_counter()
        self._fit_pseudo(data, layout, names, declared, cov, ytil, a, w_or_none, folds, device,
                         dtype)
        times["pseudo_outcomes"] = time.perf_counter() - tick
        tick = time.perf_counter()
        self.averaged_bounds_ = self._one_step(cov, y, a, w, outcome)
        self._averaged_plugin = self._plugin(cov, w, outcome)
        times["inference"] = time.perf_counter() - tick
        times["total"] = time.perf_counter() - start
        self.fit_time_ = times
        if self.verbose >= 2:
            for stage, sec in times.items():
                print(f"[ConditionalDivergenceBounds] {stage}: {sec:.2f} s")
        return self

    @staticmethod
    def _layout(names, n_folds):
        """Groups ordered (divergence, fold, sign): each divergence is a contiguous slice."""
        div_idx, fold_idx, sign = [], [], []
        for d in range(len(names)):
            for k in range(n_folds):
                for s in (1.0, -1.0):
                    div_idx.append(d)
                    fold_idx.append(k)
                    sign.append(s)
        return {"divergence": np.array(div_idx), "fold": np.array(fold_idx),
                "sign": np.array(sign), "names": names, "n_folds": n_folds}

    def _pad(self, cov, ytil, a, e, w, folds):
        n_folds, d = len(folds), cov.shape[1]
        length = max(len(te) for _, te in folds)
        x = np.zeros((n_folds, length, d))
        yy, ee, ww = np.zeros((n_folds, length)), np.full((n_folds, length), 0.5), np.zeros(
            (n_folds, length))
        aa = np.zeros((n_folds, length), dtype=np.int64)
        means, scales = np.zeros((n_folds, d)), np.ones((n_folds, d))
        for k, (_, te) in enumerate(folds):
            wk = w[te] / w[te].sum()
            mean = wk @ cov[te]
            sd = np.sqrt(wk @ (cov[te] - mean) ** 2)
            sd[sd == 0] = 1.0
            means[k], scales[k] = mean, sd
            m = len(te)
            x[k, :m] = (cov[te] - mean) / sd
            yy[k, :m], aa[k, :m], ee[k, :m], ww[k, :m] = ytil[te], a[te], e[te], w[te]
        self._x_mean, self._x_scale = means, scales
        return {"x": x, "y": yy, "a": aa, "e": ee, "w": ww}

    def _group_f0(self, names, layout):
        return np.array([get_divergence(names[d]).f0 for d in layout["divergence"]])

    def _dual_outputs(self, net, x, names, declared, layout):
        """(lam, u) of shape (G, n, 2) from the network."""
        return dual_outputs(net(x), self._group_f0(names, layout), self.domain_margin, declared)

    def _validation_rows(self, data, n_folds):
        """Stratified (by arm) early-stopping rows of each fold, (K, L) bool, or None."""
        if not self.early_stopping:
            return None
        val = np.zeros(data["w"].shape, dtype=bool)
        for k in range(n_folds):
            real = np.flatnonzero(data["w"][k] > 0)
            _, rows = validation_split(len(real), self.validation_fraction,
                                       group_generator(self._seeds[2], k, "validation"),
                                       stratify=data["a"][k, real], min_validation=2)
            val[k, real[rows]] = True
        return val

    def _train_dual(self, data, layout, names, declared, hidden, dtype, device):
        n_folds = layout["n_folds"]
        fold = layout["fold"]
        val = self._validation_rows(data, n_folds)
        group_names = [names[d] for d in layout["divergence"]]
        keys = [(int(k), names[d]) for d, k in zip(layout["divergence"], fold)]
        options = dict(seed=self._seeds[2], declared=declared, hidden=hidden,
                       activation=self.activation, dtype=str(dtype).replace("torch.", ""),
                       max_iter=1 if self.constant_outcome_ else self.max_iter,
                       learning_rate=self.learning_rate,
                       weight_decay=self.weight_decay, debiased=self.debiased,
                       margin=self.domain_margin, penalty=self.domain_penalty,
                       n_iter_no_change=self.n_iter_no_change)

        def task(groups):
            """Inputs of the groups ``groups``, trimmed after their folds' last row of
            positive weight (zero-weight rows inside a fold are kept: they weigh nothing)."""
            length = int(max(np.flatnonzero(data["w"][fold[gi]] > 0)[-1] + 1 for gi in groups))
            part = {key: data[key][fold[groups]][:, :length] for key in ("x", "y", "a", "e", "w")}
            part["y"] = part["y"] * layout["sign"][groups][:, None]
            return dict(data=part, names=[group_names[gi] for gi in groups],
                        keys=[keys[gi] for gi in groups],
                        validation=None if val is None else val[fold[groups]][:, :length])

        if self.dual_batching == "all":
            parts = [np.arange(len(fold))]
            results = [fit_dual_groups(**task(parts[0]), device=str(device),
                                       verbose=self.verbose, **options)]
        else:
            parts = [np.flatnonzero(fold == k) for k in range(n_folds)]
            bars = [dict(verbose=self.verbose, desc=f"dual networks, fold {k + 1}/{n_folds}")
                    for k in range(n_folds)]
            if device.type == "cuda":  # one device: the folds run here one after another
                results = [fit_dual_groups(**task(p), device=str(device), **bar, **options)
                           for p, bar in zip(parts, bars)]
            else:
                results = Parallel(n_jobs=self.n_jobs)(
                    delayed(fit_dual_groups)(**task(p), device="cpu", **bar, **options)
                    for p, bar in zip(parts, bars))
        self._store_dual(results, parts, layout, names, declared, hidden)

    def _store_dual(self, results, parts, layout, names, declared, hidden):
        """Assemble per-part training results into the (divergence, fold, sign) layout."""
        n_groups, n_folds = len(layout["fold"]), layout["n_folds"]
        n_iter = max(r["n_iter"] for r in results)
        curve = torch.full((n_iter, n_groups), math.nan, dtype=torch.float64)
        state = {}
        for res, groups in zip(results, parts):
            c = res["curve"]
            curve[: c.shape[0], groups] = c
            for key, value in res["state"].items():
                if key not in state:
                    state[key] = torch.empty((n_groups, *value.shape[1:]), dtype=torch.float64)
                state[key][groups] = value
        for res, groups in zip(results, parts):
            bad = np.flatnonzero(~torch.isfinite(res["curve"]).all(dim=0).numpy())
            if bad.size:
                gi = groups[bad[0]]
                raise RuntimeError(
                    f"non-finite dual loss for divergence {names[layout['divergence'][gi]]!r}, "
                    f"fold {layout['fold'][gi]}."
                )
        n_div = len(names)
        self.loss_curve_ = curve.reshape(-1, n_div, n_folds, 2).permute(0, 2, 1, 3).numpy()
        self.n_iter_ = int(n_iter)
        if results[0]["validation"] is None:
            self.validation_curve_ = None
        else:
            n_checks = max(r["validation"].shape[0] for r in results)
            val = torch.full((n_checks, n_groups), math.nan, dtype=torch.float64)
            for res, groups in zip(results, parts):
                val[: res["validation"].shape[0], groups] = res["validation"]
            self.validation_curve_ = val.reshape(-1, n_div, n_folds, 2).permute(
                0, 2, 1, 3).numpy()
        self.dual_state_ = {"state_dict": state, "layout": layout, "declared": declared,
                            "hidden": hidden, "x_mean": self._x_mean.copy(),
                            "x_scale": self._x_scale.copy()}

    def _fit_pseudo(self, data, layout, names, declared, cov, ytil, a, w, folds, device, dtype):
        n_folds = layout["n_folds"]
        fold = layout["fold"]
        g = {"a": torch.as_tensor(data["a"][fold], device=device),
             "w": torch.as_tensor(data["w"][fold], dtype=torch.float64, device=device),
             "y": torch.as_tensor(data["y"][fold] * layout["sign"][:, None],
                                  dtype=torch.float64, device=device)}
        # float64 covariates (g["x"] is rounded to the network dtype), as in prediction
        x64 = torch.as_tensor(data["x"], dtype=torch.float64, device=device)
        x64g = x64[torch.as_tensor(fold, device=device)]
        with torch.no_grad():
            net64 = self._net(torch.float64, device)
            lam, u = self._dual_outputs(net64, x64g, names, declared, layout)
            a_idx = g["a"].unsqueeze(-1)
            t = (g["y"] - u.gather(2, a_idx).squeeze(-1)) / lam.gather(2, a_idx).squeeze(-1)
            z_parts, v_parts = [], []
            for d, name in enumerate(names):
                sl = slice(2 * n_folds * d, 2 * n_folds * (d + 1))
                div = get_divergence(name)
                z, viol = _tangent_conjugate(t[sl], div, div.f0 - self.domain_margin)
                z_parts.append(z)
                v_parts.append(viol)
            z = torch.cat(z_parts)
            viol = torch.cat(v_parts)
        real = g["w"] > 0
        frac = ((viol & real).sum(dim=1).double() / real.sum(dim=1).double()).cpu().numpy()
        self.domain_violation_fraction_ = frac.reshape(len(names), n_folds, 2).transpose(1, 0, 2)
        worst = float(frac.max())
        if worst > 0.01:
            gi = int(np.argmax(frac))
            warn_user(
                f"{worst:.1%} of the samples of group (fold {layout['fold'][gi]}, divergence "
                f"{names[layout['divergence'][gi]]!r}, sign {int(layout['sign'][gi]):+d}) fall "
                "outside the conjugate's domain; they are kept with the tangent value. Declare "
                "outcome_bounds or increase max_iter.",
                DomainViolationWarning,
            )
        # pseudo-outcome regressions: G dual groups + K outcome-mean groups
        inputs = torch.cat([x64g, x64])
        targets = torch.cat([z, torch.as_tensor(data["y"], dtype=torch.float64, device=device)])
        arms = torch.cat([g["a"], torch.as_tensor(data["a"], device=device)])
        weights = torch.cat([g["w"], torch.as_tensor(data["w"], dtype=torch.float64,
                                                     device=device)])
        n_groups = len(fold)
        # seeds by (fold, divergence), not the sign or the group's position: refitting on -y
        # swaps the sign groups exactly and the order of `divergences` does not matter
        keys = [(int(k), names[d]) for d, k in zip(layout["divergence"], fold)]
        keys += [(int(k), "outcome-mean") for k in range(n_folds)]
        if isinstance(self.pseudo_outcome_model, str):
            fitted = fit_batched_regression(inputs, targets, arms, weights,
                                            seed=self._seeds[2] + 7, keys=keys, dtype=dtype,
                                            device=device, activation="relu")
            self.pseudo_outcome_models_ = select_groups(fitted, slice(0, n_groups))
            self.outcome_models_ = select_groups(fitted, slice(n_groups, None))
            return
        x_np, t_np = inputs.cpu().numpy(), targets.cpu().numpy()
        a_np, w_np = arms.cpu().numpy(), weights.cpu().numpy()
        pseudo, outcome = {}, {}
        for gi in range(inputs.shape[0]):
            for arm in (0, 1):
                rows = (w_np[gi] > 0) & (a_np[gi] == arm)
                seed = group_seed(self._seeds[2], *keys[gi], arm) % (2**31 - 1)
                model = seeded_clone(self.pseudo_outcome_model, seed)
                _fit_with_weight(model, x_np[gi][rows], t_np[gi][rows],
                                 None if w is None else w_np[gi][rows])
                if gi < n_groups:
                    key = (int(fold[gi]), names[layout["divergence"][gi]],
                           int(layout["sign"][gi]), arm)
                    pseudo[key] = model
                else:
                    outcome[(gi - n_groups, arm)] = model
        self.pseudo_outcome_models_ = pseudo
        self.outcome_models_ = outcome

    def _net(self, dtype, device="cpu"):
        st = self.dual_state_
        layout = st["layout"]
        n_in = st["x_mean"].shape[1]
        net = BatchedMLP(len(layout["fold"]), n_in, st["hidden"], 4, None,
                         activation=self.activation, dtype=torch.float64)
        net.load_state_dict(st["state_dict"])
        return net.to(device=device, dtype=dtype)

    # ------------------------------------------------------------------------------------------
    # prediction internals (float64, CPU)
    # ------------------------------------------------------------------------------------------
    def _fold_predictions(self, cov):
        """Per fold: lam, u, m (G, n, 2) at every row, e1 (K, n), outcome mean (K, n, 2)."""
        st = self.dual_state_
        layout = st["layout"]
        n_folds = layout["n_folds"]
        xs = np.stack([(cov - st["x_mean"][k]) / st["x_scale"][k] for k in range(n_folds)])
        x_all = torch.as_tensor(xs, dtype=torch.float64)
        xg = x_all[layout["fold"]]
        with torch.no_grad():
            lam, u = self._dual_outputs(self._net(torch.float64), xg, self.divergences_,
                                        st["declared"], layout)
            if isinstance(self.pseudo_outcome_model, str):
                reg = predict_batched_regression(self.pseudo_outcome_models_, xg)
                mu = predict_batched_regression(self.outcome_models_, x_all)
            else:
                reg = self._predict_regressors(self.pseudo_outcome_models_, xg, layout)
                mu = self._predict_regressors(self.outcome_models_, x_all, None)
        e1 = np.stack([positive_class_proba(m, cov) for m in self.propensity_models_])
        e1 = np.clip(e1, self.propensity_clip, 1 - self.propensity_clip)
        return lam.numpy(), u.numpy(), reg.numpy(), e1, mu.numpy()

    def _predict_regressors(self, models, inputs, layout):
        """(groups, m, 2) predictions of fitted sklearn regressors keyed as in fit."""
        out = torch.empty(inputs.shape[0], inputs.shape[1], 2, dtype=torch.float64)
        for gi in range(inputs.shape[0]):
            for arm in (0, 1):
                if layout is None:
                    key = (gi, arm)
                else:
                    key = (int(layout["fold"][gi]), self.divergences_[layout["divergence"][gi]],
                           int(layout["sign"][gi]), arm)
                out[gi, :, arm] = torch.as_tensor(models[key].predict(inputs[gi].numpy()),
                                                  dtype=torch.float64)
        return out

    def _theta(self, cov):
        """Per-fold plug-in theta (G, n, 2) in standardised units, plus the raw pieces."""
        lam, u, m, e1, mu = self._fold_predictions(cov)
        layout = self.dual_state_["layout"]
        e = np.stack([1.0 - e1, e1], axis=-1)  # (K, n, 2)
        rad = np.empty_like(lam)
        for gi, (d, k) in enumerate(zip(layout["divergence"], layout["fold"])):
            rad[gi] = get_divergence(self.divergences_[d]).radius(e[k])
        theta = lam * (rad + m) + u
        if self.constant_outcome_:  # the law of y is one point: so is every ball around it
            theta = np.zeros_like(theta)
        return theta, (lam, u, m, e, mu)

    def _bounds_all(self, cov):
        """Arm bounds (n, D, 2 arms, 2) in original units, averaged over folds; each interval
        (unless inverted) clipped to the support and, with a fixed support, widened to contain
        the Manski interval."""
        theta, (_, _, _, e, mu) = self._theta(cov)
        layout = self.dual_state_["layout"]
        n_div, n_folds = len(self.divergences_), layout["n_folds"]
        theta = theta.reshape(n_div, n_folds, 2, cov.shape[0], 2).mean(axis=1)  # (D, s, n, a)
        c0, s0 = self.y_center_, self.y_scale_
        upper = c0 + s0 * theta[:, 0]
        lower = c0 - s0 * theta[:, 1]
        out = np.stack([lower, upper], axis=-1)  # (D, n, a, 2)
        out = np.transpose(out, (1, 0, 2, 3))
        _check_finite(out)
        # Population facts the plug-in can miss: a bound is the mean of a law on the support
        # (declared, or the training range), and with a support S fixed for every x
        # ("declared" or "observed") each f-ball holds every law on S compatible with the
        # data, so the interval contains the Manski interval on S. Without one ("sample")
        # the duals learn a local support inside the training range, where the Manski
        # interval on the whole range is no reference. Inverted estimates are returned
        # unchanged (and warned about by the callers).
        repaired = np.clip(out, *self.support_)
        if self.support_source_ != "sample":
            manski = self._manski_from(e, mu)[:, None]  # (n, 1, a, 2)
            repaired[..., 0] = np.minimum(repaired[..., 0], manski[..., 0])
            repaired[..., 1] = np.maximum(repaired[..., 1], manski[..., 1])
        return np.where((out[..., 0] > out[..., 1])[..., None], out, repaired)

    def _check_X(self, X):
        check_is_fitted(self)
        cov, _, _ = self._covariates(X, None, None, reset=False, need_y=False,
                                     need_treatment=False)
        return cov

    def _aggregate(self, lower, upper, from_inverted=None):
        """Aggregate (n, D) bounds; ``from_inverted`` (n, D) marks intervals built from an
        inverted one, which also marks their row of the aggregate."""
        if self.aggregation is None:
            return _warn_inverted(np.stack([lower, upper], axis=-1), from_inverted)
        lo, up, _ = aggregate_bounds(lower, upper, method=self.aggregation, k=self.k)
        rows = None if from_inverted is None else from_inverted.any(axis=1)
        return _warn_inverted(np.column_stack([lo, up]), rows)

    # ------------------------------------------------------------------------------------------
    # public prediction API
    # ------------------------------------------------------------------------------------------
    def predict(self, X):
        """CATE bounds ``[lower(1) - upper(0), upper(1) - lower(0)]`` at each row of ``X``.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Covariates (with the treatment column when ``treatment_col`` is set; it is
            ignored).

        Returns
        -------
        ndarray of shape (n_samples, 2), or (n_samples, D, 2) with ``aggregation=None``
            Aggregated ``[lower, upper]``, or one row per fitted divergence, from the arm
            intervals of :meth:`predict_outcome_bounds` (unless inverted: clipped to
            ``support_`` and, with a declared or observed support, widened to the Manski
            interval), so an effect interval lies in ``[lo - hi, hi - lo]`` when both arm
            intervals are valid. An effect interval built from an inverted arm interval
            counts as inverted in the :class:`InvertedBoundsWarning` (and so does an
            aggregated row built from one).
        """
        b = self._bounds_all(self._check_X(X))
        lower = b[:, :, 1, 0] - b[:, :, 0, 1]
        upper = b[:, :, 1, 1] - b[:, :, 0, 0]
        # an inverted arm interval (returned unchanged) can hide in the difference with a
        # repaired one: the effect built from it is reported as inverted
        return self._aggregate(lower, upper, (b[..., 0] > b[..., 1]).any(axis=-1))

    def predict_outcome_bounds(self, X, arm=1, *, divergence=None):
        """Bounds on ``E[y | do(arm), x]`` at each row of ``X``.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
        arm : {0, 1}, default=1
        divergence : str, "all" or None, default=None
            A fitted divergence's name, ``"all"`` for every fitted divergence, or None for
            the aggregate.

        Returns
        -------
        ndarray of shape (n_samples, 2), or (n_samples, D, 2) with ``divergence="all"``
            ``[lower, upper]``. The plug-in interval
            :math:`\\lambda(B_f(\\hat e_a(x)) + \\hat m(a,x)) + u` (averaged over folds)
            is repaired with two facts about the population bounds (fstat's addition to
            the specification's plug-in): each is the mean of a law on the support, so an
            end beyond ``support_`` is moved to it (with ``"observed"`` or None,
            ``support_`` is the training range), and with a support fixed for every x
            (declared or ``"observed"``) each f-ball holds every law on it compatible with
            the data, so the interval is widened to contain the conditional Manski interval
            of :meth:`predict_manski` (with None the duals learn a local support inside the
            training range, and the Manski interval on the whole range is no reference).
            Fitted networks and pseudo-outcome regressions extrapolate, and both repairs
            only move an estimate towards the set that holds the population interval. An
            inverted estimate (lower > upper) is returned unchanged with an
            :class:`InvertedBoundsWarning`. The one-step averaged bounds are not repaired
            (their correction terms need the plug-in as fitted).
        """
        arm = _check_arm(arm)
        b = self._bounds_all(self._check_X(X))[:, :, arm]
        if divergence == "all":
            return _warn_inverted(b)
        if divergence is not None:
            name = get_divergence(divergence).name
            if name not in self.divergences_:
                raise ValueError(f"divergence {divergence!r} was not fitted; fitted: "
                                 f"{self.divergences_}.")
            return _warn_inverted(b[:, self.divergences_.index(name)])
        return self._aggregate(b[..., 0], b[..., 1], b[..., 0] > b[..., 1])

    def predict_manski(self, X, arm=None):
        """Conditional Manski bounds on an arm's mean (arm 0/1) or on the effect (None).

        :math:`\\bar e_a(x) \\hat\\mu(a, x) + (1 - \\bar e_a(x)) [lo, hi]`, with the
        fold-averaged propensity and outcome regression; the fitted mean
        :math:`\\hat\\mu(a, x)` is clipped to ``support_`` (it estimates a mean of outcomes
        in the support), so each arm's interval lies in the support.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
        arm : {0, 1} or None, default=None

        Returns
        -------
        ndarray of shape (n_samples, 2)
            ``[lower, upper]`` for the arm's mean, or for the effect with ``arm=None``.
        """
        arm = None if arm is None else _check_arm(arm, allow_none=True)
        arms = self._manski_arms(self._check_X(X))
        if arm is not None:
            return arms[:, arm].copy()
        return np.column_stack([arms[:, 1, 0] - arms[:, 0, 1], arms[:, 1, 1] - arms[:, 0, 0]])

    def _manski_arms(self, cov):
        """Conditional Manski bounds (n, 2 arms, [lower, upper])."""
        _, (_, _, _, e, mu) = self._theta(cov)
        return self._manski_from(e, mu)

    def _manski_from(self, e, mu):
        """Manski bounds (n, 2 arms, [lower, upper]) from the fold propensities ``e`` (K, n, 2)
        and outcome means ``mu`` (K, n, 2, standardised units) of :meth:`_theta`."""
        lo, hi = self.support_
        # E[y | a, x] lies in the support: a fitted mean beyond an end is moved to it
        mean = np.clip((self.y_center_ + self.y_scale_ * mu).mean(axis=0), lo, hi)  # (n, 2)
        ebar = e.mean(axis=0)
        return _check_finite(np.stack([ebar * mean + (1 - ebar) * lo,
                                       ebar * mean + (1 - ebar) * hi], axis=-1))

    def predict_propensity(self, X):
        """Fold-averaged clipped propensity e_1(x)."""
        cov = self._check_X(X)
        e1 = np.stack([positive_class_proba(m, cov) for m in self.propensity_models_])
        return np.clip(e1, self.propensity_clip, 1 - self.propensity_clip).mean(axis=0)

    def average_bounds(self, X=None, y=None, treatment=None, *, method="one-step"):
        """Averaged bounds on the training sample (X None) or on new covariates.

        ``method="one-step"`` gives the one-step estimates with influence-function standard
        errors. On the training sample they are cross-fitted (each sample uses the models of
        the folds that did not train on it, with its own out-of-fold propensity). On new data
        (``X``, ``y`` and the treatment, resolved as in :meth:`score`) no model saw the
        samples, so each sample averages every fold's models, with the fold-averaged
        propensity of :meth:`predict_propensity`. ``method="plugin"`` averages the
        conditional bounds (and conditional Manski bounds) over the rows of ``X`` (``y`` and
        the treatment are not used), without standard errors (the ``se_*`` columns are
        NaN). Both return an :class:`AveragedBounds`.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features), optional
            New data, with the treatment column when ``treatment_col`` is set; None for the
            training sample (cached at ``fit``).
        y : array-like of shape (n_samples,), optional
            Outcomes of the new data (one-step only): inside a declared ``outcome_bounds``
            (ValueError otherwise); beyond an ``"observed"`` training range they warn.
        treatment : array-like of shape (n_samples,), optional
            Binary treatment of the new data (one-step only), unless ``treatment_col`` is set.
        method : {"one-step", "plugin"}, default="one-step"

        Returns
        -------
        AveragedBounds

        Notes
        -----
        The one-step estimate adds :math:`\\lambda_j (1\\{A=a\\}/e_a)(g^*(T) - m_j)` for
        each sample under the duals of the other folds ``j``. When fold ``j`` saw no
        sample at an end of the declared support in some cell, its dual sits at the
        boundary and a held-out sample at that end has :math:`T \\approx f(0) - \\delta`
        (``domain_margin``). For Hellinger :math:`g^*(f(0) - \\delta) = (1 - 2\\delta) /
        (4\\delta) \\approx 250`, so a few such samples can dominate the estimate and its
        standard error (a finite-sample effect, not a domain violation). A larger
        ``domain_margin``, more data per cell or fewer folds reduce it; see the user guide
        (Inference).
        """
        check_is_fitted(self)
        if method not in ("one-step", "plugin"):
            raise ValueError(f"method must be 'one-step' or 'plugin'; got {method!r}.")
        if X is None:
            if y is not None or treatment is not None:
                raise ValueError("y and treatment belong to new data: pass X with them "
                                 "(X=None means the training sample).")
            return self.averaged_bounds_ if method == "one-step" else self._averaged_plugin
        if method == "plugin":
            return self._plugin(self._check_X(X), None, self.averaged_bounds_.header["Outcome"])
        if y is None:
            raise ValueError("one-step averaged bounds on new data need the outcome: pass y "
                             "(and the treatment), or method='plugin' for covariates alone.")
        cov, y_checked, a = self._held_out(X, y, treatment,
                                           "one-step averaged bounds on new data need")
        return self._one_step(cov, y_checked, a, np.ones(y_checked.size), outcome_name(y),
                              new_data=True)

    def _support_text(self):
        lo, hi = self.support_
        return f"[{lo:.4g}, {hi:.4g}] ({self.support_source_})"

    def _plugin(self, cov, w=None, outcome="y"):
        """Plug-in averaged bounds: weighted means of the conditional bounds (no SEs)."""
        b = self._bounds_all(cov)  # (n, D, arm, [lo, up])
        man = self._manski_arms(cov)
        wn = np.full(cov.shape[0], 1.0 / cov.shape[0]) if w is None else w / w.sum()
        per_target = {"Y(0)": (b[:, :, 0], man[:, 0]), "Y(1)": (b[:, :, 1], man[:, 1]),
                      "effect": (np.stack([b[:, :, 1, 0] - b[:, :, 0, 1],
                                           b[:, :, 1, 1] - b[:, :, 0, 0]], axis=-1),
                                 np.column_stack([man[:, 1, 0] - man[:, 0, 1],
                                                  man[:, 1, 1] - man[:, 0, 0]]))}
        values, ses, sources = {}, {}, list(self.divergences_)
        for target, (bounds, manski) in per_target.items():
            est = np.tensordot(wn, bounds, axes=(0, 0))  # (D, 2)
            rows = [tuple(r) for r in est]
            if self.aggregation is not None:
                a_lo, a_up, _ = aggregate_bounds(est[:, 0], est[:, 1],
                                                 method=self.aggregation, k=self.k)
                rows.append((float(a_lo), float(a_up)))
            rows.append(tuple(wn @ manski))
            values[target] = np.array(rows)
            ses[target] = np.full((len(rows), 2), np.nan)
        if self.aggregation is not None:
            sources.append("aggregate")
        sources.append("manski")
        return AveragedBounds(build_table(values, ses, sources), n_samples=float(cov.shape[0]
                              if w is None else w.sum()),
                              method="plug-in (no standard errors)",
                              aggregation=self.aggregation, divergences=self.divergences_,
                              header={"Outcome": outcome,
                                      "Folds": self.dual_state_["layout"]["n_folds"],
                                      "Support": self._support_text()})

    def summary(self, alpha=0.05, *, kind="outer"):
        """statsmodels Summary of the averaged bounds (one-step, fstat extension).

        See :meth:`average_bounds` for the caveat on Hellinger standard errors driven by
        held-out samples at the edge of the declared support.
        """
        check_is_fitted(self)
        return self.averaged_bounds_.summary(alpha, kind)

    def _held_out(self, X, y, treatment, caller):
        """Validated new covariates, y (checked against the fit's support by
        ``check_scored_y``) and treatment, for ``score`` and the one-step bounds on new data;
        ``caller`` opens the error message."""
        cov, y, a = self._covariates(X, y, treatment, reset=False)
        if a is None:
            raise ValueError(
                f"{caller} the treatment: pass treatment= (with metadata routing, "
                "set_score_request(treatment=True) for score) or set treatment_col."
            )
        check_scored_y(self, y)
        return cov, y, a

    def score(self, X, y, treatment=None, sample_weight=None):
        """Minus the held-out debiased dual risk (both signs), averaged over divergences.

        Population meaning: minus the mean interval width (higher is better).
        """
        check_is_fitted(self)
        cov, y, a = self._held_out(X, y, treatment, "score needs")
        if sample_weight is not None:
            check_sample_weight(sample_weight, y)
        if self.constant_outcome_:  # every fitted interval is the constant: width 0
            return 0.0
        lam, u, _, e1, _ = self._fold_predictions(cov)
        layout = self.dual_state_["layout"]
        ytil = (y - self.y_center_) / self.y_scale_
        total = 0.0
        for gi, (d, k, s) in enumerate(zip(layout["divergence"], layout["fold"],
                                           layout["sign"])):
            total += dual_risk(s * ytil, a, e1[k], lam[gi], u[gi],
                               divergence=self.divergences_[d], debiased=True,
                               sample_weight=sample_weight,
                               surrogate=(self.domain_margin, self.domain_penalty))
        total /= layout["n_folds"]
        return -float(total) * self.y_scale_ / len(self.divergences_)

    # ------------------------------------------------------------------------------------------
    # one-step averaged bounds (fstat extension)
    # ------------------------------------------------------------------------------------------
    def _one_step(self, cov, y, a, w, outcome="y", *, new_data=False):
        """One-step averaged bounds: cross-fitted on the training sample; with
        ``new_data``, every fold's models and the fold-averaged propensity for each sample."""
        _, (lam, u, m, e_all, _) = self._theta(cov)
        layout = self.dual_state_["layout"]
        names, n_folds = self.divergences_, layout["n_folds"]
        n = y.size
        rows = np.arange(n)
        fold_of = np.full(n, -1)  # new data: no fold trained on any sample
        if new_data:
            e_own = e_all.mean(axis=0)  # (n, 2), as predict_propensity
        else:
            for k, (_, te) in enumerate(self.folds_):
                fold_of[te] = k
            e_own = e_all[fold_of, rows]  # (n, 2): each sample's own out-of-fold propensity
        ytil = (y - self.y_center_) / self.y_scale_
        onehot = np.column_stack([a == 0, a == 1]).astype(float)
        psi = np.zeros((len(names), 2, n, 2))  # divergence, sign, sample, arm
        n_tangent = n_evaluated = 0  # cross-fold uses outside a fold's domain (tangent)
        for d, name in enumerate(names):
            div = get_divergence(name)
            t0 = div.f0 - self.domain_margin
            rad, drad = div.radius(e_own), div.radius_derivative(e_own)
            for s_i, s in enumerate((1.0, -1.0)):
                acc = np.zeros((n, 2))
                cnt = np.zeros(n)
                for k in range(n_folds):
                    gi = (d * n_folds + k) * 2 + s_i
                    other = fold_of != k  # fold k's models were never trained on these
                    lam_k, u_k, m_k = lam[gi], u[gi], m[gi]
                    t = (s * ytil - u_k[rows, a]) / lam_k[rows, a]
                    gz, outside = _tangent_conjugate(torch.as_tensor(t), div, t0)
                    gz = gz.numpy()
                    n_tangent += int(outside.numpy()[other].sum())
                    n_evaluated += int(other.sum())
                    resid = np.zeros((n, 2))
                    resid[rows, a] = gz - m_k[rows, a]
                    val = (lam_k * (rad + m_k) + u_k + lam_k * onehot / e_own * resid
                           + lam_k * drad * (onehot - e_own))
                    acc[other] += val[other]
                    cnt[other] += 1
                psi[d, s_i] = acc / cnt[:, None]
        if self.constant_outcome_:
            psi[:] = 0.0
        c0, s0 = self.y_center_, self.y_scale_
        upper_psi = c0 + s0 * psi[:, 0]  # (D, n, 2)
        lower_psi = c0 - s0 * psi[:, 1]
        lo_h, hi_h = self.support_
        values, ses, sources = {}, {}, list(names)
        wn = w / w.sum()
        for target, arm in (("Y(0)", 0), ("Y(1)", 1), ("effect", None)):
            if arm is None:
                lo_if = lower_psi[:, :, 1] - upper_psi[:, :, 0]
                up_if = upper_psi[:, :, 1] - lower_psi[:, :, 0]
                ind1 = onehot[:, 1]
                man_lo = (ind1 * y + (1 - ind1) * lo_h) - ((1 - ind1) * y + ind1 * hi_h)
                man_up = (ind1 * y + (1 - ind1) * hi_h) - ((1 - ind1) * y + ind1 * lo_h)
            else:
                lo_if, up_if = lower_psi[:, :, arm], upper_psi[:, :, arm]
                ind = onehot[:, arm]
                man_lo = ind * y + (1 - ind) * lo_h
                man_up = ind * y + (1 - ind) * hi_h
            est = np.column_stack([lo_if @ wn, up_if @ wn])
            se = np.column_stack([weighted_se(lo_if.T, w), weighted_se(up_if.T, w)])
            rows_v, rows_s = [tuple(r) for r in est], [tuple(r) for r in se]
            if self.aggregation is not None:
                a_lo, a_up, k_used = aggregate_bounds(est[:, 0], est[:, 1],
                                                      method=self.aggregation, k=self.k)
                li = np.argsort(-est[:, 0], kind="stable")[k_used - 1]
                ui = np.argsort(est[:, 1], kind="stable")[k_used - 1]
                rows_v.append((a_lo, a_up))
                rows_s.append((se[li, 0], se[ui, 1]))
            rows_v.append((man_lo @ wn, man_up @ wn))
            rows_s.append((weighted_se(man_lo, w), weighted_se(man_up, w)))
            values[target], ses[target] = np.array(rows_v), np.array(rows_s)
        if self.aggregation is not None:
            sources.append("aggregate")
        sources.append("manski")
        header = {"Outcome": outcome, "Folds": n_folds,
                  "Support": self._support_text(),
                  "Propensity range": f"[{e_own[:, 1].min():.3f}, {e_own[:, 1].max():.3f}]",
                  ("Max domain violation (fit)" if new_data else "Max domain violation"):
                      f"{self.domain_violation_fraction_.max():.2%}",
                  "One-step tangent uses": f"{n_tangent} of {n_evaluated} "
                                           f"({n_tangent / max(n_evaluated, 1):.2%})"}
        method = ("one-step on new data, all folds' models (fstat extension)" if new_data
                  else "cross-fitted one-step (fstat extension)")
        return AveragedBounds(build_table(values, ses, sources), n_samples=float(w.sum()),
                              method=method,
                              aggregation=self.aggregation, divergences=names, header=header)
