"""Network <-> kernel-machine equivalence (spec §2.6) on digits 0 vs 1."""

import numpy as np
import pytest
import torch
from sklearn.model_selection import train_test_split

from fstat.datasets import load_digits_pair
from fstat.kernels import NTKNetwork, trajectory_gap


@pytest.fixture(scope="module")
def digits_split():
    X, y = load_digits_pair()
    return train_test_split(X, y, train_size=240, random_state=0, stratify=y)


def _gap(split, loss, width, regularizer="anchored", steps=300):
    Xtr, Xte, ytr, _ = split
    n = len(ytr)
    target = ytr if loss == "hinge" else ytr.astype(float)
    # float32 keeps the CPU time in budget; the gaps measured (~1e-2) are far above its rounding
    net = NTKNetwork(width, loss=loss, lam=0.01 * n, lr=0.5 / n, max_iter=steps,
                     record_steps=[steps], regularizer=regularizer, dtype="float32",
                     device="cpu", random_state=0).fit(Xtr, target)
    machine = net.matching_kernel_machine().fit(Xtr, target)
    Xall = np.vstack([Xtr, Xte])
    f_net = net.decision_function(Xall) if loss == "hinge" else net.predict(Xall)
    f_ker = machine.decision_function(Xall) if loss == "hinge" else machine.predict(Xall)
    return trajectory_gap(net, machine, Xall)[-1], np.mean(np.sign(f_net) == np.sign(f_ker))


@pytest.mark.slow
@pytest.mark.parametrize("loss", ["hinge", "squared"])
def test_gap_shrinks_with_width(digits_split, loss):
    small, _ = _gap(digits_split, loss, 256)
    big, agree = _gap(digits_split, loss, 2048)
    assert big < 0.08
    assert big / small < 0.6
    assert agree == 1.0
    if loss == "hinge":  # negative control: last-layer weight decay does not converge
        last, _ = _gap(digits_split, loss, 2048, regularizer="last_layer")
        assert last > 2 * big


def test_path_kernel_reproduces_outputs(digits_split):
    Xtr, _, ytr, _ = digits_split
    X, y = Xtr[:40], ytr[:40]
    net = NTKNetwork(64, loss="hinge", lam=0.4, lr=0.5 / 40, max_iter=50, track_path_kernel=True,
                     dtype="float64", device="cpu", random_state=0).fit(X, y)
    f = net.decision_function(X)
    approx = net.path_kernel_.sum(axis=1)
    assert np.abs(approx - f).max() <= 0.02 * np.abs(f).max()


def test_zero_initial_output_and_matching_machine(digits_split):
    Xtr, _, ytr, _ = digits_split
    for init in ("antisymmetric", "subtract"):
        net = NTKNetwork(32, max_iter=3, record_steps=[0, 3], init=init, dtype="float64",
                         device="cpu", random_state=0).fit(Xtr[:30], ytr[:30])
        f0 = next(net.staged_decision_function(Xtr[:30]))
        assert np.all(f0 == 0)
    m = net.matching_kernel_machine()
    assert m.solver == "subgradient" and m.lr == net.lr_ and m.max_iter == 3


def test_determinism_and_pickle(digits_split):
    import pickle

    Xtr, _, ytr, _ = digits_split
    a = NTKNetwork(32, max_iter=10, device="cpu", random_state=3).fit(Xtr[:30], ytr[:30])
    b = NTKNetwork(32, max_iter=10, device="cpu", random_state=3).fit(Xtr[:30], ytr[:30])
    np.testing.assert_array_equal(a.decision_function(Xtr), b.decision_function(Xtr))
    c = pickle.loads(pickle.dumps(a))
    np.testing.assert_array_equal(c.decision_function(Xtr), a.decision_function(Xtr))
    with pytest.raises(ValueError, match="Only binary"):
        NTKNetwork(8, max_iter=2, device="cpu").fit(Xtr[:30], np.arange(30) % 3)


def _own_forward(layers, x, w_std, b_std):
    """Spec §2.1 forward pass of one copy, written out here: layers = [(W, b or None), ...]."""
    h = x
    for k, (W, b) in enumerate(layers):
        h = (w_std / W.shape[1] ** 0.5) * (W @ h)
        if b is not None:
            h = h + b_std * b
        if k < len(layers) - 1:
            h = torch.relu(h)
    return h[0]


def _own_jacobian(layers, X, w_std, b_std):
    """Rows: d f(x_i) / d theta, by autograd on the forward pass above."""
    params = [p for pair in layers for p in pair if p is not None]
    rows = []
    for x in X:
        f = _own_forward(layers, x, w_std, b_std)
        grads = torch.autograd.grad(f, params)
        rows.append(torch.cat([g.reshape(-1) for g in grads]))
    return torch.stack(rows)


def _as_layers(flat, depth, has_bias):
    step = 2 if has_bias else 1
    layers = [(flat[k * step], flat[k * step + 1] if has_bias else None)
              for k in range(depth + 1)]
    return [(W.detach().clone().requires_grad_(True),
             None if b is None else b.detach().clone().requires_grad_(True))
            for W, b in layers]


