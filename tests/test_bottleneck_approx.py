"""Random-feature and Nyström approximations of the CS estimators."""

import warnings

import numpy as np
import pytest
import torch

from fstat.bottleneck import conditional_cs_divergence, cs_divergence, cs_mutual_information
from fstat.bottleneck._approx import approx_conditional_cs, approx_cs_qmi


def _problem(n=150, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n, 3))
    T = np.tanh(X @ rng.standard_normal((3, 2))) + 0.1 * rng.standard_normal((n, 2))
    y = X[:, 0] + 0.3 * rng.standard_normal(n)
    return X, T, y, y + 0.5 * rng.standard_normal(n)


def test_nystroem_with_all_rows_is_exact():
    X, T, y, yp = _problem()
    for fn, args in ((cs_mutual_information, (X, T)), (conditional_cs_divergence, (X, y, yp)),
                     (cs_divergence, (X, X[:40] + 0.5))):
        exact = fn(*args)
        assert fn(*args, approximation="nystroem", n_components=1024) == pytest.approx(
            exact, rel=1e-6)
    assert cs_mutual_information(X, T, normalized=True, approximation="nystroem") == (
        pytest.approx(cs_mutual_information(X, T, normalized=True), rel=1e-6))


def test_float32_nystroem_with_repeated_landmarks_stays_exact():
    # categorical-like x: many identical rows make k(Z, Z) singular; in float32 its inverse
    # square root amplified rounding (+84% on the two-sample divergence at 1024 landmarks)
    rng = np.random.default_rng(0)
    X = rng.integers(0, 5, (600, 2)).astype(float)
    y = X[:, :1] + np.sin(X[:, 1:]) + 0.3 * rng.standard_normal((600, 1))
    yp = X[:, :1] + 0.2 * rng.standard_normal((600, 1))
    T = np.tanh(X) + 0.05 * rng.standard_normal((600, 2))
    for fn, args in ((cs_mutual_information, (X, T)), (conditional_cs_divergence, (X, y, yp)),
                     (cs_divergence, (X[:300], X[300:] + 0.5))):
        exact = fn(*args)
        for n_components in (64, 1024):
            approx = fn(*args, approximation="nystroem", n_components=n_components,
                        random_state=0, dtype="float32")
            assert approx == pytest.approx(exact, rel=5e-3)


def test_rff_relative_error():
    X, _, y, yp = _problem(300)
    T = X + 0.05 * np.random.default_rng(1).standard_normal(X.shape)  # strongly dependent
    exact = cs_mutual_information(X, T)
    errors = [abs(cs_mutual_information(X, T, approximation="rff", n_components=4096,
                                        random_state=s) - exact) / exact for s in range(3)]
    assert np.mean(errors) <= 0.25
    yp = y + 1.0  # a clearly non-zero divergence (relative error of a ~0 value is meaningless)
    exact = conditional_cs_divergence(X, y, yp)
    errors = [abs(conditional_cs_divergence(X, y, yp, approximation="rff", n_components=4096,
                                            random_state=s) - exact) / exact for s in range(3)]
    assert np.mean(errors) <= 0.25


def test_rff_deterministic_and_subsampled_nystroem():
    X, T, _, _ = _problem()
    a = cs_mutual_information(X, T, approximation="rff", n_components=64, random_state=3)
    b = cs_mutual_information(X, T, approximation="rff", n_components=64, random_state=3)
    c = cs_mutual_information(X, T, approximation="rff", n_components=64, random_state=4)
    assert a == b and a != c
    ny = cs_mutual_information(X, T, approximation="nystroem", n_components=50, random_state=0)
    assert np.isfinite(ny)


@pytest.mark.parametrize("kind", ["rff", "nystroem"])
def test_chunked_equals_unchunked(kind):
    X, T, y, yp = _problem()
    x, t = torch.tensor(X), torch.tensor(T)
    yy, pp = torch.tensor(y)[:, None], torch.tensor(yp)[:, None]
    for fn, args in ((approx_cs_qmi, (x, t, 1.3, 0.9)),
                     (approx_conditional_cs, (x, yy, pp, 1.3, 0.9))):
        whole = fn(*args, kind, 128, torch.Generator().manual_seed(0), chunk_size=None)
        parts = fn(*args, kind, 128, torch.Generator().manual_seed(0), chunk_size=7)
        assert float(parts) == pytest.approx(float(whole), rel=1e-10)


