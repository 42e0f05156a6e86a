"""FCCovNet: nonlinear sufficient dimension reduction by maximising FCCov."""

from __future__ import annotations

import copy
import time
from numbers import Integral, Real

import numpy as np
import torch
from sklearn.base import BaseEstimator, ClassNamePrefixFeaturesOutMixin
from sklearn.exceptions import ConvergenceWarning
from sklearn.utils import check_random_state

from .._nn import make_mlp
from .._sklearn_compat import Interval, StrOptions, _fit_context
from .._torch import fitted_device, make_generator, parse_dtype, resolve_device
from .._training import make_optimizer, train_minibatches
from .._validation import check_layer_sizes
from .._warnings import warn_user
from ._base import METRIC_CONSTRAINT, SDRTransformerMixin, check_xy, sign_rule
from ._fccov import (
    ClassMeansLoss,
    CumsumLoss,
    DistanceLoss,
    KernelLoss,
    _evaluate,
    batch_fccov,
    sample_centers,
)
from ._ranks import ball_ranks, class_codes, counts_from_ranks, kernel_from_counts

_MAX_FULL_BATCH = 20000
_MAX_CPU_KERNEL = 5000
_MAX_VALIDATION = 4096
_MAX_SPECTRUM_ROWS = 5000
_ACTIVATIONS = ("relu", "tanh", "elu", "leaky_relu", "gelu")


def _build_mlp(n_in, hidden, n_out, activation, generator, dtype, device):
    base = "relu" if activation == "leaky_relu" else activation
    net = make_mlp(n_in, hidden, n_out, activation=base, generator=generator, dtype=dtype,
                   device=device)
    if activation == "leaky_relu":
        for i, layer in enumerate(net):
            if isinstance(layer, torch.nn.ReLU):
                net[i] = torch.nn.LeakyReLU()
    return net


def _inverse_sqrt(cov, *, warn=True):
    """Symmetric (pseudo-)inverse square root of a float64 covariance; floors tiny eigenvalues."""
    w, V = torch.linalg.eigh(cov)
    top = float(w[-1])
    if not top > 0:
        raise FloatingPointError(
            "the network output is constant (zero covariance); reduce learning_rate or lam, or "
            "check the inputs."
        )
    floor = 1e-10 * top
    if warn and float(w[0]) < floor:
        warn_user(
            "the learned components are (nearly) collinear; tiny output variances were floored "
            "during whitening. Consider fewer n_components.", ConvergenceWarning)
    w = torch.clamp(w, min=floor)
    return (V / w.sqrt()) @ V.T


def _whiten(F):
    Fc = F - F.mean(0)
    cov = Fc.T @ Fc / F.shape[0]
    return Fc @ _inverse_sqrt(cov, warn=False)


def _mean_distance(response, generator, device):
    n = response.n
    rows = None
    if n > _MAX_VALIDATION:
        rows = np.sort(torch.randperm(n, generator=generator)[:_MAX_VALIDATION].numpy())
    D = response.pairwise(device, rows=rows)
    m = D.shape[0]
    return float(D.sum()) / (m * (m - 1))