@pytest.mark.parametrize("depth, w_std, b_std", [(1, 1.0, 0.0), (2, 1.3, 0.3)])
def test_library_antisymmetric_init_zero_output_and_one_copy_ntk(depth, w_std, b_std):
    """Spec §2.6 / §5.11 on NTKNetwork itself (init="antisymmetric"): copy B is a bitwise
    clone of copy A, f_0 = (f_A - f_B)/sqrt(2) is exactly 0 everywhere, and the network's
    initial empirical NTK -- the one its first training step uses (loss-path kernel) and
    the one ``empirical_ntk`` reports -- equals copy A's own NTK, J_A J_A^T, computed here
    by autograd on an independent forward pass from copy A's parameters (1e-10)."""
    rng = np.random.default_rng(5)
    n, d, m = 12, 3, 24
    X = rng.standard_normal((n, d))
    Xq = rng.standard_normal((6, d))
    y = rng.choice([-1.0, 1.0], n) * (1.0 + rng.random(n))  # |y| >= 1
    kw = dict(width=m, depth=depth, w_std=w_std, b_std=b_std, loss="squared", lam=0.7,
              max_iter=1, dtype="float64", device="cpu", random_state=0)
    net = NTKNetwork(record_steps=[0], track_path_kernel=True, **kw).fit(X, y)
    flat0 = net.init_params_
    per_copy = (depth + 1) * (2 if b_std > 0 else 1)
    assert len(flat0) == 2 * per_copy  # two copies of the same architecture
    for a, b in zip(flat0[:per_copy], flat0[per_copy:]):
        assert torch.equal(a, b)  # theta_B = theta_A bitwise
    A = _as_layers(flat0[:per_copy], depth, b_std > 0)
    assert A[0][0].shape == (m, d) and A[-1][0].shape == (1, m)
    # the initial output is exactly zero on training and fresh points
    f0 = next(net.staged_predict(np.vstack([X, Xq])))
    assert np.all(f0 == 0.0)
    # copy A alone has a nonzero output: the zero is the antisymmetry, not a dead network
    with torch.no_grad():
        fA = torch.stack([_own_forward(A, torch.as_tensor(x), w_std, b_std) for x in X])
    assert fA.abs().max() > 1e-3
    JX = _own_jacobian(A, torch.as_tensor(X), w_std, b_std)
    Jq = _own_jacobian(A, torch.as_tensor(Xq), w_std, b_std)
    theta_A = (JX @ JX.T).numpy()
    scale = np.abs(theta_A).max()
    # first GD step: path kernel K_1 = lr * Theta_0 * (-l'_j), l'_j = 2 (f_0 - y_j) = -2 y_j
    theta_0 = net.path_kernel_ / (2.0 * net.lr_ * y[None, :])
    np.testing.assert_allclose(theta_0, theta_A, rtol=1e-10, atol=1e-12 * scale)
    # the step itself: at theta_0 the anchored penalty has zero gradient and
    # grad f = (grad f_A, -grad f_B)/sqrt(2), so theta_A,1 = theta_A,0 - lr/sqrt(2) sum_i l'_i
    # J_A[i] and theta_B,1 = theta_B,0 + the same; f_1 = (f_A(theta_A,1) - f_B(theta_B,1))/sqrt(2)
    move = (net.lr_ / np.sqrt(2.0)) * (JX.T @ torch.as_tensor(-2.0 * y))
    flat_A0 = torch.cat([p.reshape(-1) for p in flat0[:per_copy]])
    flat_B0 = torch.cat([p.reshape(-1) for p in flat0[per_copy:]])
    got_A = torch.cat([p.reshape(-1) for p in net.params_[:per_copy]])
    got_B = torch.cat([p.reshape(-1) for p in net.params_[per_copy:]])
    np.testing.assert_allclose(got_A - flat_A0, -move, rtol=1e-10, atol=1e-13)
    np.testing.assert_allclose(got_B - flat_B0, move, rtol=1e-10, atol=1e-13)
    A1 = _as_layers(net.params_[:per_copy], depth, b_std > 0)
    B1 = _as_layers(net.params_[per_copy:], depth, b_std > 0)
    with torch.no_grad():
        f1 = [(_own_forward(A1, torch.as_tensor(x), w_std, b_std)
               - _own_forward(B1, torch.as_tensor(x), w_std, b_std)) / np.sqrt(2.0)
              for x in np.vstack([X, Xq])]
    np.testing.assert_allclose(net.predict(np.vstack([X, Xq])), torch.stack(f1).numpy(),
                               rtol=1e-12, atol=1e-14)
    # y = 0: the gradient at theta_0 is exactly zero iff f_0 == 0, so the fitted parameters
    # stay at theta_0 and empirical_ntk reports the initial kernel
    still = NTKNetwork(**kw).fit(X, np.zeros(n))
    assert all(torch.equal(p, q) for p, q in zip(still.params_, still.init_params_))
    for method in ("structured", "jacobian"):
        np.testing.assert_allclose(still.empirical_ntk(X, method=method), theta_A,
                                   rtol=1e-10, atol=1e-12 * scale)
        np.testing.assert_allclose(still.empirical_ntk(Xq, X, method=method),
                                   (Jq @ JX.T).numpy(), rtol=1e-10, atol=1e-12 * scale)
