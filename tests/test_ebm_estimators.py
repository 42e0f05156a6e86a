"""Estimator contract of CompositionalEBM, NCEDensity and SNLDensity: identities, determinism,
pickling, composition with sklearn, and every bad-input row of the spec."""

import pickle
import warnings

import numpy as np
import pandas as pd
import pytest
import torch
from scipy import sparse
from sklearn.base import clone
from sklearn.exceptions import NotFittedError
from sklearn.mixture import GaussianMixture
from sklearn.model_selection import GridSearchCV, KFold, cross_val_score
from sklearn.neighbors import KernelDensity
from sklearn.utils._param_validation import InvalidParameterError

from fstat.datasets import make_toy_density
from fstat.ebm import (
    CompositionalEBM,
    DiagonalGaussianNoise,
    GaussianNoise,
    MixtureNoise,
    NCEDensity,
    PartitionEstimateWarning,
    SNLDensity,
    StudentTNoise,
    UniformNoise,
)

CLASSES = [CompositionalEBM, NCEDensity, SNLDensity]
FAST = dict(hidden_layer_sizes=(16,), max_iter=40, n_noise=64, n_logz_samples=4000,
            device="cpu", random_state=0)


@pytest.fixture(scope="module")
def X():
    return make_toy_density("gaussian", 300, n_features=2, random_state=0)


@pytest.fixture(scope="module")
def fitted(X):
    return {cls.__name__: cls(**FAST).fit(X) for cls in CLASSES}


@pytest.mark.parametrize("cls", CLASSES, ids=lambda c: c.__name__)
def test_score_identities(cls, X, fitted):
    est = fitted[cls.__name__]
    ss = est.score_samples(X)
    np.testing.assert_allclose(ss, -est.energy(X) - est.log_partition_, atol=1e-12)
    assert est.score(X) == pytest.approx(ss.mean(), abs=1e-12)
    np.testing.assert_allclose(est.ood_score(X), -ss)
    np.testing.assert_allclose(est.decision_function(X), ss - est.offset_)
    assert np.mean(est.decision_function(X) < 0) == pytest.approx(0.01, abs=0.01)
    assert len(est.loss_curve_) == est.n_iter_ == 40
    assert est.log_partition_method_ == "is" and est.log_partition_ess_ > 100
    assert np.isfinite(est.train_log_partition_)
    # batch invariance of float64 evaluation
    np.testing.assert_allclose(est.score_samples(X[:7]), ss[:7], atol=1e-12)


@pytest.mark.parametrize("cls", CLASSES, ids=lambda c: c.__name__)
def test_determinism_clone_pickle(cls, X, fitted):
    est = fitted[cls.__name__]
    again = cls(**FAST).fit(X)
    assert np.array_equal(again.score_samples(X), est.score_samples(X))
    cloned = clone(est)
    assert not hasattr(cloned, "log_partition_")
    assert cloned.get_params() == est.get_params()
    loaded = pickle.loads(pickle.dumps(est))
    np.testing.assert_allclose(loaded.score_samples(X), est.score_samples(X), atol=1e-12)
    ones = cls(**FAST).fit(X, sample_weight=np.ones(len(X)))
    assert np.array_equal(ones.score_samples(X), est.score_samples(X))


def test_standardisation_equivariance():
    rs = np.random.RandomState(1)
    X = make_toy_density("gaussian", 400, n_features=2, random_state=1)
    a, b = np.array([3.0, 0.2]), np.array([-5.0, 10.0])
    params = dict(hidden_layer_sizes=(16,), max_iter=200, dtype="float64", device="cpu",
                  random_state=3, n_logz_samples=20000)
    m1 = CompositionalEBM(**params).fit(X)
    m2 = CompositionalEBM(**params).fit(X * a + b)
    Xe = rs.normal(size=(50, 2)) + X.mean(0)
    np.testing.assert_allclose(m2.score_samples(Xe * a + b),
                               m1.score_samples(Xe) - np.log(a).sum(), atol=1e-6)


@pytest.mark.parametrize("cls", CLASSES, ids=lambda c: c.__name__)
def test_quadratic_energy_exact_log_partition(cls, X):
    est = cls(energy_model="quadratic", learning_rate=1e-2, max_iter=300, device="cpu",
              random_state=0).fit(X)
    assert est.log_partition_method_ == "exact" and est.log_partition_se_ == 0
    is_est = est.log_partition("is", 200_000, random_state=0)
    assert abs(is_est.log_z - est.log_partition_) < max(0.01, 5 * is_est.se)
    from scipy.stats import multivariate_normal

    ref = multivariate_normal(est.quadratic_mean_, est.quadratic_covariance_).logpdf(X)
    np.testing.assert_allclose(est.score_samples(X), ref, atol=1e-8)


