"""Torch plumbing shared by every estimator: devices, generators, dtypes, conversions.

Conventions (see ARCHITECTURE.md):

- ``device`` is a string: ``"auto"``, ``"cpu"``, ``"cuda"`` or ``"cuda:N"``;
- ``random_state`` goes through :func:`sklearn.utils.check_random_state` and becomes a
  per-fit **CPU** :class:`torch.Generator`; random tensors are drawn on CPU and then moved,
  so CPU and GPU fits start from identical numbers;
- public methods return numpy float64, never tensors.

Nothing here touches global torch state (seeds, threads, determinism flags).
"""

from __future__ import annotations

import math
import re

import numpy as np
import torch
from sklearn.utils import check_random_state

from ._warnings import warn_user

__all__ = [
    "resolve_device",
    "fitted_device",
    "cuda_free_bytes",
    "make_generator",
    "spawn_seeds",
    "parse_dtype",
    "as_tensor",
    "to_numpy",
    "unit_scale",
    "randn",
    "rand",
    "randperm",
]

_DEVICE_PATTERN = re.compile(r"^(auto|cpu|cuda(:\d+)?)$")

_DTYPES = {
    "float32": torch.float32,
    "float": torch.float32,
    "single": torch.float32,
    "float64": torch.float64,
    "double": torch.float64,
}


def resolve_device(device="auto") -> torch.device:
    """Turn a device string into a :class:`torch.device`.

    Parameters
    ----------
    device : {"auto", "cpu", "cuda", "cuda:N"} or torch.device, default="auto"
        ``"auto"`` picks CUDA when available, else CPU.

    Returns
    -------
    torch.device

    Raises
    ------
    ValueError
        For an unknown device string, or an explicit CUDA request on a machine
        without CUDA (or with fewer devices than the index asks for).

    Examples
    --------
    >>> from fstat._torch import resolve_device
    >>> resolve_device("cpu")
    device(type='cpu')
    """
    if isinstance(device, torch.device):
        device = str(device)
    if not isinstance(device, str) or not _DEVICE_PATTERN.match(device.strip().lower()):
        absent = "" if torch.cuda.is_available() else " (CUDA is not available on this machine)"
        raise ValueError(
            f"device must be 'auto', 'cpu', 'cuda' or 'cuda:N'; got device={device!r}{absent}."
        )
    device = device.strip().lower()
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if device == "cpu":
        return torch.device("cpu")
    if not torch.cuda.is_available():
        raise ValueError(
            f"CUDA requested but not available: device={device!r}, and CUDA is not available "
            "on this machine; use device='cpu' or device='auto'."
        )
    index = int(device.split(":")[1]) if ":" in device else 0
    if index >= torch.cuda.device_count():
        raise ValueError(
            f"device={device!r} was requested but only {torch.cuda.device_count()} "
            "CUDA device(s) are visible."
        )
    return torch.device(device)


def fitted_device(device, action="predicting"):
    """The device a fitted model records (``device_``) when it is usable here, else the CPU.

    A model fitted on ``"cuda:N"`` and loaded where CUDA is missing, or where fewer than
    ``N + 1`` devices are visible, runs on the CPU with a ``UserWarning`` instead of
    failing.

    Parameters
    ----------
    device : str or torch.device
    action : str, default="predicting"
        What runs on the returned device, for the warning.

    Returns
    -------
    torch.device

    Examples
    --------
    >>> from fstat._torch import fitted_device
    >>> fitted_device("cpu")
    device(type='cpu')
    """
    device = torch.device(device)
    if device.type != "cuda":
        return device
    if torch.cuda.is_available() and (device.index or 0) < torch.cuda.device_count():
        return device
    warn_user(f"the model was fitted on {device}, which is not available here; "
              f"{action} on the CPU.", UserWarning)
    return torch.device("cpu")


def cuda_free_bytes(device) -> int:
    """Bytes a new allocation on the CUDA ``device`` can use: the driver's free memory plus
    what torch's caching allocator holds but does not use (freed tensors stay reserved, and
    ``torch.cuda.mem_get_info`` counts them as taken)."""
    free, _ = torch.cuda.mem_get_info(device)
    return int(free + torch.cuda.memory_reserved(device) - torch.cuda.memory_allocated(device))


def make_generator(random_state=None) -> torch.Generator:
    """Return a CPU :class:`torch.Generator` seeded from ``random_state``.

    Parameters
    ----------
    random_state : None, int, numpy.random.RandomState or numpy.random.Generator
        Anything :func:`sklearn.utils.check_random_state` accepts, or a numpy Generator.
        ``None`` gives a fresh, unpredictable seed (drawn from numpy's global state).

    Returns
    -------
    torch.Generator
        A generator on the CPU. Draw random tensors on CPU with it and move them.

    Examples
    --------
    >>> import torch
    >>> from fstat._torch import make_generator
    >>> a = torch.rand(3, generator=make_generator(0))
    >>> b = torch.rand(3, generator=make_generator(0))
    >>> bool(torch.equal(a, b))
    True
    """
    if isinstance(random_state, torch.Generator):
        seed = int(torch.randint(0, 2**62, (1,), generator=random_state).item())
    elif isinstance(random_state, np.random.Generator):
        seed = int(random_state.integers(0, 2**62))
    else:
        rng = check_random_state(random_state)
        seed = int(rng.randint(0, 2**31 - 1)) * (2**31) + int(rng.randint(0, 2**31 - 1))
    generator = torch.Generator(device="cpu")
    generator.manual_seed(seed)
    return generator


