"""Parameter groups with their own weight decay: equal to PyTorch's parameter groups (lr and weight_decay per
group) for coupled L2, decoupled decay and SGD momentum; fit's L2 per group; frozen parameters untouched."""
from __future__ import annotations

import numpy as np
import pytest
import torch

import descend
from descend import nn, optim
from descend.train import Objective

from _trainutil import blobs

# three groups over θ of 14 values: backbone (lr/10, its own decay), head weights (lr, decay λ), head bias (lr, no decay)
GROUPS = [(slice(0, 8), 0.1, 0.05), (slice(8, 12), 1.0, 0.4), (slice(12, 14), 1.0, 0.0)]
WD = 0.4  # the optimizer's own weight_decay: the head weights'


@pytest.fixture
def torch_float64():
    old = torch.get_default_dtype()
    torch.set_default_dtype(torch.float64)  # torch keeps NAdam's mu_product in the default dtype
    yield
    torch.set_default_dtype(old)


@pytest.mark.parametrize("make, torch_make, state", [
    (lambda: optim.Adam(lr=0.05, weight_decay=WD), torch.optim.Adam, {"m": "exp_avg", "v": "exp_avg_sq"}),
    (lambda: optim.AdamW(lr=0.05, weight_decay=WD), torch.optim.AdamW, {"m": "exp_avg", "v": "exp_avg_sq"}),
    (lambda: optim.SGD(lr=0.05, momentum=0.9, weight_decay=WD),
     lambda g, lr: torch.optim.SGD(g, lr=lr, momentum=0.9), {"v": "momentum_buffer"}),
    (lambda: optim.SGD(lr=0.05, momentum=0.9, nesterov=True, weight_decay=WD),
     lambda g, lr: torch.optim.SGD(g, lr=lr, momentum=0.9, nesterov=True), {"v": "momentum_buffer"}),
    (lambda: optim.RMSprop(lr=0.01, momentum=0.5, weight_decay=WD),
     lambda g, lr: torch.optim.RMSprop(g, lr=lr, momentum=0.5), {"s": "square_avg", "b": "momentum_buffer"}),
    (lambda: optim.NAdam(lr=0.02, weight_decay=WD, decoupled_weight_decay=True),
     lambda g, lr: torch.optim.NAdam(g, lr=lr, decoupled_weight_decay=True), {"m": "exp_avg", "v": "exp_avg_sq"}),
    (lambda: optim.NAdam(lr=0.02, weight_decay=WD), torch.optim.NAdam, {"m": "exp_avg", "v": "exp_avg_sq"}),
    (lambda: optim.SGD(lr=0.05, weight_decay=WD), torch.optim.SGD, {}),
    (lambda: optim.Adagrad(lr=0.1, weight_decay=WD), torch.optim.Adagrad, {"s": "sum"}),
    (lambda: optim.RMSprop(lr=0.01, centered=True, weight_decay=WD),
     lambda g, lr: torch.optim.RMSprop(g, lr=lr, centered=True), {"s": "square_avg", "g_avg": "grad_avg"}),
])
def test_weight_decay_groups_equal_pytorch_parameter_groups(make, torch_make, state, torch_float64):
    """Each group with its own lr and weight_decay, on the gradient of a fixed quadratic, float64, 200 steps of a
    decaying lr: θ and every state buffer as torch.optim with three parameter groups."""
    rng = np.random.default_rng(0)
    n = 14
    A = rng.standard_normal((n, n))
    A = A @ A.T / n + np.eye(n)
    b = rng.standard_normal(n)
    theta = rng.standard_normal(n)
    opt = make()
    lr_scale, wd_scale = np.ones(n), np.ones(n)
    for sl, s, wd in GROUPS:
        lr_scale[sl], wd_scale[sl] = s, wd / WD
    opt.set_lr_scale(lr_scale)
    opt.set_weight_decay_scale(wd_scale)
    tensors = [torch.tensor(theta[sl].copy(), requires_grad=True) for sl, _, _ in GROUPS]
    topt = torch_make([{"params": [t], "lr": opt.lr * s, "weight_decay": wd}
                       for t, (_, s, wd) in zip(tensors, GROUPS)], opt.lr)
    At, bt = torch.tensor(A), torch.tensor(b)
    for t in range(200):
        lr = opt.lr * (1.0 - t / 400)  # a decaying lr: a decoupled decay's factor follows it
        opt.step(theta, lambda: (0.5 * theta @ A @ theta - b @ theta, A @ theta - b), lr=lr)
        for group, (_, s, _) in zip(topt.param_groups, GROUPS):
            group["lr"] = lr * s
        topt.zero_grad()
        x = torch.cat(tensors)
        (0.5 * x @ At @ x - bt @ x).backward()
        topt.step()
    np.testing.assert_allclose(theta, torch.cat(tensors).detach().numpy(), rtol=1e-10, atol=1e-12)
    for ours, theirs in state.items():
        expected = torch.cat([topt.state[t][theirs] for t in tensors]).numpy()
        np.testing.assert_allclose(opt.state[ours], expected, rtol=1e-10, atol=1e-12)