def test_quadratic_moments_are_float64_for_a_float32_model(X):
    # spec 5.4: public evaluations are float64, also when training ran in float32
    est = CompositionalEBM(energy_model="quadratic", learning_rate=1e-2, max_iter=200,
                           device="cpu", random_state=0).fit(X * [3.0, 0.2])
    core = est.energy_module_.core
    assert core.log_diag.dtype == torch.float32
    L = (core.lower.double() * core.mask.double()
         + torch.diag(torch.exp(core.log_diag.double()))).numpy()
    cov = np.linalg.inv(L @ L.T)
    mean = cov @ core.b.double().numpy()
    np.testing.assert_allclose(est.quadratic_covariance_,
                               cov * np.outer(est.scale_, est.scale_), rtol=1e-12)
    np.testing.assert_allclose(est.quadratic_mean_, est.mean_ + est.scale_ * mean,
                               rtol=1e-12)


def test_loss_curve_units():
    # NCE's loss is a classification loss (the same in any units); SNL's objective and
    # MECO's monitor are negative log-likelihoods, reported in the user's units
    X = make_toy_density("gaussian", 300, n_features=2, random_state=0)
    params = {**FAST, "max_iter": 5, "dtype": "float64"}
    for cls, shift in [(NCEDensity, 0.0), (SNLDensity, 2 * np.log(1000.0)),
                       (CompositionalEBM, 2 * np.log(1000.0))]:
        small = np.asarray(cls(**params).fit(X).loss_curve_)
        large = np.asarray(cls(**params).fit(1000.0 * X).loss_curve_)
        np.testing.assert_allclose(large, small + shift, rtol=1e-9, atol=1e-9)
    # untrained (tilted, zero output layer): the model equals the noise, so the first
    # NCE loss is log(1 + nu) + nu log(1 + 1 / nu) with nu = n_noise / batch
    est = NCEDensity(**{**params, "batch_size": 50}).fit(1000.0 * X)
    nu = FAST["n_noise"] / 50
    assert est.loss_curve_[0] == pytest.approx(np.log1p(nu) + nu * np.log1p(1 / nu),
                                               rel=1e-12)


def test_grid_and_ais_log_partition_methods(X):
    est = CompositionalEBM(**{**FAST, "logz_method": "grid"}).fit(X)
    assert est.log_partition_method_ == "grid"
    is_est = est.log_partition("is", 100_000, random_state=1)
    assert abs(is_est.log_z - est.log_partition_) < max(0.01, 5 * is_est.se)
    ais = est.log_partition("ais", 200, n_temperatures=50, random_state=2)
    assert abs(ais.log_z - est.log_partition_) < max(0.05, 5 * ais.se)


def test_noise_objects_validate_their_data(X):
    # the public noise classes took NaN at fit (score_samples then NaN), failed in torch on a
    # wrong feature count, and MixtureNoise could not draw 0 points
    bad = X.copy()
    bad[0, 0] = np.nan
    for cls in (GaussianNoise, DiagonalGaussianNoise, StudentTNoise, MixtureNoise, UniformNoise):
        with pytest.raises(ValueError, match="Z contains non-finite"):
            cls().fit(bad)
        q = cls().fit(X)
        with pytest.raises(ValueError, match="Z contains non-finite"):
            q.score_samples(bad)
        with pytest.raises(ValueError, match="Z has 1 features"):
            q.score_samples(X[:, :1])
        assert q.sample(0).shape == (0, 2)
        with pytest.raises(ValueError, match="n_samples"):
            q.sample(-1)
        with pytest.raises(ValueError, match="sample_weight"):
            cls().fit(X, sample_weight=-np.ones(len(X)))


def test_log_partition_arguments_are_checked(X, fitted):
    from fstat.ebm import estimate_log_partition

    est = fitted["CompositionalEBM"]
    with pytest.raises(ValueError, match="device"):  # a torch RuntimeError before
        estimate_log_partition(est, "is", 100, device="zz")
    for bounds in ([(np.nan, 0.0), (0.0, 1.0)], [(1.0, 0.0), (0.0, 1.0)], [(0.0, 1.0)],
                   [(0.0, 1.0), (0.0,)]):
        with pytest.raises(ValueError, match="bounds must be 2 finite"):
            estimate_log_partition(est, "grid", bounds=bounds)


