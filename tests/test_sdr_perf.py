"""Performance smoke tests of spec §8 (``perf`` marker): single thread, 2x the CPU targets.

One fresh subprocess pins one torch thread, times the workloads (best of a few repeats,
routes interleaved) and reports its own RSS high-water mark (``resource.getrusage``;
tracemalloc does not see torch's allocations), so the memory bound is that of a clean process.
"""

import json
import os
import subprocess
import sys
import textwrap

import pytest

pytestmark = [pytest.mark.perf, pytest.mark.slow]

N = 2000

_SCRIPT = textwrap.dedent(f"""
    import json, resource, time
    import numpy as np, torch
    torch.set_num_threads(1)
    from fstat.sdr import fccov
    from fstat.sdr._metrics import check_response
    from fstat.sdr._ranks import ball_ranks

    def best(fns, repeat):
        out = dict.fromkeys(fns, float("inf"))
        for _ in range(repeat):
            for key, fn in fns.items():
                start = time.perf_counter(); fn()
                out[key] = min(out[key], time.perf_counter() - start)
        return out

    rng = np.random.default_rng(0); n = {N}
    y = rng.standard_normal(n); U = rng.standard_normal((n, 2))
    D = np.abs(y[:, None] - y[None])
    response = check_response(y)
    fccov(U[:20], y[:20], device="cpu")
    fccov(U[:20], D[:20, :20], metric="precomputed", device="cpu")
    base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    out = best({{"scalar": lambda: fccov(U, y, device="cpu"),
                 "precomputed": lambda: fccov(U, D, metric="precomputed", device="cpu")}}, 2)
    out.update(best({{r: (lambda r=r: ball_ranks(response, "cpu", route=r))
                     for r in ("sort", "interval")}}, 3))
    out["memory"] = (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - base) * 1024
    print(json.dumps(out))
""")


@pytest.fixture(scope="module")
def measured():
    env = {**os.environ, "OMP_NUM_THREADS": "1",
           "PYTHONPATH": os.pathsep.join([os.getcwd(), os.environ.get("PYTHONPATH", "")])}
    out = subprocess.run([sys.executable, "-c", _SCRIPT], capture_output=True, text=True,
                         env=env, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def test_fccov_scalar_euclidean_n2000(measured):
    """§8 target < 1.0 s (scalar Euclidean Y, R2 ranks + cumsum), gated at 2x."""
    assert measured["scalar"] < 2.0


def test_fccov_precomputed_n2000(measured):
    """§8 target < 1.5 s (precomputed D, R1 ranks + cumsum), gated at 2x."""
    assert measured["precomputed"] < 3.0


def test_two_pointer_ranks_not_slower_than_sort(measured):
    """§8 target: R2 ranks >= 1.5x faster than R1; gated at 2x slack (ratio >= 0.75)."""
    assert measured["sort"] / measured["interval"] >= 0.75


def test_peak_memory_is_quadratic(measured):
    """Peak RSS increase of the fresh process stays below 64 n^2 bytes (no O(n^3) object)."""
    assert measured["memory"] < 64 * N**2