def test_floors_warn_on_tiny_feature_count():
    X, T, y, yp = _problem(200)
    with pytest.warns(RuntimeWarning, match="floored"):
        value = cs_mutual_information(X, T, approximation="rff", n_components=1, random_state=0)
    assert np.isfinite(value)
    with pytest.warns(RuntimeWarning, match="floored"):
        value = conditional_cs_divergence(X, y, yp, approximation="rff", n_components=1,
                                          random_state=0)
    assert np.isfinite(value)


def test_rff_cs_qmi_weak_dependence_in_higher_dimension():
    # median-width CS-QMI of a weak dependence is a few hundredths of a nat: the shared
    # (tensor-product) feature maps keep the relative error small where independent maps
    # of x, t and [x, t] gave errors above 100%
    rng = np.random.default_rng(1)
    X = rng.standard_normal((1000, 8))
    T = np.tanh(X @ rng.standard_normal((8, 8)) / 3) + 0.1 * rng.standard_normal((1000, 8))
    exact = cs_mutual_information(X, T)
    assert exact < 0.05
    with _ignore_floor_warnings():
        errors = [abs(cs_mutual_information(X, T, approximation="rff", n_components=1024,
                                            random_state=s) - exact) / exact for s in range(3)]
    assert np.mean(errors) <= 0.25


def test_rff_cs_qmi_constant_t_is_zero():
    X = np.random.default_rng(2).standard_normal((300, 3))
    value = cs_mutual_information(X, np.full((300, 2), 0.7), sigma_t=1.0, approximation="rff",
                                  n_components=256, random_state=0)
    assert abs(value) < 1e-10


def _ignore_floor_warnings():
    import contextlib
    import warnings

    @contextlib.contextmanager
    def ctx():
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            yield

    return ctx()


def test_qmi_feature_count_is_refused_before_the_d_by_d_allocation():
    """The approximate CS-QMI holds D x D matrices: a huge n_components raises a
    ValueError naming it (with the memory it needs), in the function and at fit, instead
    of a failed allocation deep inside."""
    from fstat.bottleneck import CSIBRegressor, cs_mutual_information

    rng = np.random.default_rng(0)
    X = rng.normal(size=(40, 2))
    T = X + 0.1 * rng.normal(size=(40, 2))
    with pytest.raises(ValueError, match=r"n_components=65536 .*\(128 GiB.*<= 11585"):
        cs_mutual_information(X, T, approximation="rff", n_components=65536, random_state=0)
    est = CSIBRegressor(approximation="rff", n_components=65536, max_iter=1,
                        hidden_layer_sizes=(4,), bottleneck_dim=2, decoder_hidden_sizes=(4,))
    with pytest.raises(ValueError, match="n_components=65536"):
        est.fit(X, X[:, 0])
    # Nystroem uses at most one landmark per row: 40 x 40, nothing to refuse
    assert cs_mutual_information(X, T, approximation="nystroem", n_components=65536,
                                 random_state=0) > 0
    est.set_params(approximation="nystroem").fit(X, X[:, 0])
    # beta = 0 trains no compression term: nothing to refuse either
    est.set_params(approximation="rff", beta=0.0).fit(X, X[:, 0])


def test_training_with_few_features_reports_floored_batches_once():
    from fstat.bottleneck import CSIBRegressor

    rng = np.random.default_rng(0)
    X = rng.standard_normal((200, 3))
    y = X[:, 0] + 0.1 * rng.standard_normal(200)
    est = CSIBRegressor(approximation="rff", n_components=8, bottleneck_dim=3,
                        hidden_layer_sizes=(8,), decoder_hidden_sizes=(8,), max_iter=2,
                        batch_size=64, random_state=0, device="cpu")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        est.fit(X, y)
    floored = [w for w in caught if "floored kernel sums" in str(w.message)]
    assert len(floored) == 1 and floored[0].category is RuntimeWarning
    assert "of 6 training batches" in str(floored[0].message)


def test_exact_nystroem_sums_at_their_floor_do_not_warn():
    # tiny widths: row sums are their self-terms, which an exact (all-landmark) map hits
    # to rounding; a few ulps below the floor is not an approximation failure
    rng = np.random.default_rng(0)
    X = rng.standard_normal((300, 3))
    T = X + 0.01 * rng.standard_normal((300, 3))
    with warnings.catch_warnings():
        warnings.simplefilter("error", RuntimeWarning)
        approx = cs_mutual_information(X, T, sigma_x=0.05, sigma_t=0.05,
                                       approximation="nystroem", n_components=1024)
    assert approx == pytest.approx(cs_mutual_information(X, T, sigma_x=0.05, sigma_t=0.05),
                                   rel=1e-12)


