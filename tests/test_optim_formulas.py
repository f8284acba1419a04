"""One step of every optimizer and variant with injected state against its written formula (plain NumPy
float64 in the test), plus dtype, state round trip, validation, clipping and import-time checks."""
import math
import subprocess
import sys

import numpy as np
import pytest

from descend.optim import (LBFGS, SGD, Adagrad, Adam, AdamW, NAdam, Newton, Optimizer, RMSprop, clip_grad_norm_,
                           clip_grad_value_)

N = 9
RNG = np.random.default_rng(42)
THETA = RNG.standard_normal(N)
G = RNG.standard_normal(N)
M = RNG.standard_normal(N) * 0.3
V = RNG.random(N) * 0.5 + 0.01
V2 = V + RNG.random(N) * 0.2
B = RNG.standard_normal(N) * 0.2


def one_step(opt, t=0, dtype=np.float64, lr=None, **inject):
    """Inject state (buffers, scalars, counter) via load_state_dict, take one step with gradient G."""
    if inject or t:
        d = opt.state_dict()
        d["t"] = t
        d.update({k: (v.astype(dtype) if isinstance(v, np.ndarray) else v) for k, v in inject.items()})
        opt.load_state_dict(d)
    theta = THETA.astype(dtype)
    g = G.astype(dtype)
    calls = []

    def closure():
        calls.append(1)
        return 1.5, g

    loss = opt.step(theta, closure, lr=lr)
    assert loss == 1.5 and isinstance(loss, float)
    assert len(calls) == 1
    assert opt.t == t + 1
    return theta, opt.state


def close(a, b):
    np.testing.assert_allclose(a, b, rtol=1e-13, atol=1e-15)


# ------------------------------------------------------------------------------------------------- SGD
def test_sgd_plain_and_weight_decay():
    th, st = one_step(SGD(lr=0.1))
    close(th, THETA - 0.1 * G)
    assert st == {}
    th, _ = one_step(SGD(lr=0.1, weight_decay=0.01))
    close(th, THETA - 0.1 * (G + 0.01 * THETA))
    th, _ = one_step(SGD(lr=0.1), lr=0.03)  # lr override
    close(th, THETA - 0.03 * G)


def test_sgd_pytorch_momentum_first_and_later_step():
    th, st = one_step(SGD(lr=0.1, momentum=0.9))
    close(st["v"], G)  # first step: v = g
    close(th, THETA - 0.1 * G)
    th, st = one_step(SGD(lr=0.1, momentum=0.9, dampening=0.2, weight_decay=0.01), t=3, v=B)
    g = G + 0.01 * THETA
    v = 0.9 * B + 0.8 * g
    close(st["v"], v)
    close(th, THETA - 0.1 * v)


def test_sgd_nesterov():
    th, st = one_step(SGD(lr=0.1, momentum=0.9, nesterov=True), t=2, v=B)
    v = 0.9 * B + G
    close(st["v"], v)
    close(th, THETA - 0.1 * (G + 0.9 * v))


@pytest.mark.parametrize("bias_correction", [False, True])
def test_sgd_ewa_form(bias_correction):
    th, st = one_step(SGD(lr=0.1, momentum=0.9, momentum_form="ewa", bias_correction=bias_correction), t=3, v=B)
    v = 0.9 * B + 0.1 * G
    close(st["v"], v)
    close(th, THETA - 0.1 * (v / (1 - 0.9 ** 4) if bias_correction else v))
    th, st = one_step(SGD(lr=0.1, momentum=0.9, momentum_form="ewa", bias_correction=bias_correction))
    close(st["v"], 0.1 * G)  # v0 = 0
    close(th, THETA - 0.1 * (G if bias_correction else 0.1 * G))


def test_sgd_cs231n_form():
    th, st = one_step(SGD(lr=0.1, momentum=0.9, momentum_form="cs231n", weight_decay=0.01), t=3, v=B)
    v = 0.9 * B - 0.1 * (G + 0.01 * THETA)
    close(st["v"], v)
    close(th, THETA + v)


