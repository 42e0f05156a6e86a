"""NTK kernel machines: hinge, squared hinge, epsilon-insensitive, squared and logistic losses.

All machines minimise (spec §2.4, sum convention)

    P(beta, b) = sum_i w_i l(g(x_i), y_i) + (lam / 2) beta' K beta,
    g(x) = sum_j beta_j K(x, x_j) + b,

with **no intercept by default** (the paper's machine). Classification is binary with
``classes_[1]`` coded +1, and one-vs-rest for more classes.
"""

from __future__ import annotations

from numbers import Integral, Real

import numpy as np
import torch
from scipy.special import expit, logsumexp
from sklearn.base import (
    BaseEstimator,
    ClassifierMixin,
    MultiOutputMixin,
    RegressorMixin,
)
from sklearn.metrics import accuracy_score, r2_score
from sklearn.utils import ClassifierTags, RegressorTags
from sklearn.utils.metaestimators import available_if
from sklearn.utils.multiclass import check_classification_targets

from .._sklearn_compat import (
    Interval,
    StrOptions,
    _fit_context,
    check_is_fitted,
    store_init_params,
    validate_data,
)
from .._torch import as_tensor, fitted_device, make_generator, parse_dtype, resolve_device, to_numpy
from .._training import progress_bar
from .._validation import check_sample_weight, check_weighted_classes
from .._warnings import warn_user
from ._losses import LOSSES
from ._ntk import gram_from_arrays
from ._solvers import (
    default_lr,
    primal_objective,
    record_set,
    solve_box,
    solve_cholesky,
    solve_libsvm,
    solve_logistic,
    solve_subgradient,
    with_intercept_search,
)

__all__ = [
    "NTKKernelMachine",
    "NTKSVC",
    "NTKSVR",
    "NTKRidge",
    "NTKRidgeClassifier",
    "NTKLogisticRegression",
]

_BOX = ("hinge", "squared_hinge", "epsilon_insensitive")
_SOLVERS = {
    "hinge": {"auto", "newton", "cd", "libsvm", "subgradient"},
    "squared_hinge": {"auto", "newton", "cd", "subgradient"},
    "epsilon_insensitive": {"auto", "newton", "cd", "libsvm", "subgradient"},
    "squared": {"auto", "cholesky", "subgradient"},
    "logistic": {"auto", "newton", "subgradient"},
}


def _solver_constraint(*losses):
    """The ``solver`` constraint of a class whose ``loss`` is one of ``losses``."""
    return [StrOptions(set().union(*(_SOLVERS[loss] for loss in losses)))]


def _is_symmetric(A, block=256):
    """Exact ``A == A.T`` compared tile by tile (cache-friendly, about 3x faster than
    ``np.array_equal(A, A.T)`` for a large Gram); stops at the first unequal tile."""
    n = A.shape[0]
    for i in range(0, n, block):
        rows = A[i:i + block]
        for j in range(i, n, block):
            if not np.array_equal(rows[:, j:j + block], A[j:j + block, i:i + block].T):
                return False
    return True


def _resolve_solver(solver, loss, fit_intercept, lam, device):
    if solver not in _SOLVERS[loss]:
        raise ValueError(f"solver={solver!r} is not available for loss={loss!r}; compatible "
                         f"solvers: {sorted(_SOLVERS[loss])}.")
    if solver == "libsvm" and not fit_intercept:
        raise ValueError("solver='libsvm' requires fit_intercept=True (libsvm always fits an "
                         "intercept); use 'newton' or 'cd' for the machine without intercept.")
    if solver == "libsvm" and lam == 0:
        raise ValueError("solver='libsvm' needs lam > 0 (C = 1/lam).")
    if solver != "auto":
        return solver
    if loss == "squared":
        return "cholesky"
    if loss == "logistic":
        return "newton"
    if fit_intercept and loss in ("hinge", "epsilon_insensitive") and lam > 0:
        return "libsvm"
    return "newton" if device.type == "cuda" else "cd"


def _check_lam(lam, loss, solver):
    if lam == 0 and solver != "subgradient" and loss not in ("squared", "hinge"):
        raise ValueError(f"lam must be > 0 for loss={loss!r} with an exact solver "
                         f"(solver={solver!r}); lam=0 is allowed for 'squared' and 'hinge', or "
                         "with solver='subgradient'.")


