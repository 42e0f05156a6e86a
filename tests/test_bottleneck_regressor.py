"""CSIBRegressor: API contract, determinism, objectives, bad input, baseline formulas."""

import math
import pickle
import warnings

import numpy as np
import pandas as pd
import pytest
import torch
from _reference_bottleneck import hsic_ref
from sklearn.base import clone
from sklearn.exceptions import ConvergenceWarning, NotFittedError
from sklearn.model_selection import GridSearchCV, cross_val_score
from sklearn.utils._param_validation import InvalidParameterError

from fstat.bottleneck import CSIBRegressor
from fstat.bottleneck._objectives import hsic_value, nib_bound, vib_kl
from fstat.bottleneck._testing import FAST_PARAMS

FAST = dict(FAST_PARAMS["CSIBRegressor"], max_iter=15)
OBJECTIVES = ["cs_ib", "mse", "vib", "nib", "hsic"]


def _data(n=120, p=4, k=None, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n, p))
    y = np.sin(X[:, 0]) + 0.5 * X[:, 1] + 0.1 * rng.standard_normal(n)
    if k is not None:
        y = np.column_stack([y * (j + 1) for j in range(k)])
    return X, y


def _fit(**params):
    X, y = _data()
    return CSIBRegressor(**{**FAST, "random_state": 0, **params}).fit(X, y), X, y


# ------------------------------------------------------------------ contract
def test_clone_is_unfitted_with_equal_params():
    model, _, _ = _fit()
    c = clone(model)
    assert c.get_params() == model.get_params()
    assert not hasattr(c, "module_")


def test_pickle_round_trip():
    model, X, _ = _fit()
    again = pickle.loads(pickle.dumps(model))
    np.testing.assert_array_equal(again.predict(X), model.predict(X))
    np.testing.assert_array_equal(again.transform(X), model.transform(X))


def test_determinism():
    a, X, _ = _fit(random_state=3)
    b, _, _ = _fit(random_state=3)
    c, _, _ = _fit(random_state=4)
    np.testing.assert_array_equal(a.predict(X), b.predict(X))
    assert not np.array_equal(a.predict(X), c.predict(X))


@pytest.mark.parametrize("k", [None, 1, 3])
def test_output_shapes(k):
    X, y = _data(k=k)
    model = CSIBRegressor(**FAST, random_state=0).fit(X, y)
    assert model.predict(X).shape == y.shape
    assert model.n_outputs_ == (1 if k is None else k)
    assert model.transform(X).shape == (len(X), FAST["bottleneck_dim"])
    assert model.transform(X).dtype == np.float64


def test_transform_set_output_and_feature_names():
    X, y = _data()
    df = pd.DataFrame(X, columns=[f"f{i}" for i in range(X.shape[1])])
    model = CSIBRegressor(**FAST, random_state=0).set_output(transform="pandas")
    out = model.fit(df, pd.Series(y)).transform(df)
    assert list(out.columns) == [f"csibregressor{i}" for i in range(FAST["bottleneck_dim"])]
    assert list(model.feature_names_in_) == list(df.columns)
    assert isinstance(model.predict(df), np.ndarray)
    with pytest.raises(ValueError, match="feature names"):
        model.predict(df.rename(columns={"f0": "g0"}))


def test_curves_and_early_stopping_bookkeeping():
    X, y = _data(200)
    model = CSIBRegressor(**{**FAST, "early_stopping": True, "max_iter": 12}, random_state=0)
    model.fit(X, y)
    assert len(model.loss_curve_) == len(model.validation_scores_) == model.n_iter_
    assert len(model.prediction_loss_curve_) == len(model.compression_curve_) == model.n_iter_
    assert model.best_epoch_ == int(np.argmin(model.validation_scores_))
    assert model.best_validation_score_ == min(model.validation_scores_)
    assert all(np.isfinite(model.loss_curve_))
    # restored weights give the recorded best validation score
    no_es = CSIBRegressor(**FAST, random_state=0).fit(X, y)
    assert no_es.validation_scores_ is None and no_es.best_epoch_ == no_es.n_iter_ - 1


def test_early_stopping_stops_on_plateau():
    rng = np.random.default_rng(1)
    X, y = rng.standard_normal((150, 3)), rng.standard_normal(150)
    model = CSIBRegressor(**{**FAST, "early_stopping": True, "max_iter": 200,
                             "n_iter_no_change": 3, "tol": 10.0}, random_state=0).fit(X, y)
    assert model.n_iter_ == 4 < 200


