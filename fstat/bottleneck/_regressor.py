"""CSIBRegressor: a Cauchy--Schwarz information bottleneck regression network."""

from __future__ import annotations

import math
import time
from numbers import Integral, Real

import numpy as np
import torch
from sklearn.base import (
    BaseEstimator,
    ClassNamePrefixFeaturesOutMixin,
    RegressorMixin,
    TransformerMixin,
)
from sklearn.utils import check_array, check_random_state

from .._sklearn_compat import (
    Interval,
    StrOptions,
    _fit_context,
    check_is_fitted,
    validate_data,
)
from .._standardise import column_mean_and_scale
from .._torch import cuda_free_bytes, fitted_device, make_generator, parse_dtype, resolve_device
from .._training import make_optimizer, train_minibatches
from .._validation import check_layer_sizes
from .._warnings import collecting_warnings, warn_user
from ._approx import check_qmi_components
from ._estimators import cs_mutual_information
from ._network import NoiseRows, build_network
from ._objectives import (
    OBJECTIVES,
    Batch,
    compression_for,
    cs_qmi_compression,
    needs_t_width,
    normalized_cs_qmi_compression,
)
from ._widths import BatchWidths

__all__ = ["CSIBRegressor"]

_RULES = StrOptions({"median", "silverman"})
_CPU_GRAM_LIMIT = 2 * 2**30


def _standardise_stats(A):
    mean, scale, constant = column_mean_and_scale(A)
    scale[constant] = 1.0
    return mean, scale