class _NTKMachineBase(BaseEstimator):
    """Shared fit / predict machinery (not public)."""

    _parameter_constraints: dict = {
        "lam": [Interval(Real, 0, None, closed="left")],
        "kernel": [StrOptions({"ntk", "nngp", "precomputed"}), callable],
        "depth": [Interval(Integral, 0, None, closed="left")],
        "w_std": [Interval(Real, 0, None, closed="neither")],
        "b_std": [Interval(Real, 0, None, closed="left")],
        "fit_intercept": ["boolean"],
        "solver": _solver_constraint(*_SOLVERS),
        "tol": [Interval(Real, 0, None, closed="neither")],
        "max_iter": [Interval(Integral, 1, None, closed="left"), None],
        "lr": [Interval(Real, 0, None, closed="neither"), None],
        "record_steps": [Interval(Integral, 1, None, closed="left"), "array-like", None],
        "dtype": [StrOptions({"float32", "float64"})],
        "device": [str],
        "block_size": [Interval(Integral, 1, None, closed="left"), None],
        "verbose": ["verbose"],
        "random_state": ["random_state"],
    }

    # subclasses define _loss() and _is_classifier()
    def _epsilon(self):
        return float(getattr(self, "epsilon", 0.0))

    def _multi_output(self):
        return False

    # ------------------------------------------------------------------ tags
    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.pairwise = self.kernel == "precomputed"
        return tags

    # ------------------------------------------------------------------ kernel
    def _gram(self, A, B, device):
        """Kernel matrix K(A, B) as float64 tensor on ``device`` (B=None: symmetric)."""
        kernel = self.kernel
        if kernel == "precomputed":
            return as_tensor(A, dtype="float64", device=device)
        if callable(kernel):
            K = np.asarray(kernel(A, A if B is None else B), dtype=np.float64)
            expect = (A.shape[0], A.shape[0] if B is None else B.shape[0])
            if K.shape != expect:
                raise ValueError(f"the callable kernel returned shape {K.shape}; expected "
                                 f"{expect}.")
            if not np.all(np.isfinite(K)):
                raise ValueError("the callable kernel returned non-finite values.")
            return as_tensor(K, "float64", device)
        K = gram_from_arrays(A, B, parse_dtype(self.dtype), device, depth=self.depth,
                             w_std=self.w_std, b_std=self.b_std, kind=kernel,
                             block_size=self.block_size)
        return K.to(torch.float64)

    # ------------------------------------------------------------------ fit
    def _validate_targets(self, y):
        if self._is_classifier():
            check_classification_targets(y)
            classes = np.unique(y)
            if classes.size < 2:
                raise ValueError(f"the classifier needs at least 2 classes in y; got "
                                 f"{classes.size} class ({classes!r}).")
            self.classes_ = classes
            if classes.size == 2:
                Y = np.where(y == classes[1], 1.0, -1.0)[:, None]
            else:
                Y = np.where(y[:, None] == classes[None, :], 1.0, -1.0)
            return Y
        self.__dict__.pop("classes_", None)  # a refit as a regressor: no stale classes
        y = np.asarray(y, dtype=np.float64)
        return y[:, None] if y.ndim == 1 else y

    def _fit(self, X, y, sample_weight):
        loss = self._loss()
        precomputed = self.kernel == "precomputed"
        X, y = validate_data(self, X, y, dtype=np.float64, order="C",
                             multi_output=self._multi_output(),
                             y_numeric=not self._is_classifier())
        if precomputed and X.shape[0] != X.shape[1]:
            raise ValueError(f"kernel='precomputed' needs a square training Gram matrix of "
                             f"shape (n_samples, n_samples); got {X.shape}.")
        if precomputed and not _is_symmetric(X):
            asym = np.abs(X - X.T).max()
            if asym > 1e-8 * max(np.abs(X).max(), 1e-300):
                warn_user(f"the precomputed Gram matrix is not symmetric (max asymmetry "
                          f"{asym:.2e}); using (K + K.T) / 2.", UserWarning)
            X = 0.5 * (X + X.T)
        device = resolve_device(self.device)
        self.device_ = str(device)
        lam = float(self.lam)
        solver = _resolve_solver(self.solver, loss, self.fit_intercept, lam, device)
        _check_lam(lam, loss, solver)
        self.solver_ = solver
        w = check_sample_weight(sample_weight, X)
        Y = self._validate_targets(y)
        n, k = Y.shape
        self._fit_signs_ = Y[:, 0].copy() if (self._is_classifier() and k == 1) else None
        K_full = self._gram(X, None, device)
        self.X_fit_ = None if precomputed else X.copy()
        self.kernel_trace_ = float(K_full.diagonal().sum())
        self._kernel_diag_max = float(K_full.diagonal().max())  # the PSD test's scale
        keep = np.flatnonzero(w > 0)
        if self._is_classifier():
            check_weighted_classes(y, w)
        keep_t = torch.as_tensor(keep, device=device)
        K = K_full[keep_t][:, keep_t] if keep.size < n else K_full
        wt = torch.as_tensor(w[keep]).to(device)
        Yt = torch.as_tensor(Y[keep]).to(device)
        generator = make_generator(0 if self.random_state is None else self.random_state)
        eps = self._epsilon()

        beta = torch.zeros((keep.size, k), dtype=torch.float64, device=device)
        b = np.zeros(k)
        objective = np.zeros(k)
        gaps = np.full(k, np.nan)
        n_iter, converged = 1, True
        self.trajectory_ = None
        if solver == "cholesky":
            bt, b_t = solve_cholesky(K, Yt, wt, lam, self.fit_intercept)
            beta, b = bt, to_numpy(b_t)
            for j in range(k):
                objective[j] = primal_objective(K, beta[:, j], b[j], Yt[:, j], wt, lam, loss)
        elif solver == "subgradient":
            max_iter = self.max_iter or 1000
            dt = parse_dtype(self.dtype)
            lr = float(self.lr) if self.lr is not None else default_lr(
                K, wt, lam, loss, intercept=self.fit_intercept)
            self.lr_ = lr
            record = record_set(self.record_steps, max_iter)
            bar = progress_bar(max_iter, verbose=self.verbose, desc=type(self).__name__)
            try:
                bt, b_t, traj = solve_subgradient(
                    K.to(dt), Yt.to(dt), wt.to(dt), lam, loss, epsilon=eps, lr=lr,
                    max_iter=max_iter, fit_intercept=self.fit_intercept, record=record,
                    progress=bar)
            finally:
                if bar is not None:
                    bar.close()
            beta, b = bt.to(torch.float64), to_numpy(b_t)
            n_iter = max_iter
            for j in range(k):
                objective[j] = primal_objective(K, beta[:, j], b[j], Yt[:, j], wt, lam, loss,
                                                eps)
            if traj is not None:
                self.trajectory_ = self._expand_trajectory(
                    traj, keep, n, k, k == 1 and self._squeeze(y))
        else:
            iters = []
            for j in range(k):
                sol = self._solve_column(K, Yt[:, j], wt, lam, loss, eps, solver, generator)
                beta[:, j] = sol.beta
                b[j] = sol.b
                objective[j] = sol.objective
                gaps[j] = sol.gap
                iters.append(sol.n_iter)
                converged = converged and sol.converged
                if sol.method is not None:
                    self.solver_ = sol.method
            n_iter = max(iters)
            if not converged and not (loss == "hinge" and lam == 0):
                warn_user(f"{type(self).__name__}: solver {solver!r} stopped (max_iter or "
                          "no further progress in floating point) before the KKT tolerance; "
                          "increase max_iter or tol.",
                          _convergence_warning())
        full = np.zeros((n, k))
        full[keep] = to_numpy(beta)
        self.dual_coef_ = full[:, 0] if (k == 1 and self._squeeze(y)) else full
        self.intercept_ = float(b[0]) if (k == 1 and self._squeeze(y)) else b
        self.objective_ = float(objective[0]) if k == 1 else objective
        self.duality_gap_ = float(gaps[0]) if k == 1 else gaps
        self.n_iter_ = int(max(n_iter, 1))
        self.converged_ = bool(converged)
        if solver != "subgradient":
            self.lr_ = None
        self.support_ = np.flatnonzero(np.any(full != 0, axis=1))
        train = to_numpy(K_full @ torch.as_tensor(full).to(device)) + b[None, :]
        self.train_decision_ = train[:, 0] if self.dual_coef_.ndim == 1 else train
        return self

    def _squeeze(self, y):
        return self._is_classifier() or np.asarray(y).ndim == 1

    @staticmethod
    def _expand_trajectory(traj, keep, n, k, squeeze):
        """Recorded steps shaped like ``(T, *dual_coef_.shape)``, ``(T, *intercept_)`` and
        ``(T, *objective_)`` (``squeeze``: ``dual_coef_`` is 1-D)."""
        T = traj["dual_coef"].shape[0]
        full = np.zeros((T, n, k))
        full[:, keep] = traj["dual_coef"]
        return {
            "step": traj["step"].astype(int),
            "dual_coef": full[..., 0] if squeeze else full,
            "intercept": traj["intercept"][:, 0] if squeeze else traj["intercept"],
            "objective": traj["objective"][:, 0] if k == 1 else traj["objective"],
        }

    def _solve_column(self, K, y, w, lam, loss, eps, solver, generator):
        tol = float(self.tol)
        if solver == "libsvm":
            return solve_libsvm(K, y, w, lam, loss, epsilon=eps, tol=tol)
        if loss == "logistic":
            def fixed(b, warm):
                return solve_logistic(K, y, w, lam, b=b, tol=tol, max_iter=self.max_iter,
                                      warm=warm)
        else:
            inner = {"solver": solver, "method": None}

            def fixed(b, warm):
                sol = solve_box(K, y, w, lam, loss, epsilon=eps, b=b, solver=inner["solver"],
                                tol=tol, max_iter=self.max_iter, generator=generator,
                                warm=warm, finish_with_newton=self.solver == "auto")
                if sol.method == "cd+newton":
                    # the automatic choice: coordinate descent did not converge on this dual,
                    # so the intercept search's further warm-started solves go to Newton
                    # directly (each had run up to 1000 CD epochs first: 14 s instead of about
                    # 4 s at n = 1000, squared hinge, lam = 1e-3)
                    inner.update(solver="newton", method=sol.method)
                sol.method = sol.method or inner["method"]
                return sol
        if not self.fit_intercept:
            return fixed(0.0, None)
        scale = 1.0 if LOSSES[loss].classification else float(y.abs().max()) + eps + 1.0
        return with_intercept_search(fixed, scale, tol)

    # ------------------------------------------------------------------ predict
    def _decision(self, X):
        check_is_fitted(self)
        try:
            X = validate_data(self, X, dtype=np.float64, order="C", reset=False)
        except ValueError as error:  # sklearn's feature-count message, and what it means here
            if self.kernel == "precomputed" and "features" in str(error):
                raise ValueError(f"{error} kernel='precomputed': the test Gram must have "
                                 f"shape (n_test, n_train={self.dual_coef_.shape[0]}).") from None
            raise
        device = fitted_device(self.device_)
        if self.kernel == "precomputed":
            Kt = as_tensor(X, torch.float64, device)  # a copy: read-only inputs stay quiet
        else:
            Kt = self._gram(X, self.X_fit_, device)
        beta = torch.as_tensor(self.dual_coef_).to(device)
        g = to_numpy(Kt @ beta) + self.intercept_
        if not np.all(np.isfinite(g)):
            raise RuntimeError("non-finite decision values: the kernel or the fitted "
                               "coefficients overflowed.")
        return g

    def _predict_labels(self, g):
        if g.ndim == 1:
            return self.classes_[(g > 0).astype(int)]
        return self.classes_[np.argmax(g, axis=1)]

    def _staged(self, X):
        check_is_fitted(self)
        if self.trajectory_ is None:
            raise AttributeError("staged predictions need a subgradient fit with record_steps.")
        X = validate_data(self, X, dtype=np.float64, order="C", reset=False)
        device = torch.device("cpu")
        Kt = (as_tensor(X) if self.kernel == "precomputed"
              else self._gram(X, self.X_fit_, device))
        Kn = to_numpy(Kt)
        for beta, b in zip(self.trajectory_["dual_coef"], self.trajectory_["intercept"]):
            yield Kn @ beta + b

    # ------------------------------------------------------------------ certificates and bounds
    def _binary_only(self, what):
        check_is_fitted(self)
        if not self._is_classifier() or len(self.classes_) != 2:
            raise ValueError(f"{what} is defined for binary classifiers only; this model has "
                             f"{len(getattr(self, 'classes_', []))} classes.")

    def _certify(self, X, y=None, *, norm="linf", max_radius=None, n_bisect=40,
                 interval="tight", batch_size=None):
        from ._robust import certify_machine

        self._binary_only("certify")
        return certify_machine(self, X, y, norm=norm, max_radius=max_radius, n_bisect=n_bisect,
                               interval=interval, batch_size=batch_size)

    def _bound(self, delta=0.05, *, loss="ramp"):
        from ._bounds import generalization_bound

        self._binary_only("generalization_bound")
        return generalization_bound(self, delta=delta, loss=loss)