def test_gridsearch_and_cross_val_score():
    X, y = _data(100)
    search = GridSearchCV(CSIBRegressor(**FAST, random_state=0), {"beta": [0.0, 0.1]}, cv=2)
    search.fit(X, y)
    assert np.all(np.isfinite(search.cv_results_["mean_test_score"]))
    scores = cross_val_score(CSIBRegressor(**FAST, random_state=0), X, y, cv=2)
    assert np.all(np.isfinite(scores))


@pytest.mark.parametrize("objective", OBJECTIVES)
def test_every_objective_fits(objective):
    model, X, y = _fit(objective=objective, beta=0.1)
    assert np.all(np.isfinite(model.predict(X)))
    assert np.all(np.isfinite(model.compression_curve_))
    assert (model.noise_std_ is None) == (objective == "vib")
    if objective == "nib":
        assert model.noise_std_ != pytest.approx(0.1)  # trained


def test_fixed_noise_std_attribute_is_the_parameter():
    # the fixed width is stored as given (not rounded through a float32 tensor)
    model, _, _ = _fit(noise_std=0.3, dtype="float64")
    assert model.noise_std_ == 0.3
    model, _, _ = _fit(noise_std=0.0)
    assert model.noise_std_ == 0.0


def test_learned_noise_and_normalized_compression():
    model, X, _ = _fit(learn_noise_std=True, compression="normalized_cs_qmi", beta=0.5)
    assert model.noise_std_ != pytest.approx(0.1)
    assert np.all(np.isfinite(model.predict(X)))


def test_beta_zero_skips_compression():
    model, _, _ = _fit(beta=0.0)
    assert all(math.isnan(v) for v in model.compression_curve_)
    assert model.loss_curve_ == pytest.approx(model.prediction_loss_curve_)


def test_widths_recorded():
    model, _, _ = _fit(sigma_x="median", sigma_t="median", sigma_y="median")
    for name in ("sigma_x_", "sigma_y_", "sigma_t_"):
        assert np.isfinite(getattr(model, name)) and getattr(model, name) > 0
    fixed, _, _ = _fit(sigma_x=0.7, sigma_y=2.0)
    assert fixed.sigma_x_ == 0.7 and fixed.sigma_y_ == 2.0


@pytest.mark.parametrize("objective, beta", [("mse", 0.0), ("vib", 0.01), ("nib", 0.01),
                                            ("cs_ib", 0.0)])
def test_widths_are_floats_when_a_term_does_not_use_them(objective, beta):
    """Spec 3.3: sigma_x_, sigma_y_, sigma_t_ are floats. A width no term used is the rule
    on the training data (here all of it: < 2000 rows) or the float given."""
    from scipy.spatial.distance import pdist

    X, y = _data(n=150)
    model = CSIBRegressor(**{**FAST, "max_iter": 2, "objective": objective, "beta": beta,
                             "sigma_x": "median", "sigma_t": "median"}).fit(X, y)
    for name in ("sigma_x_", "sigma_y_", "sigma_t_"):
        value = getattr(model, name)
        assert isinstance(value, float) and value > 0, name
    assert model.sigma_y_ == 1.0  # the default float, used or not
    if objective != "cs_ib":  # unused x width: the median rule on the standardised rows
        Xs = (X - model.x_mean_) / model.x_scale_
        assert model.sigma_x_ == pytest.approx(np.median(pdist(Xs)), rel=1e-10)
    with torch.no_grad():
        mu = model.module_.encode(torch.as_tensor((X - model.x_mean_) / model.x_scale_))[0]
    if beta == 0.0 or objective in ("vib", "nib"):  # unused t width: rule on mu(x)
        assert model.sigma_t_ == pytest.approx(np.median(pdist(mu.numpy())), rel=1e-10)
    fixed = CSIBRegressor(**{**FAST, "max_iter": 1, "objective": objective, "beta": beta,
                             "sigma_t": 2.5}).fit(X, y)
    assert fixed.sigma_t_ == 2.5