def _model(seed=0):
    rng = np.random.default_rng(seed)
    return nn.Sequential(nn.Linear(5, 8, rng=rng), nn.ReLU(), nn.Linear(8, 8, rng=rng), nn.Tanh(), nn.Linear(8, 3, rng=rng))


def test_fit_gives_the_groups_to_the_optimizer_and_to_the_l2_term():
    """One full-batch SGD step of fit = θ − lr·(∇loss + (λ/m)·c·W + μ·c·θ) with each layer's c, computed apart."""
    X, y = blobs(n=64, features=5, classes=3, seed=1)
    model = _model()
    params = descend.pack(model)
    model[0].set_weight_decay_scale(0.0)
    model[2].set_weight_decay_scale(0.25)
    c = np.ones(params.theta.size)  # each layer's multiplier, laid out from the layout, not by the code under test
    for name in ("0.weight", "0.bias"):
        c[params.entry(name).slice] = 0.0
    for name in ("2.weight", "2.bias"):
        c[params.entry(name).slice] = 0.25
    np.testing.assert_array_equal(params.weight_decay_scale(), c)
    theta0 = params.theta.astype(np.float64)
    objective = Objective(model, params)  # no L2: the data gradient alone
    objective.batch(X, y)
    _, g = objective()
    g = g.astype(np.float64)
    lam, mu, lr = 0.3, 0.2, 0.1
    weights = params.mask("weight")
    expected = theta0 - lr * (g + lam / 64 * c * weights * theta0 + mu * c * theta0)
    descend.fit(model, X, y, optimizer=optim.SGD(lr=lr, weight_decay=mu), steps=1, batch_size=None, l2=lam,
                divergence=None)
    np.testing.assert_allclose(params.theta, expected, rtol=1e-5, atol=1e-7)
    assert not np.allclose(params.theta, theta0 - lr * (g + lam / 64 * weights * theta0 + mu * theta0), atol=1e-5)


def test_the_l2_term_takes_each_groups_lambda():
    X, y = blobs(n=32, features=5, classes=3, seed=2)
    model = _model()
    params = descend.pack(model, dtype=np.float64)
    model[2].set_weight_decay_scale(3.0)
    model[4].set_weight_decay_scale(0.0)
    plain, l2 = Objective(model, params), Objective(model, params, l2=0.5, m=32)
    plain.batch(X.astype(np.float64), y)
    l2.batch(X.astype(np.float64), y)
    J0, g0 = plain()
    g0 = g0.copy()
    J, g = l2()
    w0, w2 = params.view("0.weight"), params.view("2.weight")
    assert J == pytest.approx(J0 + 0.5 * 0.5 / 32 * (np.sum(w0 ** 2) + 3.0 * np.sum(w2 ** 2)), rel=1e-12)
    expected = g0.copy()
    expected[params.entry("0.weight").slice] += 0.5 / 32 * params.theta[params.entry("0.weight").slice]
    expected[params.entry("2.weight").slice] += 3.0 * 0.5 / 32 * params.theta[params.entry("2.weight").slice]
    np.testing.assert_allclose(g, expected, rtol=1e-12, atol=1e-15)


@pytest.mark.parametrize("make", [lambda: optim.AdamW(lr=0.01, weight_decay=0.5),
                                  lambda: optim.Adam(lr=0.01, weight_decay=0.1),
                                  lambda: optim.SGD(lr=0.05, momentum=0.9, weight_decay=0.1)])
def test_frozen_parameters_stay_bit_identical_with_decay_groups(make):
    X, y = blobs(n=64, features=5, classes=3, seed=1)
    model = _model()
    params = descend.pack(model)
    model[0].freeze()
    model[0].set_weight_decay_scale(2.0)  # a frozen layer's decay scale changes nothing
    model[2].set_lr_scale(0.1).set_weight_decay_scale(0.5)
    model[4].set_weight_decay_scale(0.0)
    frozen = ~params.trainable()
    before = params.theta.copy()
    descend.fit(model, X, y, optimizer=make(), steps=100, l2=0.1, batch_size=16, divergence=None)
    np.testing.assert_array_equal(params.theta[frozen], before[frozen])
    assert np.abs(params.theta[~frozen] - before[~frozen]).max() > 1e-3