def _convergence_warning():
    from sklearn.exceptions import ConvergenceWarning

    return ConvergenceWarning


def _is_clf(self):
    return self._is_classifier()


def _is_logistic(self):
    return self._loss() == "logistic"


class _ClassifierMethods:
    """decision_function / predict / staged / certify / bound for classifiers."""

    def decision_function(self, X):
        """Decision values ``g(X)`` ((n,) binary, (n, n_classes) one-vs-rest)."""
        return self._decision(X)

    def predict(self, X):
        """Class labels: ``classes_[1]`` where ``g > 0`` (binary), argmax otherwise."""
        return self._predict_labels(self._decision(X))

    def staged_decision_function(self, X):
        """Decision values at each recorded step of a subgradient fit (generator)."""
        yield from self._staged(X)

    def staged_predict(self, X):
        """Labels at each recorded step of a subgradient fit (generator)."""
        for g in self._staged(X):
            yield self._predict_labels(g)

    def certify(self, X, y=None, *, norm="linf", max_radius=None, n_bisect=40,
                interval="tight", batch_size=None):
        """Certified robustness radii (depth-1, bias-free NTK/NNGP machines); see the guide.

        Parameters
        ----------
        X : array-like of shape (n, d)
        y : array-like of shape (n,), optional
            True labels: a wrongly predicted point gets radius 0.
        norm : {"linf", "l2"}, default="linf"
        max_radius : float or array-like of shape (n,), optional
            The upper end of the bisection. Default ``||x||_p`` per point: without an
            intercept ``g(0) = 0``, so no larger radius can be certified. With
            ``fit_intercept=True`` it is only a cap (``g(0) = b``): a radius equal to it may
            be certifiable further, and a zero row gets 0; pass a larger value to search on.
        n_bisect : int, default=40
        interval : {"tight", "paper"}, default="tight"
            Exact ranges of ``x'.x_i`` and ``||x'||`` over the ball, or the paper's looser
            l-infinity intervals; both are sound.
        batch_size : int, optional
            Test rows per block.

        Returns
        -------
        ndarray of shape (n,)
            Radii r such that the predicted label is constant on the ``norm`` ball of
            radius r around each point (0 where ``g(x) = 0`` or, with ``y``, where the
            prediction is wrong).
        """
        return self._certify(X, y, norm=norm, max_radius=max_radius, n_bisect=n_bisect,
                             interval=interval, batch_size=batch_size)

    def generalization_bound(self, delta=0.05, *, loss="ramp"):
        """Rademacher bound on the test error holding with probability >= 1 - delta."""
        return self._bound(delta, loss=loss)