def test_information_plane():
    model, X, y = _fit()
    ixt, iyt = model.information_plane(X, y)
    assert isinstance(ixt, float) and isinstance(iyt, float)
    assert np.isfinite([ixt, iyt]).all() and ixt >= 0 and iyt >= 0
    sub = model.information_plane(X, y, max_samples=50, random_state=0)
    assert sub == model.information_plane(X, y, max_samples=50, random_state=0)
    y_bad = np.array(y, dtype=float)
    y_bad[0] = np.nan
    with pytest.raises(ValueError, match="Input y contains NaN"):  # names y, not X
        model.information_plane(X, y_bad)


def test_methods_do_not_change_state():
    model, X, y = _fit()
    before = pickle.dumps(model.__dict__)
    model.predict(X)
    model.transform(X)
    model.score(X, y)
    model.information_plane(X, y)
    assert pickle.dumps(model.__dict__) == before


def test_pipeline_with_scaler_is_idempotent():
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    X, y = _data()
    a = make_pipeline(StandardScaler(), CSIBRegressor(**FAST, random_state=0)).fit(X, y)
    b = CSIBRegressor(**FAST, random_state=0).fit(X, y)
    np.testing.assert_allclose(a.predict(X), b.predict(X), rtol=1e-6, atol=1e-8)


# ----------------------------------------------------------------- bad input
def test_bad_input():
    X, y = _data(40)
    model = CSIBRegressor(**FAST)
    with pytest.raises(ValueError, match="NaN"):
        model.fit(np.where(X > 2, np.nan, X), y)
    with pytest.raises(ValueError, match="infinity"):
        model.fit(X, np.where(y > 1, np.inf, y))
    with pytest.raises(ValueError, match="1 sample"):
        model.fit(X[:1], y[:1])
    with pytest.raises(ValueError, match="inconsistent numbers of samples"):
        model.fit(X, y[:-1])
    with pytest.raises(ValueError, match="[Cc]omplex"):
        model.fit(X + 1j, y)
    with pytest.raises(ValueError, match="could not convert"):
        model.fit(np.full((40, 2), "a"), y)
    import scipy.sparse as sp

    with pytest.raises(TypeError, match="dense"):
        model.fit(sp.csr_matrix(X), y)
    with pytest.raises(ValueError, match="Expected 2D array"):
        model.fit(X[:, 0], y)
    with pytest.raises(ValueError, match="requires y"):
        model.fit(X, None)


@pytest.mark.parametrize("param,value", [
    ("beta", -0.1), ("sigma_x", 0.0), ("sigma_y", np.nan), ("sigma_t", "mean"),
    ("objective", "kl"), ("approximation", "exact"), ("batch_size", 1), ("dtype", "float16"),
    ("sigma_x_scale", -1.0), ("validation_fraction", 1.0),
])
def test_invalid_parameters(param, value):
    X, y = _data(40)
    with pytest.raises(InvalidParameterError, match=param):
        CSIBRegressor(**{**FAST, param: value}).fit(X, y)


def test_bad_hidden_sizes():
    X, y = _data(40)
    with pytest.raises(InvalidParameterError, match="hidden_layer_sizes"):
        CSIBRegressor(**{**FAST, "hidden_layer_sizes": (0,)}).fit(X, y)
    with pytest.raises(InvalidParameterError, match="decoder_hidden_sizes"):
        CSIBRegressor(**{**FAST, "decoder_hidden_sizes": (2, -1)}).fit(X, y)


def test_device_errors(monkeypatch):
    X, y = _data(40)
    with pytest.raises(ValueError, match="device"):
        CSIBRegressor(**{**FAST, "device": "tpu"}).fit(X, y)
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    with pytest.raises(ValueError, match="CUDA is not available"):
        CSIBRegressor(**{**FAST, "device": "cuda"}).fit(X, y)


@pytest.mark.parametrize("params", [dict(learn_noise_std=True, noise_std=0.0),
                                    dict(objective="nib", noise_std=0.0)])
def test_noise_std_must_be_positive(params):
    X, y = _data(40)
    with pytest.raises(ValueError, match="noise_std must be > 0"):
        CSIBRegressor(**{**FAST, **params}).fit(X, y)


def test_batch_size_clipped_and_remainder_merged():
    X, y = _data(30)
    with pytest.warns(UserWarning, match="clipped to 30"):
        CSIBRegressor(**{**FAST, "batch_size": 64}).fit(X, y)
    X, y = _data(65)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        model = CSIBRegressor(**{**FAST, "batch_size": 32}, random_state=0).fit(X, y)
    assert np.all(np.isfinite(model.predict(X)))


