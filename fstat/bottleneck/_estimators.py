"""Log-domain Cauchy--Schwarz estimators (torch cores) and their numpy wrappers.

Every core takes tensors, works with log-Gram matrices and ``logsumexp`` only (a Gram
is never exponentiated and then summed, so float32 stays finite for large residuals
and tiny widths), is differentiable, and costs O(N^2) time and memory per Gram.
Widths are plain floats (detached). Results are in nats.

Cores
-----
``cs_divergence_core(a, b, sigma)``
    D = log mean K_aa + log mean K_bb - 2 log mean K_ab.
``conditional_cs_core(x, y, y_pred, sigma_x, sigma_y)``
    log S(L1) + log S(L2) - 2 log S(L21), S(L) = sum_j w_j sum_i K_ji L_ji,
    w_j = 1 / (sum_i K_ji)^2 (the paper's row weights).
``_cs_qmi_terms(x, t, sigma_x, sigma_t)``
    (log A, log B, log C) with A = sum K∘Q / N^2, B = sum K sum Q / N^4,
    C = sum_j rowK_j rowQ_j / N^3; ``cs_qmi_core`` = log A + log B - 2 log C.
"""

from __future__ import annotations

import math
import numbers

import numpy as np
import torch
from sklearn.utils.validation import check_array

from .._torch import make_generator, parse_dtype, resolve_device
from .._validation import check_integer
from .._warnings import warn_user
from ..kernels._gram import gram_from_sq_dists, log_gaussian_gram, sq_dists
from ._bandwidth import check_width, resolve_width

__all__ = ["cs_divergence", "conditional_cs_divergence", "cs_mutual_information"]


# --------------------------------------------------------------------------- cores
def _col(t):
    return t[:, None] if t.dim() == 1 else t


_EXP_FLOOR = {}


def _exp_floor(dtype):
    """Shifted exponents below this are clamped: 0.9 log(smallest normal number)."""
    if dtype not in _EXP_FLOOR:
        _EXP_FLOOR[dtype] = 0.9 * math.log(torch.finfo(dtype).tiny)
    return _EXP_FLOOR[dtype]


def lse(a, dim=None):
    """``logsumexp`` over ``dim`` (all entries when None), fast on wide-spread inputs.

    ``torch.logsumexp`` (forward and backward) exponentiates every shifted entry; on
    CPU, ``exp`` of arguments whose result underflows (below about -87 in float32, -708
    in float64) takes a scalar slow path 10-40x slower than the vector path, and
    log-Gram rows routinely hold such entries. Here shifted exponents are clamped at
    ``0.9 log(smallest normal)`` (about -79 in float32, -638 in float64) before ``exp``:
    each clamped term is below ``1e-34`` (float32) or ``1e-277`` (float64) next to a sum
    that is >= 1, far below half an ulp, so values agree with ``torch.logsumexp`` to
    rounding and clamped entries get zero gradient instead of an underflowing one. The
    shift (the maximum) is detached, which leaves the gradient exact (softmax
    weights). All-``-inf`` slices give ``-inf`` (their shift is replaced by 0 for the
    sum and added back afterwards).
    """
    if dim is None:
        a, dim = a.reshape(-1), 0
    shift = a.detach().amax(dim=dim, keepdim=True)
    safe = torch.nan_to_num(shift, nan=0.0, neginf=0.0)
    if a.requires_grad and torch.is_grad_enabled():
        total = (a - safe).clamp_min(_exp_floor(a.dtype)).exp().sum(dim=dim, keepdim=True)
        return (total.log() + shift).squeeze(dim)
    # no autograd: the same operations in place on one temporary (identical values)
    shifted = a - safe
    total = shifted.clamp_min_(_exp_floor(a.dtype)).exp_().sum(dim=dim, keepdim=True)
    return total.log_().add_(shift).squeeze(dim)


def _lse_all(log_gram):
    return lse(log_gram)


def cs_divergence_core(a, b, sigma):
    """Two-sample CS divergence between the rows of ``a`` and ``b`` (one width)."""
    a, b = _col(a), _col(b)
    log_aa = _lse_all(log_gaussian_gram(a, None, sigma)) - 2.0 * math.log(a.shape[0])
    log_bb = _lse_all(log_gaussian_gram(b, None, sigma)) - 2.0 * math.log(b.shape[0])
    log_ab = _lse_all(log_gaussian_gram(a, b, sigma)) - math.log(a.shape[0] * b.shape[0])
    return log_aa + log_bb - 2.0 * log_ab


