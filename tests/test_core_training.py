"""Tests of the shared training loop on a tiny regression problem."""

import math
import warnings

import numpy as np
import pytest
import torch
from sklearn.exceptions import ConvergenceWarning

from fstat._nn import make_mlp
from fstat._torch import make_generator
from fstat._training import (
    make_optimizer,
    minibatch_indices,
    progress_bar,
    run_training,
    train_minibatches,
    validation_split,
)


def _problem(n=200, seed=0):
    rng = np.random.RandomState(seed)
    X = rng.normal(size=(n, 3))
    y = X @ np.array([1.0, -2.0, 0.5]) + 0.1 * rng.normal(size=n)
    return torch.tensor(X), torch.tensor(y)[:, None]


def _fit(seed=0, **options):
    X, y = _problem()
    net = make_mlp(3, (), 1, generator=make_generator(seed))
    opt = make_optimizer(net.parameters(), "adam", learning_rate=0.05)
    options.setdefault("max_epochs", 60)
    result = train_minibatches(
        net, lambda idx: ((net(X[idx]) - y[idx]) ** 2).mean(), len(X),
        optimizer=opt, generator=make_generator(seed), **options,
    )
    return net, result


def test_linear_model_converges_to_least_squares():
    X, y = _problem()
    net, result = _fit(batch_size=32, max_epochs=150)
    beta = np.linalg.lstsq(np.c_[X.numpy(), np.ones(len(X))], y.numpy().ravel(), rcond=None)[0]
    np.testing.assert_allclose(net[0].weight.detach().numpy().ravel(), beta[:3], atol=0.02)
    assert len(result.loss_curve) == result.n_iter == 150
    assert result.loss_curve[-1] < 0.1 * result.loss_curve[0]


def test_deterministic_given_generator():
    net1, r1 = _fit(seed=3, batch_size=16)
    net2, r2 = _fit(seed=3, batch_size=16)
    assert r1.loss_curve == r2.loss_curve
    assert torch.equal(net1[0].weight, net2[0].weight)
    _, r3 = _fit(seed=4, batch_size=16)
    assert r1.loss_curve != r3.loss_curve


def test_full_batch_matches_manual_gradient_descent():
    X, y = _problem(n=50)
    net = make_mlp(3, (), 1, generator=make_generator(0))
    manual = make_mlp(3, (), 1, generator=make_generator(0))
    opt = make_optimizer(net.parameters(), "sgd", learning_rate=0.1)
    train_minibatches(net, lambda idx: ((net(X[idx]) - y[idx]) ** 2).mean(), len(X),
                      optimizer=opt, generator=make_generator(0), max_epochs=5)
    w, b = manual[0].weight.detach().clone(), manual[0].bias.detach().clone()
    for _ in range(5):
        resid = X @ w.T + b - y
        gw = 2 * (resid * X).mean(0, keepdim=True)
        gb = 2 * resid.mean(0)
        w, b = w - 0.1 * gw, b - 0.1 * gb
    torch.testing.assert_close(net[0].weight.detach(), w)


def test_minibatch_indices_cover_all_rows_and_merge_remainder():
    batches = minibatch_indices(103, 25, make_generator(0), min_last=4)
    sizes = [len(b) for b in batches]
    assert sizes == [25, 25, 25, 28]
    assert sorted(torch.cat(batches).tolist()) == list(range(103))
    assert [len(b) for b in minibatch_indices(10, None, make_generator(0))] == [10]
    assert [len(b) for b in minibatch_indices(10, 64, make_generator(0))] == [10]


def test_validation_split_stratified_and_disjoint():
    labels = np.r_[np.zeros(80), np.ones(20)]
    train, val = validation_split(100, 0.2, make_generator(0), stratify=labels)
    assert len(np.intersect1d(train, val)) == 0 and len(train) + len(val) == 100
    assert (labels[val] == 1).sum() == 4 and (labels[val] == 0).sum() == 16
    with pytest.raises(ValueError, match="validation_fraction"):
        validation_split(10, 1.5, make_generator(0))


