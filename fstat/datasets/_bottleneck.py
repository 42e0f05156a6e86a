"""Simulators for the Cauchy--Schwarz information bottleneck family (numpy only)."""

from __future__ import annotations

import numpy as np
from sklearn.utils import check_random_state

from .._validation import check_integer

__all__ = ["make_bimodal_regression", "make_heavy_tailed_friedman", "make_rotated_digits"]


def _check_positive(value, name):
    value = float(value)
    if not (np.isfinite(value) and value > 0):
        raise ValueError(f"{name} must be finite and > 0; got {name}={value!r}.")
    return value


def make_heavy_tailed_friedman(n_samples=4000, n_features=10, *, noise_df=2.0, noise_scale=1.0,
                               random_state=None, return_mean=False):
    """Friedman #1 regression with Student-t noise (heavy tails).

    ``X ~ U(0, 1)^p``; ``f = 10 sin(pi x1 x2) + 20 (x3 - 1/2)^2 + 10 x4 + 5 x5``
    (Friedman 1991); ``y = f + noise_scale * t(noise_df)``. Only the first five
    features matter. With ``noise_df = 2`` the noise has infinite variance.

    Parameters
    ----------
    n_samples : int, default=4000
    n_features : int, default=10
        At least 5.
    noise_df : float, default=2.0
        Degrees of freedom of the Student-t noise (> 0).
    noise_scale : float, default=1.0
        Scale of the noise (>= 0).
    random_state : None, int or RandomState
    return_mean : bool, default=False
        Also return the noiseless mean ``f``.

    Returns
    -------
    X : ndarray of shape (n_samples, n_features)
    y : ndarray of shape (n_samples,)
    f : ndarray of shape (n_samples,)
        Only with ``return_mean=True``.

    Examples
    --------
    >>> from fstat.datasets import make_heavy_tailed_friedman
    >>> X, y, f = make_heavy_tailed_friedman(100, random_state=0, return_mean=True)
    >>> X.shape, y.shape, f.shape
    ((100, 10), (100,), (100,))
    """
    n = check_integer(n_samples, "n_samples", 1)
    p = check_integer(n_features, "n_features", 5)
    noise_df = _check_positive(noise_df, "noise_df")
    noise_scale = float(noise_scale)
    if not (np.isfinite(noise_scale) and noise_scale >= 0):
        raise ValueError(f"noise_scale must be finite and >= 0; got noise_scale={noise_scale!r}.")
    rng = check_random_state(random_state)
    X = rng.uniform(size=(n, p))
    f = (10.0 * np.sin(np.pi * X[:, 0] * X[:, 1]) + 20.0 * (X[:, 2] - 0.5) ** 2
         + 10.0 * X[:, 3] + 5.0 * X[:, 4])
    y = f + noise_scale * rng.standard_t(noise_df, size=n)
    return (X, y, f) if return_mean else (X, y)


def make_bimodal_regression(n_samples=4000, n_features=5, *, separation=2.0, noise=0.3,
                            random_state=None, return_mean=False):
    """Regression with a two-mode conditional distribution.

    ``X ~ N(0, I_p)``; ``g = sin(2 x1) + x2^2 / 2``; ``s = ±1`` with equal
    probability; ``y = g + separation * s + noise * e``, ``e ~ N(0, 1)``. The
    conditional mean is ``g``; the conditional modes are ``g ± separation``.

    Parameters
    ----------
    n_samples : int, default=4000
    n_features : int, default=5
        At least 2.
    separation : float, default=2.0
    noise : float, default=0.3
    random_state : None, int or RandomState
    return_mean : bool, default=False
        Also return ``g``.

    Returns
    -------
    X : ndarray of shape (n_samples, n_features)
    y : ndarray of shape (n_samples,)
    g : ndarray of shape (n_samples,)
        Only with ``return_mean=True``.

    Examples
    --------
    >>> from fstat.datasets import make_bimodal_regression
    >>> X, y = make_bimodal_regression(50, random_state=0)
    >>> X.shape
    (50, 5)
    """
    n = check_integer(n_samples, "n_samples", 1)
    p = check_integer(n_features, "n_features", 2)
    separation, noise = float(separation), float(noise)
    if not (np.isfinite(separation) and np.isfinite(noise) and noise >= 0):
        raise ValueError(
            f"separation must be finite and noise finite and >= 0; got separation={separation!r}, "
            f"noise={noise!r}."
        )
    rng = check_random_state(random_state)
    X = rng.standard_normal((n, p))
    g = np.sin(2.0 * X[:, 0]) + X[:, 1] ** 2 / 2.0
    s = rng.choice([-1.0, 1.0], n)
    e = rng.standard_normal(n)
    y = g + separation * s + noise * e
    return (X, y, g) if return_mean else (X, y)


def make_rotated_digits(*, max_angle=45.0, random_state=None):
    """Predict the rotation angle of scikit-learn's 8x8 digits (offline, 1797 images).

    Each image of :func:`sklearn.datasets.load_digits` is rotated by an angle drawn
    from ``U(-max_angle, max_angle)`` degrees with
    ``scipy.ndimage.rotate(img, angle, reshape=False, order=1)`` (constant mode,
    ``cval=0``). Some pixel columns are constant (a deliberate stress case for
    standardisation).

    Parameters
    ----------
    max_angle : float, default=45.0
    random_state : None, int or RandomState

    Returns
    -------
    X : ndarray of shape (1797, 64)
    y : ndarray of shape (1797,)
        The angles in degrees.

    Examples
    --------
    >>> from fstat.datasets import make_rotated_digits
    >>> X, y = make_rotated_digits(random_state=0)
    >>> X.shape
    (1797, 64)
    """
    from scipy.ndimage import rotate
    from sklearn.datasets import load_digits

    max_angle = float(max_angle)
    if not (np.isfinite(max_angle) and max_angle >= 0):
        raise ValueError(f"max_angle must be finite and >= 0; got max_angle={max_angle!r}.")
    rng = check_random_state(random_state)
    images = load_digits().images
    angles = rng.uniform(-max_angle, max_angle, images.shape[0])
    rotated = np.stack([
        rotate(img, angle, reshape=False, order=1, mode="constant", cval=0.0)
        for img, angle in zip(images, angles)
    ])
    return rotated.reshape(images.shape[0], -1).astype(np.float64), angles