class _RegressorMethods:
    """``predict`` and ``staged_predict`` of the regression machines (``g(X)`` itself)."""

    def _is_classifier(self):
        return False

    def predict(self, X):
        """``g(X)``, shape (n,) or (n, k) for several targets."""
        return self._decision(X)

    def staged_predict(self, X):
        """Predictions at each recorded subgradient step (generator)."""
        yield from self._staged(X)


_COMMON_DOC = """
    lam : float, default=1.0
        Regularisation strength ``lam >= 0`` of ``(lam/2) ||g||_H^2`` next to the **sum** of
        the (weighted) losses. ``C = 1/lam`` in libsvm terms.
    kernel : {"ntk", "nngp", "precomputed"} or callable, default="ntk"
        Analytic NTK/NNGP of a ReLU net, a precomputed Gram (``X`` is then ``K(X, X_fit)``),
        or a callable ``k(A, B) -> (n_A, n_B)`` array (e.g. an :class:`NTKKernel`).
    depth : int, default=1
        Hidden layers of the network whose kernel is used.
    w_std, b_std : float, default=1.0, 0.0
        Weight and bias standard deviations of the NTK parameterisation.
    fit_intercept : bool, default=False
        The paper's machine has no intercept; ``True`` adds an unpenalised offset.
    solver : str, default="auto"
        See the user guide (Cholesky, projected Newton, coordinate descent, libsvm,
        logistic Newton, or the paper's subgradient dynamics). ``"auto"``: squared loss ->
        cholesky, logistic -> newton, hinge / epsilon-insensitive with an intercept ->
        libsvm, other box duals -> coordinate descent on the CPU, projected Newton on CUDA.
        On the CPU, a coordinate descent that stops at ``max_iter`` before the tolerance
        (ill-conditioned duals) is finished by projected Newton from its iterate when the
        dual has at most 5000 variables (``max_iter`` then caps each stage);
        ``solver_`` is then ``"cd+newton"``, and the rest of an intercept search solves
        with projected Newton directly.
    tol : float, default=1e-6
        KKT tolerance (margin / loss-derivative units).
    max_iter : int, optional
        Solver iteration cap (subgradient: the exact number of steps, default 1000).
    lr : float, optional
        Subgradient step; default ``1 / (c_l mu_max(W^1/2 K W^1/2) + lam)`` (x1.05 on
        ``mu_max``; ``K + 1 1^T`` in place of ``K`` with an intercept), the specification's
        ``1 / (c_l max(w) mu_max(K) + lam)`` for equal weights and no intercept (see the
        user guide's departures).
    record_steps : int or sequence of int, optional
        Subgradient steps whose coefficients are recorded in ``trajectory_``.
    dtype : {"float64", "float32"}, default="float64"
        Precision of the Gram (exact solvers always run in float64).
    device : str, default="auto"
    block_size : int, optional
        Row tile of the Gram computation.
    verbose : int, default=0
    random_state : int, RandomState or None
        Coordinate-descent visiting order. None visits in a fixed order (seed 0), so that
        equal Gram matrices (a precomputed one, a callable, ``kernel="ntk"``) give equal fits.
"""

