"""Convergence: every optimizer on an ill-conditioned 2-D quadratic and on Rosenbrock; L-BFGS against
SciPy's minimizers on six test functions; Newton solving a quadratic in one step."""
import numpy as np
import pytest

from descend.optim import LBFGS, SGD, Adagrad, Adam, AdamW, NAdam, Newton, RMSprop
from descend.optim.schedules import ExponentialDecay


def rosenbrock(x):
    a, b = x
    return float((1 - a) ** 2 + 100 * (b - a * a) ** 2), np.array([-2 * (1 - a) - 400 * a * (b - a * a), 200 * (b - a * a)])


def beale(x):
    a, b = x
    t1, t2, t3 = 1.5 - a + a * b, 2.25 - a + a * b * b, 2.625 - a + a * b ** 3
    f = t1 ** 2 + t2 ** 2 + t3 ** 2
    ga = 2 * t1 * (b - 1) + 2 * t2 * (b * b - 1) + 2 * t3 * (b ** 3 - 1)
    gb = 2 * t1 * a + 2 * t2 * 2 * a * b + 2 * t3 * 3 * a * b * b
    return float(f), np.array([ga, gb])


def booth(x):
    a, b = x
    t1, t2 = a + 2 * b - 7, 2 * a + b - 5
    return float(t1 ** 2 + t2 ** 2), np.array([2 * t1 + 4 * t2, 4 * t1 + 2 * t2])


_rng = np.random.default_rng(11)
_Q, _ = np.linalg.qr(_rng.standard_normal((10, 10)))
A10 = _Q @ np.diag(np.logspace(0, 3, 10)) @ _Q.T  # 10-D, condition number 1e3
C10 = _rng.standard_normal(10)


def quad10(x):
    return float(0.5 * x @ A10 @ x - C10 @ x), A10 @ x - C10


def styblinski_tang(x):
    return float(0.5 * np.sum(x ** 4 - 16 * x ** 2 + 5 * x)), 0.5 * (4 * x ** 3 - 32 * x + 5)


def sum_exp(x):
    """Boyd & Vandenberghe's example 9.2.1 (ch. 9): e^(x+3y−0.1) + e^(x−3y−0.1) + e^(−x−0.1)."""
    a, b = x
    e1, e2, e3 = np.exp(a + 3 * b - 0.1), np.exp(a - 3 * b - 0.1), np.exp(-a - 0.1)
    return float(e1 + e2 + e3), np.array([e1 + e2 - e3, 3 * e1 - 3 * e2])


FUNCTIONS = {
    "rosenbrock": (rosenbrock, [-1.2, 1.0]),
    "beale": (beale, [1.0, 1.0]),
    "booth": (booth, [-4.0, 6.0]),
    "quad10": (quad10, np.linspace(-2, 2, 10)),
    "styblinski_tang": (styblinski_tang, [0.5, -0.5, 1.0, 0.2]),
    "sum_exp": (sum_exp, [-1.0, 1.0]),
}


def run(opt, f, x0, steps, schedule=None):
    x = np.array(x0, dtype=np.float64)
    for i in range(steps):
        opt.step(x, lambda: f(x), lr=None if schedule is None else schedule(i))
    return x


