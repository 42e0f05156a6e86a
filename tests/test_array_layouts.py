"""Entry points accept arrays in any memory layout: reversed (negative-stride) views,
Fortran order and read-only buffers give the results of a contiguous copy, without warnings.

torch cannot wrap negative strides (``torch.as_tensor``/``torch.tensor`` raise) and warns on
read-only buffers; every path that turns user data into tensors must copy first.
"""

import warnings

import numpy as np
import pytest


def _layouts(A):
    """Views of ``A``'s values in other layouts (each equal to ``A`` element by element)."""
    reversed_view = np.ascontiguousarray(A[::-1])[::-1]
    fortran = np.asfortranarray(A)
    frozen = A.copy()
    frozen.flags.writeable = False
    return {"reversed": reversed_view, "fortran": fortran, "read_only": frozen}


def _check(method, *arrays):
    expected = method(*[np.ascontiguousarray(a) for a in arrays])
    for name in ("reversed", "fortran", "read_only"):
        views = [_layouts(a)[name] if a.ndim == 2 else _layouts(a[:, None])[name][:, 0]
                 for a in arrays]
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            got = method(*views)
        for g, e in zip(np.atleast_1d(got), np.atleast_1d(expected)):
            np.testing.assert_array_equal(np.asarray(g, dtype=float),
                                          np.asarray(e, dtype=float), err_msg=name)


@pytest.fixture(scope="module")
def kernel_models():
    from fstat.kernels import NTKSVC, NTKNetwork, ntk_kernel

    rng = np.random.default_rng(0)
    X = rng.standard_normal((40, 3))
    y = (X[:, 0] > 0).astype(int)
    return {
        "svc": NTKSVC(device="cpu").fit(X, y),
        "net": NTKNetwork(width=16, max_iter=5, dtype="float64", random_state=0,
                          device="cpu").fit(X, y),
        "staged": NTKSVC(kernel="precomputed", solver="subgradient", max_iter=10,
                         record_steps=5, device="cpu").fit(ntk_kernel(X, device="cpu"), y),
        "X": X, "test": rng.standard_normal((7, 3)),
    }


@pytest.mark.parametrize("entry", ["certify", "pgd_attack", "attack_radius", "net_certify",
                                   "net_empirical_ntk", "staged_precomputed"])
def test_kernel_entry_points(kernel_models, entry):
    from fstat.kernels import attack_radius, ntk_kernel, pgd_attack

    m = kernel_models
    methods = {
        "certify": lambda A: m["svc"].certify(A),
        "pgd_attack": lambda A: pgd_attack(m["svc"], A, 0.1, n_steps=3)[0],
        "attack_radius": lambda A: attack_radius(m["svc"], A[:2], n_steps=3, n_bisect=3),
        "net_certify": lambda A: m["net"].certify(A, n_bisect=3),
        "net_empirical_ntk": lambda A: m["net"].empirical_ntk(A),
        "staged_precomputed": lambda K: list(m["staged"].staged_decision_function(K))[-1],
    }
    data = ntk_kernel(m["test"], m["X"], device="cpu") if entry == "staged_precomputed" \
        else m["test"]
    _check(methods[entry], data)


@pytest.mark.parametrize("attack", ["fgsm", "pgd"])
def test_adversarial_rmse(attack):
    from fstat.bottleneck import CSIBRegressor, adversarial_rmse

    rng = np.random.default_rng(0)
    X = rng.standard_normal((60, 3))
    y = X[:, 0] + 0.1 * rng.standard_normal(60)
    model = CSIBRegressor(hidden_layer_sizes=(8,), bottleneck_dim=2, decoder_hidden_sizes=(8,),
                          max_iter=2, batch_size=60, early_stopping=False, random_state=0,
                          device="cpu").fit(X, y)
    _check(lambda A, t: adversarial_rmse(model, A, t, eps=[0.1], attack=attack, n_steps=2,
                                         random_state=0)["rmse"], X, y)


@pytest.mark.parametrize("name", ["GaussianNoise", "DiagonalGaussianNoise", "StudentTNoise",
                                  "UniformNoise"])
def test_ebm_noise_score_samples_and_parameters(name):
    import fstat.ebm as ebm

    Z = np.random.default_rng(0).standard_normal((30, 2))
    noise = getattr(ebm, name)().fit(Z)
    _check(noise.score_samples, Z)
    if name == "GaussianNoise":
        _check(lambda m, c: ebm.GaussianNoise(mean=m[0], covariance=c).fit(None).score_samples(Z),
               Z[:1], np.array([[2.0, 0.3], [0.3, 1.0]]))


def _strided(v):
    """``v``'s values as a strided 1-D view (every other entry of a bigger buffer)."""
    big = np.zeros(2 * len(v))
    big[::2] = v
    return big[::2]


def test_fits_and_functions_do_not_depend_on_the_layout():
    """Sums over Fortran-ordered or strided inputs ran in another order and differed in the
    last bits (1e-16): inputs are taken in C order now."""
    from fstat.causal import manski_bounds, pointwise_bounds
    from fstat.ebm import GaussianNoise, NCEDensity
    from fstat.sdr import LinearFCCov, fccov

    rng = np.random.default_rng(0)
    X = rng.standard_normal((40, 3))
    y = X[:, 0] ** 2 + 0.1 * rng.standard_normal(40)
    _check(lambda A: fccov(A, y, device="cpu"), X)
    _check(lambda A: LinearFCCov(n_components=1).fit(A, y).directions_, X)
    _check(lambda A: GaussianNoise().fit(A).covariance_, X)
    _check(lambda A: NCEDensity(hidden_layer_sizes=(4,), max_iter=3, n_noise=16,
                                n_logz_samples=500, random_state=0,
                                device="cpu").fit(A).score_samples(X), X)
    values, weights = rng.uniform(0, 1, 25), rng.uniform(0.5, 2, 25)
    for bounds in (lambda v: pointwise_bounds(v, 0.6, divergence="kl", weights=weights),
                   lambda v: manski_bounds(v, 0.6, weights=weights)):
        np.testing.assert_array_equal(bounds(_strided(values)), bounds(values))


def test_multi_output_targets_and_scalar_weights():
    """A Fortran-ordered multi-output y changed CSIBRegressor's fit in the last bits; taking
    pointwise values in C order must keep a scalar weight a shape error."""
    from fstat.bottleneck import CSIBRegressor
    from fstat.causal import manski_bounds

    rng = np.random.default_rng(0)
    X = rng.standard_normal((150, 3))
    Y = np.column_stack([X[:, 0], X[:, 1] ** 2]) + 0.1 * rng.standard_normal((150, 2))
    _check(lambda T: CSIBRegressor(hidden_layer_sizes=(8,), bottleneck_dim=2,
                                   decoder_hidden_sizes=(8,), max_iter=2, batch_size=50,
                                   early_stopping=False, random_state=0,
                                   device="cpu").fit(X, T).predict(X), Y)
    with pytest.raises(ValueError, match="same shape as values"):
        manski_bounds([3.0], 0.5, weights=2.0, support=(0, 4))