def test_early_stopping_disabled_on_tiny_data():
    X, y = _data(2)
    with pytest.warns(UserWarning, match="early stopping is disabled"):
        model = CSIBRegressor(**{**FAST, "early_stopping": True}).fit(X, y)
    assert model.validation_scores_ is None


def test_constant_column_and_constant_target():
    X, y = _data(60)
    X[:, 1] = 3.0
    model = CSIBRegressor(**FAST, random_state=0).fit(X, np.full(60, 2.5))
    assert model.x_scale_[1] == 1.0 and model.y_scale_[0] == 1.0
    assert np.all(np.isfinite(model.predict(X)))


def test_small_unit_columns_are_not_constant():
    # a target of size 1e-14 (or a column of X) has real spread: it was taken for a constant
    # (scale 1), and the predictions came out near 0.08 for targets near 1e-14
    X, y = _data(40)
    params = {**FAST, "random_state": 0, "dtype": "float64", "early_stopping": False}
    ref = CSIBRegressor(**params).fit(X, y)
    small = CSIBRegressor(**params).fit(X * 1e-14, y * 1e-14)
    np.testing.assert_allclose(small.y_scale_, 1e-14 * ref.y_scale_, rtol=1e-12)
    np.testing.assert_allclose(small.x_scale_, 1e-14 * ref.x_scale_, rtol=1e-12)
    np.testing.assert_allclose(small.predict(X * 1e-14) * 1e14, ref.predict(X), rtol=1e-6,
                               atol=1e-9)


def test_degenerate_width_warns_once():
    X = np.ones((40, 3))
    y = np.random.default_rng(0).standard_normal(40)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        model = CSIBRegressor(**{**FAST, "sigma_x": "median"}, random_state=0).fit(X, y)
    messages = [str(w.message) for w in caught if "degenerate kernel width" in str(w.message)]
    assert len(messages) == 1
    assert np.all(np.isfinite(model.predict(X)))


@pytest.mark.parametrize("dtype, n_dup, seed", [("float64", 96, 0), ("float64", 96, 2),
                                               ("float32", 100, 0)])
def test_mostly_duplicate_rows_give_the_degenerate_width(dtype, n_dup, seed):
    # a zero median of the training x distances (most rows identical) is degenerate: width
    # 1.0 with the warning (spec 2.6, 5.5); the stacked distances gave duplicates rounding
    # noise (~1e-9 in float32) instead of 0, so the median was that noise
    from scipy.spatial.distance import pdist

    rng = np.random.default_rng(seed)
    d = 4 if dtype == "float64" else 5
    X = np.vstack([np.repeat(rng.standard_normal((1, d)), n_dup, 0),
                   rng.standard_normal((128 - n_dup, d))])
    y = X[:, 0] + rng.standard_normal(128)
    assert np.median(pdist((X - X.mean(0)) / X.std(0))) == 0.0
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        model = CSIBRegressor(dtype=dtype, batch_size="full", max_iter=2, early_stopping=False,
                              hidden_layer_sizes=(8,), bottleneck_dim=2,
                              decoder_hidden_sizes=(8,), device="cpu",
                              random_state=0).fit(X, y)
    assert model.sigma_x_ == 1.0
    assert any("degenerate kernel width for sigma_x" in str(w.message) for w in caught)


def test_string_targets_and_missing_y_are_value_errors():
    # a string y reached numpy's mean as a TypeError; information_plane(X, None) said
    # "Input y contains NaN"
    rng = np.random.default_rng(0)
    X = rng.standard_normal((40, 3))
    with pytest.raises(ValueError, match="could not convert"):
        CSIBRegressor(**FAST).fit(X, np.array(["a"] * 40))
    model = CSIBRegressor(**FAST, random_state=0).fit(X, X[:, 0])
    with pytest.raises(ValueError, match="requires y"):
        model.information_plane(X, None)


def test_cpu_gram_memory_warning():
    model = CSIBRegressor(batch_size="full")
    with pytest.warns(UserWarning, match="GiB"):
        assert model._batch_size(20000, 20, torch.device("cpu"), torch.float32) is None


