"""Tests of fstat._torch and fstat._nn: devices, generators, dtypes, conversions, init."""

import math

import numpy as np
import pytest
import torch

from fstat._nn import make_mlp, reset_parameters
from fstat._torch import (
    as_tensor,
    make_generator,
    parse_dtype,
    rand,
    randn,
    resolve_device,
    spawn_seeds,
    to_numpy,
    unit_scale,
)


def test_resolve_device_cpu_and_auto():
    assert resolve_device("cpu") == torch.device("cpu")
    assert resolve_device("CPU") == torch.device("cpu")
    expected = "cuda" if torch.cuda.is_available() else "cpu"
    assert resolve_device("auto").type == expected


@pytest.mark.parametrize("bad", ["gpu", "cuda:x", "", None, 3, "tpu"])
def test_resolve_device_rejects_unknown(bad):
    with pytest.raises(ValueError, match="device"):
        resolve_device(bad)


@pytest.mark.skipif(torch.cuda.is_available(), reason="machine has CUDA")
@pytest.mark.parametrize("device", ["cuda", "cuda:0", "cuda:3"])
def test_resolve_device_explicit_cuda_without_cuda(device):
    # the phrases the family specs quote: "CUDA is not available" (bottleneck, sdr) and
    # "CUDA requested but not available" (ebm)
    for phrase in ("CUDA is not available", "CUDA requested but not available"):
        with pytest.raises(ValueError, match=phrase):
            resolve_device(device)


def test_make_generator_is_deterministic_and_cpu():
    g1, g2 = make_generator(7), make_generator(7)
    assert g1.device.type == "cpu"
    assert torch.equal(torch.rand(5, generator=g1), torch.rand(5, generator=g2))
    assert not torch.equal(torch.rand(5, generator=make_generator(8)),
                           torch.rand(5, generator=make_generator(7)))


def test_make_generator_accepts_randomstate_and_numpy_generator():
    a = torch.rand(3, generator=make_generator(np.random.RandomState(3)))
    b = torch.rand(3, generator=make_generator(np.random.RandomState(3)))
    assert torch.equal(a, b)
    c = torch.rand(3, generator=make_generator(np.random.default_rng(3)))
    d = torch.rand(3, generator=make_generator(np.random.default_rng(3)))
    assert torch.equal(c, d)


def test_make_generator_does_not_touch_global_state():
    state = torch.random.get_rng_state()
    torch.rand(2, generator=make_generator(0))
    assert torch.equal(state, torch.random.get_rng_state())


def test_spawn_seeds_reproducible():
    assert spawn_seeds(0, 4) == spawn_seeds(0, 4)
    assert len(set(spawn_seeds(0, 50))) == 50


@pytest.mark.parametrize(
    ("spec", "expected"),
    [("float32", torch.float32), ("float64", torch.float64), ("FLOAT64", torch.float64),
     (np.float32, torch.float32), (torch.float64, torch.float64)],
)
def test_parse_dtype(spec, expected):
    assert parse_dtype(spec) is expected


@pytest.mark.parametrize("bad", ["float16", "int64", "banana", torch.int32])
def test_parse_dtype_rejects(bad):
    with pytest.raises(ValueError, match="dtype"):
        parse_dtype(bad)


def test_as_tensor_copies_read_only_memmap(tmp_path):
    path = tmp_path / "x.npy"
    np.save(path, np.arange(6.0).reshape(3, 2))
    mm = np.load(path, mmap_mode="r")
    assert not mm.flags.writeable
    t = as_tensor(mm, dtype="float32")
    t += 1  # must not raise nor modify the file
    assert t.dtype == torch.float32
    np.testing.assert_array_equal(np.load(path), np.arange(6.0).reshape(3, 2))


def test_as_tensor_copies_numpy_and_tensors():
    x = np.ones(3)
    t = as_tensor(x)
    t[0] = 5
    assert x[0] == 1
    source = torch.zeros(2)
    out = as_tensor(source, dtype="float64")
    out[0] = 1
    assert source[0] == 0 and out.dtype == torch.float64


def test_to_numpy_returns_float64_copy():
    t = torch.arange(3, dtype=torch.float32, requires_grad=False)
    a = to_numpy(t)
    assert a.dtype == np.float64
    a[0] = 9
    assert t[0] == 0


def test_random_draws_identical_across_devices_and_seeds():
    a = randn(4, 2, generator=make_generator(1))
    b = randn(4, 2, generator=make_generator(1), dtype="float32")
    np.testing.assert_allclose(to_numpy(a), to_numpy(b), rtol=1e-6)
    u = rand(1000, generator=make_generator(2))
    assert 0 <= float(u.min()) and float(u.max()) < 1


def test_make_mlp_reproducible_and_default_init_scale():
    net1 = make_mlp(5, (16,), 2, generator=make_generator(0))
    net2 = make_mlp(5, (16,), 2, generator=make_generator(0))
    for p, q in zip(net1.parameters(), net2.parameters(), strict=True):
        assert torch.equal(p, q)
    first = net1[0].requires_grad_(False)
    bound = 1 / np.sqrt(5)
    assert float(first.weight.abs().max()) <= bound
    # uniform on (-bound, bound): the variance is bound^2 / 3 (80 draws, loose check)
    assert abs(float(first.weight.var()) - bound**2 / 3) < 0.5 * bound**2 / 3
    assert net1[0].weight.dtype == torch.float64


def test_reset_parameters_uses_generator_only():
    net = make_mlp(3, (4,), 1, generator=make_generator(0), activation="tanh")
    state = torch.random.get_rng_state()
    reset_parameters(net, make_generator(1))
    assert torch.equal(state, torch.random.get_rng_state())


def test_make_mlp_rejects_activation():
    with pytest.raises(ValueError, match="activation"):
        make_mlp(2, (3,), 1, activation="swish-ish", generator=make_generator(0))


@pytest.mark.parametrize("values, dtype", [
    ([3.0, -1e200], torch.float64), ([1e-310], torch.float64), ([1.7e308], torch.float64),
    ([3e38, 1.0], torch.float32), ([1e-40], torch.float32), ([0.75, 0.1], torch.float32),
])
def test_unit_scale_is_a_normal_power_of_two_with_a_finite_reciprocal(values, dtype):
    t = torch.tensor(values, dtype=dtype)
    s = unit_scale(t)
    info = torch.finfo(dtype)
    assert math.frexp(s)[0] == 0.5  # a power of two
    assert info.tiny <= s <= info.max and info.tiny <= 1.0 / s <= info.max
    scaled = t * torch.tensor(1.0 / s, dtype=dtype)  # CUDA's division by a scalar
    assert torch.isfinite(scaled).all() and 0.0 < float(scaled.abs().max()) <= 4.0
    assert torch.equal(scaled, t / s)  # exact: a power of two
    assert unit_scale(torch.zeros(3)) == unit_scale(torch.tensor([math.inf])) == 1.0


def test_fitted_device_falls_back_to_cpu_when_the_gpu_is_gone(monkeypatch):
    from fstat._torch import fitted_device

    assert fitted_device("cpu") == torch.device("cpu")
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 2)
    assert fitted_device("cuda:1") == torch.device("cuda:1")
    assert fitted_device("cuda") == torch.device("cuda")
    with pytest.warns(UserWarning, match="fitted on cuda:2, which is not available here; "
                                         "transforming on the CPU"):
        assert fitted_device("cuda:2", "transforming") == torch.device("cpu")
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    with pytest.warns(UserWarning, match="predicting on the CPU"):
        assert fitted_device(torch.device("cuda:0")) == torch.device("cpu")