def test_early_stopping_restores_best_weights():
    X, y = _problem()
    Xv, yv = _problem(seed=1)
    net = make_mlp(3, (), 1, generator=make_generator(0))
    opt = make_optimizer(net.parameters(), "adam", learning_rate=0.05)
    snapshots = {}

    def validate():
        with torch.no_grad():
            score = -float(((net(Xv) - yv) ** 2).mean())
        snapshots[len(snapshots)] = (score, net[0].weight.detach().clone())
        return score

    result = train_minibatches(
        net, lambda idx: ((net(X[idx]) - y[idx]) ** 2).mean(), len(X), optimizer=opt,
        generator=make_generator(0), max_epochs=500, batch_size=20, validate=validate,
        early_stopping=True, n_iter_no_change=5, tol=1e-3,
    )
    assert result.stopped_early and result.n_iter < 500
    best = int(np.argmax(result.validation_scores))
    assert result.validation_iterations[best] == result.best_iteration
    torch.testing.assert_close(net[0].weight.detach(), snapshots[best][1])
    assert result.best_score == pytest.approx(max(result.validation_scores))


def test_validate_initial_false_scores_only_trained_iterations():
    X, y = _problem()
    Xv, yv = _problem(seed=1)
    calls = []

    def run(validate_initial):
        net = make_mlp(3, (), 1, generator=make_generator(0))
        opt = make_optimizer(net.parameters(), "adam", learning_rate=0.05)

        def validate():
            with torch.no_grad():
                calls.append(validate_initial)
                return -float(((net(Xv) - yv) ** 2).mean())

        return train_minibatches(
            net, lambda idx: ((net(X[idx]) - y[idx]) ** 2).mean(), len(X), optimizer=opt,
            generator=make_generator(0), max_epochs=7, batch_size=50, validate=validate,
            validate_initial=validate_initial,
        )

    with_initial, without = run(True), run(False)
    assert with_initial.validation_iterations == list(range(8))
    assert without.validation_iterations == list(range(1, 8))
    assert without.validation_scores == with_initial.validation_scores[1:]
    assert without.best_iteration >= 1
    assert calls.count(False) == 7


def test_min_iter_delays_early_stopping():
    _, result = _fit(max_epochs=100, early_stopping=True, n_iter_no_change=1, tol=10.0,
                     min_iter=40)
    assert result.stopped_early and result.n_iter >= 40


def test_nonfinite_loss_stops_and_restores_or_raises():
    net = make_mlp(2, (), 1, generator=make_generator(0))
    losses = iter([1.0, 0.5, math.nan])

    def step(_):
        return next(losses)

    with pytest.warns(ConvergenceWarning, match="Non-finite"):
        result = run_training(step, max_iter=3, model=net, early_stopping=True)
    assert result.n_nonfinite == 1 and result.n_iter == 3
    with pytest.raises(FloatingPointError):
        run_training(lambda _: math.inf, max_iter=3, model=net)


def test_tol_is_an_absolute_improvement():
    # bottleneck and ebm specs: tol is absolute (standardised y units / nats), also when
    # the score is far from 0. Gains of 3e-4 > tol = 1e-4 at scores near -5 never stall.
    net = make_mlp(2, (), 1, generator=make_generator(0))
    scores = iter([-5.0 + 3e-4 * k for k in range(200)])
    result = run_training(lambda _: 1.0, max_iter=99, model=net, validate=lambda: next(scores),
                          early_stopping=True, n_iter_no_change=10, tol=1e-4)
    assert not result.stopped_early and result.n_iter == 99
    # gains of 5e-5 < tol stop after n_iter_no_change evaluations, whatever the scale
    for offset in (0.0, -1e3):
        scores = iter([offset + 5e-5 * k for k in range(200)])
        result = run_training(lambda _: 1.0, max_iter=99, model=net,
                              validate=lambda it=scores: next(it), early_stopping=True,
                              n_iter_no_change=10, tol=1e-4)
        assert result.stopped_early and result.n_iter == 10


def test_nonfinite_stop_keeps_the_best_score_or_raises_on_request():
    net = make_mlp(2, (), 1, generator=make_generator(0))
    scores = iter([0.1, 0.3, 0.2, 0.25])
    losses = iter([1.0, 0.5, 0.4, math.nan])
    with pytest.warns(ConvergenceWarning, match="Non-finite"):
        result = run_training(lambda _: next(losses), max_iter=4, model=net,
                              validate=lambda: next(scores))
    assert result.best_iteration == 1 and result.best_score == 0.3
    losses = iter([1.0, math.nan])
    with pytest.raises(FloatingPointError):
        run_training(lambda _: next(losses), max_iter=2, model=net, early_stopping=True,
                     restore_on_nonfinite=False)