def test_nonfinite_prediction_raises():
    X, y = _data(60)
    model = CSIBRegressor(**{**FAST, "dtype": "float32"}, random_state=0).fit(X, y)
    with pytest.raises(FloatingPointError, match="float64"):
        model.predict(np.array([[3e38, 3e38, -3e38, 3e38]]))


def test_not_fitted_and_wrong_features():
    X, y = _data(40)
    with pytest.raises(NotFittedError):
        CSIBRegressor().predict(X)
    with pytest.raises(NotFittedError):
        CSIBRegressor().information_plane(X, y)
    model, X, _ = _fit()
    with pytest.raises(ValueError, match="features"):
        model.predict(X[:, :2])


@pytest.mark.parametrize("approximation", ["rff", "nystroem"])
def test_training_with_approximation(approximation):
    X, y = _data(200)
    params = {**FAST, "approximation": approximation, "n_components": 64, "beta": 0.1,
              "sigma_x": "median", "sigma_t": "median", "max_iter": 20}
    with warnings.catch_warnings():  # no torch warning about scalars of graph tensors
        warnings.filterwarnings("error", message=".*requires_grad=True to a scalar")
        model = CSIBRegressor(**params, random_state=0).fit(X, y)
    assert np.all(np.isfinite(model.predict(X))) and np.all(np.isfinite(model.loss_curve_))
    assert model.score(X, y) > 0.3
    again = CSIBRegressor(**params, random_state=0).fit(X, y)
    np.testing.assert_array_equal(model.predict(X), again.predict(X))


# -------------------------------------------------------------- baselines
def test_vib_kl():
    mu, s = torch.zeros(5, 3), torch.ones(5, 3)
    assert float(vib_kl(mu, s)) == 0.0
    rng = np.random.default_rng(0)
    mu = torch.tensor(rng.standard_normal((1, 2)))
    s = torch.tensor(rng.uniform(0.5, 1.5, (1, 2)))
    z = mu.numpy() + s.numpy() * rng.standard_normal((400000, 2))
    log_q = (-0.5 * ((z - mu.numpy()) / s.numpy()) ** 2 - np.log(s.numpy())).sum(1)
    log_p = (-0.5 * z**2).sum(1)
    assert float(vib_kl(mu, s)) == pytest.approx(np.mean(log_q - log_p), rel=0.02)


def test_nib_bound_limits():
    mu = torch.tensor(np.random.default_rng(0).standard_normal((20, 3)))
    assert float(nib_bound(mu, 1e6)) == pytest.approx(0.0, abs=1e-9)
    assert float(nib_bound(mu, 1e-6)) == pytest.approx(math.log(20), rel=1e-9)


def test_hsic_term_matches_brute_force():
    rng = np.random.default_rng(0)
    for _ in range(5):
        X, T = rng.standard_normal((25, 3)), rng.standard_normal((25, 2))
        value = float(hsic_value(torch.tensor(X), torch.tensor(T), 1.2, 0.7))
        assert value >= -1e-12
        assert value == pytest.approx(hsic_ref(X, T, 1.2, 0.7), rel=1e-10)


@pytest.mark.gpu
def test_cuda_fit_finite_and_cpu_pickle():
    X, y = _data()
    model = CSIBRegressor(**{**FAST, "device": "cuda"}, random_state=0).fit(X, y)
    assert np.all(np.isfinite(model.predict(X)))
    assert next(model.module_.parameters()).device.type == "cpu"


def test_cuda_fitted_model_predicts_on_cpu_only_machine(monkeypatch):
    model, X, _ = _fit()
    expected = model.predict(X)
    clone_ = pickle.loads(pickle.dumps(model))
    clone_.device_ = "cuda:0"  # as if fitted on a GPU (module_ is stored on the CPU)
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    with pytest.warns(UserWarning, match="predicting on the CPU"):
        np.testing.assert_array_equal(clone_.predict(X), expected)


