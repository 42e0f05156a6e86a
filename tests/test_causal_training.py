"""ConditionalDivergenceBounds training options: early stopping, per-fold batching,
minibatches of large folds, plug-in averaged bounds and the fitted outcome models."""

import warnings

import numpy as np
import pytest
import torch
from sklearn.linear_model import LogisticRegression, Ridge

from fstat.causal import (
    AveragedBounds,
    ConditionalDivergenceBounds,
    UnboundedOutcomeWarning,
    _batched_mlp,
    _dualnet,
)
from fstat.causal._dualnet import train_groups
from fstat.datasets import make_confounded_discrete, make_confounded_paper

FAST = dict(divergences=("kl", "chi2"), max_iter=40, hidden_layer_sizes=(8,), device="cpu",
            random_state=0, propensity_model=LogisticRegression(C=1e6),
            outcome_bounds=(0, 4), dtype="float64")


@pytest.fixture(scope="module")
def data():
    return make_confounded_discrete(400, random_state=3)


def _fit(data, **kw):
    X, y, a = data
    return ConditionalDivergenceBounds(**{**FAST, **kw}).fit(X, y, treatment=a)


class _Toy(torch.nn.Module):
    """Three independent scalar 'groups' with a noisy validation loss."""

    def __init__(self):
        super().__init__()
        self.p = torch.nn.Parameter(torch.tensor([3.0, -2.0, 0.5], dtype=torch.float64))


def test_train_groups_early_stopping_rule_and_per_group_restore():
    model = _Toy()
    target = torch.tensor([1.0, 0.0, 0.4], dtype=torch.float64)
    wiggle = torch.tensor([0.3, 0.05, 0.2], dtype=torch.float64)
    seen = []

    def validate():
        p = model.p.detach().clone()
        seen.append(p)
        k = len(seen)
        return (p - target) ** 2 + wiggle * np.sin(1.7 * k) ** 2

    res = train_groups(model, lambda step: (model.p - target) ** 2, max_iter=5000,
                       learning_rate=0.1, weight_decay=0.0, validate=validate,
                       eval_every=10, n_iter_no_change=4, tol=1e-4)
    val = res["validation"].numpy()
    # slow reference of the rule: per-group best with relative tolerance, global patience
    best = np.full(3, np.inf)
    best_check = np.zeros(3, dtype=int)
    stale, stop = 0, None
    for c, score in enumerate(val):
        thr = np.where(np.isfinite(best), np.abs(best), 0.0)
        improved = score < best - 1e-4 * thr
        best = np.where(improved, score, best)
        best_check[improved] = c
        stale = 0 if improved.any() else stale + 1
        if stale >= 4:
            stop = c
            break
    assert stop == len(val) - 1 and res["n_iter"] == 10 * len(val) < 5000
    np.testing.assert_array_equal(res["best_iteration"], 10 * (best_check + 1))
    restored = model.p.detach().numpy()
    expected = np.array([seen[best_check[g]][g].item() for g in range(3)])
    np.testing.assert_array_equal(restored, expected)