_ATTR_DOC = """
    Attributes
    ----------
    dual_coef_ : ndarray of shape (n_samples,) or (n_samples, n_columns)
        ``beta``: ``decision = K(X, X_fit_) @ dual_coef_ + intercept_``.
    intercept_ : float or ndarray
    X_fit_ : ndarray or None
    support_ : ndarray of int
    objective_ : float or ndarray
        Primal objective at the solution.
    duality_gap_ : float or ndarray
        Relative duality gap (box duals; NaN otherwise).
    n_iter_ : int
    converged_ : bool
    solver_ : str
        The solver that ran (``"auto"`` resolved); ``"cd+newton"`` when projected Newton
        finished an unconverged coordinate descent.
    lr_ : float or None
    kernel_trace_ : float
    train_decision_ : ndarray
    trajectory_ : dict or None
    device_ : str
"""


def _fill_doc(cls):
    cls.__doc__ = cls.__doc__.replace("%(common)s", _COMMON_DOC).replace("%(attrs)s", _ATTR_DOC)
    return cls


@_fill_doc
class NTKKernelMachine(_NTKMachineBase):
    """Kernel machine with any of the five losses (classifier or regressor by ``loss``).

    Parameters
    ----------
    loss : {"hinge", "squared_hinge", "epsilon_insensitive", "squared", "logistic"}
        The loss; hinge/squared_hinge/logistic make a classifier, the others a regressor.
    %(common)s
    epsilon : float, default=0.1
        Width of the epsilon-insensitive tube.
    %(attrs)s

    Examples
    --------
    >>> import numpy as np
    >>> from fstat.kernels import NTKKernelMachine
    >>> X = np.array([[1.0, 2.0], [2.0, 1.0], [-1.0, -2.0], [-2.0, -1.0]])
    >>> NTKKernelMachine("hinge", device="cpu").fit(X, [1, 1, 0, 0]).predict(X)
    array([1, 1, 0, 0])
    """

    _parameter_constraints = {
        **_NTKMachineBase._parameter_constraints,
        "loss": [StrOptions(set(LOSSES))],
        "epsilon": [Interval(Real, 0, None, closed="left")],
    }

    def __init__(self, loss="hinge", lam=1.0, *, kernel="ntk", depth=1, w_std=1.0, b_std=0.0,
                 epsilon=0.1, fit_intercept=False, solver="auto", tol=1e-6, max_iter=None,
                 lr=None, record_steps=None, dtype="float64", device="auto", block_size=None,
                 verbose=0, random_state=None):
        store_init_params(self, locals())

    def _loss(self):
        return self.loss

    def _is_classifier(self):
        return LOSSES.get(self.loss, LOSSES["hinge"]).classification

    def _epsilon(self):
        return float(self.epsilon) if self.loss == "epsilon_insensitive" else 0.0

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        if self._is_classifier():
            tags.estimator_type = "classifier"
            tags.classifier_tags = ClassifierTags()
            tags.target_tags.required = True
        else:
            tags.estimator_type = "regressor"
            tags.regressor_tags = RegressorTags()
            tags.target_tags.required = True
        return tags

    @_fit_context(prefer_skip_nested_validation=True)
    def fit(self, X, y, sample_weight=None):
        """Fit the machine. ``y``: labels (classification losses) or floats."""
        return self._fit(X, y, sample_weight)

    @available_if(_is_clf)
    def decision_function(self, X):
        """Decision values (classification losses only)."""
        return self._decision(X)

    def predict(self, X):
        """Labels (classification) or ``g(X)`` (regression)."""
        g = self._decision(X)
        return self._predict_labels(g) if self._is_classifier() else g

    @available_if(_is_logistic)
    def predict_proba(self, X):
        """Class probabilities (logistic loss only)."""
        return _proba(self._decision(X))

    def staged_decision_function(self, X):
        """Decision values at each recorded subgradient step (generator)."""
        yield from self._staged(X)

    def staged_predict(self, X):
        """Predictions at each recorded subgradient step (generator)."""
        for g in self._staged(X):
            yield self._predict_labels(g) if self._is_classifier() else g

    @available_if(_is_clf)
    def certify(self, X, y=None, *, norm="linf", max_radius=None, n_bisect=40,
                interval="tight", batch_size=None):
        """Certified radii (see :meth:`NTKSVC.certify`)."""
        return self._certify(X, y, norm=norm, max_radius=max_radius, n_bisect=n_bisect,
                             interval=interval, batch_size=batch_size)

    @available_if(_is_clf)
    def generalization_bound(self, delta=0.05, *, loss="ramp"):
        """Rademacher bound (see :meth:`NTKSVC.generalization_bound`)."""
        return self._bound(delta, loss=loss)

    def score(self, X, y, sample_weight=None):
        """Accuracy (classification losses) or R^2 (regression losses)."""
        if self._is_classifier():
            return accuracy_score(y, self.predict(X), sample_weight=sample_weight)
        return r2_score(y, self.predict(X), sample_weight=sample_weight)