def test_log_partition_does_not_depend_on_the_proposal(X):
    # a tilted energy E = f - log q_model keeps its own q_model when another proposal is
    # given: the grid (which uses no proposal) is unchanged, and IS and AIS against the
    # other proposal agree with it (they used to integrate f - log q_user instead)
    from fstat.ebm import estimate_log_partition

    est = CompositionalEBM(**{**FAST, "logz_method": "grid"}).fit(X)
    assert est.energy_module_.tilted
    other = GaussianNoise(mean=[0.3, -0.2], covariance=[[2.0, 0.3], [0.3, 1.5]]).fit(None)
    bounds = [(-7.0, 7.0), (-7.0, 7.0)]
    grid = estimate_log_partition(est, "grid", bounds=bounds).log_z
    assert estimate_log_partition(est, "grid", bounds=bounds, noise=other).log_z == \
        pytest.approx(grid, abs=1e-12)
    is_est = est.log_partition("is", 100_000, noise=other, random_state=1)
    assert abs(is_est.log_z - grid) < max(0.01, 5 * is_est.se)
    ais = est.log_partition("ais", 200, n_temperatures=50, noise=other, random_state=2)
    assert abs(ais.log_z - grid) < max(0.05, 5 * ais.se)
    # a uniform proposal changes neither the default grid nor, silently, IS: its box does
    # not cover the model, which a warning says
    box = UniformNoise(low=[-1.0, -1.0], high=[1.0, 1.0]).fit(None)
    assert estimate_log_partition(est, "grid", noise=box).log_z == pytest.approx(
        est.log_partition("grid").log_z, abs=1e-12)
    with pytest.warns(UserWarning, match="does not cover the model's support"):
        estimate_log_partition(est, "is", 1000, noise=box, random_state=0)
    # the model's own noise passed explicitly gives the default estimate
    default = est.log_partition("is", 20_000, random_state=3)
    explicit = est.log_partition("is", 20_000, noise=est.noise_, random_state=3)
    assert explicit.log_z == pytest.approx(default.log_z, abs=1e-10)


def test_sampling_and_callback(X):
    seen = []

    def callback(t, module, info):
        seen.append((t, info["log_u"]))
        return t == 9

    est = CompositionalEBM(**{**FAST, "callback": callback}).fit(X)
    assert est.n_iter_ == 10 and len(seen) == 10
    S = est.sample(200, random_state=0)
    assert S.shape == (200, 2) and np.all(np.isfinite(S))
    assert np.array_equal(S, est.sample(200, random_state=0))
    S2 = est.sample(50, random_state=0, n_mcmc_steps=4)
    assert S2.shape == (50, 2)
    with pytest.raises(ValueError, match="n_samples"):
        est.sample(0)
    for kwargs, name in (({"n_proposals": -5}, "n_proposals"), ({"n_proposals": 0}, "n_proposals"),
                         ({"n_mcmc_steps": -3}, "n_mcmc_steps"),
                         ({"n_mcmc_steps": 1.5}, "n_mcmc_steps")):
        with pytest.raises(ValueError, match=name):
            est.sample(2, **kwargs)
    with pytest.warns(UserWarning, match="duplicates"):
        est.sample(5000, n_proposals=5000, random_state=0)


def test_early_stopping_records_validation(X):
    est = SNLDensity(**{**FAST, "early_stopping": True, "validation_interval": 10,
                        "max_iter": 60}).fit(X)
    assert len(est.validation_scores_) >= 2 and est.best_iter_ <= est.n_iter_


@pytest.mark.parametrize("noise", ["diag_gaussian", "student_t", "gmm", "uniform",
                                   GaussianMixture(2, random_state=0),
                                   KernelDensity(bandwidth=0.5)],
                         ids=["diag", "t", "gmm", "uniform", "GaussianMixture", "kde"])
def test_noise_options_fit(noise, X):
    est = NCEDensity(**{**FAST, "noise": noise, "max_iter": 10, "n_logz_samples": 2000,
                        "noise_params": {"n_components": 2} if noise == "gmm" else None})
    with np.errstate(all="ignore"):
        import warnings

        with warnings.catch_warnings():
            warnings.simplefilter("ignore", PartitionEstimateWarning)
            est.fit(X)
    assert np.all(np.isfinite(est.score_samples(X)))


