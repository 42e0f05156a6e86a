"""Averaged bounds with influence-function standard errors and confidence intervals.

This inference is an fstat extension (not in Jung & Kang 2026): see the user guide.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from scipy.optimize import brentq
from scipy.stats import norm

__all__ = ["AveragedBounds", "weighted_se"]

TARGETS = ("Y(0)", "Y(1)", "effect")
KINDS = ("outer", "endpoint", "imbens-manski")


def weighted_se(influence, weights=None):
    """Standard error ``sd(IF) / sqrt(n)`` with frequency weights (``n = sum w``)."""
    influence = np.asarray(influence, dtype=np.float64)
    w = np.ones(influence.shape[0]) if weights is None else np.asarray(weights, float)
    total = w.sum()
    mean = np.tensordot(w, influence, axes=(0, 0)) / total
    var = np.tensordot(w, (influence - mean) ** 2, axes=(0, 0)) / total
    return np.sqrt(np.maximum(var, 0.0) / total)


def _imbens_manski_c(alpha, delta, se_lo, se_up):
    scale = max(se_lo, se_up)
    if not scale > 0:
        return norm.ppf(1 - alpha / 2)
    ratio = delta / scale

    def eq(c):
        return norm.cdf(c + ratio) - norm.cdf(-c) - (1 - alpha)

    return brentq(eq, 0.0, norm.ppf(1 - alpha / 2) + 1.0)


class AveragedBounds:
    """Bounds on averaged potential outcomes and the average effect, with standard errors.

    Attributes
    ----------
    table : pandas.DataFrame
        MultiIndex (target in {"Y(0)", "Y(1)", "effect"}, source in divergences + "aggregate" +
        "manski"), columns ``lower``, ``se_lower``, ``upper``, ``se_upper``.
    n_samples : float
        Number of samples (sum of weights).
    method : str
    aggregation : str or None
    header : dict
        Descriptive items shown by :meth:`summary`.
    """

    def __init__(self, table, *, n_samples, method, aggregation, divergences, header=None):
        self.table = table
        self.n_samples = n_samples
        self.method = method
        self.aggregation = aggregation
        self.divergences = tuple(divergences)
        self.header = dict(header or {})

    def __repr__(self):
        return (f"AveragedBounds(method={self.method!r}, "
                f"n_samples={_format_count(self.n_samples)})")

    def conf_int(self, alpha=0.05, kind="outer"):
        """Confidence intervals for the identified sets (or their endpoints).

        Parameters
        ----------
        alpha : float in (0, 1), default=0.05
        kind : {"outer", "endpoint", "imbens-manski"}, default="outer"
            ``"outer"``: ``[L - z se_L, U + z se_U]`` covers the interval w.p. >= 1 - alpha;
            ``"endpoint"``: two-sided Wald intervals for each endpoint (four columns);
            ``"imbens-manski"``: Imbens & Manski (2004) intervals for the parameter. For
            every kind, the aggregate row of an intersection intersects the per-divergence
            intervals at level ``1 - alpha/D`` (Bonferroni, e.g. ``z_{1 - alpha/(2D)}`` for
            "outer"; for "endpoint", the largest lower and smallest upper bound's
            intervals); other aggregates take the union of the per-divergence intervals.

        Returns
        -------
        pandas.DataFrame
        """
        if not 0 < alpha < 1:
            raise ValueError(f"alpha must lie in (0, 1); got alpha={alpha!r}.")
        if kind not in KINDS:
            raise ValueError(f"kind must be one of {KINDS}; got kind={kind!r}.")
        out = self._intervals(alpha, kind)
        if self.aggregation is None:
            return out
        # the aggregate row: Bonferroni over the D divergences (intersection), else the
        # union of the per-divergence intervals; endpoint columns follow their endpoint
        # (the intersection's lower end is the largest lower bound, its upper the smallest)
        intersect = self.aggregation == "intersection"
        per = self._intervals(alpha / len(self.divergences), kind) if intersect else out
        if kind == "endpoint":
            reducers = (np.max, np.max, np.min, np.min) if intersect else (
                np.min, np.max, np.min, np.max)
        else:
            reducers = (np.max, np.min) if intersect else (np.min, np.max)
        for target in TARGETS:
            if (target, "aggregate") not in out.index:
                continue
            rows = per.loc[target].loc[list(self.divergences)].to_numpy()
            out.loc[(target, "aggregate")] = [reduce(rows[:, j])
                                              for j, reduce in enumerate(reducers)]
        return out

    def _intervals(self, alpha, kind):
        """Per-row intervals of ``kind`` at level ``1 - alpha`` (no aggregate rule)."""
        t = self.table
        z = norm.ppf(1 - alpha / 2)
        lo_name, up_name = f"[{alpha / 2:g}", f"{1 - alpha / 2:g}]"
        if kind == "endpoint":
            return pd.DataFrame({
                f"lower {lo_name}": t["lower"] - z * t["se_lower"],
                f"lower {up_name}": t["lower"] + z * t["se_lower"],
                f"upper {lo_name}": t["upper"] - z * t["se_upper"],
                f"upper {up_name}": t["upper"] + z * t["se_upper"],
            })
        if kind == "outer":
            c = np.full(len(t), z)
        else:
            c = np.array([
                _imbens_manski_c(alpha, max(u - lo, 0.0), sl, su)
                for lo, sl, u, su in t[["lower", "se_lower", "upper", "se_upper"]].to_numpy()
            ])
        return pd.DataFrame({lo_name: t["lower"] - c * t["se_lower"],
                             up_name: t["upper"] + c * t["se_upper"]}, index=t.index)

    def summary(self, alpha=0.05, kind="outer"):
        """A statsmodels :class:`~statsmodels.iolib.summary2.Summary` of the table and CIs."""
        from statsmodels.iolib.summary2 import Summary

        ci = self.conf_int(alpha, kind)
        table = self.table.rename(columns={"se_lower": "std err (lower)",
                                           "se_upper": "std err (upper)"})
        table = pd.concat([table, ci], axis=1)
        table.index = [f"{a} | {b}" for a, b in table.index]
        header = {"Method:": self.method, "Observations:": _format_count(self.n_samples),
                  "Divergences:": ", ".join(self.divergences),
                  "Aggregation:": str(self.aggregation), "CI kind:": kind}
        header.update({f"{k}:": str(v) for k, v in self.header.items()})
        smry = Summary()
        smry.add_title("Information-theoretic causal bounds (f-divergence balls) vs Manski")
        smry.add_dict(header)
        smry.add_df(table, float_format="%.4f")
        return smry


def build_table(values, ses, sources):
    """Assemble the (target, source) table from dicts target -> arrays of shape (S, 2)."""
    rows, index = [], []
    for target in TARGETS:
        for j, source in enumerate(sources):
            lo, up = values[target][j]
            se_lo, se_up = ses[target][j]
            rows.append((lo, se_lo, up, se_up))
            index.append((target, source))
    return pd.DataFrame(rows, index=pd.MultiIndex.from_tuples(index, names=["target", "source"]),
                        columns=["lower", "se_lower", "upper", "se_upper"])


def _format_count(n):
    """A sample size as printed: every digit of a whole number (``:g`` rounded 1234566 to
    1.23457e+06), else up to 10 significant digits of a sum of weights."""
    n = float(n)
    return f"{n:.0f}" if n.is_integer() else f"{n:.10g}"