def test_cs231n_form_equals_pytorch_form_for_constant_lr():
    """v_cs231n = −lr·v_pytorch when lr is constant: identical iterates (a change of variable)."""
    a, b = THETA.copy(), THETA.copy()
    oa, ob = SGD(lr=0.05, momentum=0.9), SGD(lr=0.05, momentum=0.9, momentum_form="cs231n")
    for _ in range(20):
        oa.step(a, lambda: (0.0, np.tanh(a) + 0.1 * a))
        ob.step(b, lambda: (0.0, np.tanh(b) + 0.1 * b))
    np.testing.assert_allclose(a, b, rtol=1e-12)
    np.testing.assert_allclose(ob.state["v"], -0.05 * oa.state["v"], rtol=1e-10, atol=1e-14)


# ------------------------------------------------------------------------------------------------- Adagrad, RMSprop
def test_adagrad():
    th, st = one_step(Adagrad(lr=0.1, lr_decay=0.05, weight_decay=0.01), t=3, s=V)
    g = G + 0.01 * THETA
    s = V + g * g
    close(st["s"], s)
    close(th, THETA - 0.1 / (1 + 3 * 0.05) * g / (np.sqrt(s) + 1e-10))
    _, st = one_step(Adagrad(initial_accumulator_value=0.3))
    close(st["s"], 0.3 + G * G)


def test_adagrad_eps_inside_one_step():
    """d2l's form: s ← s + g²; θ ← θ − lrₜ·g/√(s + ε), with lrₜ = lr/(1 + (t−1)·lr_decay)."""
    eps = 0.3  # large, so that inside vs outside the root differ far above rounding
    th, st = one_step(Adagrad(lr=0.1, lr_decay=0.05, weight_decay=0.01, eps=eps, eps_inside=True), t=3, s=V)
    g = G + 0.01 * THETA
    s = V + g * g
    close(st["s"], s)
    close(th, THETA - 0.1 / (1 + 3 * 0.05) * g / np.sqrt(s + eps))
    outside = THETA - 0.1 / (1 + 3 * 0.05) * g / (np.sqrt(s) + eps)
    assert np.max(np.abs(th - outside)) > 1e-3  # the option changes the update
    for dtype in (np.float32, np.float64):  # first step from s = 0
        th, st = one_step(Adagrad(lr=0.2, eps=1e-6, eps_inside=True), dtype=dtype)
        assert th.dtype == dtype and st["s"].dtype == dtype
        np.testing.assert_allclose(th, THETA - 0.2 * G / np.sqrt(G * G + 1e-6), rtol=1e-6 if dtype == np.float32 else 1e-13)


def test_adagrad_eps_inside_trajectory_against_numpy():
    """200 steps with a varying lr against a float64 NumPy re-implementation of the written formula
    (torch has no eps-inside Adagrad to serve as the oracle); θ and s at every step, rtol 1e-12."""
    rng = np.random.default_rng(7)
    n = 12
    q, _ = np.linalg.qr(rng.standard_normal((n, n)))
    a = q @ np.diag(np.linspace(0.2, 6.0, n)) @ q.T
    b = rng.standard_normal(n)

    def grad(x):
        return a @ x + b + np.tanh(x)

    theta0 = rng.standard_normal(n) * 2.0
    lr0, lr_decay, wd, eps, acc0 = 0.3, 0.01, 0.05, 1e-6, 0.1
    opt = Adagrad(lr=lr0, lr_decay=lr_decay, weight_decay=wd, initial_accumulator_value=acc0, eps=eps, eps_inside=True)
    theta, ref, s = theta0.copy(), theta0.copy(), np.full(n, acc0)
    for step in range(200):
        lr = lr0 * (0.5 + 0.5 * np.cos(np.pi * step / 400))
        opt.step(theta, lambda: (0.0, grad(theta)), lr=float(lr))
        g = grad(ref) + wd * ref
        s = s + g * g
        ref = ref - lr / (1 + step * lr_decay) * g / np.sqrt(s + eps)
        np.testing.assert_allclose(theta, ref, rtol=1e-12, atol=1e-14, err_msg=f"theta at step {step + 1}")
        np.testing.assert_allclose(opt.state["s"], s, rtol=1e-12, err_msg=f"s at step {step + 1}")
    assert np.max(np.abs(theta - theta0)) > 0.5  # it moved