def test_composition_with_sklearn(X):
    est = CompositionalEBM(**FAST)
    scores = cross_val_score(est, X, cv=KFold(3))
    manual = [clone(est).fit(X[tr]).score(X[te]) for tr, te in KFold(3).split(X)]
    np.testing.assert_allclose(scores, manual, atol=1e-12)
    grid = GridSearchCV(est, {"learning_rate": [1e-3, 1e-2]}, cv=3).fit(X)
    assert np.all(np.isfinite(grid.cv_results_["mean_test_score"]))
    df = pd.DataFrame(X, columns=["a", "b"])
    fitted = CompositionalEBM(**FAST).fit(df)
    assert list(fitted.feature_names_in_) == ["a", "b"]
    with pytest.raises(ValueError, match="feature names"):
        fitted.score_samples(df[["b", "a"]])


# ------------------------------------------------------------------ bad input (spec §4)
def test_bad_input_rows(X):
    est = CompositionalEBM(**FAST)
    with pytest.raises(ValueError, match="NaN"):
        est.fit(np.where(np.arange(X.size).reshape(X.shape) == 3, np.nan, X))
    with pytest.raises(TypeError):
        est.fit(sparse.csr_matrix(X))
    with pytest.raises(ValueError, match="1 sample"):
        est.fit(X[:1])
    with pytest.raises(NotFittedError):
        est.score_samples(X)
    from fstat.ebm import estimate_log_partition

    with pytest.raises(NotFittedError):  # was a TypeError "must be a fitted fstat EBM"
        estimate_log_partition(CompositionalEBM())
    with pytest.raises(InvalidParameterError, match="gamma"):
        CompositionalEBM(gamma=0.0).fit(X)
    with pytest.raises(InvalidParameterError, match="learning_rate"):
        NCEDensity(learning_rate=-1).fit(X)
    for cls in CLASSES:  # strings outside the noise registry; unknown device strings
        with pytest.raises(InvalidParameterError, match="noise.*'laplace'"):
            cls(**{**FAST, "noise": "laplace"}).fit(X)
        with pytest.raises(InvalidParameterError, match="device"):
            cls(**{**FAST, "device": "tpu"}).fit(X)
        # spec 3.3 / 4: sizes are ints >= 1 (-2 reached torch, 0 and 2.5 were accepted)
        for sizes in ((-2,), (0,), (2.5,), (8, True)):
            with pytest.raises(InvalidParameterError, match="hidden_layer_sizes"):
                cls(**{**FAST, "hidden_layer_sizes": sizes}).fit(X)
    with pytest.raises(TypeError, match="convert to a CPU numpy array"):
        est.fit(torch.tensor(X, requires_grad=True))
    for weight, match in [(-np.ones(len(X)), "sample_weight"),
                          (np.ones(3), "sample_weight"),
                          (np.zeros(len(X)), "sample_weight")]:
        with pytest.raises(ValueError, match=match):
            est.fit(X, sample_weight=weight)
    fitted = clone(est).fit(X)
    with pytest.raises(ValueError, match="features"):
        fitted.score_samples(np.ones((3, 3)))


@pytest.mark.skipif(torch.cuda.is_available(), reason="needs a machine without CUDA")
def test_cuda_without_cuda(X):
    with pytest.raises(ValueError, match="CUDA"):
        CompositionalEBM(**{**FAST, "device": "cuda"}).fit(X)


def test_warning_rows(X):
    p = {**FAST, "max_iter": 5}
    Xc = np.c_[X, np.ones(len(X))]
    with pytest.warns(UserWarning, match="feature 2 is constant"):
        CompositionalEBM(**p).fit(Xc)
    with pytest.warns(UserWarning, match="discrete data"):
        CompositionalEBM(**p).fit(np.round(X * 3))
    with warnings.catch_warnings():  # continuous data at a scale where doubles are integers
        warnings.filterwarnings("error", message="discrete data")
        CompositionalEBM(**p).fit(X * 1e22)
    counts = np.random.RandomState(0).randint(0, 50, (200, 2)).astype(float)
    counts[0, 1] = 1e16  # one huge entry does not hide integer data
    with pytest.warns(UserWarning, match="discrete data"):
        CompositionalEBM(**p).fit(counts)
    with pytest.warns(UserWarning, match="covariance singular"):
        CompositionalEBM(**p).fit(np.random.RandomState(0).normal(size=(3, 4)))
    with pytest.warns(UserWarning, match="clipped"):
        CompositionalEBM(**{**p, "batch_size": 1000}).fit(X)
    with pytest.warns(UserWarning, match="uniform"):
        CompositionalEBM(**{**p, "noise": "uniform"}).fit(
            np.random.RandomState(0).normal(size=(50, 4)))
    with pytest.warns(UserWarning, match="reduced"):
        CompositionalEBM(**{**p, "noise": "gmm", "noise_params": {"n_components": 8}}).fit(X[:5])
    with pytest.warns(UserWarning, match="Z may be infinite"):
        CompositionalEBM(**{**p, "tilt": False, "confinement": 0.0,
                            "logz_method": "grid"}).fit(X)
    with pytest.warns(PartitionEstimateWarning, match="effective sample size"):
        CompositionalEBM(**{**p, "energy_model": "quadratic", "logz_method": "is",
                            "n_logz_samples": 50}).fit(X)


