"""BFGS: the written update (product form) for two iterations, SciPy's BFGS on the test functions (same minima,
comparable evaluation counts), the size limit with the memory it would need, float32 θ."""
import numpy as np
import pytest
import scipy.optimize

from descend.optim import BFGS, LBFGS
from descend.optim.testfunctions import BEALE, BOOTH, HIMMELBLAU, ROSENBROCK, quadratic

A = np.array([[3.0, 1.0], [1.0, 2.0]])
C = np.array([1.0, -1.0])


def quad(x):
    return float(0.5 * x @ A @ x - C @ x), A @ x - C


def test_two_iterations_follow_the_written_update():
    x0 = np.array([2.0, -3.0])
    theta = x0.copy()
    BFGS(lr=0.3, max_iter=2, max_eval=10, line_search=None).step(theta, lambda: quad(theta))
    # iteration 1: H = I, t = min(1, 1/‖g‖₁)·lr
    g0 = quad(x0)[1]
    x1 = x0 - min(1.0, 1.0 / np.abs(g0).sum()) * 0.3 * g0
    s, y = x1 - x0, quad(x1)[1] - g0
    rho = 1.0 / (y @ s)
    h0 = (y @ s) / (y @ y) * np.eye(2)  # Nocedal & Wright eq. 6.20
    h1 = (np.eye(2) - rho * np.outer(s, y)) @ h0 @ (np.eye(2) - rho * np.outer(y, s)) + rho * np.outer(s, s)
    x2 = x1 - 0.3 * h1 @ quad(x1)[1]
    np.testing.assert_allclose(theta, x2, rtol=1e-14, atol=1e-15)


def test_secant_condition_holds_after_an_update():
    theta = np.array([2.0, -3.0])
    opt = BFGS(max_iter=1)
    x0 = theta.copy()
    opt.step(theta, lambda: quad(theta))
    h = opt.state_dict()["H"]
    s, y = theta - x0, quad(theta)[1] - quad(x0)[1]
    np.testing.assert_allclose(h @ y, s, rtol=1e-12, atol=1e-14)  # H·y = s (N&W eq. 6.6)
    assert np.all(np.linalg.eigvalsh(h) > 0)


FUNCTIONS = [ROSENBROCK, BEALE, HIMMELBLAU, BOOTH, quadratic(condition=100.0)]


@pytest.mark.parametrize("line_search", ["strong_wolfe", "backtracking"])
@pytest.mark.parametrize("f", FUNCTIONS, ids=lambda f: f.name)
def test_matches_scipy_bfgs(f, line_search):
    x0 = np.array(f.start, dtype=np.float64)
    ref = scipy.optimize.minimize(lambda x: (f.value(x), f.gradient(x)), x0, jac=True, method="BFGS",
                                  options={"gtol": 1e-10})
    theta = x0.copy()
    opt = BFGS(max_iter=500, max_eval=3000, tolerance_grad=1e-10, tolerance_change=1e-14, line_search=line_search)
    opt.step(theta, f.closure(theta))
    print(f"{f.name} ({line_search}): descend BFGS {opt.func_evals} evaluations / {opt.t} iterations, "
          f"scipy {ref.nfev} / {ref.nit}; |Δx| = {np.abs(theta - ref.x).max():.1e}")
    np.testing.assert_allclose(theta, ref.x, rtol=0, atol=1e-6)
    np.testing.assert_allclose(theta, f.nearest_minimum(theta), rtol=0, atol=1e-6)
    # comparable work: within a factor 3 of SciPy's evaluations either way (measured 0.8-2.7, printed above)
    assert ref.nfev / 3 <= opt.func_evals <= 3 * ref.nfev, (opt.func_evals, ref.nfev)