def test_model_fitted_on_a_gpu_index_not_visible_here_runs_on_cpu(monkeypatch):
    # fitted on cuda:1, loaded where CUDA has one device: predict, transform and
    # information_plane fall back to the CPU with a warning (they used to fail)
    model, X, y = _fit()
    expected, plane = model.predict(X), model.information_plane(X, y, random_state=0)
    clone_ = pickle.loads(pickle.dumps(model))
    clone_.device_ = "cuda:1"
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 1)
    with pytest.warns(UserWarning, match="cuda:1, which is not available here; predicting"):
        np.testing.assert_array_equal(clone_.predict(X), expected)
    with pytest.warns(UserWarning, match="not available here; transforming"):
        np.testing.assert_array_equal(clone_.transform(X), model.transform(X))
    with pytest.warns(UserWarning, match="not available here; estimating") as record:
        assert clone_.information_plane(X, y, random_state=0) == plane
    assert len(record) == 1  # one warning, not one per internal step


def test_verbose_progress(capsys):
    _fit(verbose=1, max_iter=2)
    assert "CSIBRegressor" in capsys.readouterr().err


@pytest.mark.parametrize("early_stopping", [False, True])
def test_ten_consecutive_nonfinite_steps_stop_training(monkeypatch, early_stopping):
    # 2 steps per epoch (120 or 108 training rows, batch 64); the prediction term turns
    # NaN after 6 steps, so the 10th consecutive skipped step is step 16, in epoch 8
    from fstat.bottleneck import _objectives

    calls = {"n": 0}
    real = _objectives.OBJECTIVES["cs_ib"]

    def flaky(b):
        calls["n"] += 1
        value = real(b)
        return value * math.nan if calls["n"] > 6 else value

    monkeypatch.setitem(_objectives.OBJECTIVES, "cs_ib", flaky)
    with pytest.warns(ConvergenceWarning, match="10 consecutive non-finite"):
        model, X, _ = _fit(max_iter=50, early_stopping=early_stopping, n_iter_no_change=100)
    assert calls["n"] == 16 and model.n_nonfinite_steps_ == 10
    assert model.n_iter_ == 8 and len(model.loss_curve_) == model.n_iter_
    if early_stopping:
        assert len(model.validation_scores_) == model.n_iter_
        assert model.best_epoch_ == int(np.argmin(model.validation_scores_))
    assert np.isfinite(model.predict(X)).all()


def test_stacked_data_terms_do_not_change_training(monkeypatch):
    # the x and y terms of a whole run of batches are computed at once; runs of one batch
    # (the per-step computation) give the same training to rounding, for every objective
    # that uses them (cs_ib: both contexts; hsic: sq_x and the x width)
    from fstat.bottleneck import _widths

    X, y = _data(n=200)
    for params in (dict(objective="cs_ib", sigma_y="median"), dict(objective="hsic")):
        params = {**FAST, "batch_size": 32, "dtype": "float64", "random_state": 0, **params}
        stacked = CSIBRegressor(**params).fit(X, y)
        with monkeypatch.context() as patch:
            patch.setattr(_widths, "STACK_BYTES", 1)
            single = CSIBRegressor(**params).fit(X, y)
        np.testing.assert_allclose(stacked.loss_curve_, single.loss_curve_, rtol=1e-9)
        np.testing.assert_allclose(stacked.predict(X), single.predict(X), rtol=1e-8,
                                   atol=1e-10)
        for name in ("sigma_x_", "sigma_y_", "sigma_t_"):
            assert getattr(stacked, name) == pytest.approx(getattr(single, name), rel=1e-10)


def test_equal_size_runs_group_consecutive_batches():
    from fstat.bottleneck._widths import _equal_size_runs

    batches = [torch.arange(4)] * 5 + [torch.arange(6)]
    sizes = [[len(b) for b in run] for run in _equal_size_runs(batches, 32)]
    assert sizes == [[4, 4], [4, 4], [4], [6]]
    assert [len(r) for r in _equal_size_runs(batches, 1)] == [1] * 6


def test_noise_rows_hand_out_blocks_in_order(monkeypatch):
    from fstat._torch import make_generator
    from fstat.bottleneck import _network

    monkeypatch.setattr(_network, "NOISE_BLOCK_ROWS", 10)
    rows = _network.NoiseRows(3, make_generator(0), torch.float64, "cpu")
    parts = [rows.take(n) for n in (4, 4, 4, 12, 1)]
    assert [p.shape for p in parts] == [(4, 3), (4, 3), (4, 3), (12, 3), (1, 3)]
    reference = make_generator(0)
    first = torch.randn(10, 3, generator=reference, dtype=torch.float64)
    second = torch.randn(10, 3, generator=reference, dtype=torch.float64)
    third = torch.randn(12, 3, generator=reference, dtype=torch.float64)  # > one block
    fourth = torch.randn(10, 3, generator=reference, dtype=torch.float64)
    assert torch.equal(torch.cat(parts[:2]), first[:8])  # the 2 rows left are skipped
    assert torch.equal(parts[2], second[:4])
    assert torch.equal(parts[3], third)
    assert torch.equal(parts[4], fourth[:1])


