"""``BoundsDisplay``: bound bands against a covariate or the propensity (matplotlib, lazy)."""

from __future__ import annotations

from numbers import Integral

import numpy as np

from .._validation import check_integer

__all__ = ["BoundsDisplay"]


def _pyplot():
    try:
        import matplotlib.pyplot as plt
    except ImportError as exc:  # pragma: no cover - optional dependency
        raise ImportError("BoundsDisplay needs matplotlib: pip install matplotlib") from exc
    return plt


def _binned(x, values, n_bins):
    """Sort by x; per-quantile-bin median x and medians of each value column."""
    order = np.argsort(x, kind="stable")
    chunks = np.array_split(order, max(1, min(n_bins, x.size)))
    centers = np.array([np.median(x[c]) for c in chunks])
    meds = [np.array([np.median(v[c]) for c in chunks]) for v in values]
    return centers, meds


def _vector(values, name, n=None):
    """A finite 1-D float array (of length ``n`` when given), else a ValueError naming it."""
    array = np.asarray(values, dtype=float)
    if array.ndim != 1 or array.size == 0:
        raise ValueError(f"{name} must be a non-empty 1-D array; got shape {array.shape}.")
    if n is not None and array.size != n:
        raise ValueError(f"{name} has {array.size} values but x has {n}.")
    if not np.all(np.isfinite(array)):
        raise ValueError(f"{name} contains NaN or infinite values.")
    return array


def _segments(kwargs):
    """``fill_between``-style keywords for ``vlines`` (which spells the colour ``colors``)."""
    kwargs = dict(kwargs)
    color = kwargs.pop("color", None)
    kwargs.setdefault("colors", color)  # a user's own ``colors`` wins over the default
    return kwargs


def _split_plot_kwargs(kwargs):
    """``from_*`` keywords: the three ``*_kwargs`` of :meth:`plot`, the rest for the band."""
    parts = {name: kwargs.pop(name, None)
             for name in ("band_kwargs", "manski_kwargs", "truth_kwargs")}
    parts["band_kwargs"] = {**kwargs, **(parts["band_kwargs"] or {})}
    return parts