class _NoSample:
    def fit(self, X):
        return self

    def score_samples(self, X):
        return np.zeros(len(X))


class _NanEnergy(torch.nn.Module):
    def __init__(self, d):
        super().__init__()
        self.w = torch.nn.Parameter(torch.zeros(d))

    def forward(self, z):
        return z @ self.w + float("nan")


class _WideEnergy(torch.nn.Module):
    def __init__(self, d):
        super().__init__()

    def forward(self, z):
        return torch.zeros(z.shape[0], 2, dtype=z.dtype)


def test_error_rows(X):
    p = {**FAST, "max_iter": 5}
    # unknown option keys name their parameter before any training (they reached the noise
    # class or estimate_log_partition as a bare TypeError, logz_params only after the fit)
    for cls in CLASSES:
        for params in ({"noise_params": {"zz": 1}}, {"logz_params": {"zz": 1}},
                       {"logz_params": {"n_samples": 10}},
                       {"logz_params": {"n_temperatures": 0}}):
            with pytest.raises(InvalidParameterError, match=next(iter(params))):
                cls(**{**p, **params}).fit(X)
    with pytest.raises(TypeError, match="sample"):
        CompositionalEBM(**{**p, "noise": _NoSample()}).fit(X)
    with pytest.raises(TypeError, match="torch.nn.Module"):
        CompositionalEBM(**{**p, "energy_model": lambda d: 3}).fit(X)
    with pytest.raises(ValueError, match="output shape"):
        CompositionalEBM(**{**p, "energy_model": _WideEnergy}).fit(X)
    with pytest.raises(ValueError, match="BatchNorm couples"):
        CompositionalEBM(**{**p, "energy_model": lambda d: torch.nn.Sequential(
            torch.nn.Linear(d, 4), torch.nn.BatchNorm1d(4), torch.nn.Linear(4, 1))}).fit(X)
    with pytest.raises(ValueError, match="d <= 2"):
        CompositionalEBM(**{**p, "logz_method": "grid"}).fit(
            np.random.RandomState(0).normal(size=(50, 3)))
    with pytest.raises(ValueError, match="exact"):
        CompositionalEBM(**{**p, "logz_method": "exact"}).fit(X)
    with pytest.raises(ValueError, match="adapter"):
        CompositionalEBM(**{**p, "logz_method": "ais", "noise": KernelDensity()}).fit(X)
    with pytest.raises(ValueError, match="validation_fraction too small"):
        CompositionalEBM(**{**p, "early_stopping": True, "validation_fraction": 0.01}).fit(X[:20])
    with pytest.raises(ValueError, match="non-finite value at iteration 0"):
        CompositionalEBM(**{**p, "energy_model": _NanEnergy}).fit(X)
    for cls in CLASSES:  # also with early stopping: a diverging fit is an error (spec 4),
        # not a silent restore of the initial weights
        with pytest.raises(ValueError, match="non-finite value at iteration"):
            cls(**{**FAST, "max_iter": 300, "learning_rate": 1e6, "optimizer": "sgd",
                   "early_stopping": True, "validation_interval": 20}).fit(X)
    with pytest.raises(ValueError, match="n_samples must be None"):
        CompositionalEBM(**p).fit(X).log_partition("grid", 100)


def test_infinite_and_nan_energy_at_evaluation(X):
    est = CompositionalEBM(**{**FAST, "noise": "uniform", "max_iter": 5}).fit(X)
    far = np.array([[1e3, 1e3], [0.0, 0.0]]) + X.mean(0)
    with pytest.warns(UserWarning, match="1 row"):
        ss = est.score_samples(far)
    assert np.isneginf(ss[0]) and np.isfinite(ss[1])
    broken = clone(est).fit(X)
    with torch.no_grad():
        for p in broken.energy_module_.parameters():
            p.fill_(float("nan"))
    with pytest.raises(ValueError, match="NaN for 2 row"):
        broken.energy(far)


