"""Transfer learning: frozen parameters stay bit-identical under every optimizer, decay, L2, clipping and averaging;
per-parameter lr scales equal PyTorch's parameter groups; a new head re-packs θ keeping the other values."""
from __future__ import annotations

import numpy as np
import pytest
import torch

import descend
from descend import nn, optim
from descend.optim import clip_grad_norm_
from descend.train import Averaging, Objective

from _trainutil import blobs

OPTIMIZERS = {
    "sgd": lambda: optim.SGD(lr=0.05),
    "sgd_momentum_wd": lambda: optim.SGD(lr=0.05, momentum=0.9, weight_decay=0.1),
    "sgd_nesterov": lambda: optim.SGD(lr=0.05, momentum=0.9, nesterov=True),
    "sgd_ewa": lambda: optim.SGD(lr=0.05, momentum=0.9, momentum_form="ewa", bias_correction=True),
    "sgd_cs231n": lambda: optim.SGD(lr=0.05, momentum=0.9, momentum_form="cs231n"),
    "adagrad": lambda: optim.Adagrad(lr=0.05, weight_decay=0.1),
    "rmsprop": lambda: optim.RMSprop(lr=0.01, momentum=0.5, centered=True, weight_decay=0.1),
    "adam_amsgrad": lambda: optim.Adam(lr=0.01, amsgrad=True, weight_decay=0.1),
    "adamw": lambda: optim.AdamW(lr=0.01, weight_decay=0.5),
    "nadam": lambda: optim.NAdam(lr=0.01, weight_decay=0.1, decoupled_weight_decay=True),
    "lbfgs": lambda: optim.LBFGS(lr=0.5, max_iter=3),
}


def _model(seed=0):
    rng = np.random.default_rng(seed)
    return nn.Sequential(nn.Linear(5, 8, rng=rng), nn.BatchNorm1d(8), nn.ReLU(), nn.Linear(8, 8, rng=rng), nn.Tanh(),
                         nn.Linear(8, 3, rng=rng))


@pytest.mark.parametrize("name", sorted(OPTIMIZERS))
def test_frozen_parameters_stay_bit_identical_through_fit(name):
    X, y = blobs(n=64, features=5, classes=3, seed=1)
    model = _model()
    params = descend.pack(model)
    for layer in model[:4]:
        layer.freeze()
    frozen = ~params.trainable()
    assert frozen.sum() == 5 * 8 + 8 + 2 * 8 + 8 * 8 + 8
    before, stats = params.theta.copy(), {k: v.copy() for k, v in params.buffers().items()}
    average = Averaging(kind="ema", beta=0.9)
    full = name == "lbfgs"
    descend.fit(model, X, y, optimizer=OPTIMIZERS[name](), steps=100 if not full else 20, l2=0.1, average=average,
                batch_size=None if full else 16, divergence=None)
    np.testing.assert_array_equal(params.theta[frozen], before[frozen])
    assert np.abs(params.theta[~frozen] - before[~frozen]).max() > 1e-3  # the head did train
    for k, v in params.buffers().items():  # frozen BatchNorm: running statistics kept (the default)
        np.testing.assert_array_equal(v, stats[k])
    average.apply(params)
    np.testing.assert_array_equal(params.theta[frozen], before[frozen])


def test_frozen_under_adamw_with_gradient_clipping_in_the_closure():
    X, y = blobs(n=64, features=5, classes=3, seed=1)
    model = _model()
    params = descend.pack(model)
    model[0].freeze()
    opt = optim.AdamW(lr=0.01, weight_decay=0.5)
    opt.set_lr_scale(params.lr_scale())
    objective = Objective(model, params, l2=0.1, m=64)
    objective.batch(X, y)

    def clipped():
        loss, grad = objective()
        clip_grad_norm_(grad, 0.1)
        return loss, grad

    frozen = ~params.trainable()
    before = params.theta.copy()
    for _ in range(100):
        opt.step(params.theta, clipped)
    np.testing.assert_array_equal(params.theta[frozen], before[frozen])
    assert not np.array_equal(params.theta[~frozen], before[~frozen])


def test_running_statistics_can_follow_the_new_data():
    X, y = blobs(n=64, features=5, classes=3, seed=1)
    model = _model()
    params = descend.pack(model)
    model[0].freeze()
    model[1].freeze(running_stats=False)
    stats = {k: v.copy() for k, v in params.buffers().items()}
    before = params.theta.copy()
    descend.fit(model, X, y, optimizer=optim.Adam(), epochs=1)
    frozen = ~params.trainable()
    np.testing.assert_array_equal(params.theta[frozen], before[frozen])
    assert not np.array_equal(params.buffers()["1.running_mean"], stats["1.running_mean"])


