"""Performance smoke tests (single thread, 2x the benchmark targets) and memory bound."""

import os
import subprocess
import sys
import textwrap
import time

import numpy as np
import pytest

from fstat.sdr import fccov

pytestmark = pytest.mark.slow


def test_fccov_speed_n2000():
    rng = np.random.default_rng(0)
    n = 2000
    y = rng.standard_normal(n)
    U = rng.standard_normal((n, 2))
    fccov(U[:50], y[:50], device="cpu")
    start = time.perf_counter()
    fccov(U, y, device="cpu")
    assert time.perf_counter() - start < 2.0
    D = np.abs(y[:, None] - y[None])
    start = time.perf_counter()
    fccov(U, D, metric="precomputed", device="cpu")
    assert time.perf_counter() - start < 3.0


def test_peak_memory_is_quadratic():
    """Peak RSS increase of a fresh process stays below 64 n^2 bytes (no O(n^3) object)."""
    code = textwrap.dedent("""
        import resource, numpy as np, torch
        torch.set_num_threads(1)
        from fstat.sdr import fccov
        rng = np.random.default_rng(0); n = 2000
        y = rng.standard_normal(n); U = rng.standard_normal((n, 2))
        fccov(U[:10], y[:10], device="cpu")
        D = np.abs(y[:, None] - y[None])
        base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        fccov(U, y, device="cpu")
        fccov(U, D, metric="precomputed", device="cpu")
        print((resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - base) * 1024)
    """)
    env = {**os.environ, "OMP_NUM_THREADS": "1",
           "PYTHONPATH": os.pathsep.join([os.getcwd(), os.environ.get("PYTHONPATH", "")])}
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env,
                         check=True)
    assert int(out.stdout.strip().splitlines()[-1]) < 64 * 2000**2