class BoundsDisplay:
    """Bound band (and Manski band, truth) against a covariate or the propensity.

    Parameters
    ----------
    x : array-like of shape (n,)
    lower, upper : array-like of shape (n,)
    manski_lower, manski_upper : array-like of shape (n,), optional
    truth : array-like of shape (n,), optional
    xlabel, ylabel : str, optional
    kind : {"band", "individual"}, default="band"
        ``"band"``: per-quantile-bin medians of the bounds as a filled band;
        ``"individual"``: one vertical segment per row.
    n_bins : int >= 1, default=20
        Quantile bins of ``x`` for ``kind="band"``.

    Attributes
    ----------
    ax_, figure_, band_, manski_band_, truth_line_
        Set by :meth:`plot`.

    Examples
    --------
    >>> import numpy as np
    >>> from fstat.causal import BoundsDisplay
    >>> x = np.linspace(0, 1, 50)
    >>> disp = BoundsDisplay(x, x - 1, x + 1, truth=x).plot()  # doctest: +SKIP
    """

    def __init__(self, x, lower, upper, *, manski_lower=None, manski_upper=None, truth=None,
                 xlabel=None, ylabel=None, kind="band", n_bins=20):
        self.x = _vector(x, "x")
        n = self.x.size
        self.lower = _vector(lower, "lower", n)
        self.upper = _vector(upper, "upper", n)
        if (manski_lower is None) != (manski_upper is None):
            raise ValueError("pass both manski_lower and manski_upper, or neither.")
        self.manski_lower = None if manski_lower is None else _vector(manski_lower,
                                                                      "manski_lower", n)
        self.manski_upper = None if manski_upper is None else _vector(manski_upper,
                                                                      "manski_upper", n)
        self.truth = None if truth is None else _vector(truth, "truth", n)
        if kind not in ("band", "individual"):
            raise ValueError(f"kind must be 'band' or 'individual'; got kind={kind!r}.")
        check_integer(n_bins, "n_bins")
        self.xlabel = xlabel
        self.ylabel = ylabel
        self.kind = kind
        self.n_bins = n_bins

    @classmethod
    def from_predictions(cls, x, lower, upper, *, manski_lower=None, manski_upper=None,
                         truth=None, xlabel=None, ylabel=None, kind="band", n_bins=20, ax=None,
                         **kwargs):
        """Build and plot from arrays.

        ``**kwargs`` go to :meth:`plot`: its ``band_kwargs``, ``manski_kwargs`` and
        ``truth_kwargs``, and any other keyword to the band (e.g. ``color="red"``).
        """
        disp = cls(x, lower, upper, manski_lower=manski_lower, manski_upper=manski_upper,
                   truth=truth, xlabel=xlabel, ylabel=ylabel, kind=kind, n_bins=n_bins)
        return disp.plot(ax=ax, **_split_plot_kwargs(kwargs))

    @classmethod
    def from_estimator(cls, estimator, X, *, feature="propensity", arm=None, divergence=None,
                       show_manski=True, truth=None, kind="band", n_bins=20, ax=None, **kwargs):
        """Plot a fitted ConditionalDivergenceBounds' bounds against a feature or propensity.

        ``arm=None`` plots CATE bounds; 0/1 the bounds on that arm's interventional mean.
        ``divergence`` (a fitted divergence's name) plots that divergence's bounds instead of
        the aggregate. ``feature`` is ``"propensity"``, a column index or a column name of ``X``;
        ``**kwargs`` go to :meth:`plot` as in :meth:`from_predictions`.
        """
        from ._conditional import ConditionalDivergenceBounds

        if not isinstance(estimator, ConditionalDivergenceBounds):
            reason = (" (its bounds do not vary with x)"
                      if type(estimator).__name__ == "MarginalDivergenceBounds" else
                      "; pass the fitted estimator itself, e.g. pipeline[-1] with the "
                      "transformed X, or use from_predictions")
            raise ValueError(
                "BoundsDisplay.from_estimator needs a fitted ConditionalDivergenceBounds; got "
                f"{type(estimator).__name__}{reason}."
            )
        if isinstance(feature, str) and feature == "propensity":
            x, xlabel = estimator.predict_propensity(X), "estimated propensity e(x)"
        elif isinstance(feature, str):
            if not hasattr(X, "columns") or feature not in X.columns:
                raise ValueError(f"feature={feature!r} is not a column name of X.")
            x, xlabel = np.asarray(X[feature], dtype=float), feature
        else:
            n_columns = np.shape(X)[1]
            if (isinstance(feature, bool) or not isinstance(feature, Integral)
                    or not -n_columns <= feature < n_columns):
                raise ValueError(f"feature must be 'propensity', a column name or an index "
                                 f"in [0, {n_columns}); got feature={feature!r}.")
            x = np.asarray(X)[:, int(feature)].astype(float)
            xlabel = (str(X.columns[int(feature)]) if hasattr(X, "columns")
                      else f"x[{int(feature) % n_columns}]")
        if arm is None:
            if divergence is None:
                bounds = estimator.predict(X)
            else:  # that divergence's CATE bounds [lower_1 - upper_0, upper_1 - lower_0]
                treated = estimator.predict_outcome_bounds(X, 1, divergence=divergence)
                control = estimator.predict_outcome_bounds(X, 0, divergence=divergence)
                bounds = np.stack([treated[..., 0] - control[..., 1],
                                   treated[..., 1] - control[..., 0]], axis=-1)
            manski = estimator.predict_manski(X) if show_manski else None
            ylabel = "CATE bounds"
        else:
            bounds = estimator.predict_outcome_bounds(X, arm, divergence=divergence)
            manski = estimator.predict_manski(X, arm=arm) if show_manski else None
            ylabel = f"bounds on E[Y | do(A={arm}), x]"
        if bounds.ndim != 2:
            raise ValueError(
                "several intervals per row (aggregation=None or divergence='all'); pass one "
                "fitted divergence's name as divergence=.")
        disp = cls(x, bounds[:, 0], bounds[:, 1],
                   manski_lower=None if manski is None else manski[:, 0],
                   manski_upper=None if manski is None else manski[:, 1], truth=truth,
                   xlabel=xlabel, ylabel=ylabel, kind=kind, n_bins=n_bins)
        disp._effect = arm is None
        band = kwargs.get("band_kwargs") or {}
        if divergence is not None and "label" not in kwargs and "label" not in band:
            # name the divergence drawn (the user's label wins)
            kwargs["band_kwargs"] = {**band, "label": f"f-divergence bounds ({divergence})"}
        return disp.plot(ax=ax, **_split_plot_kwargs(kwargs))

    def plot(self, ax=None, *, band_kwargs=None, manski_kwargs=None, truth_kwargs=None):
        """Draw the display; returns self with ``ax_``, ``figure_`` and artists set."""
        plt = _pyplot()
        if ax is None:
            _, ax = plt.subplots()
        band_kwargs = {"alpha": 0.5, "color": "tab:blue", "label": "f-divergence bounds",
                       **(band_kwargs or {})}
        manski_kwargs = {"alpha": 0.2, "color": "tab:gray", "label": "Manski",
                         **(manski_kwargs or {})}
        truth_kwargs = {"ls": "--", "color": "tab:red", "label": "truth", **(truth_kwargs or {})}
        self.manski_band_ = self.truth_line_ = None
        if self.kind == "individual":
            order = np.argsort(self.x)
            self.band_ = ax.vlines(self.x[order], self.lower[order], self.upper[order],
                                   **_segments(band_kwargs))
            if self.manski_lower is not None:
                self.manski_band_ = ax.vlines(self.x[order], self.manski_lower[order],
                                              self.manski_upper[order],
                                              **_segments(manski_kwargs))
            if self.truth is not None:
                (self.truth_line_,) = ax.plot(self.x[order], self.truth[order], **truth_kwargs)
        else:
            cols = [self.lower, self.upper]
            if self.manski_lower is not None:
                cols += [self.manski_lower, self.manski_upper]
            if self.truth is not None:
                cols.append(self.truth)
            xc, meds = _binned(self.x, cols, self.n_bins)
            if self.manski_lower is not None:
                self.manski_band_ = ax.fill_between(xc, meds[2], meds[3], **manski_kwargs)
            self.band_ = ax.fill_between(xc, meds[0], meds[1], **band_kwargs)
            if self.truth is not None:
                (self.truth_line_,) = ax.plot(xc, meds[-1], **truth_kwargs)
        if getattr(self, "_effect", False):
            ax.axhline(0.0, color="black", lw=0.8)
        ax.set_xlabel(self.xlabel or "x")
        ax.set_ylabel(self.ylabel or "bounds")
        ax.legend(loc="best")
        self.ax_ = ax
        self.figure_ = ax.figure
        return self