def _self_log_gram(a, sigma, sq=None):
    """Log-Gram of ``a`` with itself, from precomputed squared distances when given."""
    if sq is not None:
        return gram_from_sq_dists(sq, sigma, log=True)
    return log_gaussian_gram(a, None, sigma)


def conditioning_weights(x, sigma_x, *, sq_x=None):
    """(log K, -2 r) of the conditioning variable, computed without autograd."""
    with torch.no_grad():
        log_k = _self_log_gram(_col(x).detach(), sigma_x, sq_x)
        neg_two_r = -2.0 * lse(log_k, dim=1)
    return log_k, neg_two_r


def _log_s(log_k, neg_two_r, log_l):
    return lse(neg_two_r + lse(log_k + log_l, dim=1), dim=0)


def conditional_cs_core(x, y, y_pred, sigma_x, sigma_y, *, weights=None):
    """Conditional CS divergence D(p(y|x); q(y_pred|x)) with row weights 1/(sum_i K_ji)^2.

    ``weights`` may pass precomputed ``conditioning_weights(x, sigma_x)``.
    """
    y, y_pred = _col(y), _col(y_pred)
    log_k, neg_two_r = conditioning_weights(x, sigma_x) if weights is None else weights
    log_l1 = log_gaussian_gram(y, None, sigma_y)
    log_l2 = log_gaussian_gram(y_pred, None, sigma_y)
    log_l21 = log_gaussian_gram(y_pred, y, sigma_y)  # rows: predictions, columns: targets
    return (
        _log_s(log_k, neg_two_r, log_l1)
        + _log_s(log_k, neg_two_r, log_l2)
        - 2.0 * _log_s(log_k, neg_two_r, log_l21)
    )


#: entries of one row block in the no-autograd paths: on CPU 2**18 (2 MiB in float64,
#: cache-sized); on GPUs blocks only bound memory, so they are large (fewer launches)
_BLOCK_ENTRIES = 2**18
_BLOCK_ENTRIES_GPU = 2**26


def _lse_rows_(a):
    """Row-wise :func:`lse` that overwrites ``a`` (no autograd; saves two N-sized passes)."""
    shift = a.amax(dim=1, keepdim=True)
    safe = torch.nan_to_num(shift, nan=0.0, neginf=0.0)
    a.sub_(safe).clamp_min_(_exp_floor(a.dtype)).exp_()
    return a.sum(dim=1, keepdim=True).log_().add_(shift).squeeze(1)


def _self_log_gram_rows(a, start, stop, sigma):
    """Rows ``start:stop`` of the self log-Gram of ``a`` (exactly 0 on the diagonal)."""
    log_g = sq_dists(a[start:stop], a)
    log_g.diagonal(offset=start).zero_()
    return log_g.div_(sigma).div_(sigma).mul_(-0.5)