def test_never_finite_validation_keeps_the_last_weights():
    net = make_mlp(2, (), 1, generator=make_generator(0))
    start = net[0].weight.detach().clone()

    def step(_):
        with torch.no_grad():
            net[0].weight.add_(1.0)
        return 1.0

    with pytest.warns(ConvergenceWarning, match="No finite validation score"):
        result = run_training(step, max_iter=3, model=net, validate=lambda: math.nan,
                              validate_initial=False)
    assert result.best_score is None and result.best_iteration is None
    torch.testing.assert_close(net[0].weight.detach(), start + 3.0)
    # a NaN initial score is no candidate: later finite scores are, and early stopping works
    scores = iter([math.nan, 0.1, 0.2, 0.2, 0.2, 0.2])
    result = run_training(lambda _: 1.0, max_iter=5, model=net, validate=lambda: next(scores),
                          early_stopping=True, n_iter_no_change=3, tol=0.0)
    assert result.best_iteration == 2 and result.best_score == 0.2 and result.stopped_early


def test_skip_nonfinite_steps_counts_them():
    X, y = _problem(n=40)
    net = make_mlp(3, (), 1, generator=make_generator(0))
    opt = make_optimizer(net.parameters(), "adam", learning_rate=0.01)
    calls = {"n": 0}

    def loss(idx):
        calls["n"] += 1
        value = ((net(X[idx]) - y[idx]) ** 2).mean()
        return value * math.nan if calls["n"] % 3 == 0 else value

    result = train_minibatches(net, loss, len(X), optimizer=opt, generator=make_generator(0),
                               max_epochs=3, batch_size=10, skip_nonfinite=True)
    assert result.n_nonfinite == 4  # 12 steps, every third skipped
    assert all(math.isfinite(v) for v in result.loss_curve)


def _nan_after(pattern):
    """A minibatch loss that is NaN on the steps where ``pattern(step)`` is true."""
    X, y = _problem(n=30)
    net = make_mlp(3, (), 1, generator=make_generator(0))
    opt = make_optimizer(net.parameters(), "adam", learning_rate=0.01)
    calls = {"n": 0}

    def loss(idx):
        calls["n"] += 1
        value = ((net(X[idx]) - y[idx]) ** 2).mean()
        return value * math.nan if pattern(calls["n"]) else value

    return net, opt, loss, calls


@pytest.mark.parametrize("early_stopping", [False, True])
def test_consecutive_nonfinite_steps_stop_exactly(early_stopping):
    # 3 steps per epoch, steps 1-5 finite, then NaN forever: the 10th consecutive
    # skipped step is step 15, in epoch 5; all-NaN epochs 3-4 do not stop training
    net, opt, loss, calls = _nan_after(lambda step: step > 5)
    with pytest.warns(ConvergenceWarning, match="10 consecutive non-finite"):
        result = train_minibatches(
            net, loss, 30, optimizer=opt, generator=make_generator(0), max_epochs=50,
            batch_size=10, skip_nonfinite=True, max_consecutive_nonfinite=10,
            early_stopping=early_stopping, n_iter_no_change=100,
        )
    assert calls["n"] == 15 and result.n_nonfinite == 10 and result.n_iter == 5
    assert math.isfinite(result.loss_curve[0]) and math.isnan(result.loss_curve[3])
    assert all(torch.isfinite(p).all() for p in net.parameters())


def test_epoch_without_a_finite_step_records_nan_for_every_term():
    # named terms keep one entry per epoch, NaN where no step was finite (they used to
    # lose that epoch, so the term curves were shorter than loss_curve)
    X, y = _problem(n=30)
    net = make_mlp(3, (), 1, generator=make_generator(0), dtype=torch.float64)
    opt = make_optimizer(net.parameters(), "adam", learning_rate=0.01)
    calls = {"n": 0}

    def loss(idx):
        calls["n"] += 1
        value = ((net(X[idx].double()) - y[idx].double()) ** 2).mean()
        if 4 <= calls["n"] <= 6:  # every step of the second epoch
            value = value * math.nan
        return {"loss": value, "fit": value, "penalty": value * 0.0}

    result = train_minibatches(
        net, loss, 30, optimizer=opt, generator=make_generator(0), max_epochs=3,
        batch_size=10, skip_nonfinite=True, max_consecutive_nonfinite=10,
    )
    assert result.n_iter == 3 and result.n_nonfinite == 3
    for name in ("fit", "penalty"):
        curve = result.loss_terms[name]
        assert len(curve) == 3 and math.isnan(curve[1])
        assert math.isfinite(curve[0]) and math.isfinite(curve[2])
    assert math.isnan(result.loss_curve[1])


