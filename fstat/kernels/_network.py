"""Finite-width NTK-parameterised ReLU network trained like the kernel machine (spec §2.6).

Full-batch gradient descent with a fixed step on

    sum_i w_i l(f(x_i), y_i) + (lam / 2) ||theta - theta_0||^2        (regularizer="anchored")

with zero initial output: ``init="antisymmetric"`` trains two copies A, B that start equal,
``f = (f_A - f_B) / sqrt(2)``; ``init="subtract"`` trains one network and reports
``f(theta) - f(theta_0)``. In the wide (lazy) regime this follows the kernel machine's
subgradient dynamics with the same (lam, lr, steps) -- gap ~ 1/sqrt(width).
``regularizer="last_layer"`` (plain weight decay on the output layer) exists only to show
that it does *not* give the equivalence.
"""

from __future__ import annotations

import math
from numbers import Integral, Real

import numpy as np
import torch
from sklearn.base import BaseEstimator
from sklearn.metrics import accuracy_score, r2_score
from sklearn.utils import ClassifierTags, RegressorTags
from sklearn.utils.metaestimators import available_if
from sklearn.utils.multiclass import check_classification_targets

from .._sklearn_compat import Interval, StrOptions, _fit_context, check_is_fitted, validate_data
from .._torch import as_tensor, fitted_device, make_generator, parse_dtype, resolve_device, to_numpy
from .._training import progress_bar
from .._validation import check_integer, check_sample_weight, check_weighted_classes
from ._empirical import empirical_ntk_torch, init_params, mlp_forward
from ._losses import LOSSES
from ._ntk import ntk_kernel_torch
from ._solvers import default_lr, record_set

__all__ = ["NTKNetwork", "trajectory_gap"]


def _is_clf(self):
    return self._is_classifier()