def test_a_refit_with_another_energy_drops_the_quadratic_moments(X):
    est = CompositionalEBM(**{**FAST, "energy_model": "quadratic", "max_iter": 5}).fit(X)
    assert hasattr(est, "quadratic_mean_")
    est.set_params(energy_model="mlp", hidden_layer_sizes=(4,)).fit(X)
    assert not hasattr(est, "quadratic_mean_") and not hasattr(est, "quadratic_covariance_")


def test_fixed_noise_is_not_refitted(X):
    q = GaussianNoise(mean=[0.0, 0.0], covariance=[[1.0, 0.0], [0.0, 1.0]])
    est = CompositionalEBM(**{**FAST, "noise": q, "max_iter": 5}).fit(X)
    np.testing.assert_array_equal(est.noise_.mean_, [0.0, 0.0])
    assert not hasattr(q, "mean_")
    est = CompositionalEBM(**{**FAST, "noise": UniformNoise(margin=0.5), "max_iter": 5,
                              "noise_scale": 2.0}).fit(X)
    assert np.all(est.noise_.high_ - est.noise_.low_ > 2 * 1.9 * np.ptp(
        (X - est.mean_) / est.scale_, axis=0))


def test_msvr_momentum_correction(X):
    p = dict(energy_model="quadratic", inner_estimator="msvr", learning_rate=1e-2, max_iter=60,
             dtype="float64", device="cpu", random_state=0)
    # with momentum = 0 the STORM direction is the plain gradient: identical to SGD
    a = CompositionalEBM(optimizer="momentum", momentum=0.0, **p).fit(X)
    b = CompositionalEBM(optimizer="sgd", momentum=0.0, **p).fit(X)
    np.testing.assert_array_equal(a.score_samples(X), b.score_samples(X))
    c = CompositionalEBM(optimizer="momentum", momentum=0.5, **p).fit(X)
    d = CompositionalEBM(optimizer="momentum", momentum=0.5,
                         **{**p, "inner_estimator": "ma"}).fit(X)
    assert np.all(np.isfinite(c.score_samples(X)))
    assert not np.allclose(c.score_samples(X), d.score_samples(X))
    assert c.n_inner_clamped_ >= 0 and len(c.loss_curve_) == 60


def test_training_data_placement(monkeypatch):
    """Data stay on the compute device except on CUDA when they exceed the free-memory share."""
    from fstat.ebm import _base

    cpu = torch.device("cpu")
    assert _base._data_device(10**15, cpu) == cpu
    monkeypatch.setattr(torch.cuda, "mem_get_info", lambda device=None: (3000, 8000))
    # 1000 bytes held by torch's caching allocator but unused count as free
    monkeypatch.setattr(torch.cuda, "memory_reserved", lambda device=None: 2500)
    monkeypatch.setattr(torch.cuda, "memory_allocated", lambda device=None: 1500)
    cuda = torch.device("cuda", 0)
    assert _base._data_device(999, cuda) == cuda
    assert _base._data_device(1001, cuda) == cpu


def test_warnings_name_the_callers_line():
    """Warnings raised deep inside fit (log Z after training, through sklearn's fit wrapper and
    a Pipeline) or inside a noise object point at the user's line, not at fstat or sklearn."""
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import FunctionTransformer

    X = np.random.RandomState(0).normal(size=(60, 2))
    est = CompositionalEBM(energy_model="quadratic", logz_method="is", n_logz_samples=50,
                           max_iter=3, device="cpu", random_state=0)
    for fit in (est.fit, make_pipeline(FunctionTransformer(), est).fit):
        with pytest.warns(PartitionEstimateWarning) as record:
            fit(X)
        assert {w.filename for w in record} == {__file__}
    with pytest.warns(UserWarning, match="singular") as record:
        GaussianNoise().fit(X[:2])
    assert record[0].filename == __file__


def test_small_unit_features_are_not_constant():
    # a spread of 1e-13 around 0 is data in small units, not a constant feature: it was set to
    # scale 1 with a "constant" warning and the density was off by ~26 nats per sample
    import warnings

    from scipy import stats

    Z = np.random.default_rng(0).normal(size=(500, 1))
    truth = stats.norm().logpdf(Z).mean()
    with warnings.catch_warnings():
        warnings.simplefilter("error", UserWarning)
        fits = [CompositionalEBM(energy_model="quadratic", max_iter=300, learning_rate=1e-2,
                                 dtype="float64", random_state=0, device="cpu").fit(Z * c)
                for c in (1e-13, 1.0)]
    np.testing.assert_allclose(fits[0].scale_, 1e-13 * fits[1].scale_, rtol=1e-12)
    # the density of c Z is that of Z shifted by -log c
    assert abs(fits[0].score(Z * 1e-13) - (truth - np.log(1e-13))) < 0.05
    np.testing.assert_allclose(fits[0].score(Z * 1e-13) + np.log(1e-13), fits[1].score(Z),
                               rtol=0, atol=1e-6)
    # a constant feature away from 0 is still caught
    with pytest.warns(UserWarning, match="feature 0 is constant"):
        CompositionalEBM(energy_model="quadratic", max_iter=5, random_state=0,
                         device="cpu").fit(np.full((50, 1), 3.7) + 0.0 * Z[:50])