def test_nonfinite_streak_resets_on_a_finite_step():
    # 9 NaN steps, then one finite step, repeated: never 10 in a row
    net, opt, loss, calls = _nan_after(lambda step: step % 10 != 0)
    with warnings.catch_warnings():
        warnings.simplefilter("error", ConvergenceWarning)
        result = train_minibatches(
            net, loss, 30, optimizer=opt, generator=make_generator(0), max_epochs=10,
            batch_size=10, skip_nonfinite=True, max_consecutive_nonfinite=10,
        )
    assert result.n_iter == 10 and calls["n"] == 30 and result.n_nonfinite == 27
    with pytest.raises(ValueError, match="max_consecutive_nonfinite"):
        train_minibatches(net, loss, 30, optimizer=opt, generator=make_generator(0),
                          max_epochs=1, max_consecutive_nonfinite=10)


def test_named_terms_and_callback():
    X, y = _problem(n=40)
    net = make_mlp(3, (), 1, generator=make_generator(0))
    opt = make_optimizer(net.parameters(), "momentum", learning_rate=0.01)

    def loss(idx):
        mse = ((net(X[idx]) - y[idx]) ** 2).mean()
        penalty = net[0].weight.square().sum()
        return {"loss": mse + 0.1 * penalty, "mse": mse, "penalty": penalty}

    result = train_minibatches(net, loss, len(X), optimizer=opt, generator=make_generator(0),
                               max_epochs=10, callback=lambda it, res: it >= 4)
    assert result.n_iter == 4
    assert set(result.loss_terms) == {"mse", "penalty"}
    assert len(result.loss_terms["mse"]) == 4


def test_eval_every_buffers_losses():
    seen = []
    result = run_training(lambda i: torch.tensor(float(i)), max_iter=7, eval_every=3,
                          validate=lambda: seen.append(1) or 0.0)
    assert result.loss_curve == [0, 1, 2, 3, 4, 5, 6]
    assert result.validation_iterations == [0, 3, 6, 7]


@pytest.mark.parametrize("solver", ["adam", "adamw"])
def test_fused_adam_follows_the_same_trajectory(solver):
    X, y = _problem(n=50)
    nets = [make_mlp(3, (8,), 1, generator=make_generator(0)) for _ in range(2)]
    opts = [make_optimizer(net.parameters(), solver, learning_rate=0.05, weight_decay=0.01,
                           fused=fused) for net, fused in zip(nets, (None, True))]
    for _ in range(20):
        for net, opt in zip(nets, opts):
            opt.zero_grad()
            ((net(X) - y) ** 2).mean().backward()
            opt.step()
    for a, b in zip(nets[0].parameters(), nets[1].parameters(), strict=True):
        torch.testing.assert_close(a, b, rtol=1e-12, atol=1e-14)


def test_fused_adam_rejects_shared_parameters_and_steps_empty_groups():
    from fstat._adam import FusedAdam

    a, b = torch.nn.Parameter(torch.ones(3)), torch.nn.Parameter(torch.ones(2))
    with pytest.raises(ValueError, match="more than one parameter group"):
        FusedAdam([{"params": [a, b]}, {"params": [b]}], 0.1)
    with pytest.raises(ValueError, match="more than one parameter group"):
        FusedAdam([{"params": [a, a]}], 0.1)
    opt = FusedAdam([{"params": []}, {"params": [a]}], 0.1)
    a.grad = torch.ones(3)
    opt.step()  # torch.optim.Adam accepts an empty group too
    torch.testing.assert_close(a.detach(), torch.full((3,), 0.9))


def test_make_optimizer_names():
    p = [torch.nn.Parameter(torch.zeros(2))]
    assert isinstance(make_optimizer(p, "adamw"), torch.optim.AdamW)
    with pytest.raises(ValueError, match="solver"):
        make_optimizer(p, "lbfgs-ish")


def test_progress_falls_back_to_plain_text_without_tqdm(monkeypatch, capsys):
    import sys

    monkeypatch.setitem(sys.modules, "tqdm", None)  # makes "import tqdm..." fail
    monkeypatch.setitem(sys.modules, "tqdm.auto", None)
    assert progress_bar(5, verbose=0) is None
    _fit(max_epochs=3, verbose=1, desc="tiny")
    lines = capsys.readouterr().err.strip().splitlines()
    assert lines[0].startswith("tiny: 1/3 loss=") and lines[-1].startswith("tiny: 3/3 loss=")


