"""step(..., keep=buf): θ's previous value written in the optimizer's own pass, for every kernel and method."""
import math
import re
import warnings

import numpy as np

from descend import pack
from descend.train import SNAPSHOT_EVERY
import pytest

from descend.optim import LBFGS, SGD, Adagrad, Adam, AdamW, NAdam, Newton, RMSprop
from descend.optim import _kernels
from descend.train import fit

from _trainutil import last_good, Recorder, blobs, mlp

# every kernel of descend.optim._kernels, and the kernel-less methods
CONFIGS = {
    "sgd": lambda: SGD(lr=0.05, weight_decay=0.01),
    "sgd_momentum": lambda: SGD(lr=0.05, momentum=0.9, dampening=0.1),
    "sgd_nesterov": lambda: SGD(lr=0.05, momentum=0.9, nesterov=True),
    "sgd_ewa": lambda: SGD(lr=0.05, momentum=0.9, momentum_form="ewa", bias_correction=True),
    "sgd_cs231n": lambda: SGD(lr=0.05, momentum=0.9, momentum_form="cs231n"),
    "adagrad": lambda: Adagrad(lr=0.1),
    "rmsprop": lambda: RMSprop(lr=0.01, centered=True, momentum=0.5),
    "adam": lambda: Adam(lr=0.01),
    "amsgrad": lambda: Adam(lr=0.01, amsgrad=True),
    "adamw": lambda: AdamW(lr=0.01),
    "nadam": lambda: NAdam(lr=0.01),
    "lbfgs": lambda: LBFGS(lr=1.0),
    "newton": lambda: Newton(),
}


def problem(n, dtype, seed=0):
    rng = np.random.default_rng(seed)
    scale = np.linspace(0.5, 3.0, n).astype(dtype)
    target = rng.standard_normal(n).astype(dtype)

    def make_closure(theta):
        def closure():
            d = theta - target
            return float(0.5 * np.dot(scale * d, d)), (scale * d).astype(dtype)
        return closure

    return rng.standard_normal(n).astype(dtype), make_closure


@pytest.mark.parametrize("name", sorted(CONFIGS))
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_keep_receives_the_previous_theta_and_changes_nothing_else(name, dtype):
    n = 6 if name == "newton" else 50
    theta0, make_closure = problem(n, dtype)
    plain, kept = CONFIGS[name](), CONFIGS[name]()
    a, b = theta0.copy(), theta0.copy()
    keep = np.full_like(b, np.nan)
    for i in range(4):
        before = b.copy()
        la = plain.step(a, make_closure(a))
        lb = kept.step(b, make_closure(b), keep=keep)
        assert la == lb
        assert np.array_equal(keep, before)  # bit for bit: θ as it was before this step
        assert np.array_equal(a, b)  # the update itself is the same with and without keep
        if i == 0:  # (Newton and L-BFGS solve the quadratic at once)
            assert not np.array_equal(a, before)
    for k, v in plain.state_dict().items():
        w = kept.state_dict()[k]
        assert np.array_equal(v, w) if isinstance(v, np.ndarray) else v == w


@pytest.mark.parametrize("name", ["sgd_momentum", "rmsprop", "rmsprop_plain", "adam", "amsgrad", "nadam"])
def test_parallel_kernels_equal_the_serial_ones_with_and_without_keep(name):
    """θ this large runs the prange (threaded) compilation; element by element it must give what the
    serial compilation gives on a small θ, with keep and without (None compiles its own version)."""
    make = dict(CONFIGS, rmsprop_plain=lambda: RMSprop(lr=0.01))[name]
    n = _kernels.PARALLEL_MIN + 3
    theta0, make_closure = problem(n, np.float32)
    big, big_kept, small = theta0.copy(), theta0.copy(), theta0[:1000].copy()
    opts = make(), make(), make()
    keep = np.empty_like(big_kept)

    def small_closure():  # the gradient is element-wise: its first 1000 entries depend on small only
        loss, g = make_closure(np.concatenate([small, theta0[1000:]]))()
        return loss, g[:1000].copy()

    for _ in range(3):
        before = big_kept.copy()
        opts[0].step(big, make_closure(big))
        opts[1].step(big_kept, make_closure(big_kept), keep=keep)
        opts[2].step(small, small_closure)
        assert np.array_equal(keep, before)
        assert np.array_equal(big, big_kept)
        assert np.array_equal(big[:1000], small)


@pytest.mark.parametrize("name", ["sgd", "adam", "lbfgs"])
@pytest.mark.parametrize("bad, message", [
    (lambda t: np.empty(len(t) + 1, t.dtype), r"keep must be .* shaped like theta \(50,\) with dtype float32, got \(51,\)"),
    (lambda t: np.empty(len(t), np.float64), r"keep must be .* with dtype float32, got \(50,\) float64"),
    (lambda t: np.empty(2 * len(t), t.dtype)[::2], r"keep must be a writeable C-contiguous array"),
    (lambda t: t, r"keep must not overlap theta"),
    (lambda t: t.tolist(), r"keep must be .* got list"),
])
def test_a_bad_keep_is_refused_before_anything_changes(name, bad, message):
    theta, make_closure = problem(50, np.float32)
    start = theta.copy()
    opt = CONFIGS[name]()
    calls = []
    closure = make_closure(theta)
    with pytest.raises(ValueError, match=message):
        opt.step(theta, lambda: calls.append(1) or closure(), keep=bad(theta))
    assert not calls and np.array_equal(theta, start) and opt.t == 0 and not opt.state


class PlainSGD:
    """A user's own optimizer: step(theta, closure, lr) without keep."""

    lr = 0.05

    def step(self, theta, closure, lr=None):
        loss, g = closure()
        theta -= (self.lr if lr is None else lr) * g
        return loss

    def state_dict(self):
        return {}


def test_divergence_with_an_optimizer_that_has_no_keep_still_restores_the_last_good_theta():
    X, y = blobs()
    rec, model = Recorder(), mlp()
    lr = lambda step: 1e30 if step == 6 else 0.05  # noqa: E731
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        h = fit(model, X, y, optimizer=PlainSGD(), schedule=lr, schedule_unit="step", epochs=5, batch_size=16,
                callbacks=[rec])
    assert h.steps == 8 and re.match(r"loss became nan at step 8: diverged", h.stop_reason)
    theta = pack(model).theta
    assert np.isfinite(theta).all() and np.array_equal(theta, last_good(rec, 8, SNAPSHOT_EVERY))
    assert math.isfinite(h.step_loss[6])