def test_early_stopping_estimator(data):
    X, y, a = data
    est = _fit(data, early_stopping=True, max_iter=1000, n_iter_no_change=2,
               learning_rate=3e-2)
    assert est.n_iter_ < 1000 and est.n_iter_ % 10 == 0
    assert est.validation_curve_.shape == (est.n_iter_ // 10, 2, 2, 2)
    assert est.loss_curve_.shape == (est.n_iter_, 2, 2, 2)
    assert np.all(np.isfinite(est.predict(X)))
    # stratified 20% of each fold is held out from training
    layout_data = {"w": np.ones((2, 200)), "a": np.stack([a[te] for _, te in est.folds_])}
    val = est._validation_rows(layout_data, 2)
    for k in range(2):
        for arm in (0, 1):
            members = layout_data["a"][k] == arm
            assert val[k, members].sum() == round(0.2 * members.sum())
    assert _fit(data).validation_curve_ is None


@pytest.mark.parametrize("n_jobs", [1, pytest.param(2, marks=pytest.mark.slow)])
def test_per_fold_batching_equals_all(data, n_jobs):
    X = np.eye(4)
    both = _fit(data, cv=3)  # unequal fold lengths: "all" pads, "per_fold" does not
    per = _fit(data, cv=3, dual_batching="per_fold", n_jobs=n_jobs)
    np.testing.assert_allclose(per.loss_curve_, both.loss_curve_, rtol=1e-9, atol=1e-12)
    for key, value in both.dual_state_["state_dict"].items():
        np.testing.assert_allclose(per.dual_state_["state_dict"][key], value, rtol=1e-7,
                                   atol=1e-9)
    np.testing.assert_allclose(per.predict_outcome_bounds(X, 1, divergence="all"),
                               both.predict_outcome_bounds(X, 1, divergence="all"), atol=1e-6)


def test_per_fold_batching_shows_one_progress_bar_per_fold(data, capfd):
    # verbose=1 showed no progress at all with dual_batching="per_fold"
    _fit(data, cv=3, dual_batching="per_fold", verbose=1)
    err = capfd.readouterr().err
    assert all(f"dual networks, fold {k}/3" in err for k in (1, 2, 3))


def test_minibatches_of_large_folds(data, monkeypatch):
    X = np.eye(4)
    full = _fit(data)
    monkeypatch.setattr(_dualnet, "MINIBATCH_THRESHOLD", 100)
    monkeypatch.setattr(_dualnet, "MINIBATCH_SIZE", 10_000)  # one batch = the whole fold
    one = _fit(data)
    np.testing.assert_allclose(one.loss_curve_, full.loss_curve_, rtol=1e-12, atol=1e-14)
    monkeypatch.setattr(_dualnet, "MINIBATCH_SIZE", 64)  # 200 rows -> 64 + 64 + 72
    mini = _fit(data)
    assert not np.allclose(mini.loss_curve_[1], full.loss_curve_[1])
    np.testing.assert_allclose(mini.loss_curve_[0], full.loss_curve_[0], rtol=0.5)
    b = mini.predict_outcome_bounds(X, 1, divergence="all")
    assert np.all(np.isfinite(b)) and np.all(b[..., 0] <= b[..., 1])


def test_plugin_average_bounds(data):
    X, y, a = data
    est = _fit(data)
    plug = est.average_bounds(X, method="plugin")
    assert isinstance(plug, AveragedBounds)
    t = plug.table
    allb = np.stack([est.predict_outcome_bounds(X, arm, divergence="all") for arm in (0, 1)])
    for arm, target in ((0, "Y(0)"), (1, "Y(1)")):
        for d, name in enumerate(est.divergences_):
            np.testing.assert_allclose(t.loc[(target, name), ["lower", "upper"]],
                                       allb[arm, :, d].mean(axis=0), rtol=1e-12)
        np.testing.assert_allclose(t.loc[(target, "manski"), ["lower", "upper"]],
                                   est.predict_manski(X, arm).mean(axis=0), rtol=1e-12)
    eff = np.stack([allb[1, :, :, 0] - allb[0, :, :, 1], allb[1, :, :, 1] - allb[0, :, :, 0]],
                   axis=-1).mean(axis=0)
    np.testing.assert_allclose(t.loc["effect"].loc[list(est.divergences_),
                                                   ["lower", "upper"]], eff, rtol=1e-12)
    np.testing.assert_allclose(t.loc[("effect", "manski"), ["lower", "upper"]],
                               est.predict_manski(X).mean(axis=0), rtol=1e-12)
    agg = t.loc[("Y(1)", "aggregate")]
    assert agg["lower"] == t.loc["Y(1)"].loc[list(est.divergences_), "lower"].max()
    assert np.all(np.isnan(t[["se_lower", "se_upper"]].to_numpy()))
    train = est.average_bounds(method="plugin")  # X=None: the training sample
    np.testing.assert_allclose(train.table[["lower", "upper"]], t[["lower", "upper"]],
                               rtol=1e-12)
    assert est.average_bounds() is est.averaged_bounds_


def test_outcome_models_are_the_fitted_manski_mean_models(data):
    X, y, a = data
    est = _fit(data, divergences=("kl",))
    assert est.outcome_models_["state"]["weights.0"].shape[0] == 2  # one group per fold
    assert est.pseudo_outcome_models_["state"]["weights.0"].shape[0] == 2 * 2
    ridge = _fit(data, divergences=("kl",), pseudo_outcome_model=Ridge())
    assert set(ridge.outcome_models_) == {(k, arm) for k in range(2) for arm in (0, 1)}
    assert set(ridge.pseudo_outcome_models_) == {
        (k, "kl", s, arm) for k in range(2) for s in (1, -1) for arm in (0, 1)}
    # the Manski mean of fold k, arm 1 is its regression of y on the fold's covariates
    k = 0
    te = ridge.folds_[k][1]
    xs = (X - ridge.dual_state_["x_mean"][k]) / ridge.dual_state_["x_scale"][k]
    rows = te[a[te] == 1]
    ref = Ridge().fit(xs[rows], (y[rows] - ridge.y_center_) / ridge.y_scale_)
    np.testing.assert_allclose(ridge.outcome_models_[(k, 1)].coef_, ref.coef_, rtol=1e-10)


def _per_group_loop(net, x):
    """The obviously-correct reference: one plain MLP per group, autograd throughout."""
    act = {"relu": torch.relu, "tanh": torch.tanh, "elu": torch.nn.functional.elu}
    rows = []
    for g in range(x.shape[0]):
        h = x[g]
        for i, (w, b) in enumerate(zip(net.weights, net.biases, strict=True)):
            h = h @ w[g] + b[g, 0]
            if i < len(net.weights) - 1:
                h = act[net.activation](h)
        rows.append(h)
    return torch.stack(rows)


def _value_and_grads(net, forward, x, weight):
    net.zero_grad(set_to_none=True)
    xg = x.clone().requires_grad_(True)
    out = forward(xg)
    (weight * out ** 2).sum().backward()
    return [out.detach().clone(), xg.grad.clone()] + [p.grad.clone() for p in net.parameters()]


@pytest.mark.parametrize("activation", ["relu", "tanh", "elu"])
@pytest.mark.parametrize("hidden", [(), (7,), (16, 16)])
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_batched_mlp_matches_a_per_group_loop(hidden, activation, dtype):
    """Values and every gradient (parameters and input) of the batched nets (buffered
    activations, transposed last layer) equal one plain MLP per group, for successive passes
    of different lengths (the buffers are regrown and re-viewed)."""
    net = _batched_mlp.BatchedMLP(3, 5, hidden, 4, _batched_mlp_generators(3),
                                  activation=activation, dtype=dtype)
    tol = dict(rtol=1e-12, atol=1e-12) if dtype == torch.float64 else dict(rtol=2e-5, atol=2e-5)
    for length, seed in [(40, 2), (25, 3), (60, 4)]:
        gen = torch.Generator().manual_seed(seed)
        x = torch.randn(3, length, 5, generator=gen, dtype=dtype)
        weight = torch.randn(3, length, 4, generator=gen, dtype=dtype)
        fast = _value_and_grads(net, net, x, weight)
        ref = _value_and_grads(net, lambda xg: _per_group_loop(net, xg), x, weight)
        for a, b in zip(fast, ref, strict=True):
            torch.testing.assert_close(a, b, **tol)
        if hidden:  # both branches of the activation were taken
            pre = torch.baddbmm(net.biases[0], x, net.weights[0]).detach()
            assert bool((pre < 0).any()) and bool((pre > 0).any())
    with torch.no_grad():  # the no-grad path (prediction) gives the same values
        torch.testing.assert_close(net(x), ref[0], **tol)


def _batched_mlp_generators(n):
    return [_dualnet.group_generator(0, g) for g in range(n)]


def test_batched_mlp_refuses_a_backward_after_its_buffers_were_reused():
    net = _batched_mlp.BatchedMLP(2, 3, (8,), 2, _batched_mlp_generators(2),
                                  dtype=torch.float64)
    x = torch.randn(2, 10, 3, dtype=torch.float64)
    first = net(x).sum()
    net(x + 1.0).sum().backward()
    with pytest.raises(RuntimeError, match="overwrote its activation buffers"):
        first.backward()


def test_batched_mlp_training_pattern():
    """The training pattern: data without gradient, a no-grad validation pass between the
    forward and backward passes, gradients accumulated over two steps, an in-place change of
    the output; parameter gradients equal the per-group loop's."""
    net = _batched_mlp.BatchedMLP(3, 4, (8, 8), 2, _batched_mlp_generators(3),
                                  dtype=torch.float64)
    gen = torch.Generator().manual_seed(6)
    xs = [torch.randn(3, n, 4, generator=gen, dtype=torch.float64) for n in (30, 20)]

    def loss(forward, x):
        out = forward(x)
        out[..., 1] *= 3.0  # in place on the network's output
        return (out ** 2).sum()

    def accumulated(forward):
        net.zero_grad(set_to_none=True)
        for x in xs:
            value = loss(forward, x)
            with torch.no_grad():
                net(x[:, :7])
            value.backward()
        return [p.grad.clone() for p in net.parameters()]

    fast = accumulated(net)
    ref = accumulated(lambda x: _per_group_loop(net, x))
    for a, b in zip(fast, ref, strict=True):
        torch.testing.assert_close(a, b, rtol=1e-12, atol=1e-12)


def test_batched_mlp_pickles_without_its_buffers():
    import pickle

    net = _batched_mlp.BatchedMLP(2, 3, (8,), 2, _batched_mlp_generators(2))
    net(torch.randn(2, 500, 3)).sum().backward()
    assert net._workspace.flat
    copy = pickle.loads(pickle.dumps(net))
    assert not copy._workspace.flat
    x = torch.randn(2, 9, 3)
    with torch.no_grad():
        predicted = copy(x)
    trained = copy(x)  # the copy trains; prediction and training give the same values
    trained.sum().backward()
    assert torch.equal(predicted, trained.detach())
    assert torch.equal(predicted, net(x).detach())


# ----------------------------------------------------------------------------------------------
# spec 6.8: batched training equals R5, a per-group loop in plain torch, after 50 steps
# ----------------------------------------------------------------------------------------------
R5_CASES = {
    # declared support: feasible-by-construction u, exact conjugates of all five divergences
    "declared": dict(make=lambda: make_confounded_discrete(201, random_state=5),
                     divergences=("kl", "hellinger", "chi2", "tv", "js"),
                     outcome_bounds=(0, 4), learning_rate=3e-3),
    # no support: u = v and the surrogate conjugate (lr 3e-2 so that some samples leave the
    # domain during the 50 steps and the quadratic branch is trained through)
    "sample": dict(make=lambda: make_confounded_paper(201, n_features=3, random_state=5),
                   divergences=("kl", "chi2"), outcome_bounds=None, learning_rate=3e-2),
}


def _r5_fit(case):
    """The library's 50-step fit and R5 on the same folds, data and out-of-fold propensities."""
    from tests._reference_causal_training import reference_fit

    cfg = R5_CASES[case]
    X, y, a = cfg["make"]()
    hidden = (8, 8)
    est = ConditionalDivergenceBounds(
        cfg["divergences"], outcome_bounds=cfg["outcome_bounds"], cv=2,
        hidden_layer_sizes=hidden, max_iter=50, learning_rate=cfg["learning_rate"],
        weight_decay=1e-4, early_stopping=False, propensity_model=LogisticRegression(C=1e6),
        dtype="float64", device="cpu", random_state=0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UnboundedOutcomeWarning)
        est.fit(X, y, treatment=a)
    # the dual nets' base seed: third draw of RandomState(random_state) (spec 2.7)
    seed = int(np.random.RandomState(0).randint(0, 2**31 - 1, size=3)[2])
    ref = reference_fit(X, y, a, est.propensity_oof_, est.folds_,
                        names=est.divergences_, seed=seed, hidden=hidden,
                        support=cfg["outcome_bounds"], steps=50, lr=cfg["learning_rate"],
                        weight_decay=1e-4, margin=est.domain_margin,
                        penalty=est.domain_penalty)
    return est, ref


def _library_group(est, gi):
    """Group gi's trained library parameters as (W (out, in), b) per layer."""
    state = est.dual_state_["state_dict"]
    n_layers = sum(key.startswith("weights.") for key in state)
    return [(state[f"weights.{i}"][gi].T.numpy(), state[f"biases.{i}"][gi, 0].numpy())
            for i in range(n_layers)]


def _as_net(template, params):
    """A copy of a reference net carrying the given parameters."""
    import copy

    net = copy.deepcopy(template)
    with torch.no_grad():
        for lin, (w, b) in zip([m for m in net if isinstance(m, torch.nn.Linear)], params,
                               strict=True):
            lin.weight.copy_(torch.as_tensor(w))
            lin.bias.copy_(torch.as_tensor(b))
    return net


def _r5_differences(est, ref):
    """Per group (k, name, sign): max relative differences library vs R5 of the parameters,
    of (lambda, u) at the fold's rows, and of the 50-step loss curve."""
    from tests._reference_causal_training import DIVERGENCES, dual_variables

    def rel(lib, mine):
        lib, mine = np.asarray(lib), np.asarray(mine)
        return float(np.max(np.abs(lib - mine) / np.maximum(np.abs(lib), 1e-12)))

    layout = est.dual_state_["layout"]
    declared = est.support_source_ != "sample"
    out = {}
    for gi in range(len(layout["fold"])):
        k, sign = int(layout["fold"][gi]), int(layout["sign"][gi])
        d = int(layout["divergence"][gi])
        name = est.divergences_[d]
        net, curve, xk = ref[k, name, sign]
        lib = _library_group(est, gi)
        mine = [(m.weight.detach().numpy(), m.bias.detach().numpy())
                for m in net if isinstance(m, torch.nn.Linear)]
        p_rel = max(max(rel(lw, mw), rel(lb, mb)) for (lw, lb), (mw, mb) in zip(lib, mine))
        f0 = DIVERGENCES[name][0]
        with torch.no_grad():
            lam_l, u_l = dual_variables(_as_net(net, lib)(xk), f0, declared, est.domain_margin)
            lam_r, u_r = dual_variables(net(xk), f0, declared, est.domain_margin)
        o_rel = max(rel(lam_l, lam_r), rel(u_l, u_r))
        c_rel = rel(est.loss_curve_[:, k, d, 0 if sign == 1 else 1], curve)
        out[k, name, sign] = (p_rel, o_rel, c_rel)
    return out


@pytest.mark.parametrize("case", sorted(R5_CASES))
def test_batched_dual_training_equals_per_group_reference_r5(case):
    """Spec 6.8: every group (2 folds of unequal length x divergences x both signs) of the one
    batched full-batch model equals R5 -- its own plain-torch MLP, the spec's debiased risk on its
    own fold and sign, a hand-written Adam -- after 50 steps: parameters, (lambda, u) at the
    fold's rows and the loss curve to 1e-5 relative (float64). Both signs of a (fold, divergence)
    start from the same weights, so parameters shared, gradients mixed or data taken from
    another group would show up as differences far above the tolerance (checked below)."""
    est, ref = _r5_fit(case)
    assert est.n_iter_ == 50 and est.validation_curve_ is None
    n_groups = 2 * len(est.divergences_) * 2
    assert len(est.dual_state_["layout"]["fold"]) == n_groups == len(ref)
    assert len(est.folds_[0][1]) != len(est.folds_[1][1])  # the batch is padded
    diffs = _r5_differences(est, ref)
    worst = np.max(list(diffs.values()), axis=0)
    assert np.all(worst < 1e-5), (worst, diffs)
    # the tolerance discriminates: each group is far from its sign twin (same initial weights,
    # same fold, other target), e.g. as it would be if the two groups were swapped or tied
    for gi, (k, d, sign) in enumerate(zip(*(est.dual_state_["layout"][key]
                                            for key in ("fold", "divergence", "sign")))):
        twin = ref[int(k), est.divergences_[d], -int(sign)][0]
        lib = _library_group(est, gi)
        far = max(np.max(np.abs(lw - m.weight.detach().numpy())) / np.max(np.abs(lw))
                  for (lw, _), m in zip(lib, [m for m in twin if isinstance(m, torch.nn.Linear)]))
        assert far > 1e-3, (k, est.divergences_[d], sign, far)