class NTKNetwork(BaseEstimator):
    """Wide ReLU network trained by full-batch GD, the finite-width twin of the NTK machines.

    Parameters
    ----------
    width : int, default=1024
        Hidden width per copy.
    depth : int, default=1
    w_std, b_std : float, default=1.0, 0.0
    loss : {"hinge", "squared_hinge", "epsilon_insensitive", "squared", "logistic"}
        Classification losses make a binary classifier, the others a regressor.
    lam : float, default=1.0
        Strength of ``(lam/2) ||theta - theta_0||^2`` (sum convention).
    epsilon : float, default=0.1
    lr : float, optional
        Step size; default: the kernel machine's rule with the analytic NTK of the training
        set, so the network and :meth:`matching_kernel_machine` use the same step.
    max_iter : int, default=1000
        Exact number of GD steps.
    regularizer : {"anchored", "last_layer"}, default="anchored"
    init : {"antisymmetric", "subtract"}, default="antisymmetric"
    record_steps : int or sequence of int, optional
        Steps whose parameters are stored in ``trajectory_`` (one parameter copy each).
    track_path_kernel : bool, default=False
        Accumulate the discrete loss-path kernel on the training points (costly).
    dtype : {"float32", "float64"}, default="float32"
    device : str, default="auto"
    verbose : int, default=0
    random_state : int, RandomState or None

    Attributes
    ----------
    params_, init_params_ : list of torch.Tensor (CPU)
    loss_curve_ : ndarray
    trajectory_ : dict or None
    path_kernel_ : ndarray or None
    lr_ : float
    classes_ : ndarray (classification)
    device_ : str

    Examples
    --------
    >>> from fstat.datasets import make_ntk_teacher
    >>> from fstat.kernels import NTKNetwork
    >>> X, y = make_ntk_teacher(60, 4, random_state=0)
    >>> net = NTKNetwork(width=64, max_iter=50, device="cpu", random_state=0).fit(X, y)
    >>> net.decision_function(X[:3]).shape
    (3,)
    """

    _parameter_constraints: dict = {
        "width": [Interval(Integral, 1, None, closed="left")],
        "depth": [Interval(Integral, 0, None, closed="left")],
        "w_std": [Interval(Real, 0, None, closed="neither")],
        "b_std": [Interval(Real, 0, None, closed="left")],
        "loss": [StrOptions(set(LOSSES))],
        "lam": [Interval(Real, 0, None, closed="left")],
        "epsilon": [Interval(Real, 0, None, closed="left")],
        "lr": [Interval(Real, 0, None, closed="neither"), None],
        "max_iter": [Interval(Integral, 1, None, closed="left")],
        "regularizer": [StrOptions({"anchored", "last_layer"})],
        "init": [StrOptions({"antisymmetric", "subtract"})],
        "record_steps": [Interval(Integral, 1, None, closed="left"), "array-like", None],
        "track_path_kernel": ["boolean"],
        "dtype": [StrOptions({"float32", "float64"})],
        "device": [str],
        "verbose": ["verbose"],
        "random_state": ["random_state"],
    }

    def __init__(self, width=1024, depth=1, *, w_std=1.0, b_std=0.0, loss="hinge", lam=1.0,
                 epsilon=0.1, lr=None, max_iter=1000, regularizer="anchored",
                 init="antisymmetric", record_steps=None, track_path_kernel=False,
                 dtype="float32", device="auto", verbose=0, random_state=None):
        self.width = width
        self.depth = depth
        self.w_std = w_std
        self.b_std = b_std
        self.loss = loss
        self.lam = lam
        self.epsilon = epsilon
        self.lr = lr
        self.max_iter = max_iter
        self.regularizer = regularizer
        self.init = init
        self.record_steps = record_steps
        self.track_path_kernel = track_path_kernel
        self.dtype = dtype
        self.device = device
        self.verbose = verbose
        self.random_state = random_state

    def _is_classifier(self):
        return LOSSES.get(self.loss, LOSSES["hinge"]).classification

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.target_tags.required = True
        if self._is_classifier():
            tags.estimator_type = "classifier"
            tags.classifier_tags = ClassifierTags(multi_class=False)
        else:
            tags.estimator_type = "regressor"
            tags.regressor_tags = RegressorTags()
        return tags

    # ------------------------------------------------------------------ network
    def _split(self, flat):
        """Flat parameter list -> (copy A, copy B or None) as lists of (W, b)."""
        per = self.depth + 1
        has_b = self.b_std > 0
        step = 2 if has_b else 1

        def build(chunk):
            return [(chunk[i * step], chunk[i * step + 1] if has_b else None) for i in range(per)]

        size = per * step
        A = build(flat[:size])
        B = build(flat[size:]) if len(flat) > size else None
        return A, B

    def _forward(self, flat, X, flat0=None):
        A, B = self._split(flat)
        if B is not None:
            return (mlp_forward(A, X, self.w_std, self.b_std)
                    - mlp_forward(B, X, self.w_std, self.b_std)) / math.sqrt(2.0)
        A0, _ = self._split(flat0)
        return mlp_forward(A, X, self.w_std, self.b_std) - mlp_forward(A0, X, self.w_std,
                                                                       self.b_std)

    def _output_indices(self, flat):
        step = 2 if self.b_std > 0 else 1
        size = (self.depth + 1) * step
        idx = [size - step]
        if len(flat) > size:
            idx.append(2 * size - step)
        return idx

    @_fit_context(prefer_skip_nested_validation=True)
    def fit(self, X, y, sample_weight=None):
        """Run exactly ``max_iter`` full-batch GD steps."""
        X, y = validate_data(self, X, y, dtype=np.float64, order="C",
                             y_numeric=not self._is_classifier())
        loss = LOSSES[self.loss]
        if self._is_classifier():
            check_classification_targets(y)
            classes = np.unique(y)
            if classes.size < 2:
                raise ValueError(f"NTKNetwork needs 2 classes in y; got {classes.size} class.")
            if classes.size > 2:
                raise ValueError(f"Only binary classification is supported. NTKNetwork got "
                                 f"{classes.size} classes.")
            self.classes_ = classes
            yy = np.where(y == classes[1], 1.0, -1.0)
        else:
            self.__dict__.pop("classes_", None)  # a refit as a regressor: no stale classes
            yy = np.asarray(y, dtype=np.float64)
        w = check_sample_weight(sample_weight, X)
        if self._is_classifier():
            check_weighted_classes(y, w)
        device = resolve_device(self.device)
        self.device_ = str(device)
        dt = parse_dtype(self.dtype)
        gen = make_generator(self.random_state)
        n, d = X.shape
        A = init_params(d, self.width, self.depth, self.b_std, generator=gen, dtype=dt,
                        device=device)
        flat = [p for pair in A for p in pair if p is not None]
        if self.init == "antisymmetric":
            flat = flat + [p.clone() for p in flat]
        flat0 = [p.clone() for p in flat]
        Xt = as_tensor(X, dtype=dt, device=device)
        yt = as_tensor(yy, dtype=dt, device=device)
        wt = as_tensor(w, dtype=dt, device=device)
        if self.lr is None:
            K = ntk_kernel_torch(as_tensor(X, "float64", device), depth=self.depth,
                                 w_std=self.w_std, b_std=self.b_std)
            self.lr_ = default_lr(K, as_tensor(w, "float64", device), float(self.lam),
                                  self.loss)
        else:
            self.lr_ = float(self.lr)
        lr, lam, eps = self.lr_, float(self.lam), float(self.epsilon)
        record = record_set(self.record_steps, self.max_iter)
        traj = {"step": [], "params": []} if record else None
        out_idx = self._output_indices(flat)
        params = [p.detach().clone().requires_grad_(True) for p in flat]
        path = torch.zeros((n, n), dtype=dt, device=device) if self.track_path_kernel else None
        losses = []
        bar = progress_bar(self.max_iter, verbose=self.verbose, desc="NTKNetwork")

        def snapshot(step):
            traj["step"].append(step)
            traj["params"].append([p.detach().cpu().clone() for p in params])

        if record and 0 in record:
            snapshot(0)
        try:
            for step in range(1, self.max_iter + 1):
                f = self._forward(params, Xt, flat0)
                data = (wt * loss.value(f, yt, eps)).sum()
                if self.regularizer == "anchored":
                    reg = sum(((p - p0) ** 2).sum() for p, p0 in zip(params, flat0))
                else:
                    reg = sum((params[i] ** 2).sum() for i in out_idx)
                total = data + 0.5 * lam * reg
                if path is not None:
                    with torch.no_grad():
                        dl = wt * loss.deriv(f.detach(), yt, eps)
                        theta = self._empirical(params, Xt, None, flat0)
                        path.mul_(1.0 - lr * lam).add_(lr * theta * (-dl)[None, :])
                grads = torch.autograd.grad(total, params)
                with torch.no_grad():
                    for p, g in zip(params, grads):
                        p.sub_(lr * g)
                value = float(total.detach())
                if not math.isfinite(value):
                    raise RuntimeError(f"NTKNetwork diverged at step {step}; reduce lr.")
                losses.append(value)
                if record and step in record:
                    snapshot(step)
                if bar is not None:
                    bar.update(1)
        finally:
            if bar is not None:
                bar.close()
        self.params_ = [p.detach().cpu().clone() for p in params]
        self.init_params_ = [p.detach().cpu().clone() for p in flat0]
        self.loss_curve_ = np.asarray(losses)
        self.trajectory_ = ({"step": np.asarray(traj["step"]), "params": traj["params"]}
                            if traj else None)
        self.path_kernel_ = None if path is None else to_numpy(path)
        self.n_iter_ = int(self.max_iter)
        return self

    def _empirical(self, flat, X, Y, flat0):
        A, B = self._split(flat)
        kern = empirical_ntk_torch(A, X, Y, w_std=self.w_std, b_std=self.b_std)
        if B is not None:
            kern = 0.5 * (kern + empirical_ntk_torch(B, X, Y, w_std=self.w_std, b_std=self.b_std))
        return kern

    # ------------------------------------------------------------------ predict
    def _values(self, params, X):
        dev = fitted_device(self.device_)
        dt = parse_dtype(self.dtype)
        ps = [p.to(dev, dt) for p in params]
        p0 = [p.to(dev, dt) for p in self.init_params_]
        with torch.no_grad():
            f = self._forward(ps, as_tensor(X, dtype=dt, device=dev), p0)
        out = to_numpy(f)
        if not np.all(np.isfinite(out)):
            raise RuntimeError("non-finite network outputs.")
        return out

    def _torch_decision(self, Xp):
        """Differentiable float64 CPU decision (used by PGD)."""
        ps = [p.to(torch.float64) for p in self.params_]
        p0 = [p.to(torch.float64) for p in self.init_params_]
        return self._forward(ps, Xp, p0)

    def _check_X(self, X):
        check_is_fitted(self)
        return validate_data(self, X, dtype=np.float64, order="C", reset=False)

    @available_if(_is_clf)
    def decision_function(self, X):
        """Network output ``f(X)`` (classification losses)."""
        X = self._check_X(X)
        return self._values(self.params_, X)

    def predict(self, X):
        """Labels (``classes_[1]`` where f > 0) or f(X) for regression losses."""
        X = self._check_X(X)
        f = self._values(self.params_, X)
        return self.classes_[(f > 0).astype(int)] if self._is_classifier() else f

    def staged_decision_function(self, X):
        """Outputs at each recorded step (generator)."""
        X = self._check_X(X)
        if self.trajectory_ is None:
            raise AttributeError("staged outputs need record_steps.")
        for params in self.trajectory_["params"]:
            yield self._values(params, X)

    def staged_predict(self, X):
        """Predictions at each recorded step (generator)."""
        for f in self.staged_decision_function(X):
            yield self.classes_[(f > 0).astype(int)] if self._is_classifier() else f

    def score(self, X, y, sample_weight=None):
        """Accuracy (classification) or R^2 (regression)."""
        if self._is_classifier():
            return accuracy_score(y, self.predict(X), sample_weight=sample_weight)
        return r2_score(y, self.predict(X), sample_weight=sample_weight)

    def empirical_ntk(self, X, Y=None, method="structured"):
        """Empirical NTK of the trained network's output f at the current parameters."""
        X = self._check_X(X)
        Y = None if Y is None else validate_data(self, Y, dtype=np.float64, order="C", reset=False)
        Xt = as_tensor(X)
        Yt = None if Y is None else as_tensor(Y)
        ps = [p.to(torch.float64) for p in self.params_]
        if method == "structured":
            with torch.no_grad():
                return to_numpy(self._empirical(ps, Xt, Yt, None))
        if method != "jacobian":
            raise ValueError(f"method must be 'structured' or 'jacobian'; got {method!r}.")
        from ._empirical import _jacobian_ntk

        A, B = self._split(ps)
        K = _jacobian_ntk(A, Xt, Yt, self.w_std, self.b_std)
        if B is not None:
            K = 0.5 * (K + _jacobian_ntk(B, Xt, Yt, self.w_std, self.b_std))
        return to_numpy(K)

    @available_if(_is_clf)
    def certify(self, X, y=None, *, norm="linf", max_radius=None, n_bisect=40):
        """Certified radii by interval bound propagation (IBP) and bisection."""
        from ._robust import _pnorm, check_labels, ibp_bounds, radius_caps

        if norm not in ("linf", "l2"):
            raise ValueError(f"norm must be 'linf' or 'l2'; got norm={norm!r}.")
        check_integer(n_bisect, "n_bisect")
        X = self._check_X(X)
        g = self._values(self.params_, X)
        m = X.shape[0]
        hi_r = radius_caps(max_radius, _pnorm(X, norm), m)  # a zero row: cap and radius 0
        ps = [p.to(torch.float64) for p in self.params_]
        p0 = [p.to(torch.float64) for p in self.init_params_]
        A, B = self._split(ps)
        A0, _ = self._split(p0)
        x = as_tensor(X)
        sign = torch.as_tensor(np.sign(g))
        anti = B is not None

        def ok(r):
            la, ua = ibp_bounds(A, x, r, self.w_std, self.b_std, norm)
            lb, ub = ibp_bounds(B if anti else A0, x, r, self.w_std, self.b_std, norm)
            k = math.sqrt(2.0) if anti else 1.0
            lo, hi = (la - ub) / k, (ua - lb) / k
            return torch.where(sign > 0, lo > 0, hi < 0)

        lo = torch.zeros(m, dtype=torch.float64)
        hi = torch.as_tensor(hi_r)
        full = ok(hi)
        for _ in range(n_bisect):
            mid = 0.5 * (lo + hi)
            good = ok(mid)
            lo = torch.where(good, mid, lo)
            hi = torch.where(good, hi, mid)
        radii = to_numpy(torch.where(full, torch.as_tensor(hi_r), lo))
        valid = g != 0
        if y is not None:
            valid &= self.predict(X) == check_labels(y, m, self.classes_)
        radii[~valid] = 0.0
        return radii

    def matching_kernel_machine(self):
        """Unfitted :class:`NTKKernelMachine` with the same loss, lam, kernel, step and steps."""
        from ._machines import NTKKernelMachine

        check_is_fitted(self)
        return NTKKernelMachine(self.loss, self.lam, epsilon=self.epsilon, depth=self.depth,
                                w_std=self.w_std, b_std=self.b_std, kernel="ntk",
                                solver="subgradient", lr=self.lr_, max_iter=self.max_iter,
                                record_steps=self.record_steps, dtype="float64",
                                device=self.device)


def trajectory_gap(a, b, X):
    """Per recorded step ``max_x |f_a - f_b| / max_x |f_b|`` over the rows of ``X``.

    ``a`` and ``b`` are fitted models with recorded trajectories at the same steps (e.g. an
    :class:`NTKNetwork` and its :meth:`~NTKNetwork.matching_kernel_machine`).
    """
    fa = list(_staged_values(a, X))
    fb = list(_staged_values(b, X))
    if len(fa) != len(fb):
        raise ValueError(f"the models recorded different numbers of steps ({len(fa)} and "
                         f"{len(fb)}).")
    out = []
    for u, v in zip(fa, fb):
        scale = np.abs(v).max()
        out.append(np.abs(u - v).max() / scale if scale > 0 else np.abs(u - v).max())
    return np.asarray(out)


def _staged_values(model, X):
    if hasattr(model, "staged_decision_function") and model._is_classifier():
        return model.staged_decision_function(X)
    return model.staged_predict(X)