def test_fewer_iterations_than_lbfgs_with_a_short_history_on_an_ill_conditioned_quadratic():
    rng = np.random.default_rng(0)
    q, _ = np.linalg.qr(rng.standard_normal((30, 30)))
    a = q @ np.diag(np.logspace(0, 4, 30)) @ q.T
    c = rng.standard_normal(30)
    x_star = np.linalg.solve(a, c)
    iters = {}
    for name, opt in (("bfgs", BFGS(max_iter=1000, max_eval=5000, tolerance_grad=1e-9, tolerance_change=1e-15)),
                      ("lbfgs", LBFGS(max_iter=1000, max_eval=5000, tolerance_grad=1e-9, tolerance_change=1e-15, history_size=3))):
        x = np.zeros(30)
        opt.step(x, lambda: (float(0.5 * x @ a @ x - c @ x), a @ x - c))
        # L-BFGS(3) stops on |Δloss| (rounding) a little short: 1e-5 away, BFGS within 1e-8 (measured)
        np.testing.assert_allclose(x, x_star, rtol=0, atol=1e-6 if name == "bfgs" else 1e-4)
        iters[name] = opt.t
    assert iters["bfgs"] < iters["lbfgs"], iters


def test_too_large_theta_is_refused_with_the_memory_and_nothing_runs():
    calls = []
    theta = np.zeros(5000, dtype=np.float32)
    with pytest.raises(ValueError, match=r"size 5000 would need 190\.7 MiB, over the limit max_size=4096 "
                                         r"\(128\.0 MiB\); use LBFGS"):
        BFGS().step(theta, lambda: calls.append(1))
    assert calls == []
    with pytest.raises(ValueError, match=r"size 100000 would need 74\.5 GiB"):
        BFGS().init_state(np.zeros(100_000, dtype=np.float32))
    BFGS(max_size=5000).init_state(theta)  # raised knowingly


def test_float32_theta_stays_float32_and_converges():
    theta = np.array(ROSENBROCK.start, dtype=np.float32)
    opt = BFGS(max_iter=200, tolerance_grad=1e-5)
    opt.step(theta, ROSENBROCK.closure(theta))
    assert theta.dtype == np.float32
    np.testing.assert_allclose(theta, [1.0, 1.0], atol=1e-3)


def test_bad_hyperparameters_and_another_theta():
    for kw, name in (({"lr": 0}, "lr"), ({"max_iter": 0}, "max_iter"), ({"line_search": "wolfe"}, "line_search"),
                     ({"max_size": 0}, "max_size"), ({"tolerance_grad": -1}, "tolerance_grad")):
        with pytest.raises(ValueError, match=name):
            BFGS(**kw)
    opt = BFGS()
    theta = np.ones(3)
    opt.step(theta, lambda: (float(theta @ theta), 2 * theta))
    with pytest.raises(ValueError, match=r"'H' has shape \(3, 3\), but theta has size 2"):
        opt.step(np.ones(2), lambda: (0.0, np.zeros(2)))
    sd = opt.state_dict()
    sd["scaled"] = "yes"
    with pytest.raises(ValueError, match="'scaled' must be a bool"):
        BFGS().load_state_dict(sd)


def test_keep_receives_theta_before_the_step():
    theta = np.array([2.0, -3.0])
    keep = np.empty_like(theta)
    BFGS(max_iter=3).step(theta, lambda: quad(theta), keep=keep)
    assert np.array_equal(keep, [2.0, -3.0]) and not np.array_equal(theta, keep)


def test_line_searches_survive_a_function_unbounded_below():
    """On the saddle x² − y² a line along −y is a straight descent line: the cubic interpolation has no
    minimizer there (it divided by zero before) — the methods must keep stepping, not raise."""
    from descend.compare import compare_on_function
    from descend.compare.names import make_optimizer
    from descend.optim.testfunctions import SADDLE
    race = compare_on_function(SADDLE, {"lbfgs": make_optimizer("lbfgs", 1.0), "bfgs": make_optimizer("bfgs", 1.0)},
                               steps=50)
    for tr in race.trajectories:
        assert tr.outcome == "left the domain" and tr.values[-1] < -10, tr.name