def _qmi_rows_blocked(x, t, sigma_x, sigma_t):
    """Row log-sums of K, Q and K∘Q by row blocks that stay in cache (no autograd).

    Same values as forming the two N x N log-Grams (up to rounding: each block's
    squared distances are centred on the block), with O(block * N) memory and about
    half the memory traffic; used by the public functions, never in training.
    """
    with torch.no_grad():
        n = x.shape[0]
        entries = _BLOCK_ENTRIES if x.device.type == "cpu" else _BLOCK_ENTRIES_GPU
        block = max(1, entries // n)
        rows = ([], [], [])
        for start in range(0, n, block):
            stop = min(start + block, n)
            log_k = _self_log_gram_rows(x, start, stop, sigma_x)
            log_q = _self_log_gram_rows(t, start, stop, sigma_t)
            rows[2].append(_lse_rows_(log_k + log_q))
            rows[0].append(_lse_rows_(log_k))
            rows[1].append(_lse_rows_(log_q))
        return tuple(torch.cat(r) for r in rows)


def _cs_qmi_terms(x, t, sigma_x, sigma_t, *, sq_x=None, sq_t=None):
    """(log A, log B, log C) of the CS quadratic mutual information (N-powers included).

    ``sq_x`` / ``sq_t`` may pass precomputed ``sq_dists`` of ``x`` / ``t``.
    """
    x, t = _col(x), _col(t)
    n = x.shape[0]
    log_n = math.log(n)
    if sq_x is None and sq_t is None and not (
            torch.is_grad_enabled() and (x.requires_grad or t.requires_grad)):
        row_k, row_q, row_kq = _qmi_rows_blocked(x, t, sigma_x, sigma_t)
        log_a = lse(row_kq, dim=0) - 2.0 * log_n
    else:
        log_k = _self_log_gram(x, sigma_x, sq_x)
        log_q = _self_log_gram(t, sigma_t, sq_t)
        row_k = lse(log_k, dim=1)
        row_q = lse(log_q, dim=1)
        log_a = _lse_all(log_k + log_q) - 2.0 * log_n
    log_b = lse(row_k, dim=0) + lse(row_q, dim=0) - 4.0 * log_n
    log_c = lse(row_k + row_q, dim=0) - 3.0 * log_n
    return log_a, log_b, log_c


def cs_qmi_core(x, t, sigma_x, sigma_t, *, sq_x=None, sq_t=None):
    """CS quadratic mutual information log A + log B - 2 log C (>= 0)."""
    log_a, log_b, log_c = _cs_qmi_terms(x, t, sigma_x, sigma_t, sq_x=sq_x, sq_t=sq_t)
    return log_a + log_b - 2.0 * log_c


def normalized_cs_qmi_core(x, t, sigma_x, sigma_t, *, warn=True, sq_x=None, sq_t=None):
    """I(x;t) / sqrt(I(x;x) I(t;t)), each self-term with the variable's own width.

    A zero denominator (constant input) gives 0 with a ``RuntimeWarning``.
    """
    numerator = cs_qmi_core(x, t, sigma_x, sigma_t, sq_x=sq_x, sq_t=sq_t)
    denominator = (cs_qmi_core(x, x, sigma_x, sigma_x, sq_x=sq_x, sq_t=sq_x)
                   * cs_qmi_core(t, t, sigma_t, sigma_t, sq_x=sq_t, sq_t=sq_t))
    if not bool(denominator.detach() > 0):
        if warn:
            _warn_zero_denominator()
        return numerator * 0.0
    return numerator / denominator.sqrt()


def _warn_zero_denominator():
    warn_user("normalised CS-QMI has a zero denominator (a constant input); returning 0.0.",
              RuntimeWarning)


# ----------------------------------------------------------------- input handling
def as_column_tensor(X, name, *, min_samples=1, dtype=torch.float64, device="cpu"):
    """Validate array-like input (finite, numeric, dense) into a 2-D tensor; 1-D is a column."""
    if X is None:
        raise ValueError(f"{name} is required; got {name}=None.")
    array = check_array(
        X, dtype=np.float64, ensure_2d=False, ensure_all_finite=True, ensure_min_samples=0,
        input_name=name,
    )
    if array.ndim == 1:
        array = array[:, None]
    if array.ndim != 2:
        raise ValueError(f"{name} must be 1-D or 2-D; got an array of shape {array.shape}.")
    if array.shape[0] < min_samples:
        raise ValueError(
            f"{name} has {array.shape[0]} sample(s), but at least {min_samples} are required."
        )
    if not array.flags.writeable:  # pandas copy-on-write views: torch warns on them
        array = array.copy()
    return torch.from_numpy(np.ascontiguousarray(array)).to(device=device, dtype=dtype)


def _in_working_units(arrays, width, device, dtype):
    """``arrays`` (float64, one variable: all their rows) and its resolved ``width`` moved to
    ``device`` / ``dtype`` after centring by the joint mean and scaling by a power of two
    ``2^-k`` with ``2^k`` near the largest centred magnitude.

    The exact estimators and the Nyström maps depend on differences over widths only, so their
    values are unchanged (a power of two scales exactly), while float32 then holds data of any
    float64 scale (squared distances of data near 1e20 leave the float32 range). Random
    Fourier features ``cos(w.x / sigma + b)`` depend on position too: after the centring their
    values are translation invariant. Where the scaled width would leave the float64 range the
    arrays are only centred.
    """
    with torch.no_grad():
        centre = torch.cat(arrays).mean(dim=0, keepdim=True)
        centred = [a - centre for a in arrays]
        top = max(float(c.abs().max()) for c in centred)
        factor = 1.0
        if top > 0.0 and math.isfinite(top):
            factor = math.ldexp(1.0, -max(-1000, min(math.frexp(top)[1], 1000)))
            if not 0.0 < width * factor < math.inf:
                factor = 1.0
        moved = [(c * factor).to(device=device, dtype=dtype) for c in centred]
    return moved, width * factor


def _check_base(base):
    if base is None:
        return 1.0
    if isinstance(base, bool) or not isinstance(base, numbers.Real):
        raise ValueError(f"base must be None or a positive float != 1; got base={base!r}.")
    base = float(base)
    if not (math.isfinite(base) and base > 0 and base != 1.0):
        raise ValueError(f"base must be None or a positive float != 1; got base={base!r}.")
    return math.log(base)


def _check_common(approximation, n_components, device, dtype):
    if approximation not in (None, "rff", "nystroem"):
        raise ValueError(
            "approximation must be None, 'rff' or 'nystroem'; "
            f"got approximation={approximation!r}."
        )
    check_integer(n_components, "n_components")
    return resolve_device(device), parse_dtype(dtype)


def _check_same_columns(a, b, name_a, name_b):
    if a.shape[1] != b.shape[1]:
        raise ValueError(
            f"{name_a} and {name_b} must have the same number of columns; got "
            f"{a.shape[1]} ({name_a}) and {b.shape[1]} ({name_b})."
        )


def _check_same_rows(a, b, name_a, name_b):
    if a.shape[0] != b.shape[0]:
        raise ValueError(
            f"Found input variables with inconsistent numbers of samples: "
            f"{name_a} has {a.shape[0]}, {name_b} has {b.shape[0]}."
        )


def _finish(value, log_base, *, nonnegative=False):
    """``value`` (nats) as a float in units of ``log_base``; with ``nonnegative``, a value
    <= 0 (rounding or approximation error of a quantity that is >= 0) becomes 0.0 first
    (a base below 1 then still gives 0.0, and NaN stays NaN)."""
    value = float(value.detach().to("cpu", torch.float64))
    if nonnegative and value <= 0.0:
        value = 0.0
    return value / log_base


def _rows_all_equal(a):
    """Whether every row of the 2-D tensor ``a`` equals its first row."""
    return bool((a == a[:1]).all())


def _evaluate(compute, variables, device, dtype, generator):
    """``compute(*moved)`` on every ``(arrays, width)`` of ``variables`` in working units.

    ``moved`` holds ``(arrays, width)`` per variable (:func:`_in_working_units`). A float32
    value that is not finite is computed again in float64 (same random draws): exponents
    ``d^2 / (2 sigma^2)`` of widths far below the data's spread leave the float32 range while
    the estimate itself is finite.
    """
    state = generator.get_state()
    for attempt in dict.fromkeys((dtype, torch.float64)):
        generator.set_state(state)
        moved = [_in_working_units(arrays, width, device, attempt) for arrays, width in variables]
        with torch.no_grad():
            value = compute(*moved)
        if bool(torch.isfinite(value)):
            break
    return value


# ------------------------------------------------------------------ public wrappers
def cs_divergence(X, Y, *, sigma="median", approximation=None, n_components=1024, base=None,
                  device="auto", dtype="float64", random_state=None):
    """Two-sample Cauchy--Schwarz divergence between the rows of ``X`` and ``Y``.

    ``D = log mean_{ii'} k(x_i - x_i') + log mean_{jj'} k(y_j - y_j')
    - 2 log mean_{ij} k(x_i - y_j)`` with the Gaussian kernel
    ``k(u) = exp(-||u||^2 / (2 sigma^2))``: the exact CS divergence between the two
    Gaussian KDEs of bandwidth ``sigma / sqrt(2)``. It is >= 0 (a negative value from
    rounding or a random-feature approximation is returned as 0.0), symmetric and 0 when
    the samples coincide. Computed in the log domain in O((M + N)^2).

    Parameters
    ----------
    X : array-like of shape (M, d) or (M,)
        First sample (a 1-D array is one column). At least one row.
    Y : array-like of shape (N, d) or (N,)
        Second sample, same number of columns.
    sigma : {"median", "silverman"} or float, default="median"
        Kernel width; rules are computed on the pooled sample ``[X; Y]``.
    approximation : {None, "rff", "nystroem"}, default=None
        Random Fourier features or Nyström landmarks (O((M + N) D d)).
    n_components : int, default=1024
        Number of features / landmarks of the approximation.
    base : float, optional
        Logarithm base (``None``: nats; 2: bits).
    device : str, default="auto"
    dtype : {"float64", "float32"}, default="float64"
        Working precision. A float32 value that would be inf or NaN (widths so far below
        the data's spread that the exponents leave the float32 range) is computed in
        float64.
    random_state : None, int or RandomState
        Subsampling for the median rule and random features.

    Returns
    -------
    float

    Examples
    --------
    >>> import numpy as np
    >>> from fstat.bottleneck import cs_divergence
    >>> cs_divergence([[0.0]], [[2.0]], sigma=1.0)
    4.0
    """
    device, torch_dtype = _check_common(approximation, n_components, device, dtype)
    log_base = _check_base(base)
    sigma = check_width(sigma, "sigma")
    a = as_column_tensor(X, "X")
    b = as_column_tensor(Y, "Y")
    _check_same_columns(a, b, "X", "Y")
    generator = make_generator(random_state)
    width = resolve_width(sigma, torch.cat([a, b]), generator=generator, name="sigma")

    def compute(samples):
        (a, b), width = samples
        if approximation is None:
            return cs_divergence_core(a, b, width)
        from ._approx import approx_cs_divergence

        return approx_cs_divergence(a, b, width, approximation, n_components, generator)

    value = _evaluate(compute, [([a, b], width)], device, torch_dtype, generator)
    return _finish(value, log_base, nonnegative=True)


def conditional_cs_divergence(X, y, y_pred, *, sigma_x="median", sigma_y="median",
                              approximation=None, n_components=1024, base=None, device="auto",
                              dtype="float64", random_state=None):
    """Conditional Cauchy--Schwarz divergence between p(y | x) and q(y_pred | x).

    With Gram matrices ``K`` of ``X`` (width ``sigma_x``), ``L1`` of ``y``, ``L2`` of
    ``y_pred`` and the cross Gram ``L21[j, i] = k(y_pred_j - y_i)`` (width ``sigma_y``),
    row weights ``w_j = 1 / (sum_i K_ji)^2`` and ``S(L) = sum_j w_j sum_i K_ji L_ji``::

        D = log S(L1) + log S(L2) - 2 log S(L21).

    ``y_pred = y`` gives 0. Small ``sigma_x`` approaches the correntropy loss
    ``-2 log mean_j k(y_j - y_pred_j)``; very large ``sigma_x`` matches only the
    marginals (the two-sample divergence of ``y`` and ``y_pred``). Unlike the
    two-sample divergence, small negative values can occur.

    Parameters
    ----------
    X : array-like of shape (n, d_x) or (n,)
        Conditioning variable.
    y : array-like of shape (n, d_y) or (n,)
        Targets (a 1-D array is one column).
    y_pred : array-like, same shape as ``y``
        Predictions.
    sigma_x, sigma_y : {"median", "silverman"} or float, default="median"
        Widths in data units; the ``sigma_y`` rule uses ``y`` only (never ``y_pred``).
    approximation : {None, "rff", "nystroem"}, default=None
    n_components : int, default=1024
    base : float, optional
    device : str, default="auto"
    dtype : {"float64", "float32"}, default="float64"
        Working precision. A float32 value that would be inf or NaN (widths so far below
        the data's spread that the exponents leave the float32 range) is computed in
        float64.
    random_state : None, int or RandomState

    Returns
    -------
    float

    Examples
    --------
    >>> import numpy as np
    >>> from fstat.bottleneck import conditional_cs_divergence
    >>> x = np.linspace(0, 1, 20)
    >>> y = np.sin(3 * x)
    >>> conditional_cs_divergence(x, y, y)
    0.0
    """
    device, torch_dtype = _check_common(approximation, n_components, device, dtype)
    log_base = _check_base(base)
    sigma_x = check_width(sigma_x, "sigma_x")
    sigma_y = check_width(sigma_y, "sigma_y")
    x = as_column_tensor(X, "X", min_samples=2)
    yt = as_column_tensor(y, "y", min_samples=2)
    yp = as_column_tensor(y_pred, "y_pred", min_samples=2)
    _check_same_rows(x, yt, "X", "y")
    if yp.shape != yt.shape:
        raise ValueError(
            f"y_pred must have the same shape as y; got shape {tuple(yp.shape)} for y_pred "
            f"and {tuple(yt.shape)} for y."
        )
    generator = make_generator(random_state)
    wx = resolve_width(sigma_x, x, generator=generator, name="sigma_x")
    wy = resolve_width(sigma_y, yt, generator=generator, name="sigma_y")

    def compute(inputs, targets):
        ((x,), wx), ((yt, yp), wy) = inputs, targets
        if approximation is None:
            return conditional_cs_core(x, yt, yp, wx, wy)
        from ._approx import approx_conditional_cs

        return approx_conditional_cs(x, yt, yp, wx, wy, approximation, n_components,
                                     generator)

    value = _evaluate(compute, [([x], wx), ([yt, yp], wy)], device, torch_dtype, generator)
    return _finish(value, log_base)


def cs_mutual_information(X, T, *, sigma_x="median", sigma_t="median", normalized=False,
                          approximation=None, n_components=1024, base=None, device="auto",
                          dtype="float64", random_state=None):
    """Cauchy--Schwarz quadratic mutual information between paired rows of ``X`` and ``T``.

    With Gram matrices ``K`` (of ``X``, width ``sigma_x``) and ``Q`` (of ``T``, width
    ``sigma_t``)::

        I = log(sum K∘Q / N^2) + log(sum K sum Q / N^4) - 2 log(sum_j rowK_j rowQ_j / N^3),

    the CS divergence between the joint KDE and the product of the marginal KDEs:
    >= 0, symmetric, exactly 0 when ``X`` or ``T`` is constant (a negative value from
    rounding or a random-feature approximation is returned as 0.0). All sums are O(N^2)
    (no N^3 matrix product). With tiny widths and distinct rows it tends to ``log N``
    whatever the dependence, so widths matter; median widths make it invariant to
    rescaling ``T``.

    Parameters
    ----------
    X : array-like of shape (n, d_x) or (n,)
    T : array-like of shape (n, d_t) or (n,)
    sigma_x, sigma_t : {"median", "silverman"} or float, default="median"
    normalized : bool, default=False
        Return ``I(x;t) / sqrt(I(x;x) I(t;t))`` (each self-term with the variable's own
        width; equals 1 for ``T = X``; not bounded by 1 in general). A zero denominator
        gives 0.0 with a ``RuntimeWarning``.
    approximation : {None, "rff", "nystroem"}, default=None
    n_components : int, default=1024
    base : float, optional
        Logarithm base of the raw value (``None``: nats). The normalised value is a ratio
        of informations and does not depend on it.
    device : str, default="auto"
    dtype : {"float64", "float32"}, default="float64"
        Working precision. A float32 value that would be inf or NaN (widths so far below
        the data's spread that the exponents leave the float32 range) is computed in
        float64.
    random_state : None, int or RandomState

    Returns
    -------
    float

    Examples
    --------
    >>> import numpy as np
    >>> from fstat.bottleneck import cs_mutual_information
    >>> rng = np.random.default_rng(0)
    >>> x = rng.standard_normal(200)
    >>> cs_mutual_information(x, x + 0.1 * rng.standard_normal(200)) > cs_mutual_information(
    ...     x, rng.standard_normal(200))
    True
    """
    device, torch_dtype = _check_common(approximation, n_components, device, dtype)
    log_base = _check_base(base)
    sigma_x = check_width(sigma_x, "sigma_x")
    sigma_t = check_width(sigma_t, "sigma_t")
    x = as_column_tensor(X, "X", min_samples=2)
    t = as_column_tensor(T, "T", min_samples=2)
    _check_same_rows(x, t, "X", "T")
    generator = make_generator(random_state)
    wx = resolve_width(sigma_x, x, generator=generator, name="sigma_x")
    wt = resolve_width(sigma_t, t, generator=generator, name="sigma_t")
    if _rows_all_equal(x) or _rows_all_equal(t):  # the joint KDE is the product of marginals
        if normalized:
            _warn_zero_denominator()
        return 0.0

    def compute(inputs, representation):
        ((x,), wx), ((t,), wt) = inputs, representation
        if approximation is None:
            core = normalized_cs_qmi_core if normalized else cs_qmi_core
            return core(x, t, wx, wt)
        from ._approx import approx_cs_qmi

        return approx_cs_qmi(x, t, wx, wt, approximation, n_components, generator,
                             normalized=normalized)

    value = _evaluate(compute, [([x], wx), ([t], wt)], device, torch_dtype, generator)
    # the normalised value is a ratio of two informations: the same in every log base
    return _finish(value, 1.0 if normalized else log_base, nonnegative=True)