@pytest.mark.parametrize("make, torch_make", [
    (lambda: optim.SGD(lr=0.1, momentum=0.9), lambda g, lr: torch.optim.SGD(g, lr=lr, momentum=0.9)),
    (lambda: optim.Adam(lr=0.05), lambda g, lr: torch.optim.Adam(g, lr=lr)),
    (lambda: optim.AdamW(lr=0.05, weight_decay=0.3), lambda g, lr: torch.optim.AdamW(g, lr=lr, weight_decay=0.3)),
    (lambda: optim.RMSprop(lr=0.01, momentum=0.5), lambda g, lr: torch.optim.RMSprop(g, lr=lr, momentum=0.5)),
])
def test_lr_scales_equal_pytorch_parameter_groups(make, torch_make):
    """θ = (backbone, head): backbone at lr/10, head at lr, on the gradient of a fixed quadratic, float64, 200 steps."""
    rng = np.random.default_rng(0)
    n, nb = 12, 8
    A = rng.standard_normal((n, n))
    A = A @ A.T / n + np.eye(n)
    b = rng.standard_normal(n)
    theta = rng.standard_normal(n)
    scale = np.r_[np.full(nb, 0.1), np.ones(n - nb)]
    opt = make()
    opt.set_lr_scale(scale)
    lr = opt.lr
    tb = torch.tensor(theta[:nb].copy(), requires_grad=True)
    th = torch.tensor(theta[nb:].copy(), requires_grad=True)
    topt = torch_make([{"params": [tb], "lr": lr * 0.1}, {"params": [th]}], lr)
    At, bt = torch.tensor(A), torch.tensor(b)
    for _ in range(200):
        opt.step(theta, lambda: (0.5 * theta @ A @ theta - b @ theta, A @ theta - b))
        topt.zero_grad()
        x = torch.cat([tb, th])
        (0.5 * x @ At @ x - bt @ x).backward()
        topt.step()
    np.testing.assert_allclose(theta, torch.cat([tb, th]).detach().numpy(), rtol=1e-10, atol=1e-12)


def test_fit_uses_the_modules_lr_scale():
    X, y = blobs(n=64, features=5, classes=3, seed=1)
    a, b = _model(), _model()
    b[0].set_lr_scale(0.0)  # a scale of 0 is a freeze through the lr: same θ as requires_grad=False...
    a[0].freeze(running_stats=False)
    pa, pb = descend.pack(a), descend.pack(b)
    descend.fit(a, X, y, optimizer=optim.SGD(lr=0.1), epochs=2)
    descend.fit(b, X, y, optimizer=optim.SGD(lr=0.1), epochs=2, l2=0.0)
    np.testing.assert_array_equal(pa.theta, pb.theta)  # ...for plain SGD without L2 (the gradient differs not)


def test_a_new_head_repacks_theta_keeping_the_other_values():
    X, y = blobs(n=64, features=5, classes=3, seed=1)
    model = _model()
    params = descend.pack(model)
    descend.fit(model, X, y, optimizer=optim.Adam(), epochs=1)
    kept = {e.name: e.view(params.theta).copy() for e in params.layout if not e.name.startswith("5.")}
    with pytest.raises(ValueError, match="takes 7 inputs but the layer it replaces took 8.*Linear\\(8, 5"):
        model[-1] = nn.Linear(7, 5, rng=np.random.default_rng(1))
    model[-1] = nn.Linear(8, 5, rng=np.random.default_rng(1))
    new = descend.pack(model)
    assert new.theta is not params.theta and new.theta.size == params.theta.size - 27 + 45
    for name, v in kept.items():
        np.testing.assert_array_equal(new.view(name), v)
    for layer in model[:-1]:
        layer.freeze()
    y5 = (y + 2) % 5
    descend.fit(model, X, y5, optimizer=optim.Adam(lr=0.01), epochs=2)
    for name, v in kept.items():
        np.testing.assert_array_equal(new.view(name), v)


def test_everything_frozen_is_refused_before_anything_changes():
    X, y = blobs(n=64, features=5, classes=3, seed=1)
    model = _model().freeze()
    params = descend.pack(model)
    before = params.theta.copy()
    with pytest.raises(ValueError, match="every parameter of the model is frozen"):
        descend.fit(model, X, y, optimizer=optim.Adam(), epochs=1)
    np.testing.assert_array_equal(params.theta, before)
    with pytest.raises(ValueError, match="lr_scale is 0 for every parameter"):
        optim.Adam().set_lr_scale(np.zeros(3))
    with pytest.raises(ValueError, match="lr_scale has 3 entries but theta 4"):
        o = optim.Adam()
        o.set_lr_scale(np.ones(3))
        o.step(np.zeros(4), lambda: (0.0, np.zeros(4)))


def test_bfgs_keeps_frozen_parameters_fixed():
    """BFGS ends its step through the same lr-scale mechanism as the other optimizers."""
    from descend.optim import BFGS
    theta = np.array([1.0, 2.0, -1.0])
    opt = BFGS(max_iter=3)
    opt.set_lr_scale(np.array([0.0, 1.0, 1.0]))
    opt.step(theta, lambda: (float(theta @ theta), 2 * theta.copy()))
    assert theta[0] == 1.0 and abs(theta[1]) < 1e-6 and abs(theta[2]) < 1e-6  # x² minimized in the free ones


def test_a_second_fit_after_unfreezing_trains_the_unfrozen_layer():
    """The optimizer's groups come from the model at every fit: an earlier fit's frozen layer is not kept frozen."""
    from descend import nn, pack
    from descend.optim import Adam
    from descend.train import fit
    r = np.random.default_rng(0)
    X, y = r.standard_normal((40, 4)).astype(np.float32), r.integers(0, 2, 40)
    model = nn.Sequential(nn.Linear(4, 6, rng=r), nn.ReLU(), nn.Linear(6, 2, rng=r))
    opt = Adam(lr=0.05)
    model[0].freeze()
    fit(model, X, y, optimizer=opt, epochs=1, batch_size=20)
    model[0].unfreeze()
    before = pack(model).view("0.weight").copy()
    fit(model, X, y, optimizer=opt, epochs=1, batch_size=20)
    assert not np.array_equal(pack(model).view("0.weight"), before)
