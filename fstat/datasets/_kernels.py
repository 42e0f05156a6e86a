"""Simulators for :mod:`fstat.kernels`: a random ReLU teacher network and a digits pair."""

from __future__ import annotations

import math
from numbers import Integral, Real

import numpy as np
from sklearn.utils import check_random_state

from .._validation import check_integer

__all__ = ["make_ntk_teacher", "load_digits_pair"]


def make_ntk_teacher(n_samples=500, n_features=10, *, task="classification", depth=1,
                     width=512, w_std=1.0, b_std=0.0, noise=0.1, flip_y=0.0, on_sphere=True,
                     random_state=None):
    """Data labelled by a random NTK-parameterised ReLU network (the "teacher").

    1. ``Z ~ N(0, I_d)``; with ``on_sphere`` the rows are rescaled to ``||x||^2 / d = 1``.
    2. Teacher weights, all N(0, 1), drawn in the order ``W_1, b_1, ..., W_L, b_L, w_out,
       b_out`` (biases are drawn even when ``b_std = 0``); ``f(x)`` is the forward pass
       ``h = (w_std / sqrt(n_in)) W x + b_std b`` with ReLU hidden layers.
    3. Regression: ``y = standardised f + noise * eps``. Classification: ``y = +1`` if
       ``f > median(f)`` else ``-1`` (balanced), then labels flipped with probability
       ``flip_y``.

    Parameters
    ----------
    n_samples, n_features : int, default=500, 10
    task : {"classification", "regression"}, default="classification"
    depth : int, default=1
    width : int, default=512
    w_std, b_std : float, default=1.0, 0.0
    noise : float, default=0.1
        Standard deviation of the regression noise (on the standardised scale).
    flip_y : float, default=0.0
        Label-flip probability (classification).
    on_sphere : bool, default=True
    random_state : int, RandomState or None

    Returns
    -------
    X : ndarray of shape (n_samples, n_features)
    y : ndarray of shape (n_samples,)
        int +-1 labels (classification) or floats (regression).

    Examples
    --------
    >>> from fstat.datasets import make_ntk_teacher
    >>> X, y = make_ntk_teacher(100, 5, random_state=0)
    >>> X.shape, sorted(set(y.tolist()))
    ((100, 5), [-1, 1])
    """
    if task not in ("classification", "regression"):
        raise ValueError(f"task must be 'classification' or 'regression'; got {task!r}.")
    for name, value, low in (("n_samples", n_samples, 1), ("n_features", n_features, 1),
                             ("depth", depth, 0), ("width", width, 1)):
        check_integer(value, name, minimum=low)
    if not isinstance(w_std, Real) or not 0 < w_std < math.inf:
        raise ValueError(f"w_std must be a finite real number > 0; got w_std={w_std!r}.")
    for name, value in (("b_std", b_std), ("noise", noise)):
        if not isinstance(value, Real) or not 0 <= value < math.inf:
            raise ValueError(f"{name} must be a finite real number >= 0; got {name}={value!r}.")
    if not 0 <= flip_y <= 1:
        raise ValueError(f"flip_y must lie in [0, 1]; got flip_y={flip_y!r}.")
    rng = check_random_state(random_state)
    n, d = int(n_samples), int(n_features)
    Z = rng.standard_normal((n, d))
    if on_sphere:
        X = np.sqrt(d) * Z / np.linalg.norm(Z, axis=1, keepdims=True)
    else:
        X = Z
    h = X
    fan_in = d
    for _ in range(depth):
        W = rng.standard_normal((width, fan_in))
        b = rng.standard_normal(width)
        h = np.maximum(w_std / np.sqrt(fan_in) * h @ W.T + b_std * b, 0.0)
        fan_in = width
    w_out = rng.standard_normal(fan_in)
    b_out = rng.standard_normal()
    f = w_std / np.sqrt(fan_in) * h @ w_out + b_std * b_out
    if task == "regression":
        eps = rng.standard_normal(n)
        sd = f.std()
        y = (f - f.mean()) / (sd if sd > 0 else 1.0) + noise * eps
        return X, y
    y = np.where(f > np.median(f), 1, -1).astype(int)
    u = rng.uniform(size=n)
    y[u < flip_y] *= -1
    return X, y


def load_digits_pair(pair=(0, 1), *, scale=True):
    """Two digits of scikit-learn's 8x8 ``load_digits`` as a binary problem (offline).

    Parameters
    ----------
    pair : tuple of two ints, default=(0, 1)
        ``y = -1`` for ``pair[0]`` and ``+1`` for ``pair[1]``.
    scale : bool, default=True
        Divide pixel values by 16 (to [0, 1]).

    Returns
    -------
    X : ndarray of shape (n, 64)
    y : ndarray of shape (n,) with values -1, +1 (original order of the rows).

    Examples
    --------
    >>> from fstat.datasets import load_digits_pair
    >>> X, y = load_digits_pair()
    >>> X.shape
    (360, 64)
    """
    from sklearn.datasets import load_digits

    try:
        a, b = pair
    except (TypeError, ValueError):
        raise ValueError(f"pair must be two different digits 0-9; got pair={pair!r}.") from None
    if a == b or not all(isinstance(v, Integral) and not isinstance(v, bool) and 0 <= v <= 9
                         for v in (a, b)):
        raise ValueError(f"pair must be two different digits 0-9; got pair={pair!r}.")
    data = load_digits()
    mask = (data.target == a) | (data.target == b)
    X = data.data[mask].astype(np.float64)
    if scale:
        X = X / 16.0
    y = np.where(data.target[mask] == b, 1, -1).astype(int)
    return X, y