@pytest.mark.parametrize("centered", [False, True])
@pytest.mark.parametrize("momentum", [0.0, 0.8])
@pytest.mark.parametrize("eps_inside", [False, True])
def test_rmsprop(centered, momentum, eps_inside):
    opt = RMSprop(lr=0.01, alpha=0.9, eps=1e-3, weight_decay=0.02, momentum=momentum, centered=centered,
                  eps_inside_sqrt=eps_inside)
    inject = {"s": V2}
    if centered:
        inject["g_avg"] = M * 0.1
    if momentum:
        inject["b"] = B
    th, st = one_step(opt, t=5, **inject)
    g = G + 0.02 * THETA
    s = 0.9 * V2 + 0.1 * g * g
    close(st["s"], s)
    var = s
    if centered:
        ga = 0.9 * M * 0.1 + 0.1 * g
        close(st["g_avg"], ga)
        var = s - ga * ga
    d = np.sqrt(var + 1e-3) if eps_inside else np.sqrt(var) + 1e-3
    if momentum:
        b = 0.8 * B + g / d
        close(st["b"], b)
        close(th, THETA - 0.01 * b)
    else:
        assert "b" not in st
        close(th, THETA - 0.01 * g / d)


# ------------------------------------------------------------------------------------------------- Adam family
@pytest.mark.parametrize("amsgrad", [False, True])
@pytest.mark.parametrize("bias_correction", [True, False])
def test_adam(amsgrad, bias_correction):
    opt = Adam(lr=0.01, b1=0.8, b2=0.99, eps=1e-6, weight_decay=0.1, amsgrad=amsgrad, bias_correction=bias_correction)
    inject = {"m": M, "v": V}
    if amsgrad:
        inject["v_max"] = V2
    th, st = one_step(opt, t=4, **inject)
    g = G + 0.1 * THETA
    m = 0.8 * M + 0.2 * g
    v = 0.99 * V + 0.01 * g * g
    close(st["m"], m)
    close(st["v"], v)
    vv = v
    if amsgrad:
        vv = np.maximum(V2, v)
        close(st["v_max"], vv)
    if bias_correction:  # Kingma & Ba Algorithm 1: m̂ = m/(1−b1ᵗ), v̂ = v/(1−b2ᵗ), θ −= lr·m̂/(√v̂ + eps)
        expected = THETA - 0.01 * (m / (1 - 0.8 ** 5)) / (np.sqrt(vv / (1 - 0.99 ** 5)) + 1e-6)
    else:
        expected = THETA - 0.01 * m / (np.sqrt(vv) + 1e-6)
    close(th, expected)


def test_adam_first_step_is_sign_like():
    th, st = one_step(Adam(lr=0.01, eps=0.0))
    close(th, THETA - 0.01 * np.sign(G))  # m̂ = g, v̂ = g²


def test_adamw_decoupled():
    th, st = one_step(AdamW(lr=0.01, weight_decay=0.1), t=2, m=M, v=V)
    m = 0.9 * M + 0.1 * G
    v = 0.999 * V + 0.001 * G * G
    close(st["m"], m)
    close(st["v"], v)
    close(th, THETA * (1 - 0.01 * 0.1) - 0.01 * (m / (1 - 0.9 ** 3)) / (np.sqrt(v / (1 - 0.999 ** 3)) + 1e-8))