def test_other_training_warnings_are_passed_on_once():
    # a constant representation: normalised CS-QMI warns "zero denominator" in every batch
    from fstat.bottleneck import CSIBRegressor

    X = np.ones((200, 2))
    y = np.random.default_rng(0).standard_normal(200)
    est = CSIBRegressor(approximation="rff", n_components=64, compression="normalized_cs_qmi",
                        beta=0.1, bottleneck_dim=2, hidden_layer_sizes=(4,),
                        decoder_hidden_sizes=(4,), max_iter=3, batch_size=50, random_state=0,
                        device="cpu")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        est.fit(X, y)
    zero = [w for w in caught if "zero denominator" in str(w.message)]
    assert len(zero) == 1


def _symmetric_fd(fun, K, direction, h=1e-6):
    return (fun(K + h * direction) - fun(K - h * direction)) / (2 * h)


@pytest.mark.parametrize("case", ["distinct", "repeated", "floored"])
def test_nystroem_inverse_square_root_gradient_matches_finite_differences(case):
    """The landmark normalisation K^{-1/2} (floored) is differentiated through coinciding
    landmarks in training; its backward must be the matrix function's derivative, also where
    eigenvalues repeat (generic eigh backward divides by their gaps) or sit below the floor."""
    from fstat.bottleneck._approx import _FlooredInverseSqrt

    rng = np.random.default_rng(1)
    Q, _ = np.linalg.qr(rng.standard_normal((5, 5)))
    spectrum = {"distinct": [0.3, 0.7, 1.1, 2.0, 3.5], "repeated": [1.0, 1.0, 1.0, 2.0, 3.0],
                "floored": [1e-14, 3e-14, 0.5, 2.0, 3.0]}[case]
    K = torch.from_numpy(Q @ np.diag(spectrum) @ Q.T)
    K = (K + K.T) / 2
    weights = torch.from_numpy(rng.standard_normal((5, 5)))
    floor = 1e-12  # times the largest eigenvalue (3 or 3.5): the "floored" pair lies below

    def loss(M):
        return (_FlooredInverseSqrt.apply(M, floor) * weights).sum()

    Kg = K.clone().requires_grad_(True)
    (grad,) = torch.autograd.grad(loss(Kg), Kg)
    assert torch.allclose(grad, grad.T, rtol=0, atol=1e-14 * grad.abs().max().item())
    for _ in range(3):
        D = torch.from_numpy(rng.standard_normal((5, 5)))
        D = (D + D.T) / 2
        if case == "floored":  # perturb within the span kept above the floor, below the
            # top eigenvalue (the floor, 1e-12 times it, is held fixed in the derivative)
            P = torch.from_numpy(Q[:, 2:4] @ Q[:, 2:4].T)
            D = P @ D @ P
        # floored: the loss holds floor^(-1/2) ~ 6e5 terms, so a larger step keeps the
        # difference quotient's rounding (~1e6 eps / h) small, at an O(h^2) truncation
        h, rtol = (1e-3, 2e-5) if case == "floored" else (1e-6, 1e-7)
        fd = _symmetric_fd(loss, K, D, h).item()
        np.testing.assert_allclose((grad * D).sum().item(), fd, rtol=rtol, atol=1e-9)
    v, V = np.linalg.eigh(K.numpy())
    expected = V @ np.diag(np.maximum(v, floor * v.max()) ** -0.5) @ V.T
    np.testing.assert_allclose(_FlooredInverseSqrt.apply(K, floor).numpy(), expected,
                               rtol=1e-12, atol=1e-12 * np.abs(expected).max())


def test_nystroem_training_with_coinciding_representations_stays_finite():
    """With a deterministic encoder (noise_std=0) and constant X, every landmark t row is the
    same: the generic eigh backward gave NaN gradients, NaN weights, and the next batch's
    eigh raised. Training now matches the exact path's constant prediction (the mean)."""
    from fstat.bottleneck import CSIBRegressor

    rng = np.random.default_rng(0)
    X = np.ones((300, 3))
    y = rng.standard_normal(300)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the constant-column notice
        fits = {approximation: CSIBRegressor(approximation=approximation, n_components=64,
                                             noise_std=0.0, max_iter=5, batch_size=64,
                                             random_state=0, device="cpu").fit(X, y)
                for approximation in ("nystroem", None)}
    pred = fits["nystroem"].predict(X)
    assert np.all(np.isfinite(pred)) and np.ptp(pred) < 1e-5
    assert abs(pred[0] - fits[None].predict(X)[0]) < 0.01