def spawn_seeds(random_state, n) -> list[int]:
    """Draw ``n`` independent integer seeds up front (for folds, repeats, parallel tasks).

    Drawing all seeds before dispatch makes ``n_jobs=1`` and ``n_jobs>1`` identical.

    Parameters
    ----------
    random_state : None, int or RandomState
    n : int

    Returns
    -------
    list of int
    """
    rng = check_random_state(random_state)
    return [int(s) for s in rng.randint(0, 2**31 - 1, size=int(n))]


def parse_dtype(dtype) -> torch.dtype:
    """Parse a dtype string (``"float32"`` / ``"float64"``) into a torch floating dtype.

    Parameters
    ----------
    dtype : str, numpy dtype or torch.dtype

    Returns
    -------
    torch.dtype

    Raises
    ------
    ValueError
        If the dtype is not float32 or float64.
    """
    if isinstance(dtype, torch.dtype):
        if dtype in (torch.float32, torch.float64):
            return dtype
    else:
        try:
            key = np.dtype(dtype).name if not isinstance(dtype, str) else dtype.lower()
        except TypeError:
            key = None
        if key in _DTYPES:
            return _DTYPES[key]
    raise ValueError(f"dtype must be 'float32' or 'float64'; got dtype={dtype!r}.")


def as_tensor(X, dtype="float64", device="cpu") -> torch.Tensor:
    """Copy array-like data into a new tensor of the given dtype on the given device.

    The data are always copied, so read-only inputs (memmaps, views of
    immutable buffers) are safe and the caller's array is never modified.

    Parameters
    ----------
    X : array-like or torch.Tensor
    dtype : str or torch.dtype, default="float64"
    device : str or torch.device, default="cpu"
        A concrete device (use :func:`resolve_device` first for ``"auto"``).

    Returns
    -------
    torch.Tensor
    """
    torch_dtype = parse_dtype(dtype)
    if isinstance(device, str):
        device = torch.device(device)
    if isinstance(X, torch.Tensor):
        return X.detach().to(device=device, dtype=torch_dtype, copy=True)
    array = np.array(X, dtype=np.float64 if torch_dtype == torch.float64 else np.float32, copy=True)
    return torch.from_numpy(np.ascontiguousarray(array)).to(device)


def to_numpy(tensor) -> np.ndarray:
    """Return a float64 numpy copy of a tensor (any device) or array-like."""
    if isinstance(tensor, torch.Tensor):
        return tensor.detach().to("cpu", torch.float64).numpy().copy()
    return np.asarray(tensor, dtype=np.float64).copy()


def unit_scale(tensor) -> float:
    """A power of two near ``max |tensor|`` (1.0 for an empty, zero or non-finite tensor).

    Dividing by it is exact and brings the entries to magnitudes of about 1 (at most 1;
    at most 4 at the top of the dtype's range), so that squares and sums of squares computed
    afterwards neither overflow nor underflow; multiply results back by the matching power
    of the scale. The scale and its reciprocal are normal numbers of the tensor's dtype.

    Examples
    --------
    >>> import torch
    >>> from fstat._torch import unit_scale
    >>> unit_scale(torch.tensor([3.0, -1e200], dtype=torch.float64)) == 2.0 ** 665
    True
    """
    peak = float(tensor.detach().abs().max()) if tensor.numel() else 0.0
    if not 0.0 < peak < math.inf:
        return 1.0
    # within the dtype's normal range, so the scale and its reciprocal are finite (CUDA
    # divides by a scalar as a multiplication by its reciprocal)
    info = torch.finfo(tensor.dtype) if tensor.is_floating_point() else torch.finfo(torch.float64)
    low, high = math.frexp(info.tiny)[1] + 1, math.frexp(info.max)[1] - 2
    return math.ldexp(1.0, min(max(math.frexp(peak)[1], low), high))


def _draw(fn, shape, generator, dtype, device):
    out = fn(*shape, generator=generator, dtype=parse_dtype(dtype), device="cpu")
    return out.to(device)


def randn(*shape, generator, dtype="float64", device="cpu") -> torch.Tensor:
    """Standard normal draws made on CPU with ``generator`` and moved to ``device``."""
    return _draw(torch.randn, shape, generator, dtype, device)


def rand(*shape, generator, dtype="float64", device="cpu") -> torch.Tensor:
    """Uniform(0, 1) draws made on CPU with ``generator`` and moved to ``device``."""
    return _draw(torch.rand, shape, generator, dtype, device)


def randperm(n, *, generator, device="cpu") -> torch.Tensor:
    """A random permutation of ``range(n)`` drawn on CPU and moved to ``device``."""
    return torch.randperm(int(n), generator=generator).to(device)
