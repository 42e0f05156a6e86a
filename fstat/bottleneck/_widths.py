"""Per-batch kernel widths and data-only Gram terms for CSIBRegressor training.

Widths are detached and resolved on each training batch (specification section 2.6).
The conditioning data ``x`` and the targets ``y`` carry no gradient, so everything
computed from them alone -- their squared distances, rule widths, and the data parts of
the fused losses (:func:`~fstat.bottleneck._fused.prediction_context`,
:func:`~fstat.bottleneck._fused.compression_context`) -- is computed at the start of
an epoch for runs of equal-sized batches at once (stacked products instead of a few
dozen small operations per step); only the terms in ``t`` are left to each step. The
values are those of the per-batch computation, to rounding, and a degenerate width is
reported when its batch is trained, in the order x, y, t.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from .._torch import randperm
from .._warnings import warn_user
from ..kernels._gram import batch_sq_dists, sq_dists
from ._bandwidth import resolve_width, rule_width, width_from_sq_dists, widths_from_sq_dists
from ._fused import compression_context, prediction_context

__all__ = ["BatchWidths"]

#: bytes per stacked Gram matrix of a run of batches: runs that stay in a core's cache
#: (16 batches of 128 float32 rows; a single batch from 512 rows) avoid both the
#: per-step dispatch cost and the page faults of large temporaries
STACK_BYTES = 2**20


@dataclass
class _DataTerms:
    """The data-only terms of one batch (``index`` checks the loop's order)."""

    index: torch.Tensor
    sq_x: torch.Tensor | None = None
    sigma_x: float | None = None
    sigma_x_pred: float | None = None
    sigma_y: float | None = None
    prediction_context: tuple | None = None
    compression_context: tuple | None = None
    degenerate: tuple = ()  # names of the rule widths that fell back to 1.0


def _equal_size_runs(batches, max_entries):
    """Consecutive batches of one size, at most ``max(1, max_entries // size^2)`` per run."""
    run = []
    for index in batches:
        size = len(index)
        if run and (len(run[0]) != size or (len(run) + 1) * size * size > max_entries):
            yield run
            run = []
        run.append(index)
    if run:
        yield run


class BatchWidths:
    """Detached per-batch widths and data-only terms, with a once-per-fit degenerate warning.

    Parameters
    ----------
    est : CSIBRegressor
        Supplies ``sigma_x``, ``sigma_x_scale``, ``sigma_y``, ``sigma_t`` and
        ``approximation``.
    generator : torch.Generator
    X, Y : torch.Tensor
        Standardised training rows (batches index them).
    prediction, compression, t_width : bool
        Whether the conditional CS term (whose data context is precomputed too), a
        compression term and a width of ``t`` are used.
    fused_compression : bool
        Whether the compression term is the fused raw CS-QMI (its data context is then
        precomputed too).
    """

    def __init__(self, est, generator, X, Y, *, prediction, compression, t_width,
                 fused_compression=False):
        self.est = est
        self.generator = generator
        self.X, self.Y = X, Y
        self.prediction = prediction
        self.compression = compression and t_width
        self.fused_compression = fused_compression and self.compression
        self.warned = False
        self.history = {"sigma_x": [], "sigma_y": [], "sigma_t": []}
        self._terms = iter(())

    def _warn_degenerate(self, name):
        if not self.warned:
            self.warned = True
            warn_user(
                f"degenerate kernel width for {name} in a training batch (data without "
                "spread or with mostly duplicate rows); using width 1.0.",
                UserWarning,
            )

    def _resolve(self, spec, data, sq, name):
        """Return ``(width, degenerate)`` for a float or a rule on ``data``."""
        if not isinstance(spec, str):
            return float(spec), False
        width, degenerate = width_from_sq_dists(sq, data, spec)
        if degenerate:
            self._warn_degenerate(name)
        return width, degenerate

    @staticmethod
    def _resolve_stack(spec, data, sq):
        """``(width, degenerate)`` for each matrix of a stack (``sq = batch_sq_dists(data)``);
        the warning is left to the step that trains the batch."""
        if not isinstance(spec, str):
            return [(float(spec), False)] * data.shape[0]
        return widths_from_sq_dists(sq, data, spec)

    # ---------------------------------------------------------------- epochs
    def start_epoch(self, batches):
        """Queue the data-only terms of this epoch's ``batches`` (exact mode; computed
        lazily, one run of equal-sized batches at a time)."""
        if self.est.approximation is None and (self.prediction or self.compression):
            self._terms = self._data_terms(batches)

    def _data_terms(self, batches):
        itemsize = torch.finfo(self.X.dtype).bits // 8
        for run in _equal_size_runs(batches, STACK_BYTES // itemsize):
            yield from self._run_terms(run)  # no stacked temporaries outlive the call

    def _run_terms(self, run):
        """The :class:`_DataTerms` of the batches of one run."""
        est = self.est
        rows = torch.stack(run)
        x = self.X[rows]
        sq_x = batch_sq_dists(x)
        terms = [_DataTerms(index=index, sq_x=D) for index, D in zip(run, sq_x)]
        rule = isinstance(est.sigma_x, str)
        for term, (width, degenerate) in zip(terms, self._resolve_stack(est.sigma_x, x, sq_x)):
            term.sigma_x = width
            term.sigma_x_pred = width * est.sigma_x_scale if rule and not degenerate else width
            term.degenerate = ("sigma_x",) if degenerate else ()
        if self.prediction:
            y = self.Y[rows]
            sq_y = batch_sq_dists(y) if isinstance(est.sigma_y, str) else None
            for term, (width, degenerate) in zip(terms,
                                                 self._resolve_stack(est.sigma_y, y, sq_y)):
                term.sigma_y = width
                term.degenerate += ("sigma_y",) if degenerate else ()
        if len(run) == 1:  # nothing to stack: the loss terms build their contexts when
            return terms   # needed, so the two N x N contexts never coexist
        if self.prediction:
            contexts = prediction_context(y, sq_x, [t.sigma_x_pred for t in terms],
                                          [t.sigma_y for t in terms], sq_y=sq_y)
            for term, context in zip(terms, zip(*contexts)):
                term.prediction_context = context
        if self.fused_compression:
            contexts = compression_context(sq_x, [t.sigma_x for t in terms])
            for term, context in zip(terms, zip(*contexts)):
                term.compression_context = context
        return terms

    # ----------------------------------------------------------------- steps
    def fill(self, b, index):
        """Set the widths (and the precomputed data terms) of batch ``b`` on rows ``index``."""
        if self.est.approximation is not None:
            self._fill_subsampled(b)
            return
        if self.prediction or self.compression:
            terms = next(self._terms)
            if terms.index is not index:
                raise RuntimeError("training batches out of the order of start_epoch")
            b.sq_x, b.sigma_x, b.sigma_x_pred = terms.sq_x, terms.sigma_x, terms.sigma_x_pred
            b.sigma_y = terms.sigma_y
            b.prediction_context = terms.prediction_context
            b.compression_context = terms.compression_context
            for name in terms.degenerate:
                self._warn_degenerate(name)
        if self.compression:
            b.sq_t = sq_dists(b.t.detach(), refine_near=False)
            b.sigma_t = self._resolve(self.est.sigma_t, b.t, b.sq_t, "sigma_t")[0]
        self._record(b)

    def _record(self, b):
        self.history["sigma_x"].append(b.sigma_x_pred if self.prediction else b.sigma_x)
        self.history["sigma_y"].append(b.sigma_y)
        self.history["sigma_t"].append(b.sigma_t)

    def _fill_subsampled(self, b):
        """Approximation mode: rules on at most 1024 generator-drawn rows (no N x N matrix)."""
        est = self.est

        def resolve(spec, data, name):
            if not isinstance(spec, str):
                return float(spec), False
            width, degenerate = rule_width(data, spec, max_samples=1024,
                                           generator=self.generator)
            if degenerate:
                self._warn_degenerate(name)
            return width, degenerate

        if self.prediction or self.compression:
            b.sigma_x, degenerate = resolve(est.sigma_x, b.x, "sigma_x")
            rule = isinstance(est.sigma_x, str) and not degenerate
            b.sigma_x_pred = b.sigma_x * est.sigma_x_scale if rule else b.sigma_x
        if self.prediction:
            b.sigma_y = resolve(est.sigma_y, b.y, "sigma_y")[0]
        if self.compression:
            b.sigma_t = resolve(est.sigma_t, b.t, "sigma_t")[0]
        self._record(b)

    # ---------------------------------------------------------------- results
    def unused(self, network, max_samples=2000):
        """Widths that no training term used, as ``{name: float}``: the rule on at most
        ``max_samples`` generator-drawn training rows (``t = mu(x)``, noise off, from the
        fitted network), or the float given; a degenerate rule gives 1.0 silently."""
        missing = [name for name, values in self.history.items()
                   if all(v is None for v in values)]
        if not missing:
            return {}
        X, Y = self.X, self.Y
        if X.shape[0] > max_samples:
            rows = randperm(X.shape[0], generator=self.generator, device=X.device)
            X, Y = X[rows[:max_samples]], Y[rows[:max_samples]]
        out = {}
        for name in missing:
            spec = getattr(self.est, name)
            if name == "sigma_t" and isinstance(spec, str):
                with torch.no_grad():
                    data = network.encode(X)[0]
            else:
                data = X if name == "sigma_x" else Y
            out[name] = resolve_width(spec, data, max_samples=None, warn=False)
        return out
