"""Adversarial evaluation of regressors: FGSM, PGD and surrogate transfer attacks."""

from __future__ import annotations

import copy

import numpy as np
import torch
from sklearn.utils.validation import check_array, check_is_fitted

from .._torch import as_tensor, make_generator
from .._validation import check_integer, check_positive

__all__ = ["adversarial_rmse"]

_DEFAULT_EPS = np.round(np.arange(13) * 0.05, 10)


def _mlp_regressor_function(model):
    """A float64 torch function of an sklearn MLPRegressor (from coefs_, intercepts_)."""
    activations = {
        "identity": lambda h: h, "relu": torch.relu, "tanh": torch.tanh,
        "logistic": torch.sigmoid,
    }
    outputs = {"identity": lambda h: h, "exp": torch.exp}  # exp: loss="poisson"
    out_activation = getattr(model, "out_activation_", "identity")
    if model.activation not in activations:
        raise TypeError(f"unsupported MLPRegressor activation {model.activation!r}.")
    if out_activation not in outputs:
        raise TypeError(f"unsupported MLPRegressor output activation {out_activation!r}.")
    act, out = activations[model.activation], outputs[out_activation]
    weights = [torch.as_tensor(W, dtype=torch.float64) for W in model.coefs_]
    biases = [torch.as_tensor(b, dtype=torch.float64) for b in model.intercepts_]

    def f(x):
        h = x
        for i, (W, b) in enumerate(zip(weights, biases)):
            h = h @ W + b
            if i < len(weights) - 1:
                h = act(h)
        return out(h)

    return f


def _csib_function(model):
    """A float64 torch function of a fitted CSIBRegressor, through its standardisation."""
    module = copy.deepcopy(model.module_).to("cpu", torch.float64)
    module.eval()
    x_mean = torch.as_tensor(model.x_mean_, dtype=torch.float64)
    x_scale = torch.as_tensor(model.x_scale_, dtype=torch.float64)
    y_mean = torch.as_tensor(model.y_mean_, dtype=torch.float64)
    y_scale = torch.as_tensor(model.y_scale_, dtype=torch.float64)

    def f(x):
        return module.predict((x - x_mean) / x_scale) * y_scale + y_mean

    return f


def _torch_function(model):
    from sklearn.neural_network import MLPRegressor

    from ._regressor import CSIBRegressor

    if isinstance(model, CSIBRegressor):
        check_is_fitted(model, "module_")
        return _csib_function(model)
    if isinstance(model, MLPRegressor):
        check_is_fitted(model, "coefs_")
        return _mlp_regressor_function(model)
    return None


def _gradient_sign(f, x, y):
    x = x.detach().requires_grad_(True)
    out = f(x)
    out = out if out.dim() == 2 else out[:, None]
    loss = (out - y).square().sum()
    (grad,) = torch.autograd.grad(loss, x)
    return grad.sign()


def _clip(x, lo, hi):
    if lo is not None:
        x = torch.maximum(x, lo)
    if hi is not None:
        x = torch.minimum(x, hi)
    return x


def _perturb(f, x, y, eps, scale, attack, n_steps, step_size, random_start, lo, hi,
             generator):
    box = eps * scale
    if attack == "fgsm":
        return _clip(x + box * _gradient_sign(f, x, y), lo, hi) - x
    delta = torch.zeros_like(x)
    if random_start:
        u = torch.rand(x.shape, generator=generator, dtype=torch.float64)
        delta = (2.0 * u - 1.0) * box
        delta = _clip(x + delta, lo, hi) - x
    step = (2.5 * eps / n_steps if step_size is None else step_size) * scale
    for _ in range(n_steps):
        delta = delta + step * _gradient_sign(f, x + delta, y)
        delta = torch.maximum(torch.minimum(delta, box), -box)
        delta = _clip(x + delta, lo, hi) - x
    return delta