def test_progress_shows_the_validation_score_when_there_is_one(monkeypatch, capsys):
    # the specifications' bars show the loss and the validation score (sdr 3.3)
    import sys

    monkeypatch.setitem(sys.modules, "tqdm", None)
    monkeypatch.setitem(sys.modules, "tqdm.auto", None)
    scores = iter([0.5, 0.25, 0.125, 0.0625])
    _fit(max_epochs=3, verbose=1, desc="tiny", validate=lambda: next(scores))
    lines = capsys.readouterr().err.strip().splitlines()
    assert [line.split("validation=")[1] for line in lines] == ["0.25", "0.125", "0.0625"]
    _fit(max_epochs=2, verbose=1, desc="tiny", early_stopping=True)  # no score: loss only
    assert "validation" not in capsys.readouterr().err


def test_progress_bar_only_when_verbose(capsys):
    assert progress_bar(10, verbose=0) is None
    bar = progress_bar(3, verbose=1, desc="fit")
    assert bar is not None
    bar.close()
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        _fit(max_epochs=3, verbose=1, desc="tiny")


def test_make_optimizer_fused_adam_is_the_lean_driver_bitwise():
    # fused Adam through make_optimizer is fstat's FusedAdam (no torch.optim overhead) and
    # follows torch's fused Adam bit for bit, with zero_grad as the training loop uses it
    from fstat._adam import FusedAdam

    X, y = _problem(n=50)
    nets = [make_mlp(3, (8,), 1, generator=make_generator(0)) for _ in range(2)]
    ours = make_optimizer(nets[0].parameters(), "adam", learning_rate=0.05, weight_decay=0.01,
                          fused=True)
    ref = torch.optim.Adam(nets[1].parameters(), lr=0.05, weight_decay=0.01, fused=True)
    assert isinstance(ours, FusedAdam)
    for _ in range(20):
        for net, opt in zip(nets, (ours, ref)):
            opt.zero_grad(set_to_none=True)
            ((net(X) - y) ** 2).mean().backward()
            opt.step()
    assert all(p.grad is not None for p in nets[0].parameters())
    ours.zero_grad()
    assert all(p.grad is None for p in nets[0].parameters())
    for a, b in zip(nets[0].parameters(), nets[1].parameters(), strict=True):
        assert torch.equal(a, b)


def test_fused_adam_construction_does_not_import_dynamo():
    # the fused Adam of make_optimizer never imports torch._dynamo (torch.optim's does)
    from _dynamo_probe import imports_dynamo

    assert not imports_dynamo(
        "import torch\n"
        "from fstat._training import make_optimizer\n"
        "p = [torch.nn.Parameter(torch.zeros(3))]\n"
        "opt = make_optimizer(p, 'adam', fused=True)\n"
        "p[0].sum().backward(); opt.step()")
    assert imports_dynamo("import torch\ntorch.optim.Adam([torch.zeros(1, requires_grad=True)])")


def test_make_optimizer_fused_keeps_per_group_options():
    # a group with its own weight decay must not be driven by FusedAdam (which reads only
    # params and lr): torch.optim honours the option
    from fstat._adam import FusedAdam

    a, b = torch.nn.Parameter(torch.ones(2)), torch.nn.Parameter(torch.ones(2))
    plain = make_optimizer([{"params": [a], "lr": 0.1}], "adam", fused=True)
    assert isinstance(plain, FusedAdam) and plain.param_groups[0]["lr"] == 0.1
    opt = make_optimizer([{"params": [a]}, {"params": [b], "weight_decay": 0.5}], "adam",
                         learning_rate=0.1, fused=True)
    assert isinstance(opt, torch.optim.Adam)
    assert [g["weight_decay"] for g in opt.param_groups] == [0.0, 0.5]


def test_on_epoch_sees_each_epochs_batches_before_its_steps():
    X = torch.randn(50, 2, dtype=torch.float64)
    net = make_mlp(2, (4,), 1, generator=make_generator(0), dtype=torch.float64)
    opt = torch.optim.SGD(net.parameters(), lr=0.01)
    events = []

    def loss_fn(index):
        events.append(("step", index))
        return net(X[index]).square().mean()

    train_minibatches(net, loss_fn, len(X), optimizer=opt, generator=make_generator(1),
                      max_epochs=3, batch_size=16, min_last_batch=3,
                      on_epoch=lambda batches: events.append(("epoch", batches)))
    starts = [i for i, (kind, _) in enumerate(events) if kind == "epoch"]
    assert starts == [0, 4, 8]  # 50 rows: 16, 16, 18 (the 2-row tail is merged)
    for start in starts:
        batches = events[start][1]
        assert [len(b) for b in batches] == [16, 16, 18]
        steps = [index for _, index in events[start + 1:start + 4]]
        assert all(s is b for s, b in zip(steps, batches, strict=True))
    assert not torch.equal(events[0][1][0], events[4][1][0])  # reshuffled per epoch