@pytest.mark.parametrize("noise", [GaussianNoise(), DiagonalGaussianNoise(), StudentTNoise(),
                                   MixtureNoise(n_components=2, random_state=0),
                                   UniformNoise()], ids=lambda q: type(q).__name__)
def test_noise_classes_are_small_estimators(noise, X):
    """Spec 3.4: noise classes are BaseEstimators (clone, repr, pickle) but, as building
    blocks of the EBMs, not in all_estimators (the common checks)."""
    from sklearn.base import BaseEstimator

    from fstat.utils import all_estimators

    assert isinstance(noise, BaseEstimator)
    assert type(noise).__name__ not in dict(all_estimators())
    Z = (X - X.mean(0)) / X.std(0)
    fitted = clone(noise).set_params().fit(Z)
    copy = pickle.loads(pickle.dumps(fitted))
    np.testing.assert_array_equal(copy.score_samples(Z[:5]), fitted.score_samples(Z[:5]))
    assert repr(noise).startswith(type(noise).__name__ + "(")


def test_model_fitted_on_a_missing_gpu_evaluates_on_cpu(X, fitted, monkeypatch):
    est = fitted["CompositionalEBM"]
    expected = est.score_samples(X[:20])
    gone = pickle.loads(pickle.dumps(est))
    gone.device_ = "cuda:3"
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 2)
    with pytest.warns(UserWarning, match="cuda:3, which is not available here; evaluating"):
        np.testing.assert_array_equal(gone.score_samples(X[:20]), expected)


def _reference_weighted_quantile(values, weights, q):
    """The smallest value whose share of the total weight at or below it reaches q."""
    pairs = sorted((v, w) for v, w in zip(values, weights) if w > 0)
    total = sum(w for _, w in pairs)
    running = 0.0
    for v, w in pairs:
        running += w
        if running >= q * total:
            return v
    return pairs[-1][0]


def _switched_off(n=300, seed=0):
    """Moons with a far-away block of 60 rows that the user switches off with weight 0."""
    X = make_toy_density("moons", n, random_state=seed)
    X[:60] += 40.0
    return X, np.r_[np.zeros(60), np.ones(n - 60)]


@pytest.mark.parametrize("noise", ["gmm", GaussianMixture(3, random_state=0),
                                   KernelDensity(bandwidth=0.3)],
                         ids=["gmm", "GaussianMixture", "kde"])
def test_zero_weights_equal_dropped_rows_with_fitted_noises(noise):
    """A user GaussianMixture or a KernelDensity was fitted on every row, weights ignored
    (2.2 and 0.2 nats off on the kept rows for 60 switched-off rows); the named "gmm"
    resampled even when the positive weights were equal. offset_ was the unweighted
    quantile over all rows, zero weights included."""
    X, w = _switched_off()
    params = {**FAST, "noise": noise, "max_iter": 1, "learning_rate": 1e-12,
              "dtype": "float64", "n_logz_samples": 20000,
              "noise_params": {"n_components": 3} if noise == "gmm" else None}
    with warnings.catch_warnings(), np.errstate(divide="ignore"):  # KDE: log 0 far away
        warnings.simplefilter("ignore", PartitionEstimateWarning)
        weighted = CompositionalEBM(**params).fit(X, sample_weight=w)
        dropped = CompositionalEBM(**params).fit(X[60:])
    np.testing.assert_allclose(weighted.score_samples(X[60:]), dropped.score_samples(X[60:]),
                               rtol=1e-9, atol=1e-9)
    np.testing.assert_allclose(weighted.offset_, dropped.offset_, rtol=1e-9)