def _log_proba(g):
    """Log of :func:`_proba`, in the log domain (finite however large ``|g|``)."""
    if g.ndim == 1:
        return np.column_stack([-np.logaddexp(0.0, g), -np.logaddexp(0.0, -g)])
    log_sigmoid = -np.logaddexp(0.0, -g)
    return log_sigmoid - logsumexp(log_sigmoid, axis=1, keepdims=True)


def _proba(g):
    """Binary ``[1 - sigmoid(g), sigmoid(g)]``; multiclass OvR sigmoids normalised to sum 1
    (normalised in the log domain: rows whose sigmoids all underflow are not 0/0)."""
    if g.ndim == 1:
        p = expit(g)
        return np.column_stack([1.0 - p, p])
    return np.exp(_log_proba(g))


@_fill_doc
class NTKSVC(_ClassifierMethods, ClassifierMixin, _NTKMachineBase):
    """NTK support vector classifier (the infinite-width network trained on the hinge loss).

    Minimises ``sum_i w_i max(0, 1 - y_i g(x_i)) + (lam/2) ||g||^2`` over ``g`` in the NTK's
    RKHS, without intercept by default (Chen et al., 2021). ``loss="squared_hinge"`` gives
    the 2-norm SVM.

    Parameters
    ----------
    %(common)s
    loss : {"hinge", "squared_hinge"}, default="hinge"
    %(attrs)s

    Examples
    --------
    >>> from fstat.datasets import make_ntk_teacher
    >>> from fstat.kernels import NTKSVC
    >>> X, y = make_ntk_teacher(200, 5, random_state=0)
    >>> clf = NTKSVC(lam=0.1, device="cpu").fit(X, y)
    >>> bool(clf.score(X, y) > 0.9)
    True
    """

    _parameter_constraints = {
        **_NTKMachineBase._parameter_constraints,
        "loss": [StrOptions({"hinge", "squared_hinge"})],
        "solver": _solver_constraint("hinge", "squared_hinge"),
    }

    def __init__(self, lam=1.0, *, kernel="ntk", depth=1, w_std=1.0, b_std=0.0, loss="hinge",
                 fit_intercept=False, solver="auto", tol=1e-6, max_iter=None, lr=None,
                 record_steps=None, dtype="float64", device="auto", block_size=None,
                 verbose=0, random_state=None):
        store_init_params(self, locals())

    def _loss(self):
        return self.loss

    def _is_classifier(self):
        return True

    @_fit_context(prefer_skip_nested_validation=True)
    def fit(self, X, y, sample_weight=None):
        """Fit on labels ``y`` (binary, or one-vs-rest for more classes)."""
        return self._fit(X, y, sample_weight)