def test_the_step_leaves_the_gradient_alone_and_groups_clear():
    """The decay of a group is the kernel's, per run of θ: the caller's gradient is not rewritten; None clears."""
    theta, g = np.array([1.0, -2.0, 3.0, 0.5]), np.array([0.1, 0.2, -0.3, 0.4])
    opt = optim.AdamW(lr=0.1, weight_decay=0.5)
    opt.set_weight_decay_scale(np.array([0.0, 0.0, 1.0, 2.0]))
    opt.step(theta, lambda: (0.0, g))
    np.testing.assert_array_equal(g, [0.1, 0.2, -0.3, 0.4])
    # first AdamW step: θ(1 − lr·c·λ) − lr·sign(g) (m̂/√v̂ = g/|g|, eps aside)
    np.testing.assert_allclose(theta, np.array([1.0, -2.0, 3.0 * 0.95, 0.5 * 0.9]) - 0.1 * np.sign(g), rtol=1e-7)
    opt.set_weight_decay_scale(None)
    assert opt.weight_decay_scale is None
    before = theta.copy()
    opt.step(theta, lambda: (0.0, g))  # the second step: every value decays by the one λ again
    m, v = 0.9 * 0.1 * g + 0.1 * g, 0.999 * 0.001 * g * g + 0.001 * g * g
    expected = before * (1 - 0.1 * 0.5) - 0.1 / (1 - 0.9 ** 2) * m / (np.sqrt(v) / np.sqrt(1 - 0.999 ** 2) + 1e-8)
    np.testing.assert_allclose(theta, expected, rtol=1e-12)


def test_bad_decay_groups_are_refused_before_anything_changes():
    with pytest.raises(ValueError, match="weight_decay_scale must be a flat vector of finite values ≥ 0"):
        optim.Adam().set_weight_decay_scale(np.array([1.0, -1.0]))
    with pytest.raises(ValueError, match="weight decay scale"):
        _model().set_weight_decay_scale(-0.5)
    opt = optim.SGD(lr=0.1, weight_decay=0.1)
    opt.set_weight_decay_scale(np.array([0.0, 1.0, 1.0]))
    theta = np.ones(4)
    with pytest.raises(ValueError, match="weight_decay_scale has 3 entries but theta 4"):
        opt.step(theta, lambda: (0.0, np.ones(4)))
    np.testing.assert_array_equal(theta, np.ones(4))
    assert opt.t == 0


def test_transfer_gives_the_backbone_its_weight_decay_scale(tmp_path, capsys):
    from descend.cli import main
    from descend.transfer import transfer_model
    model = transfer_model(_model(), input_shape=(5,), num_classes=3, backbone_lr_scale=0.1,
                           backbone_weight_decay_scale=0.0, rng=np.random.default_rng(0))
    params = descend.pack(model)
    head = np.zeros(params.theta.size, dtype=bool)
    head[params.entry("4.weight").slice] = head[params.entry("4.bias").slice] = True
    np.testing.assert_array_equal(params.weight_decay_scale(), np.where(head, 1.0, 0.0))
    with pytest.raises(ValueError, match="--backbone-weight-decay-scale must be ≥ 0, got -1"):
        transfer_model(_model(), input_shape=(5,), num_classes=3, backbone_weight_decay_scale=-1.0,
                       rng=np.random.default_rng(0))
    assert main(["train", "--hidden", "16,8", "--epochs", "1", "--quiet", "--out", str(tmp_path / "a")]) == 0
    assert main(["train", "--init-from", str(tmp_path / "a"), "--backbone-weight-decay-scale", "0.5", "--hidden",
                 "16,8", "--epochs", "1", "--quiet", "--out", str(tmp_path / "b")]) == 0
    import json
    assert json.loads((tmp_path / "b" / "transfer.json").read_text())["backbone_weight_decay_scale"] == 0.5
    capsys.readouterr()
    assert main(["train", "--backbone-weight-decay-scale", "0", "--out", str(tmp_path / "c")]) == 2
    assert "need --init-from" in capsys.readouterr().err and not (tmp_path / "c").exists()


@pytest.mark.parametrize("make", [lambda lr, wd: optim.AdamW(lr=lr, weight_decay=wd),
                                  lambda lr, wd: optim.NAdam(lr=lr, weight_decay=wd, decoupled_weight_decay=True)])
def test_a_decoupled_decay_is_rounded_once_to_float32_as_pytorch_does(make):
    # with a zero gradient the step is the decay alone: θ ← d·θ, d = 1 − lr·c·λ computed in float64 and
    # rounded once to float32 (PyTorch's param.mul_(1 - lr * weight_decay)); this lr and λ are a pair for which
    # forming d in float32 arithmetic gives another float32 (0.99686563 instead of 0.9968656)
    lr, wd = 0.0626879955957, 0.05
    theta = np.random.default_rng(0).standard_normal(1000).astype(np.float32)
    c = np.r_[np.ones(500), np.full(500, 0.5)]  # two groups: the second with half the decay
    opt = make(lr, wd)
    opt.set_weight_decay_scale(c)
    expected = theta * np.where(c == 1, np.float32(1.0 - lr * wd), np.float32(1.0 - lr * 0.5 * wd))
    opt.step(theta, lambda: (0.0, np.zeros_like(theta)))
    np.testing.assert_array_equal(theta, expected)