def adversarial_rmse(estimator, X, y, *, attack="fgsm", eps=None, n_steps=5, step_size=None,
                     random_start=False, feature_scale=None, clip=None, surrogate=None,
                     batch_size=1024, random_state=None):
    """Test RMSE under gradient-sign input perturbations (FGSM, PGD, transfer).

    The perturbation of row ``x`` is ``delta = eps * s * sign(grad_x ||f(x) - y||^2)``
    with ``s`` the per-feature scale (``feature_scale`` or the standard deviation of
    ``X``; zero-sd columns are not perturbed). ``"fgsm"`` takes one step; ``"pgd"``
    takes ``n_steps`` signed steps of ``step_size * s`` (default ``2.5 eps /
    n_steps``), projecting onto the box ``|delta_k| <= eps s_k`` after each step.
    Gradients are per sample.

    Parameters
    ----------
    estimator : fitted regressor
        :class:`CSIBRegressor` or :class:`sklearn.neural_network.MLPRegressor` are
        attacked directly; any other regressor needs ``surrogate``.
    X : array-like of shape (n_samples, n_features)
    y : array-like of shape (n_samples,) or (n_samples, n_outputs)
    attack : {"fgsm", "pgd"}, default="fgsm"
    eps : float or array-like, optional
        Perturbation sizes in units of ``s``; default ``0, 0.05, ..., 0.6``.
    n_steps : int, default=5
    step_size : float, optional
    random_start : bool, default=False
        PGD starts from a uniform point of the box.
    feature_scale : array-like of shape (n_features,), optional
    clip : (lo, hi), optional
        Bounds (scalars or arrays) applied to attacked inputs after each step.
    surrogate : fitted CSIBRegressor or MLPRegressor, optional
        Crafts the perturbation for a transfer attack on ``estimator``.
    batch_size : int, default=1024
    random_state : None, int or RandomState
        PGD random starts.

    Returns
    -------
    dict
        ``{"attack": str, "eps": ndarray (m,), "rmse": ndarray (m,)}``; RMSE in
        original target units over all entries.

    Examples
    --------
    >>> import numpy as np
    >>> from sklearn.neural_network import MLPRegressor
    >>> from fstat.bottleneck import adversarial_rmse
    >>> rng = np.random.default_rng(0)
    >>> X = rng.standard_normal((100, 3)); y = X @ [1.0, -1.0, 0.5]
    >>> model = MLPRegressor(activation="identity", max_iter=500, random_state=0).fit(X, y)
    >>> out = adversarial_rmse(model, X, y, eps=[0.0, 0.1])
    >>> bool(out["rmse"][1] > out["rmse"][0])
    True
    """
    if attack not in ("fgsm", "pgd"):
        raise ValueError(f"attack must be 'fgsm' or 'pgd'; got attack={attack!r}.")
    X = check_array(X, dtype=np.float64, input_name="X")
    y = check_array(y, dtype=np.float64, ensure_2d=False, input_name="y")
    Y = y.reshape(-1, 1) if y.ndim == 1 else y
    if Y.shape[0] != X.shape[0]:
        raise ValueError(
            f"X and y have inconsistent numbers of samples: {X.shape[0]} and {Y.shape[0]}."
        )
    eps = _DEFAULT_EPS.copy() if eps is None else np.atleast_1d(np.asarray(eps, np.float64))
    if eps.ndim != 1 or not np.all(np.isfinite(eps)) or np.any(eps < 0):
        raise ValueError(f"eps must be finite and >= 0; got eps={eps.tolist()!r}.")
    check_integer(n_steps, "n_steps")
    batch_size = check_integer(batch_size, "batch_size")
    if step_size is not None:
        step_size = check_positive(step_size, "step_size")
    for model in (estimator, surrogate):
        n_in = getattr(model, "n_features_in_", None)
        if n_in is not None and X.shape[1] != n_in:
            raise ValueError(f"X has {X.shape[1]} features, but {type(model).__name__} was "
                             f"fitted with {n_in}.")
    attacker = surrogate if surrogate is not None else estimator
    f = _torch_function(attacker)
    if f is None:
        raise TypeError(
            f"{type(attacker).__name__} cannot be attacked directly; pass surrogate= a fitted "
            "CSIBRegressor or MLPRegressor for a transfer attack."
        )
    if feature_scale is None:
        scale = X.std(axis=0)
    else:
        scale = np.asarray(feature_scale, dtype=np.float64)
        if scale.shape != (X.shape[1],) or np.any(~np.isfinite(scale)) or np.any(scale < 0):
            raise ValueError(
                f"feature_scale must be finite, >= 0 and of shape ({X.shape[1]},); got shape "
                f"{scale.shape}."
            )
    scale_t = as_tensor(scale)
    lo = hi = None
    if clip is not None:
        lo, hi = (None if c is None else torch.as_tensor(np.broadcast_to(
            np.asarray(c, np.float64), (X.shape[1],)).copy()) for c in clip)
    generator = make_generator(random_state)
    rmse = []
    for e in eps:
        if e == 0:
            X_adv = X
        else:
            parts = []
            for start in range(0, X.shape[0], batch_size):
                xb = as_tensor(X[start:start + batch_size])
                yb = as_tensor(Y[start:start + batch_size])
                delta = _perturb(f, xb, yb, float(e), scale_t, attack, n_steps, step_size,
                                 random_start, lo, hi, generator)
                parts.append((xb + delta).numpy())
            X_adv = np.vstack(parts)
        pred = np.asarray(estimator.predict(X_adv), dtype=np.float64).reshape(Y.shape)
        rmse.append(float(np.sqrt(np.mean((pred - Y) ** 2))))
    return {"attack": attack, "eps": eps, "rmse": np.asarray(rmse)}
