"""GPU checks of the ebm family (skipped without CUDA)."""

import os
import pickle
import subprocess
import sys

import numpy as np
import pytest

from fstat.datasets import make_toy_density
from fstat.ebm import CompositionalEBM

pytestmark = pytest.mark.gpu


@pytest.mark.slow
def test_cuda_fit_matches_cpu_and_pickle_loads_without_cuda(tmp_path):
    X = make_toy_density("moons", 4000, random_state=0)
    X_test = make_toy_density("moons", 2000, random_state=1)
    params = dict(learning_rate=2e-3, max_iter=3000, random_state=0)
    cpu = CompositionalEBM(device="cpu", **params).fit(X)
    gpu = CompositionalEBM(device="cuda", **params).fit(X)
    assert gpu.device_.startswith("cuda")
    assert abs(gpu.score(X_test) - cpu.score(X_test)) < 0.1
    path = tmp_path / "model.pkl"
    path.write_bytes(pickle.dumps(gpu))
    np.save(tmp_path / "X.npy", X_test[:100])
    expected = gpu.score_samples(X_test[:100])
    code = (
        "import pickle, warnings, numpy as np, sys\n"
        f"m = pickle.loads(open({str(path)!r}, 'rb').read())\n"
        "with warnings.catch_warnings():\n"
        "    warnings.simplefilter('ignore')\n"
        f"    s = m.score_samples(np.load({str(tmp_path / 'X.npy')!r}))\n"
        "np.save(sys.argv[1], s)\n"
    )
    out = tmp_path / "s.npy"
    env = {**os.environ, "CUDA_VISIBLE_DEVICES": ""}
    subprocess.run([sys.executable, "-c", code, str(out)], check=True, env=env)
    np.testing.assert_allclose(np.load(out), expected, atol=1e-9)