@_fill_doc
class NTKSVR(_RegressorMethods, RegressorMixin, _NTKMachineBase):
    """NTK support vector regression (epsilon-insensitive loss), no intercept by default.

    Parameters
    ----------
    %(common)s
    epsilon : float, default=0.1
    %(attrs)s

    Examples
    --------
    >>> import numpy as np
    >>> from fstat.kernels import NTKSVR
    >>> X = np.random.default_rng(0).standard_normal((50, 3))
    >>> y = X[:, 0]
    >>> bool(NTKSVR(lam=0.01, device="cpu").fit(X, y).score(X, y) > 0.9)
    True
    """

    _parameter_constraints = {
        **_NTKMachineBase._parameter_constraints,
        "epsilon": [Interval(Real, 0, None, closed="left")],
        "solver": _solver_constraint("epsilon_insensitive"),
    }

    def __init__(self, lam=1.0, *, kernel="ntk", depth=1, w_std=1.0, b_std=0.0, epsilon=0.1,
                 fit_intercept=False, solver="auto", tol=1e-6, max_iter=None, lr=None,
                 record_steps=None, dtype="float64", device="auto", block_size=None,
                 verbose=0, random_state=None):
        store_init_params(self, locals())

    def _loss(self):
        return "epsilon_insensitive"

    @_fit_context(prefer_skip_nested_validation=True)
    def fit(self, X, y, sample_weight=None):
        """Fit on real targets ``y``."""
        return self._fit(X, y, sample_weight)