@pytest.mark.parametrize("decoupled", [False, True])
def test_nadam(decoupled):
    opt = NAdam(lr=0.01, weight_decay=0.05, momentum_decay=4e-3, decoupled_weight_decay=decoupled)
    prod = 0.7
    th, st = one_step(opt, t=4, m=M, v=V, mu_product=prod)
    t = 5
    g = G if decoupled else G + 0.05 * THETA
    mu = 0.9 * (1 - 0.5 * 0.96 ** (t * 4e-3))
    mu1 = 0.9 * (1 - 0.5 * 0.96 ** ((t + 1) * 4e-3))
    m = 0.9 * M + 0.1 * g
    v = 0.999 * V + 0.001 * g * g
    vhat = v / (1 - 0.999 ** t)
    # Dozat: θ −= lr·[(1−μₜ)·g/(1−Πμ₁..ₜ) + μₜ₊₁·m/(1−Πμ₁..ₜ₊₁)] / (√v̂ + eps)
    upd = (1 - mu) * g / (1 - prod * mu) + mu1 * m / (1 - prod * mu * mu1)
    base = THETA * (1 - 0.01 * 0.05) if decoupled else THETA
    close(st["m"], m)
    close(st["v"], v)
    assert math.isclose(opt.mu_product, prod * mu, rel_tol=1e-15)
    close(th, base - 0.01 * upd / (np.sqrt(vhat) + 1e-8))


# ------------------------------------------------------------------------------------------------- L-BFGS, Newton
def test_lbfgs_first_iteration_fixed_step():
    opt = LBFGS(lr=0.5, max_iter=1, line_search=None)
    theta, g = THETA.copy(), G.copy()
    opt.step(theta, lambda: (1.0, g))
    close(theta, THETA - min(1.0, 1.0 / np.abs(G).sum()) * 0.5 * G)


def test_lbfgs_two_loop_equals_dense_bfgs_inverse():
    """Injected history: the two-loop direction equals −H·g with the dense BFGS inverse update
    H ← (I − ρsyᵀ)H(I − ρysᵀ) + ρssᵀ from H₀ = γI, γ = yᵀs/yᵀy of the newest pair (Nocedal & Wright 7.2)."""
    rng = np.random.default_rng(7)
    a = rng.standard_normal((N, N))
    a = a @ a.T + N * np.eye(N)
    ss = [rng.standard_normal(N) for _ in range(3)]
    ys = [a @ s for s in ss]
    prev_grad, d_prev, step = rng.standard_normal(N), rng.standard_normal(N), 0.7
    g = prev_grad + a @ (d_prev * step)  # gradient of the quadratic after the previous step
    opt = LBFGS(lr=0.3, max_iter=1, line_search=None, history_size=4)
    st = opt.state_dict()
    st.update(t=1, d=d_prev, prev_grad=prev_grad, old_dirs=np.array(ys[:2]), old_stps=np.array(ss[:2]),
              ro=np.array([1 / (y @ s) for y, s in zip(ys[:2], ss[:2])]), step_size=step, H_diag=1.0, prev_loss=0.0)
    opt.load_state_dict(st)
    # the new pair formed by the step: s = d·t, y = g − prev_grad
    s_new, y_new = d_prev * step, g - prev_grad
    pairs = list(zip(ss[:2], ys[:2])) + [(s_new, y_new)]
    h = (y_new @ s_new) / (y_new @ y_new) * np.eye(N)
    for s, y in pairs:
        rho = 1.0 / (y @ s)
        h = (np.eye(N) - rho * np.outer(s, y)) @ h @ (np.eye(N) - rho * np.outer(y, s)) + rho * np.outer(s, s)
    theta = THETA.copy()
    opt.step(theta, lambda: (1.0, g))
    np.testing.assert_allclose(theta, THETA - 0.3 * (h @ g), rtol=1e-10, atol=1e-13)
    sd = opt.state_dict()
    assert sd["old_dirs"].shape == (3, N) and math.isclose(sd["H_diag"], (y_new @ s_new) / (y_new @ y_new), rel_tol=1e-13)


