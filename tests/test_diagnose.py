"""Babysitting checks on constructed cases whose answers are known in advance."""
import math

import numpy as np
import pytest

from descend import nn, optim
from descend.diagnose.activations import activation_stats, layer_stats, trace
from descend.diagnose.checks import (Probe, gap_verdict, initial_loss_check, loss_curve_verdict,
                                     overfit_small_subset)
from descend.diagnose.lr_range import lr_range_test
from descend.diagnose.updates import update_ratios
from descend.train import History


def _mlp(rng, d=8, h=16, c=4, init=None):
    return nn.Sequential(nn.Linear(d, h, init=init, rng=rng), nn.ReLU(), nn.Linear(h, c, init=init, rng=rng))


def _data(rng, n=200, d=8, c=4):
    X = rng.standard_normal((n, d)).astype(np.float32)
    y = (X[:, :c].argmax(axis=1)).astype(np.int64)  # learnable labels
    return X, y


# ----------------------------------------------------------------------------------- initial loss

def test_initial_loss_is_ln_C_with_zero_weights(rng):
    model = nn.Sequential(nn.Linear(8, 5, init=nn.init.zeros, rng=rng))
    X = rng.standard_normal((50, 8)).astype(np.float32)
    y = rng.integers(0, 5, 50)
    r = initial_loss_check(model, X, y, num_classes=5)
    assert r.loss == pytest.approx(math.log(5), rel=1e-6)
    assert r.ok and r.problem is None and "as expected" in r.verdict


def test_initial_loss_too_high_with_large_weights(rng):
    import functools
    model = _mlp(rng, init=functools.partial(nn.init.normal, std=5.0))
    X, y = _data(rng)
    r = initial_loss_check(model, X, y, num_classes=4)
    assert not r.ok and r.problem == "init_loss_high" and r.loss > 1.5 * math.log(4)


def test_initial_loss_with_l2_goes_up_by_the_penalty(rng):
    model = _mlp(rng)
    X, y = _data(rng)
    r = initial_loss_check(model, X, y, num_classes=4, l2=0.5, n_train=400)
    W = [p.data for name, p in model.named_parameters() if name.endswith("weight")]
    penalty = 0.5 * 0.5 / 400 * sum(float(np.sum(w.astype(np.float64) ** 2)) for w in W)
    assert r.loss_with_l2 == pytest.approx(r.loss + penalty, rel=1e-5)
    assert r.loss_with_l2 > r.loss and r.ok


# ---------------------------------------------------------------------------------- overfit subset

def test_overfit_small_subset_reaches_zero_and_restores_theta(rng):
    model = _mlp(rng, h=32)
    X, y = _data(rng)
    params = nn.pack(model)
    before = params.theta.copy()
    opt = optim.Adam(lr=1e-2)
    r = overfit_small_subset(model, X, y, optimizer=opt, n=20, steps=500)
    assert r.ok and r.final_loss < 0.1 and r.train_accuracy == 1.0 and r.n == 20
    np.testing.assert_array_equal(params.theta, before)
    assert opt.t == 0 and not opt.state  # the optimizer's state is put back too


def test_overfit_fails_when_identical_inputs_have_different_labels(rng):
    model = _mlp(rng)
    X = np.ones((40, 8), np.float32)
    y = np.arange(40) % 4
    r = overfit_small_subset(model, X, y, optimizer=optim.Adam(lr=1e-2), n=20, steps=200)
    assert not r.ok and r.problem == "cannot_overfit"
    assert r.train_accuracy < 0.5  # the best constant prediction gets at most the largest class share


# ------------------------------------------------------------------------------------ loss curves

def _history(loss):
    h = History()
    h.step_loss = [float(v) for v in loss]
    return h


def _bias_corrected_ewa(x, beta=0.9):
    v, out = 0.0, []
    for t, value in enumerate(x, 1):
        v = beta * v + (1 - beta) * value
        out.append(v / (1 - beta ** t))
    return np.array(out)


