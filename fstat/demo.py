"""The fstat tour: fit one estimator per family on simulated data and print a table.

Run it with ``python -m fstat``. Each family contributes its row through a private
``fstat/<family>/_tour.py`` module defining ``tour(random_state, device) -> list of
dict`` with keys ``method``, ``data``, ``quality`` (a short text with the figure and
what it means) and ``seconds``. Families that are not installed are skipped.
"""

from __future__ import annotations

import argparse
import importlib
import sys
import time

from .utils._discovery import FAMILIES

__all__ = ["run_tour", "main"]

_COLUMNS = ("family", "method", "data", "quality", "seconds")


def _tour_modules():
    for family in FAMILIES:
        try:
            yield family, importlib.import_module(f"fstat.{family}._tour")
        except ModuleNotFoundError as exc:
            if exc.name not in (f"fstat.{family}", f"fstat.{family}._tour"):
                raise


def _divergence_row():
    """Registry check: Fenchel--Young identity g*(t) = s* t - g(s*) at s* = g*'(t)."""
    import numpy as np

    from .divergences import get_divergence

    start = time.perf_counter()
    names = ("kl", "hellinger", "chi2", "tv", "js")
    worst = 0.0
    for name in names:
        div = get_divergence(name)
        t = np.linspace(-5.0, div.domain_max, 201)[:-1]
        s_star = div.conjugate_derivative(t)
        keep = s_star > 0
        gap = div.conjugate(t[keep]) - (s_star[keep] * t[keep] - div.g(s_star[keep]))
        worst = max(worst, float(np.max(np.abs(gap))))
    return {
        "family": "divergences",
        "method": "f-divergence registry",
        "data": f"{len(names)} divergences x 200 points",
        "quality": f"max Fenchel-Young gap {worst:.1e}",
        "seconds": time.perf_counter() - start,
    }


def run_tour(random_state=0, device="auto"):
    """Run every available family's tour and return the rows.

    Parameters
    ----------
    random_state : int, default=0
    device : str, default="auto"

    Returns
    -------
    list of dict
        One dict per row with keys ``family, method, data, quality, seconds``.
    """
    rows = [_divergence_row()]
    for family, module in _tour_modules():
        start = time.perf_counter()
        for row in module.tour(random_state=random_state, device=device):
            row.setdefault("seconds", time.perf_counter() - start)
            rows.append({"family": family, **row})
            start = time.perf_counter()
    return rows


def format_table(rows):
    """Format tour rows as a plain-text table."""
    cells = [list(_COLUMNS)] + [
        [
            str(r[c]) if c != "seconds" else f"{float(r[c]):.2f}"
            for c in _COLUMNS
        ]
        for r in rows
    ]
    widths = [max(len(row[i]) for row in cells) for i in range(len(_COLUMNS))]
    lines = ["  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True))
             for row in cells]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)


def main(argv=None):
    """Command-line entry point of ``python -m fstat``."""
    parser = argparse.ArgumentParser(prog="python -m fstat", description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="auto", help="auto, cpu, cuda or cuda:N")
    parser.add_argument("--seed", type=int, default=0, help="random seed of the simulations")
    args = parser.parse_args(argv)

    import torch

    from . import __version__
    from ._torch import resolve_device

    device = resolve_device(args.device)
    print(f"fstat {__version__} | torch {torch.__version__} | device {device}")
    start = time.perf_counter()
    rows = run_tour(random_state=args.seed, device=str(device))
    if rows:
        print(format_table(rows))
    else:
        print("No method family is installed yet.")
    print(f"total {time.perf_counter() - start:.1f} s")
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