def test_newton_fd_hessian_step():
    rng = np.random.default_rng(3)
    a = rng.standard_normal((4, 4))
    a = a @ a.T + np.eye(4)
    c = rng.standard_normal(4)
    theta = rng.standard_normal(4)
    x0 = theta.copy()

    def closure():
        return float(0.5 * theta @ a @ theta + c @ theta + np.sum(np.cos(theta))), a @ theta + c - np.sin(theta)

    opt = Newton(damping=0.1)
    h = opt.hessian_fd(theta, closure)
    assert np.array_equal(theta, x0)  # θ restored exactly
    np.testing.assert_allclose(h, a - np.diag(np.cos(x0)), rtol=1e-7, atol=1e-8)
    opt.step(theta, closure, lr=0.5)
    g = a @ x0 + c - np.sin(x0)
    np.testing.assert_allclose(theta, x0 - 0.5 * np.linalg.solve(a - np.diag(np.cos(x0)) + 0.1 * np.eye(4), g),
                               rtol=1e-6, atol=1e-8)


# ------------------------------------------------------------------------------------------------- dtype, denormals
FIRST_ORDER = [
    lambda: SGD(lr=0.1), lambda: SGD(lr=0.1, momentum=0.9, nesterov=True), lambda: SGD(lr=0.1, momentum=0.9, momentum_form="ewa"),
    lambda: SGD(lr=0.1, momentum=0.9, momentum_form="cs231n"), lambda: Adagrad(), lambda: RMSprop(centered=True, momentum=0.5),
    lambda: Adam(amsgrad=True), lambda: AdamW(), lambda: NAdam(),
]
ALL = FIRST_ORDER + [lambda: LBFGS(max_iter=3), lambda: Newton(damping=1.0), lambda: Newton(hessian="cg", damping=1.0)]


@pytest.mark.parametrize("make", ALL)
def test_float32_preserved(make):
    opt = make()
    theta = THETA.astype(np.float32)
    for _ in range(3):
        loss = opt.step(theta, lambda: (float(np.sum(theta ** 2)), (2 * theta + np.float32(0.1) * np.sin(theta)).astype(np.float32)))
        assert isinstance(loss, float)
    assert theta.dtype == np.float32
    for k, v in opt.state_dict().items():
        if isinstance(v, np.ndarray) and k != "ro":
            assert v.dtype == np.float32, k


def test_denormal_moments_flushed_to_zero():
    for dtype in (np.float32, np.float64):
        tiny = np.finfo(dtype).tiny
        opt = Adam()
        theta = np.ones(64, dtype)
        g = np.zeros(64, dtype)
        opt.step(theta, lambda: (0.0, g))
        opt.state["m"][:] = tiny * 1.05  # b1·m falls below the smallest normal number
        opt.state["v"][:] = tiny * 1.0005
        opt.step(theta, lambda: (0.0, g))
        assert np.all(opt.state["m"] == 0) and np.all(opt.state["v"] == 0)
        for make in (lambda: SGD(lr=0.1, momentum=0.5), lambda: RMSprop(momentum=0.5, centered=True)):
            o = make()
            o.step(theta, lambda: (0.0, g))
            for buf in o.state.values():
                buf[:] = tiny * 1.001  # every decay factor here (0.5, 0.99) takes it below tiny
            o.step(theta, lambda: (0.0, g))
            assert all(np.all(buf == 0) for buf in o.state.values())