def _drop_and_curvature(loss):
    """The verdict's numbers re-derived from their definitions: the start is the raw mean of the first tenth, the
    middle and the end are means of the smoothed curve over a tenth around the middle and over the last tenth."""
    s, k = _bias_corrected_ewa(loss), len(loss) // 10
    start, end, half = np.mean(loss[:k]), np.mean(s[-k:]), len(loss) // 2
    mid = np.mean(s[half - k // 2: half + k // 2 + 1])
    return 1 - end / start, (start - mid) / (mid - end)


def test_loss_curve_healthy_exponential_decay():
    t = np.arange(400)
    loss = 0.05 + 2.3 * np.exp(-t / 40)
    r = loss_curve_verdict(_history(loss))
    drop, curvature = _drop_and_curvature(loss)
    assert r.ok and r.shape == "healthy"
    assert r.curvature == pytest.approx(curvature, rel=1e-9) and r.drop == pytest.approx(drop, rel=1e-9)
    # near the continuous curve's own ratio (f(0) − f(200)) / (f(200) − f(399)) ≈ 148, far from a line's 1
    assert 50 < r.curvature < 150


def test_loss_curve_explosion_names_lr_too_high():
    loss = list(2.3 - 0.001 * np.arange(50)) + [float("nan")]
    r = loss_curve_verdict(_history(loss))
    assert r.shape == "explosion" and r.problem == "lr_too_high" and "step 51" in r.verdict
    r = loss_curve_verdict(_history(list(np.linspace(2.3, 8.0, 60))))
    assert r.problem == "lr_too_high"


def test_loss_curve_slow_linear_decrease_names_lr_too_low():
    r = loss_curve_verdict(_history(np.linspace(2.3, 2.0, 400)))
    assert r.shape == "linear" and r.problem == "lr_too_low"
    drop, curvature = _drop_and_curvature(np.linspace(2.3, 2.0, 400))
    assert r.curvature == pytest.approx(curvature, rel=1e-9) and r.drop == pytest.approx(drop, rel=1e-9)
    assert r.curvature == pytest.approx(1.0, rel=0.05)  # a line: as steep in the second half as in the first


def test_loss_curve_flat_start_names_bad_init():
    t = np.arange(500)
    loss = np.where(t < 150, 2.3, 0.1 + 2.2 * np.exp(-(t - 150) / 30))
    r = loss_curve_verdict(_history(loss))
    assert r.shape == "flat_start" and r.problem == "bad_init"


def test_loss_curve_flat_names_not_learning():
    r = loss_curve_verdict(_history(np.full(300, 2.3)))
    assert r.shape == "flat" and r.problem == "not_learning"


def test_loss_curve_noisy_but_falling_is_ok_with_advice():
    rng = np.random.default_rng(0)
    t = np.arange(600)
    smooth = 0.3 + 2.0 * np.exp(-t / 60)
    r = loss_curve_verdict(_history(smooth * (1 + 0.8 * rng.standard_normal(600).clip(-1, 1))))
    assert r.shape == "noisy" and r.ok and "larger batch" in r.verdict


# ------------------------------------------------------------------------------------ train/val gap

@pytest.mark.parametrize("train, val, problem", [
    (0.99, 0.97, None), (1.0, 0.80, "overfitting"), (0.60, 0.58, "underfitting"), (0.45, 0.11, "no_signal")])
def test_gap_verdicts(train, val, problem):
    r = gap_verdict(train, val, num_classes=10)
    assert r.problem == problem and r.ok == (problem is None)
    assert r.gap == pytest.approx(train - val)


def test_gap_reads_history_and_needs_chance():
    h = History()
    h.epochs = [{"train_accuracy": 0.5, "val_accuracy": 0.5}, {"train_accuracy": 1.0, "val_accuracy": 0.7}]
    assert gap_verdict(history=h, num_classes=3).problem == "overfitting"
    with pytest.raises(ValueError, match="num_classes"):
        gap_verdict(0.9, 0.9)


# ------------------------------------------------------------------------------------- activations

def test_layer_stats_saturation_and_dead_units():
    a = np.array([[0.995, 0.5, -0.999, 0.0]] * 3, np.float32)
    s = layer_stats("t", "tanh", a)
    assert s.saturated == pytest.approx(0.5) and s.dead is None
    sig = layer_stats("s", "sigmoid", np.array([[0.005, 0.5, 0.995, 0.7]], np.float32))
    assert sig.saturated == pytest.approx(0.5)
    r = np.array([[0.0, 1.0, 0.0], [0.0, 0.0, 2.0], [0.0, 3.0, 0.0]], np.float32)
    s = layer_stats("r", "relu", r)
    assert s.dead == pytest.approx(1 / 3)  # unit 0 is never active; units 1, 2 fire at least once
    assert s.mean == pytest.approx(r.mean()) and s.std == pytest.approx(r.std())


def test_activation_stats_finds_dead_relus_from_negative_biases(rng):
    model = _mlp(rng)
    model[0].bias.data[...] = -100.0
    X, _ = _data(rng)
    rep = activation_stats(model, X)
    assert [s.kind for s in rep.layers] == ["relu"]
    assert rep.layers[0].dead == 1.0 and rep.problem == "dead_relu" and not rep.ok


def test_activation_stats_restores_mode_and_batchnorm_buffers(rng):
    model = nn.Sequential(nn.Linear(8, 16, rng=rng), nn.BatchNorm1d(16), nn.ReLU(), nn.Linear(16, 2, rng=rng))
    X = rng.standard_normal((64, 8)).astype(np.float32) * 3 + 1
    mean = model[1].running_mean.copy()
    rep = activation_stats(model, X, training=True, all_layers=True)
    np.testing.assert_array_equal(model[1].running_mean, mean)
    assert model.training
    assert len(rep.layers) == 4 and len(trace(model, X)) == 4


# ---------------------------------------------------------------------------------- update ratios

def test_update_ratio_of_one_sgd_step_is_lr_times_grad_over_weight(rng):
    model = nn.Sequential(nn.Linear(8, 4, rng=rng))
    X, y = _data(rng, n=32)
    params = nn.pack(model)
    w0 = params.view("0.weight").copy()
    # the expected ratio from an independent forward/backward at θ₀
    from descend.nn import functional as F
    params.zero_grad()
    F.cross_entropy(model(X), y).backward()
    g = params.view("0.weight", of="grad").copy()
    r = update_ratios(model, X, y, optimizer=optim.SGD(lr=0.01), steps=1, batch_size=32)
    u = next(u for u in r.layers if u.name == "0.weight")
    assert u.ratio == pytest.approx(0.01 * np.linalg.norm(g) / np.linalg.norm(w0), rel=1e-4)
    assert u.grad_norm == pytest.approx(np.linalg.norm(g), rel=1e-4)
    np.testing.assert_array_equal(params.view("0.weight"), w0)  # restored


@pytest.mark.parametrize("lr, problem", [(1e-3, None), (1.0, "update_too_large"), (1e-7, "update_too_small")])
def test_update_ratio_verdicts_for_adam(rng, lr, problem):
    model = _mlp(rng)
    X, y = _data(rng)
    r = update_ratios(model, X, y, optimizer=optim.Adam(lr=lr))
    assert r.problem == problem


# ---------------------------------------------------------------------------------- LR range test

def test_lr_range_sweep_is_exponential_stops_at_divergence_and_restores(rng):
    model = _mlp(rng, h=32)
    X, y = _data(rng, n=256)
    params = nn.pack(model)
    before = params.theta.copy()
    r = lr_range_test(model, X, y, optimizer=optim.SGD(lr=0.1), lr_min=1e-4, lr_max=1e3, steps=140)
    t = np.arange(len(r.lrs))
    np.testing.assert_allclose(r.lrs, 1e-4 * (1e7) ** (t / 139), rtol=1e-12)
    assert r.diverged_at is not None and len(r.lrs) < 140  # SGD at lr 1000 diverges before the end
    assert r.suggested_lr == pytest.approx(r.min_loss_lr / 10)
    # the minimum is located on the zero-phase smoothing: the bias-corrected EWA forward, then backward
    smooth = _bias_corrected_ewa(_bias_corrected_ewa(r.losses)[::-1])[::-1]
    np.testing.assert_allclose(r.smoothed, smooth, rtol=1e-12)
    assert r.min_loss_lr == r.lrs[int(np.argmin(smooth))]
    assert r.min_loss_lr < r.diverged_at
    np.testing.assert_array_equal(params.theta, before)


def test_lr_range_judges_the_configured_lr(rng):
    X, y = _data(rng, n=256)
    res = {lr: lr_range_test(_mlp(np.random.default_rng(0), h=32), X, y, optimizer=optim.SGD(lr=lr), lr_min=1e-5,
                             lr_max=1e2, steps=150) for lr in (1e-6, 50.0)}
    assert res[1e-6].problem == "lr_too_low"
    assert res[50.0].problem == "lr_too_high"


def test_probe_restores_optimizer_state_after_steps(rng):
    model = _mlp(rng)
    X, y = _data(rng)
    opt = optim.Adam(lr=1e-3)
    params = nn.pack(model)
    with Probe(model, opt) as p:
        p.step(X[:16], y[:16])
    opt.step(params.theta, lambda: (0.0, np.ones_like(params.theta)), lr=1e-3)
    saved = opt.state_dict()
    with Probe(model, opt) as p:
        p.step(X[:16], y[:16])
        p.step(X[16:32], y[16:32])
    after = opt.state_dict()
    assert after["t"] == saved["t"] == 1
    np.testing.assert_array_equal(after["m"], saved["m"])