class FCCovNet(ClassNamePrefixFeaturesOutMixin, SDRTransformerMixin, BaseEstimator):
    """Deep nonlinear sufficient dimension reduction for random-object responses.

    A network ``f`` on standardised ``X`` is trained to minimise
    ``-FCCov_n(f(X), Y) + lam * |Cov(f(X)) - I|_F^2`` (FCCov as defined in fstat: the
    mean squared covariance of ``f(X)`` with membership of the closed balls of the response
    metric; rank-based, so robust and invariant to monotone metric transforms). Early
    stopping monitors FCCov of the *whitened* outputs on a validation split. The output
    is whitened post hoc and rotated to the eigenbasis of its FCCov matrix, so
    ``transform(X_fit)`` has mean 0 and identity covariance and components are ordered by
    their FCCov (``fccov_spectrum_``).

    Parameters
    ----------
    n_components : int, default=1
        Output dimension d. Choose it by a cross-validated downstream score.
    metric : str or callable, default="euclidean"
        Response metric (see :func:`fstat.sdr.pairwise_response_distances`).
    metric_params : dict, optional
    objective : {"fccov", "distance"}, default="fccov"
        "distance" replaces the ball kernel by ``-D / mean(D)`` (a distance-weighted,
        GMDD/WIRE-type benchmark objective; not robust, not rank-based).
    architecture : "mlp" or callable, default="mlp"
        A module-level factory ``architecture(n_features_in, n_components, generator)``
        returning a ``torch.nn.Module`` initialised from ``generator``.
    hidden_layer_sizes : tuple of int, default=(64, 32)
    activation : {"relu", "tanh", "elu", "leaky_relu", "gelu"}, default="relu"
    lam : float, default=0.1
        Weight of the whitening penalty.
    learning_rate : float, default=1e-2
        Adam step size.
    weight_decay : float, default=0.0
    max_epochs : int, default=3000
    min_epochs : int, default=200
        Early stopping never stops before this epoch.
    batch_size : int or None, default=None
        ``None``: full batch (exact V-statistic). Otherwise minibatches of this size.
    minibatch_ranks : {"batch", "global"}, default="batch"
        "batch": ranks computed inside each batch (O(b^2) memory, any n);
        "global": the sub-block of the full-data ball kernel (needs n^2 memory).
    solver : {"auto", "kernel", "cumsum"}, default="auto"
        Full-batch evaluation: the precomputed ball kernel (O(n^3) once) or cumulative sums
        (O(n^2 d) per epoch, no O(n^3) step). "auto" is "kernel" (class means for the
        discrete metric).
    n_centers : int, optional
        Sampled ball centres for the full-batch objective (at most the number of training
        rows; ignored with a warning when training uses minibatches).
    early_stopping : bool, default=True
    validation_fraction : float, default=0.2
    eval_every : int, default=10
    n_iter_no_change : int, default=20
    standardize : bool, default=True
    device : {"auto", "cpu", "cuda", "cuda:N"}, default="auto"
    dtype : {"float32", "float64"}, default="float32"
        Network dtype; distances, ranks, whitening and transform are float64.
    random_state : int, RandomState or None
    verbose : int, default=0

    Attributes
    ----------
    net_ : torch.nn.Module
        The trained network (CPU, float64, eval mode). ``transform`` evaluates it on
        ``device_`` when that device is available, else on the CPU with a warning.
    n_features_in_ : int
    feature_names_in_ : ndarray of str
    x_mean_, x_scale_ : ndarray of shape (n_features,)
    out_mean_ : ndarray of shape (n_components,)
    whitening_ : ndarray of shape (n_components, n_components)
    fccov_ : float
        FCCov_n of ``transform(X_fit)`` (on a fixed random subset of 5000 rows beyond that).
    fccov_spectrum_ : ndarray of shape (n_components,)
        Eigenvalues of the FCCov matrix of the whitened output (sum = ``fccov_``).
    loss_curve_ : list of float
    validation_scores_ : list of float or None
    best_validation_score_ : float or None
    n_iter_ : int
    best_epoch_ : int
    solver_ : str
    device_ : str
    fit_time_, precompute_time_ : float

    Examples
    --------
    >>> from fstat.datasets import make_frechet_sdr
    >>> from fstat.sdr import FCCovNet
    >>> X, y, h = make_frechet_sdr("M1", n_samples=300, random_state=0)
    >>> est = FCCovNet(max_epochs=300, random_state=0, device="cpu").fit(X, y)
    >>> Z = est.transform(X)
    >>> round(float(Z.std()), 2)
    1.0
    """

    _parameter_constraints = {
        "n_components": [Interval(Integral, 1, None, closed="left")],
        "metric": METRIC_CONSTRAINT,
        "metric_params": [dict, None],
        "objective": [StrOptions({"fccov", "distance"})],
        "architecture": [StrOptions({"mlp"}), callable],
        "hidden_layer_sizes": [tuple, list],
        "activation": [StrOptions(set(_ACTIVATIONS))],
        "lam": [Interval(Real, 0, None, closed="neither")],
        "learning_rate": [Interval(Real, 0, None, closed="neither")],
        "weight_decay": [Interval(Real, 0, None, closed="left")],
        "max_epochs": [Interval(Integral, 1, None, closed="left")],
        "min_epochs": [Interval(Integral, 0, None, closed="left")],
        "batch_size": [Interval(Integral, 4, None, closed="left"), None],
        "minibatch_ranks": [StrOptions({"batch", "global"})],
        "solver": [StrOptions({"auto", "kernel", "cumsum"})],
        "n_centers": [Interval(Integral, 1, None, closed="left"), None],
        "early_stopping": ["boolean"],
        "validation_fraction": [Interval(Real, 0, 1, closed="neither")],
        "eval_every": [Interval(Integral, 1, None, closed="left")],
        "n_iter_no_change": [Interval(Integral, 1, None, closed="left")],
        "standardize": ["boolean"],
        "device": [str],
        "dtype": [StrOptions({"float32", "float64"})],
        "random_state": ["random_state"],
        "verbose": ["verbose"],
    }

    def __init__(self, n_components=1, *, metric="euclidean", metric_params=None,
                 objective="fccov", architecture="mlp", hidden_layer_sizes=(64, 32),
                 activation="relu", lam=0.1, learning_rate=1e-2, weight_decay=0.0,
                 max_epochs=3000, min_epochs=200, batch_size=None, minibatch_ranks="batch",
                 solver="auto", n_centers=None, early_stopping=True, validation_fraction=0.2,
                 eval_every=10, n_iter_no_change=20, standardize=True, device="auto",
                 dtype="float32", random_state=None, verbose=0):
        self.n_components = n_components
        self.metric = metric
        self.metric_params = metric_params
        self.objective = objective
        self.architecture = architecture
        self.hidden_layer_sizes = hidden_layer_sizes
        self.activation = activation
        self.lam = lam
        self.learning_rate = learning_rate
        self.weight_decay = weight_decay
        self.max_epochs = max_epochs
        self.min_epochs = min_epochs
        self.batch_size = batch_size
        self.minibatch_ranks = minibatch_ranks
        self.solver = solver
        self.n_centers = n_centers
        self.early_stopping = early_stopping
        self.validation_fraction = validation_fraction
        self.eval_every = eval_every
        self.n_iter_no_change = n_iter_no_change
        self.standardize = standardize
        self.device = device
        self.dtype = dtype
        self.random_state = random_state
        self.verbose = verbose

    # ------------------------------------------------------------------ fit helpers

    def _split(self, n, generator):
        d = self.n_components
        bound = max(4, d + 2)
        if self.early_stopping:
            perm = torch.randperm(n, generator=generator).numpy()
            n_val = int(round(self.validation_fraction * n))
            train, val = np.sort(perm[n_val:]), np.sort(perm[:n_val])
            if len(val) >= 4 and len(train) >= bound:
                if len(val) > _MAX_VALIDATION:
                    keep = torch.randperm(len(val), generator=generator)[:_MAX_VALIDATION]
                    val = np.sort(val[keep.numpy()])
                return train, val
            warn_user(
                f"the validation split (validation_fraction={self.validation_fraction}, "
                f"n={n}) is too small; early stopping is off for this fit.", UserWarning)
        train = np.arange(n)
        if n < bound:
            raise ValueError(
                f"FCCovNet needs n_train >= max(4, n_components + 2) = {bound} training rows for "
                f"n_components={d}; got {n}."
            )
        return train, None

    def _objective(self, response, generator, device, dtype):
        """Full-batch / global loss object, and the solver name."""
        n = response.n
        full_batch = self.batch_size is None or self.batch_size >= n
        if full_batch and n > _MAX_FULL_BATCH:
            raise ValueError(
                f"full-batch training with n_train={n} needs about {8 * n * n / 1e9:.1f} GB for "
                "the n x n kernel; set batch_size (e.g. 1024)."
            )
        if not full_batch and self.minibatch_ranks == "global" and n > _MAX_FULL_BATCH:
            raise ValueError(
                f"minibatch_ranks='global' needs the n x n kernel (n_train={n}); use "
                "minibatch_ranks='batch'."
            )
        if self.n_centers is not None and self.n_centers > n:
            raise ValueError(
                f"n_centers must lie in [1, n_train={n}] (the training rows after the "
                f"validation split); got n_centers={self.n_centers!r}."
            )
        if self.n_centers is not None and (not full_batch or self.objective == "distance"):
            warn_user("n_centers applies to the full-batch FCCov objective only; it is "
                      "ignored with minibatches (batch_size < n_train) and with "
                      "objective='distance'.", UserWarning)
        if self.objective == "distance":
            self._dbar = _mean_distance(response, generator, device)
            if full_batch or self.minibatch_ranks == "global":
                name = "kernel" if full_batch else "minibatch-global"
                return DistanceLoss(response.pairwise(device), self._dbar, dtype), name
            return None, "minibatch-batch"
        if not full_batch:
            if self.minibatch_ranks == "batch":
                return None, "minibatch-batch"
            K = kernel_from_counts(counts_from_ranks(ball_ranks(response, device)), n)
            return KernelLoss(K.to(dtype)), "minibatch-global"
        centers = sample_centers(n, self.n_centers, generator)
        if response.is_discrete and centers is None:
            codes, n_classes = class_codes(response, device)
            return ClassMeansLoss(codes, n_classes), "class-means"
        solver = "kernel" if self.solver == "auto" else self.solver
        if solver == "kernel" and device.type == "cpu" and n > _MAX_CPU_KERNEL:
            warn_user(
                f"full batch with n_train={n} on CPU: the O(n^3) precompute of the ball kernel "
                "is slow; set batch_size, solver='cumsum' or use a GPU.", UserWarning)
        ranks = ball_ranks(response, device, centers=centers)
        if solver == "cumsum":
            return CumsumLoss(ranks), "cumsum"  # (tie starts kept: negligible next to K)
        K = kernel_from_counts(counts_from_ranks(ranks), n)
        return KernelLoss(K.to(dtype)), "kernel"

    def _batch_value(self, response, index, U, device):
        if self.objective == "distance":
            D = response.pairwise(device, rows=index.cpu().numpy()).to(U.dtype)
            return DistanceLoss(D, self._dbar)(U)
        return batch_fccov(response, index.cpu().numpy(), U, device)

    def _validator(self, net, Xv, response, device):
        """Higher-is-better: FCCov (or Dist) of the whitened validation outputs."""
        if self.objective == "distance":
            D = response.pairwise(device)
            loss = DistanceLoss(D)
        elif response.is_discrete:
            loss = ClassMeansLoss(*class_codes(response, device))
        else:
            loss = CumsumLoss(ball_ranks(response, device, counts=False))

        def validate():
            was_training = net.training
            net.eval()
            with torch.no_grad():
                F = net(Xv).to(torch.float64)
            net.train(was_training)
            if not bool(torch.isfinite(F).all()):
                return -np.inf
            try:
                Z = _whiten(F)
            except FloatingPointError:
                return -np.inf
            score = float(loss(Z))
            if self.verbose >= 2:
                checks[0] += 1
                print(f"FCCovNet validation check {checks[0] - 1}: score {score:.6g}")
            return score

        checks = [0]
        return validate

    # ------------------------------------------------------------------ fit

    @_fit_context(prefer_skip_nested_validation=True)
    def fit(self, X, y):
        """Train the network and whiten its output.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
        y : response accepted by ``metric`` (see :func:`fstat.sdr.pairwise_response_distances`)

        Returns
        -------
        self
        """
        start = time.perf_counter()
        hidden = check_layer_sizes(self.hidden_layer_sizes)
        device = resolve_device(self.device)
        dtype = parse_dtype(self.dtype)
        X, response = check_xy(self, X, y)
        n, p = X.shape
        rng = check_random_state(self.random_state)
        generator = make_generator(rng)
        train, val = self._split(n, generator)
        Xtr = X[train]
        self.x_mean_ = Xtr.mean(0) if self.standardize else np.zeros(p)
        scale = Xtr.std(0) if self.standardize else np.ones(p)
        self.x_scale_ = np.where(scale > 0, scale, 1.0)
        Xs = (X - self.x_mean_) / self.x_scale_

        t0 = time.perf_counter()
        resp_train = response.subset(train)
        loss_obj, self.solver_ = self._objective(resp_train, generator, device, dtype)
        resp_val = response.subset(val) if val is not None else None
        self.precompute_time_ = time.perf_counter() - t0

        if self.architecture == "mlp":
            net = _build_mlp(p, hidden, self.n_components, self.activation, generator, dtype,
                             device)
        else:
            net = self.architecture(p, self.n_components, generator)
            if not isinstance(net, torch.nn.Module):
                raise TypeError("architecture must return a torch.nn.Module; got "
                                f"{type(net).__name__}.")
            net = net.to(device=device, dtype=dtype)
        Xt = torch.tensor(Xs[train], dtype=dtype, device=device)
        eye = torch.eye(self.n_components, dtype=dtype, device=device)
        lam = float(self.lam)
        n_train = len(train)

        def loss_fn(index):
            full = len(index) == n_train and self.batch_size is None
            U = net(Xt if full else Xt[index])
            Uc = U - U.mean(0)
            cov = Uc.T @ Uc / U.shape[0]
            if loss_obj is None:
                value = self._batch_value(resp_train, index, U, device)
            else:
                value = loss_obj(U, None if full else index)
            penalty = (cov - eye).square().sum()
            return {"loss": -value + lam * penalty, "fccov": value.detach(),
                    "penalty": penalty.detach()}

        validate = None
        if val is not None:
            Xv = torch.tensor(Xs[val], dtype=dtype, device=device)
            validate = self._validator(net, Xv, resp_val, device)
        optimizer = make_optimizer(net.parameters(), "adam", learning_rate=self.learning_rate,
                                   weight_decay=self.weight_decay)
        try:
            result = train_minibatches(
                net, loss_fn, n_train, optimizer=optimizer, generator=generator,
                max_epochs=self.max_epochs, batch_size=self.batch_size, min_last_batch=4,
                device=device, validate=validate, early_stopping=validate is not None,
                eval_every=self.eval_every, n_iter_no_change=self.n_iter_no_change, tol=0.0,
                min_iter=self.min_epochs, verbose=self.verbose, desc="FCCovNet",
            )
        except FloatingPointError as exc:
            raise FloatingPointError(f"{exc} (reduce learning_rate)") from exc
        self.loss_curve_ = list(result.loss_curve)
        self.validation_scores_ = result.validation_scores
        self.best_validation_score_ = result.best_score if validate is not None else None
        self.n_iter_ = max(1, int(result.n_iter))
        self.best_epoch_ = (int(result.best_iteration) if result.best_iteration is not None
                            else self.n_iter_)
        if validate is not None:
            if self.best_epoch_ == 0:
                warn_user(
                    "training stalled on the initial plateau; lower `lam` or raise "
                    "`learning_rate`.", ConvergenceWarning)
            elif not result.stopped_early and (
                self.n_iter_ - self.best_epoch_ < self.eval_every * self.n_iter_no_change
            ) and self.n_iter_ >= self.max_epochs:
                warn_user(
                    f"max_epochs={self.max_epochs} reached while the validation score was still "
                    "improving; raise max_epochs.", ConvergenceWarning)
        self.device_ = str(device)
        self.net_ = net.to(device="cpu", dtype=torch.float64).eval()
        for param in self.net_.parameters():
            param.requires_grad_(False)
        self._finalise(Xs, response, generator)
        self.fit_time_ = time.perf_counter() - start
        return self

    def _finalise(self, Xs, response, generator):
        """Post-hoc whitening and rotation to the FCCov eigenbasis (float64, CPU)."""
        F = self._net_forward(Xs)
        self.out_mean_ = F.mean(0).numpy()
        Fc = F - F.mean(0)
        W = _inverse_sqrt(Fc.T @ Fc / F.shape[0])
        Z = Fc @ W
        resp = response
        if response.n > _MAX_SPECTRUM_ROWS:
            rows = np.sort(torch.randperm(response.n, generator=generator)[
                :_MAX_SPECTRUM_ROWS].numpy())
            Z, resp = Z[torch.from_numpy(rows)], response.subset(rows)
        M = _evaluate(Z, resp, torch.device("cpu"), matrix=True).numpy()
        values, R = np.linalg.eigh(M)
        order = np.argsort(values)[::-1]
        R = sign_rule(R[:, order])
        self.whitening_ = W.numpy() @ R
        self.fccov_spectrum_ = values[order]
        self.fccov_ = float(self.fccov_spectrum_.sum())

    def _net_forward(self, Xs, device=None):
        device = torch.device("cpu") if device is None else device
        net = self.net_ if device.type == "cpu" else copy.deepcopy(self.net_).to(device)
        out = []
        with torch.no_grad():
            for start in range(0, Xs.shape[0], 65536):
                block = torch.tensor(Xs[start:start + 65536], dtype=torch.float64,
                                     device=device)
                out.append(net(block).reshape(len(block), -1).cpu())
        return torch.cat(out) if out else torch.zeros(0, self.n_components, dtype=torch.float64)

    def _transform_array(self, X):
        Xs = (X - self.x_mean_) / self.x_scale_
        device = fitted_device(getattr(self, "device_", "cpu"), "transforming")
        F = self._net_forward(Xs, device).numpy()
        Z = (F - self.out_mean_) @ self.whitening_
        bad = ~np.isfinite(Z).all(axis=1)
        if bad.any():
            raise FloatingPointError(
                "transform produced non-finite values for rows "
                f"{np.flatnonzero(bad)[:10].tolist()}."
            )
        return Z

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.non_deterministic = False
        return tags