# ------------------------------------------------------------------------------------------------- state round trip
@pytest.mark.parametrize("make", ALL)
def test_state_round_trip_bit_identical(make):
    def grad(x):
        return (float(np.sum(np.cosh(x))), np.sinh(x) + 0.3 * x)

    a = THETA.copy()
    oa = make()
    for _ in range(3):
        oa.step(a, lambda: grad(a))
    sd = oa.state_dict()
    for k, v in sd.items():
        assert isinstance(k, str)
        assert isinstance(v, (np.ndarray, int, float, bool, str, type(None))), (k, type(v))
    b = a.copy()
    ob = make()
    ob.load_state_dict(sd)
    for _ in range(3):
        oa.step(a, lambda: grad(a))
        ob.step(b, lambda: grad(b))
    assert np.array_equal(a, b)
    sa, sb = oa.state_dict(), ob.state_dict()
    assert sa.keys() == sb.keys()
    for k in sa:
        if isinstance(sa[k], np.ndarray):
            assert sa[k].dtype == sb[k].dtype and np.array_equal(sa[k], sb[k]), k
        else:
            assert sa[k] == sb[k], k
    sd["optimizer"] = "X"  # the dict we got is ours to mutate; the optimizer kept its own copy
    assert oa.state_dict()["optimizer"] == type(oa).__name__


def test_load_state_dict_mismatches_name_the_entry():
    opt = Adam()
    theta = THETA.copy()
    opt.step(theta, lambda: (0.0, G))
    sd = opt.state_dict()
    for key, value, match in [("m", np.zeros(3), "'m'"), ("v", V.astype(np.float32), "'v'"), ("optimizer", "SGD", "optimizer"),
                              ("b1", 1.5, "b1"), ("t", -1, "'t'"), ("extra", 1, "extra")]:
        bad = dict(sd)
        bad[key] = value
        with pytest.raises(ValueError, match=match):
            Adam().load_state_dict(bad)
    bad = dict(sd)
    del bad["v"]
    with pytest.raises(ValueError, match="'v'"):
        Adam().load_state_dict(bad)
    other = Adam()
    other.step(np.zeros(4), lambda: (0.0, np.ones(4)))
    with pytest.raises(ValueError, match="'m'"):
        other.load_state_dict(sd)  # state of another size
    fresh = Adam()
    fresh.load_state_dict(sd)
    with pytest.raises(ValueError, match="'m'"):
        fresh.step(np.zeros(4), lambda: (0.0, np.ones(4)))  # θ of another size than the loaded state
    lb = LBFGS()
    lb.step(THETA.copy(), lambda: (0.0, G))
    sd = lb.state_dict()
    sd["old_stps"] = sd["old_stps"][:, :3]
    with pytest.raises(ValueError, match="old_stps"):
        LBFGS().load_state_dict(sd)


# ------------------------------------------------------------------------------------------------- validation
@pytest.mark.parametrize("make, match", [
    (lambda: SGD(lr=0), "lr"), (lambda: SGD(lr=-0.1), "lr"), (lambda: SGD(lr=0.1, momentum=1.0), "momentum"),
    (lambda: SGD(lr=0.1, momentum=-0.1), "momentum"), (lambda: SGD(lr=0.1, nesterov=True), "nesterov"),
    (lambda: SGD(lr=0.1, momentum=0.9, nesterov=True, dampening=0.1), "nesterov"),
    (lambda: SGD(lr=0.1, momentum_form="heavy"), "momentum_form"),
    (lambda: SGD(lr=0.1, momentum=0.9, bias_correction=True), "bias_correction"),
    (lambda: SGD(lr=0.1, momentum=0.9, momentum_form="ewa", dampening=0.5), "dampening"),
    (lambda: SGD(lr=0.1, weight_decay=-1), "weight_decay"), (lambda: SGD(lr=float("nan")), "lr"),
    (lambda: Adam(b1=1.0), "b1"), (lambda: Adam(b2=-0.5), "b2"), (lambda: Adam(eps=-1e-8), "eps"),
    (lambda: AdamW(weight_decay=-0.1), "weight_decay"), (lambda: NAdam(momentum_decay=-1), "momentum_decay"),
    (lambda: Adagrad(lr_decay=-1), "lr_decay"), (lambda: Adagrad(initial_accumulator_value=-1), "initial_accumulator_value"),
    (lambda: RMSprop(alpha=1.0), "alpha"), (lambda: RMSprop(momentum=1.2), "momentum"),
    (lambda: LBFGS(line_search="wolfe"), "line_search"), (lambda: LBFGS(history_size=0), "history_size"),
    (lambda: LBFGS(lr=0), "lr"), (lambda: Newton(hessian="exact"), "hessian"), (lambda: Newton(damping=-1), "damping"),
])
def test_invalid_hyperparameters(make, match):
    with pytest.raises(ValueError, match=match):
        make()