class _PlainInit:
    def __init__(self, lam=1.0, *, kernel="ntk", depth=1, w_std=1.0, b_std=0.0,
                 fit_intercept=False, solver="auto", tol=1e-6, max_iter=None, lr=None,
                 record_steps=None, dtype="float64", device="auto", block_size=None,
                 verbose=0, random_state=None):
        store_init_params(self, locals())


@_fill_doc
class NTKRidge(_PlainInit, _RegressorMethods, MultiOutputMixin, RegressorMixin,
               _NTKMachineBase):
    """NTK kernel ridge regression: ``sum_i w_i (g(x_i) - y_i)^2 + (lam/2) ||g||^2``.

    Equals ``KernelRidge(alpha=lam/2, kernel="precomputed")`` on the NTK Gram; ``lam=0``
    gives the minimum-norm interpolant (NTK regression, the infinite-width network trained
    to convergence on the squared loss).

    Parameters
    ----------
    %(common)s
    %(attrs)s

    Examples
    --------
    >>> import numpy as np
    >>> from fstat.kernels import NTKRidge
    >>> X = np.random.default_rng(0).standard_normal((30, 2))
    >>> model = NTKRidge(lam=1e-3, device="cpu").fit(X, X[:, 0])
    >>> bool(model.score(X, X[:, 0]) > 0.99)
    True
    """

    _parameter_constraints = {
        **_NTKMachineBase._parameter_constraints,
        "solver": _solver_constraint("squared"),
    }

    def _loss(self):
        return "squared"

    def _multi_output(self):
        return True

    @_fit_context(prefer_skip_nested_validation=True)
    def fit(self, X, y, sample_weight=None):
        """Fit on real targets ``y`` of shape (n,) or (n, k)."""
        return self._fit(X, y, sample_weight)


@_fill_doc
class NTKRidgeClassifier(_PlainInit, _ClassifierMethods, ClassifierMixin, _NTKMachineBase):
    """Least-squares NTK classifier on +-1 targets (one-vs-rest for several classes).

    Parameters
    ----------
    %(common)s
    %(attrs)s

    Examples
    --------
    >>> from fstat.datasets import make_ntk_teacher
    >>> from fstat.kernels import NTKRidgeClassifier
    >>> X, y = make_ntk_teacher(200, 5, random_state=0)
    >>> bool(NTKRidgeClassifier(lam=0.1, device="cpu").fit(X, y).score(X, y) > 0.9)
    True
    """

    _parameter_constraints = {
        **_NTKMachineBase._parameter_constraints,
        "solver": _solver_constraint("squared"),
    }

    def _loss(self):
        return "squared"

    def _is_classifier(self):
        return True

    @_fit_context(prefer_skip_nested_validation=True)
    def fit(self, X, y, sample_weight=None):
        """Fit on labels ``y``."""
        return self._fit(X, y, sample_weight)


@_fill_doc
class NTKLogisticRegression(_PlainInit, _ClassifierMethods, ClassifierMixin, _NTKMachineBase):
    """l2-regularised kernel logistic regression with the NTK (no intercept by default).

    Parameters
    ----------
    %(common)s
    %(attrs)s

    Examples
    --------
    >>> from fstat.datasets import make_ntk_teacher
    >>> from fstat.kernels import NTKLogisticRegression
    >>> X, y = make_ntk_teacher(200, 5, random_state=0)
    >>> clf = NTKLogisticRegression(lam=0.1, device="cpu").fit(X, y)
    >>> clf.predict_proba(X[:2]).shape
    (2, 2)
    """

    _parameter_constraints = {
        **_NTKMachineBase._parameter_constraints,
        "solver": _solver_constraint("logistic"),
    }

    def _loss(self):
        return "logistic"

    def _is_classifier(self):
        return True

    @_fit_context(prefer_skip_nested_validation=True)
    def fit(self, X, y, sample_weight=None):
        """Fit on labels ``y``."""
        return self._fit(X, y, sample_weight)

    def predict_proba(self, X):
        """Binary: ``[1 - sigmoid(g), sigmoid(g)]``; multiclass: normalised OvR sigmoids."""
        return _proba(self._decision(X))

    def predict_log_proba(self, X):
        """Logarithm of :meth:`predict_proba`, computed in the log domain."""
        return _log_proba(self._decision(X))