@pytest.mark.parametrize("name", sorted(FUNCTIONS))
@pytest.mark.parametrize("line_search", ["strong_wolfe", "backtracking"])
def test_lbfgs_matches_scipy(name, line_search):
    scipy_optimize = pytest.importorskip("scipy.optimize")
    f, x0 = FUNCTIONS[name]
    ref = scipy_optimize.minimize(f, np.array(x0, float), jac=True, method="BFGS", options={"gtol": 1e-10})
    opt = LBFGS(max_iter=200, max_eval=400, tolerance_grad=1e-10, tolerance_change=1e-14, history_size=10,
                line_search=line_search)
    x = run(opt, f, x0, 3)
    np.testing.assert_allclose(x, ref.x, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(f(x)[0], ref.fun, rtol=1e-8, atol=1e-10)


def test_lbfgs_fixed_step_converges_on_quadratic():
    x = run(LBFGS(lr=0.5, max_iter=100, line_search=None, tolerance_grad=1e-12, tolerance_change=1e-15), booth,
            [-4.0, 6.0], 2)
    np.testing.assert_allclose(x, [1.0, 3.0], atol=1e-8)


# ---------------------------------------------------------------------------------------------- Newton
@pytest.mark.parametrize("hessian", ["fd", "cg"])
def test_newton_solves_quadratic_in_one_step(hessian):
    rng = np.random.default_rng(5)
    q, _ = np.linalg.qr(rng.standard_normal((6, 6)))
    a = q @ np.diag(np.logspace(0, 2, 6)) @ q.T
    c = rng.standard_normal(6)
    x_star = np.linalg.solve(a, c)
    x = rng.standard_normal(6)
    calls = []

    def closure():
        calls.append(1)
        return float(0.5 * x @ a @ x - c @ x), a @ x - c

    # on a quadratic a central difference of the gradient is exact for any step, so a large step is
    # the one that minimizes rounding
    opt = Newton(hessian=hessian, fd_step=1.0, cg_tol=1e-15)
    opt.step(x, closure)
    np.testing.assert_allclose(x, x_star, rtol=1e-12, atol=1e-12)
    if hessian == "fd":
        assert len(calls) == 1 + 2 * 6  # one gradient, then a central difference per coordinate
    else:
        assert len(calls) % 2 == 1 and 3 <= len(calls) <= 1 + 2 * 12  # one gradient, two per CG iteration (≤ 2D)
    assert opt.t == 1


def test_newton_default_step_and_damping():
    x = run(Newton(), booth, [-4.0, 6.0], 1)
    np.testing.assert_allclose(x, [1.0, 3.0], rtol=1e-8)
    # damping λ: θ ← θ − (H + λI)⁻¹g with H = [[10, 8], [8, 10]] for Booth
    x0 = np.array([-4.0, 6.0])
    x = run(Newton(damping=2.0, fd_step=1.0), booth, x0, 1)
    np.testing.assert_allclose(x, x0 - np.linalg.solve(np.array([[12.0, 8.0], [8.0, 12.0]]), booth(x0)[1]), rtol=1e-12)


# ---------------------------------------------------------------------------------------------- everyone converges
_R = np.array([[np.cos(0.5), -np.sin(0.5)], [np.sin(0.5), np.cos(0.5)]])
A2 = _R @ np.diag([1.0, 30.0]) @ _R.T  # rotated, condition number 30
C2 = np.array([1.0, -2.0])
X2 = np.linalg.solve(A2, C2)


def quad2(x):
    return float(0.5 * x @ A2 @ x - C2 @ x), A2 @ x - C2


# name: (optimizer on the quadratic, steps, optimizer on Rosenbrock, steps, tolerance on Rosenbrock)
CONVERGENCE = {
    "sgd": (lambda: SGD(lr=0.03), 1000, lambda: SGD(lr=2e-3), 15000, 1e-2),
    "momentum": (lambda: SGD(lr=0.01, momentum=0.9), 600, lambda: SGD(lr=1e-3, momentum=0.9), 5000, 1e-3),
    "nesterov": (lambda: SGD(lr=0.01, momentum=0.9, nesterov=True), 600,
                 lambda: SGD(lr=1e-3, momentum=0.9, nesterov=True), 5000, 1e-3),
    "ewa": (lambda: SGD(lr=0.05, momentum=0.9, momentum_form="ewa", bias_correction=True), 600,
            lambda: SGD(lr=5e-3, momentum=0.9, momentum_form="ewa"), 8000, 1e-3),
    "cs231n": (lambda: SGD(lr=0.01, momentum=0.9, momentum_form="cs231n"), 600,
               lambda: SGD(lr=1e-3, momentum=0.9, momentum_form="cs231n"), 5000, 1e-3),
    "adagrad": (lambda: Adagrad(lr=0.5), 3000, lambda: Adagrad(lr=0.5), 10000, 1e-3),
    "rmsprop": (lambda: RMSprop(lr=0.01), 2000, lambda: RMSprop(lr=1e-3), 8000, 1e-2),
    "rmsprop_centered": (lambda: RMSprop(lr=0.01, centered=True, momentum=0.5), 2000,
                         lambda: RMSprop(lr=1e-3, centered=True, momentum=0.5), 8000, 1e-2),
    "adam": (lambda: Adam(lr=0.05), 2000, lambda: Adam(lr=0.02), 8000, 1e-2),
    "amsgrad": (lambda: Adam(lr=0.05, amsgrad=True), 3000, lambda: Adam(lr=0.02, amsgrad=True), 8000, 1e-2),
    "adamw": (lambda: AdamW(lr=0.05, weight_decay=0.0), 2000, lambda: AdamW(lr=0.02, weight_decay=0.0), 8000, 1e-2),
    "nadam": (lambda: NAdam(lr=0.05), 2000, lambda: NAdam(lr=0.02), 8000, 1e-2),
    "lbfgs": (lambda: LBFGS(), 2, lambda: LBFGS(max_iter=100, tolerance_change=1e-14), 2, 1e-6),
    "lbfgs_backtracking": (lambda: LBFGS(line_search="backtracking"), 2,
                           lambda: LBFGS(line_search="backtracking", max_iter=200, max_eval=1000, tolerance_change=1e-14),
                           2, 1e-6),
    "newton": (lambda: Newton(), 1, lambda: Newton(), 20, 1e-8),
    "newton_cg": (lambda: Newton(hessian="cg"), 2, lambda: Newton(hessian="cg"), 20, 1e-8),
}


# plain RMSProp with a constant lr keeps stepping ~lr·sign(g) around the minimum (s shrinks with g), so
# it needs a decaying lr to settle: the loop's schedule, passed through step(lr=...)
SCHEDULES = {"rmsprop": ExponentialDecay(0.02, 0.997, unit="step")}


@pytest.mark.parametrize("name", sorted(CONVERGENCE))
def test_converges(name):
    make_q, steps_q, make_r, steps_r, tol_r = CONVERGENCE[name]
    x = run(make_q(), quad2, [-3.0, 2.0], steps_q, SCHEDULES.get(name))
    assert np.linalg.norm(x - X2) < 1e-4, (name, x, X2)
    x = run(make_r(), rosenbrock, [-1.2, 1.0], steps_r)
    assert np.linalg.norm(x - 1.0) < tol_r, (name, x)