def test_keyword_only_and_type_errors():
    with pytest.raises(TypeError):
        SGD(0.1)
    with pytest.raises(TypeError, match="amsgrad"):
        Adam(amsgrad="yes")
    with pytest.raises(TypeError, match="eps_inside"):
        Adagrad(eps_inside=1)
    with pytest.raises(TypeError, match="lr"):
        Adam(lr="0.1")


def test_step_input_errors():
    opt = Adam()
    with pytest.raises(ValueError, match="dtype"):
        opt.step(np.zeros(3), lambda: (0.0, np.zeros(3, np.float32)))
    with pytest.raises(ValueError, match="shape"):
        opt.step(np.zeros(3), lambda: (0.0, np.zeros(4)))
    with pytest.raises(ValueError, match="1-D"):
        opt.step(np.zeros((3, 2)), lambda: (0.0, np.zeros((3, 2))))
    with pytest.raises(ValueError, match="float32 or float64"):
        opt.step(np.zeros(3, np.int64), lambda: (0.0, np.zeros(3, np.int64)))
    with pytest.raises(TypeError, match="closure"):
        opt.step(np.zeros(3), lambda: 1.0)
    with pytest.raises(ValueError, match="lr"):
        opt.step(np.zeros(3), lambda: (0.0, np.zeros(3)), lr=-1.0)
    assert opt.t == 0 and opt.state == {}


def test_every_optimizer_is_an_optimizer():
    for make in ALL:
        opt = make()
        assert isinstance(opt, Optimizer) and repr(opt).startswith(type(opt).__name__)


# ------------------------------------------------------------------------------------------------- clipping
def test_clip_grad_norm():
    g = G.copy()
    norm = clip_grad_norm_(g, 0.5)
    assert math.isclose(norm, float(np.sqrt(np.sum(G ** 2))), rel_tol=1e-14)
    close(g, G * 0.5 / (norm + 1e-6))
    g2 = G.copy()
    assert clip_grad_norm_(g2, 100.0) == norm and np.array_equal(g2, G)
    g32 = G.astype(np.float32)
    clip_grad_norm_(g32, 0.5)
    assert g32.dtype == np.float32
    with pytest.raises(ValueError, match="max_norm"):
        clip_grad_norm_(G.copy(), 0)


def test_clip_grad_value():
    g = G.copy()
    norm = clip_grad_value_(g, 0.3)
    assert math.isclose(norm, float(np.sqrt(np.sum(G ** 2))), rel_tol=1e-14)
    assert np.array_equal(g, np.minimum(np.maximum(G, -0.3), 0.3))


def test_clip_matches_torch():
    torch = pytest.importorskip("torch")
    p = torch.nn.Parameter(torch.zeros(N, dtype=torch.float64))
    p.grad = torch.tensor(G)
    tn = torch.nn.utils.clip_grad_norm_([p], 0.5)
    g = G.copy()
    assert math.isclose(clip_grad_norm_(g, 0.5), float(tn), rel_tol=1e-13)
    np.testing.assert_allclose(g, p.grad.numpy(), rtol=1e-13)


def test_import_does_not_load_numba():
    code = "import sys, descend.optim, descend.optim.schedules, descend.optim.ewa; assert 'numba' not in sys.modules, 'numba imported'"
    subprocess.run([sys.executable, "-c", code], check=True)