def test_offset_is_the_weighted_quantile_of_the_training_scores():
    X = make_toy_density("moons", 300, random_state=1)
    w = np.random.default_rng(0).uniform(0, 3, size=300)
    w[:30] = 0.0
    est = CompositionalEBM(**{**FAST, "max_iter": 5, "dtype": "float64",
                              "contamination": 0.05}).fit(X, sample_weight=w)
    expected = _reference_weighted_quantile(est.score_samples(X), w, 0.05)
    np.testing.assert_allclose(est.offset_, expected, rtol=1e-12)
    unweighted = np.quantile(est.score_samples(X), 0.05)
    assert abs(expected - unweighted) > 1e-6  # the weights matter here
    equal = CompositionalEBM(**{**FAST, "max_iter": 5, "dtype": "float64",
                                "contamination": 0.05}).fit(X, sample_weight=np.full(300, 2.0))
    np.testing.assert_allclose(equal.offset_, np.quantile(equal.score_samples(X), 0.05),
                               rtol=1e-12)  # equal weights: numpy's linear quantile, as before


def test_early_stopping_scores_weight_the_validation_rows():
    """The validation log-likelihood used for model selection counted zero-weight rows: about
    -1615 nats with 150 switched-off far rows, against -2.7 on the rows in use; offset_
    came from those rows too (-3150: nothing was flagged)."""
    X, w = _switched_off()
    est = CompositionalEBM(**{**FAST, "max_iter": 60, "validation_interval": 20,
                              "early_stopping": True, "n_iter_no_change": 50,
                              "dtype": "float64"}).fit(X, sample_weight=w)
    kept = est.score(X[60:])
    assert all(abs(s - kept) < 1.0 for s in est.validation_scores_[-1:])
    scores = est.score_samples(X[60:])
    assert np.quantile(scores, 0.0) <= est.offset_ <= np.quantile(scores, 0.2)
    with pytest.raises(ValueError, match="zero sample_weight rows"):
        CompositionalEBM(**{**FAST, "early_stopping": True, "validation_fraction": 0.1}).fit(
            X, sample_weight=np.r_[np.ones(3), np.zeros(297)])


def _small_energy(n_features):
    return torch.nn.Sequential(torch.nn.Linear(n_features, 8), torch.nn.Tanh(),
                               torch.nn.Linear(8, 1))


def test_callable_energy_is_seeded_without_touching_global_generators(X, monkeypatch):
    """A user energy is built under a forked, seeded CPU generator: reproducible, the global
    CPU state restored, and no CUDA generator reseeded (torch.manual_seed reseeds them all,
    and fork_rng(devices=[]) restores only the CPU state)."""
    reseeded = []
    monkeypatch.setattr(torch.cuda, "manual_seed_all", lambda seed: reseeded.append(seed))
    before = torch.get_rng_state()
    params = {**FAST, "energy_model": _small_energy, "max_iter": 5}
    first = CompositionalEBM(**params).fit(X)
    second = CompositionalEBM(**params).fit(X)
    assert torch.equal(torch.get_rng_state(), before)
    assert reseeded == []
    np.testing.assert_array_equal(first.score_samples(X), second.score_samples(X))
    other = CompositionalEBM(**{**params, "random_state": 1}).fit(X)
    assert not np.array_equal(other.score_samples(X), first.score_samples(X))


def test_rows_of_zero_weight_take_no_part_in_noise_fits_and_validation():
    """Review of the weighted fits: a uniform box spanned zero-weight rows ([-103, 1100]
    against [-2.8, 2.4]); MixtureNoise compared n_components with all rows, then failed
    on the rows that remained; a zero-weight validation row outside a fixed box made the
    weighted validation score NaN (0 * -inf)."""
    rng = np.random.default_rng(0)
    Z = rng.standard_normal((200, 1))
    Z[-1] = 1000.0
    w = np.r_[np.ones(199), 0.0]
    box = UniformNoise().fit(Z, w)
    dropped = UniformNoise().fit(Z[:-1])
    np.testing.assert_array_equal(box.low_, dropped.low_)
    np.testing.assert_array_equal(box.high_, dropped.high_)

    small = rng.standard_normal((10, 2))
    with pytest.warns(UserWarning, match="n_components=8 > n_samples=5"):
        mixture = MixtureNoise(n_components=8, random_state=0).fit(
            small, np.r_[np.ones(5), np.zeros(5)])
    assert len(mixture.weights_) == 5

    X = rng.standard_normal((200, 1))
    w = np.ones(200)
    w[:5] = 2.0
    X[-40:] = 50.0  # outside the fixed box; some land in the validation split
    w[-40:] = 0.0
    est = NCEDensity(**{**FAST, "noise": UniformNoise(low=[-6.0], high=[6.0]),
                        "standardize": False, "early_stopping": True, "max_iter": 40,
                        "validation_interval": 10}).fit(X, sample_weight=w)
    assert np.all(np.isfinite(est.validation_scores_))
    assert np.isfinite(est.offset_)