def test_huge_beta_skips_nonfinite_steps_instead_of_raising():
    # beta beyond the float32 range makes beta * compression inf: those steps are skipped
    # (and counted), as for any non-finite batch loss; fit never raises
    X, y = _data(n=60)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model = CSIBRegressor(**{**FAST, "max_iter": 2, "beta": 1e39, "dtype": "float32"},
                              random_state=0).fit(X, y)
    assert model.n_nonfinite_steps_ > 0
    assert np.isfinite(model.predict(X)).all()


@pytest.mark.parametrize("batch_size", ["full", 32])
def test_epochs_without_a_finite_step_keep_every_curve_per_epoch(batch_size):
    # every step non-finite: each curve still has one (NaN) entry per epoch run
    X, y = _data(n=80)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        params = {**FAST, "max_iter": 30, "beta": 1e308, "batch_size": batch_size,
                  "dtype": "float32", "early_stopping": False}
        model = CSIBRegressor(**params, random_state=0).fit(X, y)
    assert model.n_nonfinite_steps_ == 10  # the consecutive limit ends training
    for curve in (model.loss_curve_, model.prediction_loss_curve_, model.compression_curve_):
        assert len(curve) == model.n_iter_ and np.isnan(curve).all()


@pytest.mark.parametrize("seed", [0, 1, 2, 3])
def test_degenerate_warning_names_the_first_degenerate_width_in_training_order(monkeypatch,
                                                                                seed):
    # a run of batches is prepared at once, but the warning belongs to the first trained
    # batch with a degenerate width, checked in the order x, y: y is constant (always
    # degenerate) and x is degenerate only in batches drawn from its 28 zero rows
    from fstat.bottleneck import _widths
    from fstat.bottleneck._bandwidth import rule_width

    rng = np.random.default_rng(0)
    X = rng.normal(size=(40, 2))
    X[:28] = 0.0
    first_x = []
    fill = _widths.BatchWidths.fill

    def spy(self, b, index):
        first_x.append(b.x.detach().clone())
        return fill(self, b, index)

    monkeypatch.setattr(_widths.BatchWidths, "fill", spy)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        CSIBRegressor(hidden_layer_sizes=(4,), bottleneck_dim=2, max_iter=1, batch_size=4,
                      sigma_y="median", noise_std=0.0, early_stopping=False,
                      random_state=seed).fit(X, np.zeros(40))
    messages = [str(w.message) for w in caught if "degenerate kernel width" in str(w.message)]
    assert len(messages) == 1
    x_degenerate = rule_width(first_x[0], "median")[1]
    assert ("sigma_x" if x_degenerate else "sigma_y") in messages[0]


def test_batches_not_stacked_build_their_contexts_in_the_step(monkeypatch):
    # a run of one batch (full batch here) gains nothing from precomputation: its loss
    # terms build their N x N contexts one after the other, so the two never coexist
    # (peak memory as with the per-step computation)
    from fstat.bottleneck import _widths

    def fail(*args, **kwargs):
        raise AssertionError("a single batch's contexts were precomputed")

    monkeypatch.setattr(_widths, "prediction_context", fail)
    monkeypatch.setattr(_widths, "compression_context", fail)
    X, y = _data(n=80)
    model = CSIBRegressor(**{**FAST, "batch_size": "full", "max_iter": 2},
                          random_state=0).fit(X, y)
    assert np.isfinite(model.loss_curve_).all()


def test_information_plane_ignores_pandas_transform_output():
    # set_output(transform="pandas") makes transform return a DataFrame; the plane's
    # subsampling used to index its columns with row numbers (KeyError)
    model, X, y = _fit()
    expected = model.information_plane(X, y, max_samples=50, random_state=0)
    model.set_output(transform="pandas")
    assert model.information_plane(X, y, max_samples=50, random_state=0) == expected