class CSIBRegressor(ClassNamePrefixFeaturesOutMixin, RegressorMixin, TransformerMixin,
                    BaseEstimator):
    """Cauchy--Schwarz divergence information bottleneck regressor (CS-IB).

    A network ``x -> t -> y_hat`` (encoder MLP with a linear head of width
    ``bottleneck_dim``, Gaussian noise on ``t`` during training, decoder MLP) trained
    with minibatch Adam on

        L = D_CS(p(y | x); q(y_hat | x)) + beta * I_CS(x; t),

    the conditional Cauchy--Schwarz divergence between the target and prediction
    conditionals (a robust, correntropy-like loss: residuals far beyond ``sigma_y``
    get exponentially small weight) plus the CS quadratic mutual information between
    the input and the representation. Inputs and targets are standardised
    internally; widths are resolved per batch in standardised units and detached.
    Early stopping uses an internal validation split only. Baseline objectives
    (``"mse"``, ``"vib"``, ``"nib"``, ``"hsic"``) train the same network.

    Parameters
    ----------
    beta : float, default=0.01
        Weight of the compression term (>= 0; 0 means no compression).
    objective : {"cs_ib", "mse", "vib", "nib", "hsic"}, default="cs_ib"
        Prediction and compression terms (see the user guide).
    compression : {"cs_qmi", "normalized_cs_qmi"}, default="cs_qmi"
        Compression term of ``"cs_ib"`` and ``"mse"``.
    bottleneck_dim : int, default=128
        Width K of the representation t.
    hidden_layer_sizes : tuple of int, default=(128, 128)
        Encoder hidden layers (before the linear t-head); may be empty.
    decoder_hidden_sizes : tuple of int, default=(128,)
        Decoder hidden layers; may be empty.
    activation : {"relu", "tanh", "gelu"}, default="relu"
    noise_std : float, default=0.1
        Scale of the Gaussian noise added to t during training (0: deterministic t).
        Ignored by ``"vib"`` (learned per coordinate); the initial noise width of ``"nib"``.
    learn_noise_std : bool, default=False
        Train the log noise scale jointly (requires ``noise_std > 0``).
    sigma_x : {"median", "silverman"} or float, default="median"
        Input kernel width in standardised units. A rule is recomputed per batch;
        the prediction term multiplies it by ``sigma_x_scale``, the compression term
        uses it as is. A float is used as given in both terms.
    sigma_x_scale : float, default=0.25
        Multiplier of the ``sigma_x`` rule in the prediction term.
    sigma_y : {"median", "silverman"} or float, default=1.0
        Target kernel width in target-sd units: the robustness knob (small: robust,
        mode-seeking; large: close to MSE).
    sigma_t : {"median", "silverman"} or float, default="median"
        Representation kernel width (the median makes the compression term
        invariant to rescaling t).
    approximation : {None, "rff", "nystroem"}, default=None
        Compute the CS terms (conditional CS, CS-QMI) of each batch with random Fourier
        features or Nyström landmarks (fresh per batch, O(batch * n_components)) instead
        of exact O(batch^2) sums: for large batches. Rule widths then use at most 1024
        rows of the batch. HSIC, VIB and NIB terms stay exact. Batches whose approximate
        kernel sums had to be floored in more than 1% of rows are counted and reported by
        one ``RuntimeWarning`` at the end of ``fit``.
    n_components : int, default=1024
    batch_size : int or "full", default=128
        Rows per step (>= 2); ``"full"`` uses all training rows. The estimators are
        biased per batch, so this is a real hyperparameter.
    max_iter : int, default=200
        Maximum number of epochs.
    learning_rate : float, default=1e-3
    weight_decay : float, default=0.0
    early_stopping : bool, default=True
        Hold out ``validation_fraction`` of the rows and stop after
        ``n_iter_no_change`` epochs without improvement larger than ``tol``; the best
        epoch's weights are restored.
    validation_fraction : float, default=0.1
    n_iter_no_change : int, default=20
    tol : float, default=1e-4
        Absolute, in standardised target units.
    validation_metric : {"rmse", "mae"}, default="rmse"
    device : str, default="auto"
        ``"auto"``, ``"cpu"``, ``"cuda"`` or ``"cuda:N"``.
    dtype : {"float32", "float64"}, default="float32"
    random_state : None, int or RandomState
        Weights, validation split, batch order and noise.
    verbose : int, default=0
        ``> 0`` shows a progress bar.

    Attributes
    ----------
    n_features_in_ : int
    feature_names_in_ : ndarray of str
        Only for DataFrame input with string column names.
    n_outputs_ : int
    module_ : torch.nn.Module
        The fitted network on the CPU, in eval mode.
    device_ : str
    x_mean_, x_scale_ : ndarray of shape (n_features,)
    y_mean_, y_scale_ : ndarray of shape (n_outputs,)
    sigma_x_, sigma_y_, sigma_t_ : float
        Widths (standardised units) averaged over the batches of the last epoch;
        ``sigma_x_`` is the prediction-term width for ``"cs_ib"`` and the
        compression-term width otherwise. A width that no term used (``beta=0``,
        the MSE prediction term, ``"vib"``/``"nib"`` compression) is the float given,
        or its rule on at most 2000 training rows (``t`` from the fitted encoder, noise
        off).
    noise_std_ : float or None
        Final noise scale (None for ``"vib"``).
    n_iter_ : int
        Epochs run.
    best_epoch_ : int
        0-based epoch whose weights were kept.
    loss_curve_, prediction_loss_curve_, compression_curve_ : list of float
        Per-epoch means over batches. With ``beta=0`` the compression term is not
        evaluated and ``compression_curve_`` holds NaN.
    validation_scores_ : list of float or None
        Validation error (RMSE or MAE, standardised units, lower is better) per epoch.
    best_validation_score_ : float or None
    n_nonfinite_steps_ : int
        Steps skipped because the batch loss was not finite; 10 consecutive skipped
        steps stop training (best weights kept, ``ConvergenceWarning``).
    training_time_ : float

    See Also
    --------
    conditional_cs_divergence, cs_mutual_information

    Notes
    -----
    Point predictions are a robust location estimate: with small ``sigma_y`` they
    move toward the conditional mode. For model selection under heavy-tailed noise
    prefer a robust scorer such as ``scoring="neg_median_absolute_error"``.

    References
    ----------
    S. Yu, X. Yu, S. Løkse, R. Jenssen and J. C. Príncipe (2024). Cauchy--Schwarz
    divergence information bottleneck for regression. ICLR 2024.

    Examples
    --------
    >>> from fstat.bottleneck import CSIBRegressor
    >>> from fstat.datasets import make_heavy_tailed_friedman
    >>> X, y = make_heavy_tailed_friedman(300, random_state=0)
    >>> model = CSIBRegressor(max_iter=5, bottleneck_dim=8, random_state=0, device="cpu")
    >>> model.fit(X, y).predict(X[:2]).shape
    (2,)
    >>> model.transform(X[:2]).shape
    (2, 8)
    """

    _parameter_constraints = {
        "beta": [Interval(Real, 0, None, closed="left")],
        "objective": [StrOptions(set(OBJECTIVES))],
        "compression": [StrOptions({"cs_qmi", "normalized_cs_qmi"})],
        "bottleneck_dim": [Interval(Integral, 1, None, closed="left")],
        "hidden_layer_sizes": [tuple, list],
        "decoder_hidden_sizes": [tuple, list],
        "activation": [StrOptions({"relu", "tanh", "gelu"})],
        "noise_std": [Interval(Real, 0, None, closed="left")],
        "learn_noise_std": ["boolean"],
        "sigma_x": [_RULES, Interval(Real, 0, None, closed="neither")],
        "sigma_x_scale": [Interval(Real, 0, None, closed="neither")],
        "sigma_y": [_RULES, Interval(Real, 0, None, closed="neither")],
        "sigma_t": [_RULES, Interval(Real, 0, None, closed="neither")],
        "approximation": [StrOptions({"rff", "nystroem"}), None],
        "n_components": [Interval(Integral, 1, None, closed="left")],
        "batch_size": [Interval(Integral, 2, None, closed="left"), StrOptions({"full"})],
        "max_iter": [Interval(Integral, 1, None, closed="left")],
        "learning_rate": [Interval(Real, 0, None, closed="neither")],
        "weight_decay": [Interval(Real, 0, None, closed="left")],
        "early_stopping": ["boolean"],
        "validation_fraction": [Interval(Real, 0, 1, closed="neither")],
        "n_iter_no_change": [Interval(Integral, 1, None, closed="left")],
        "tol": [Interval(Real, 0, None, closed="left")],
        "validation_metric": [StrOptions({"rmse", "mae"})],
        "device": [str],
        "dtype": [StrOptions({"float32", "float64"})],
        "random_state": ["random_state"],
        "verbose": ["verbose"],
    }

    def __init__(self, beta=0.01, *, objective="cs_ib", compression="cs_qmi",
                 bottleneck_dim=128, hidden_layer_sizes=(128, 128), decoder_hidden_sizes=(128,),
                 activation="relu", noise_std=0.1, learn_noise_std=False, sigma_x="median",
                 sigma_x_scale=0.25, sigma_y=1.0, sigma_t="median", approximation=None,
                 n_components=1024, batch_size=128, max_iter=200, learning_rate=1e-3,
                 weight_decay=0.0, early_stopping=True, validation_fraction=0.1,
                 n_iter_no_change=20, tol=1e-4, validation_metric="rmse", device="auto",
                 dtype="float32", random_state=None, verbose=0):
        self.beta = beta
        self.objective = objective
        self.compression = compression
        self.bottleneck_dim = bottleneck_dim
        self.hidden_layer_sizes = hidden_layer_sizes
        self.decoder_hidden_sizes = decoder_hidden_sizes
        self.activation = activation
        self.noise_std = noise_std
        self.learn_noise_std = learn_noise_std
        self.sigma_x = sigma_x
        self.sigma_x_scale = sigma_x_scale
        self.sigma_y = sigma_y
        self.sigma_t = sigma_t
        self.approximation = approximation
        self.n_components = n_components
        self.batch_size = batch_size
        self.max_iter = max_iter
        self.learning_rate = learning_rate
        self.weight_decay = weight_decay
        self.early_stopping = early_stopping
        self.validation_fraction = validation_fraction
        self.n_iter_no_change = n_iter_no_change
        self.tol = tol
        self.validation_metric = validation_metric
        self.device = device
        self.dtype = dtype
        self.random_state = random_state
        self.verbose = verbose

    # ------------------------------------------------------------------ sklearn
    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.target_tags.required = True
        tags.target_tags.multi_output = True
        tags.input_tags.allow_nan = False
        if tags.transformer_tags is not None:
            tags.transformer_tags.preserves_dtype = ["float64"]
        device = str(self.device).lower() if isinstance(self.device, str) else ""
        tags.non_deterministic = device.startswith("cuda") or (
            device == "auto" and torch.cuda.is_available())
        return tags

    @property
    def _n_features_out(self):
        return self.module_.bottleneck_dim

    # --------------------------------------------------------------------- fit
    def _noise_mode(self):
        if self.objective == "vib":
            return "vib"
        if self.objective == "nib" or self.learn_noise_std:
            if not self.noise_std > 0:
                raise ValueError(
                    f"noise_std must be > 0 with objective={self.objective!r} and "
                    f"learn_noise_std={self.learn_noise_std}; got noise_std={self.noise_std!r}."
                )
            return "learned"
        return "fixed" if self.noise_std > 0 else "none"

    @_fit_context(prefer_skip_nested_validation=True)
    def fit(self, X, y):
        """Train the network.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
        y : array-like of shape (n_samples,) or (n_samples, n_outputs)

        Returns
        -------
        self
        """
        X, y = validate_data(self, X, y, multi_output=True, y_numeric=True,
                             ensure_min_samples=2, dtype=np.float64, order="C")
        # y_numeric converts object arrays only: strings must fail here, naming y
        y = check_array(y, dtype=np.float64, order="C", ensure_2d=False, input_name="y")
        hidden = check_layer_sizes(self.hidden_layer_sizes)
        dec_hidden = check_layer_sizes(self.decoder_hidden_sizes, "decoder_hidden_sizes")
        noise_mode = self._noise_mode()
        device = resolve_device(self.device)
        dtype = parse_dtype(self.dtype)
        generator = make_generator(self.random_state)

        self._y_1d = y.ndim == 1
        Y = y.reshape(-1, 1) if y.ndim == 1 else y
        self.n_outputs_ = Y.shape[1]
        self.x_mean_, self.x_scale_ = _standardise_stats(X)
        self.y_mean_, self.y_scale_ = _standardise_stats(Y)
        Xs = torch.as_tensor((X - self.x_mean_) / self.x_scale_, dtype=dtype, device=device)
        Ys = torch.as_tensor((Y - self.y_mean_) / self.y_scale_, dtype=dtype, device=device)

        n = X.shape[0]
        train_idx, val_idx = self._split(n, generator)
        batch_size = self._batch_size(len(train_idx), Xs.shape[1] + self.bottleneck_dim,
                                      device, dtype)

        network = build_network(
            X.shape[1], self.n_outputs_, hidden_layer_sizes=hidden,
            bottleneck_dim=self.bottleneck_dim, decoder_hidden_sizes=dec_hidden,
            activation=self.activation, noise_mode=noise_mode, noise_std=float(self.noise_std),
            generator=generator, dtype=dtype, device=device,
        )
        optimizer = make_optimizer(network.parameters(), "adam",
                                   learning_rate=self.learning_rate,
                                   weight_decay=self.weight_decay, fused=True)
        X_train, Y_train = Xs[train_idx.to(device)], Ys[train_idx.to(device)]
        loss_fn, widths, floors = self._loss_function(network, X_train, Y_train, generator)
        validate = None
        if val_idx is not None:
            validate = self._validation_function(network, Xs[val_idx.to(device)],
                                                 Ys[val_idx.to(device)])
        start = time.perf_counter()
        result = train_minibatches(
            network, loss_fn, len(train_idx), optimizer=optimizer, generator=generator,
            max_epochs=self.max_iter, batch_size=batch_size, min_last_batch=2,
            skip_nonfinite=True, max_consecutive_nonfinite=10, device=device, validate=validate,
            validate_initial=False, early_stopping=val_idx is not None,
            on_epoch=widths.start_epoch,
            n_iter_no_change=self.n_iter_no_change, tol=self.tol, verbose=self.verbose,
            desc="CSIBRegressor",
        )
        seconds = time.perf_counter() - start
        if floors["floored"]:
            warn_user(
                f"the {self.approximation} approximation floored kernel sums at their exact "
                f"lower bounds in more than 1% of the rows of {floors['floored']} of "
                f"{floors['batches']} training batches; increase n_components.",
                RuntimeWarning,
            )
        unused = widths.unused(network)  # the loop left it in eval mode
        self._store_results(network, result, widths, len(train_idx), batch_size, device,
                            seconds, unused)
        return self

    def _split(self, n, generator):
        if not self.early_stopping:
            return torch.arange(n), None
        n_val = math.ceil(self.validation_fraction * n)
        if n - n_val < 2 or n_val < 1:
            warn_user(
                f"early_stopping needs >= 2 training and >= 1 validation rows; with "
                f"{n} rows and validation_fraction={self.validation_fraction} early stopping "
                "is disabled and all rows train.",
                UserWarning,
            )
            return torch.arange(n), None
        perm = torch.randperm(n, generator=generator)
        return perm[n_val:].sort().values, perm[:n_val].sort().values

    def _batch_size(self, n_train, width, device, dtype):
        if self.batch_size == "full":
            size = n_train
        else:
            size = int(self.batch_size)
            if size > n_train:
                warn_user(
                    f"batch_size={size} is larger than the {n_train} training rows; "
                    f"clipped to {n_train}.",
                    UserWarning,
                )
                size = n_train
        itemsize = torch.finfo(dtype).bits // 8
        estimate = 10 * size * size * itemsize + 4 * size * width * itemsize
        if self.approximation is not None:  # feature maps: O(size * n_components) memory
            if compression_for(self.objective, self.compression) in (
                    cs_qmi_compression, normalized_cs_qmi_compression) and self.beta > 0:
                check_qmi_components(self.n_components, dtype, self.approximation, size)
        elif device.type == "cuda":
            free = cuda_free_bytes(device)
            if estimate > free:
                raise ValueError(
                    f"an exact batch of {size} rows needs about {estimate / 2**30:.1f} GiB of "
                    f"Gram memory but only {free / 2**30:.1f} GiB is free on {device}; use a "
                    "smaller batch_size or an approximation."
                )
        elif estimate > _CPU_GRAM_LIMIT:
            warn_user(
                f"an exact batch of {size} rows needs about {estimate / 2**30:.1f} GiB of Gram "
                "memory; consider a smaller batch_size or an approximation.",
                UserWarning,
            )
        return None if size >= n_train else size

    def _loss_function(self, network, X_train, Y_train, generator):
        prediction_term = OBJECTIVES[self.objective]
        compression_term = compression_for(self.objective, self.compression)
        t_width = needs_t_width(self.objective, self.compression)
        use_cs = self.objective == "cs_ib"
        beta = float(self.beta)
        widths = BatchWidths(self, generator, X_train, Y_train, prediction=use_cs,
                             compression=beta > 0, t_width=t_width,
                             fused_compression=compression_term is cs_qmi_compression)
        dtype, device = X_train.dtype, X_train.device
        noise = NoiseRows(self.bottleneck_dim, generator, dtype, device)
        noisy = network.noise_mode != "none"
        nan = torch.full((), float("nan"), dtype=dtype, device=device)
        # approximation: batches with floored sums, and the other warnings passed on
        floors = {"batches": 0, "floored": 0, "passed_on": set()}

        def loss_fn(index):
            x, y = X_train[index], Y_train[index]
            eps = noise.take(len(index)) if noisy else None
            mu, t, y_pred, scale = network(x, eps)
            b = Batch(x=x, y=y, mu=mu, t=t, y_pred=y_pred, scale=scale,
                      approximation=self.approximation, n_components=self.n_components,
                      generator=generator)
            widths.fill(b, index)
            if self.approximation is None:
                return terms(b)
            # per-batch floor warnings would repeat every step: counted, reported once by fit
            with collecting_warnings() as caught:
                out = terms(b)
            floors["batches"] += 1
            floors["floored"] += any("were floored" in message for message, _ in caught)
            for message, category in caught:  # other warnings pass on, once per fit
                if "were floored" not in message and (category, message) not in floors[
                        "passed_on"]:
                    floors["passed_on"].add((category, message))
                    warn_user(message, category)
            return out

        def terms(b):
            prediction = prediction_term(b)
            if beta > 0:
                compression = compression_term(b)
                loss = prediction + beta * compression  # inf for a huge beta: skipped
            else:
                compression = nan
                loss = prediction
            return {"loss": loss, "prediction": prediction, "compression": compression}

        return loss_fn, widths, floors

    def _validation_function(self, network, X_val, Y_val):
        metric = self.validation_metric

        def validate():
            network.eval()
            with torch.no_grad():
                residual = network.predict(X_val) - Y_val
                if metric == "rmse":
                    value = residual.square().mean().sqrt()
                else:
                    value = residual.abs().mean()
            network.train()
            value = float(value)
            return -value if math.isfinite(value) else -math.inf

        return validate

    def _store_results(self, network, result, widths, n_train, batch_size, device, seconds,
                       unused):
        self.device_ = str(device)
        network.eval()
        self.module_ = network.to("cpu")
        self.n_iter_ = int(result.n_iter)
        self.loss_curve_ = list(result.loss_curve)
        self.prediction_loss_curve_ = list(result.loss_terms.get("prediction", []))
        self.compression_curve_ = list(result.loss_terms.get("compression", []))
        if result.validation_scores is not None:
            self.validation_scores_ = [-s for s in result.validation_scores]
            self.best_epoch_ = int(np.argmin(self.validation_scores_))
            self.best_validation_score_ = float(self.validation_scores_[self.best_epoch_])
        else:
            self.validation_scores_ = None
            self.best_epoch_ = self.n_iter_ - 1
            self.best_validation_score_ = None
        self.n_nonfinite_steps_ = int(result.n_nonfinite)
        self.training_time_ = float(seconds)
        if batch_size is None:
            per_epoch = 1
        else:  # a final remainder of < 2 rows is merged into the previous batch
            per_epoch = math.ceil(n_train / batch_size) - (1 if n_train % batch_size == 1 else 0)
        for name, values in widths.history.items():
            last = [v for v in values[-per_epoch:] if v is not None]
            setattr(self, name + "_", float(np.mean(last)) if last else unused[name])
        scale = network.noise_scale() if network.noise_mode != "vib" else None
        if isinstance(scale, torch.Tensor):  # learned: the trained value
            scale = float(scale.detach())
        self.noise_std_ = None if network.noise_mode == "vib" else (
            0.0 if scale is None else float(scale))

    # -------------------------------------------------------------- inference
    def _forward(self, X, what, device=None):
        """``predict`` or ``transform`` output in standardised units, on ``device`` (by
        default the fitted device when usable here, else the CPU with a warning)."""
        check_is_fitted(self, "module_")
        X = validate_data(self, X, reset=False, dtype=np.float64, order="C")
        if device is None:
            device = fitted_device(self.device_, {"predict": "predicting",
                                                  "transform": "transforming"}[what])
        dtype = next(self.module_.parameters()).dtype
        module = self.module_ if device.type == "cpu" else _copy_to(self.module_, device)
        Xs = torch.as_tensor((X - self.x_mean_) / self.x_scale_, dtype=dtype, device=device)
        outputs = []
        with torch.no_grad():
            for start in range(0, max(1, Xs.shape[0]), 65536):
                chunk = Xs[start:start + 65536]
                out = module.predict(chunk) if what == "predict" else module.encode(chunk)[0]
                outputs.append(out.to("cpu", torch.float64))
        out = torch.cat(outputs).numpy()
        if not np.all(np.isfinite(out)):
            raise FloatingPointError(
                f"non-finite values in {what}; the inputs may be extreme for "
                f"dtype={self.dtype!r}: refit with dtype='float64'."
            )
        return out

    def predict(self, X):
        """Predict targets (noise off, original units).

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)

        Returns
        -------
        ndarray of shape (n_samples,) or (n_samples, n_outputs)
        """
        out = self._forward(X, "predict") * self.y_scale_ + self.y_mean_
        return out[:, 0] if self._y_1d else out

    def transform(self, X):
        """The representation t = mu(x) (noise off).

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)

        Returns
        -------
        ndarray of shape (n_samples, bottleneck_dim)
        """
        return self._forward(X, "transform")

    def information_plane(self, X, y, *, normalized=False, max_samples=4096, approximation=None,
                          n_components=1024, base=None, random_state=None):
        """CS-QMI coordinates (I(x; t), I(y; t)) of the fitted representation.

        Both use median widths for every variable (independent of the training
        widths, so values are comparable across ``beta`` and objectives) on
        standardised x and y (fitted statistics) and ``t = transform(X)``.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
        y : array-like of shape (n_samples,) or (n_samples, n_outputs)
        normalized : bool, default=False
        max_samples : int, default=4096
            Rows above this number are subsampled with ``random_state``.
        approximation : {None, "rff", "nystroem"}, default=None
        n_components : int, default=1024
        base : float, optional
        random_state : None, int or RandomState

        Returns
        -------
        I_xt, I_yt : float
        """
        check_is_fitted(self, "module_")
        if y is None:
            raise ValueError("information_plane requires y (the targets of X); got None.")
        device = fitted_device(self.device_, "estimating")  # one warning for a missing GPU
        T = self._forward(X, "transform", device)
        X = validate_data(self, X, reset=False, dtype=np.float64, order="C")
        y = check_array(y, dtype=np.float64, order="C", ensure_2d=False, input_name="y")
        Y = y.reshape(-1, 1) if y.ndim == 1 else y
        if Y.shape[0] != X.shape[0] or Y.shape[1] != self.n_outputs_:
            raise ValueError(
                f"y has shape {y.shape}; expected {X.shape[0]} rows and {self.n_outputs_} "
                "output(s)."
            )
        Xs = (X - self.x_mean_) / self.x_scale_
        Ys = (Y - self.y_mean_) / self.y_scale_
        if max_samples is not None and X.shape[0] > max_samples:
            rng = check_random_state(random_state)
            keep = np.sort(rng.choice(X.shape[0], max_samples, replace=False))
            Xs, Ys, T = Xs[keep], Ys[keep], T[keep]
        options = dict(normalized=normalized, approximation=approximation,
                       n_components=n_components, base=base, random_state=random_state,
                       device=device)
        return (float(cs_mutual_information(Xs, T, **options)),
                float(cs_mutual_information(Ys, T, **options)))


def _copy_to(module, device):
    import copy

    return copy.deepcopy(module).to(device)
