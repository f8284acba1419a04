"""200-step trajectories of θ and every state buffer against torch.optim (the oracle), float64 and float32."""
import numpy as np
import pytest

from descend.optim import LBFGS, SGD, Adagrad, Adam, AdamW, NAdam, RMSprop

torch = pytest.importorskip("torch")

D = 12
STEPS = 200


def make_problem(seed=0, n=D, eigenvalues=None):
    """A fixed random convex function: ½θᵀAθ + bᵀθ + Σ log cosh θ (cond(A) ≈ 30 by default), with its
    gradient. Both sides evaluate this same function at their own θ."""
    rng = np.random.default_rng(seed)
    q, _ = np.linalg.qr(rng.standard_normal((n, n)))
    a = q @ np.diag(np.linspace(0.2, 6.0, n) if eigenvalues is None else eigenvalues) @ q.T
    b = rng.standard_normal(n)

    def f_and_grad(x):
        x = np.asarray(x, dtype=np.float64)
        loss = 0.5 * x @ a @ x + b @ x + np.sum(np.logaddexp(x, -x) - np.log(2.0))
        return float(loss), a @ x + b + np.tanh(x)

    theta0 = rng.standard_normal(n) * 2.0
    return f_and_grad, theta0


@pytest.fixture
def torch_float64():
    old = torch.get_default_dtype()
    torch.set_default_dtype(torch.float64)  # torch keeps scalar state (NAdam's mu_product) in the default dtype
    yield
    torch.set_default_dtype(old)


def lr_at(step, lr0):
    """A varying learning rate, passed to both sides every step (exercises the lr override)."""
    return lr0 * (0.5 + 0.5 * np.cos(np.pi * step / (2 * STEPS)))


# (ours, torch class, torch kwargs, {our buffer: torch state key}, lr0)
FIRST_ORDER = {
    "sgd": (dict(cls=SGD, lr=0.05), ("SGD", dict()), {}),
    "sgd_wd": (dict(cls=SGD, lr=0.05, weight_decay=0.1), ("SGD", dict(weight_decay=0.1)), {}),
    "sgd_momentum": (dict(cls=SGD, lr=0.02, momentum=0.9), ("SGD", dict(momentum=0.9)), {"v": "momentum_buffer"}),
    "sgd_dampening": (dict(cls=SGD, lr=0.05, momentum=0.8, dampening=0.3, weight_decay=0.05),
                      ("SGD", dict(momentum=0.8, dampening=0.3, weight_decay=0.05)), {"v": "momentum_buffer"}),
    "sgd_nesterov": (dict(cls=SGD, lr=0.02, momentum=0.9, nesterov=True, weight_decay=0.01),
                     ("SGD", dict(momentum=0.9, nesterov=True, weight_decay=0.01)), {"v": "momentum_buffer"}),
    "adagrad": (dict(cls=Adagrad, lr=0.3, lr_decay=0.01, weight_decay=0.05, initial_accumulator_value=0.1),
                ("Adagrad", dict(lr_decay=0.01, weight_decay=0.05, initial_accumulator_value=0.1)), {"s": "sum"}),
    "rmsprop": (dict(cls=RMSprop, lr=0.01), ("RMSprop", dict()), {"s": "square_avg"}),
    # alpha = 0.99 (the default): with a short memory (alpha = 0.9) the centered variance s − ḡ² on this
    # smooth problem cancels to ~1e-9 of s, and √ of it amplifies rounding ~1e5×; the comparison would
    # then measure rounding noise, not the formula.
    "rmsprop_centered": (dict(cls=RMSprop, lr=0.005, centered=True, eps=1e-6), ("RMSprop", dict(centered=True, eps=1e-6)),
                         {"s": "square_avg", "g_avg": "grad_avg"}),
    "rmsprop_centered_momentum": (
        dict(cls=RMSprop, lr=0.005, alpha=0.99, momentum=0.7, centered=True, weight_decay=0.02),
        ("RMSprop", dict(alpha=0.99, momentum=0.7, centered=True, weight_decay=0.02)),
        {"s": "square_avg", "g_avg": "grad_avg", "b": "momentum_buffer"}),
    "rmsprop_momentum": (dict(cls=RMSprop, lr=0.005, momentum=0.9), ("RMSprop", dict(momentum=0.9)),
                         {"s": "square_avg", "b": "momentum_buffer"}),
    "adam": (dict(cls=Adam, lr=0.05), ("Adam", dict()), {"m": "exp_avg", "v": "exp_avg_sq"}),
    "adam_wd_betas": (dict(cls=Adam, lr=0.05, b1=0.8, b2=0.99, eps=1e-6, weight_decay=0.1),
                      ("Adam", dict(betas=(0.8, 0.99), eps=1e-6, weight_decay=0.1)), {"m": "exp_avg", "v": "exp_avg_sq"}),
    "amsgrad": (dict(cls=Adam, lr=0.05, amsgrad=True), ("Adam", dict(amsgrad=True)),
                {"m": "exp_avg", "v": "exp_avg_sq", "v_max": "max_exp_avg_sq"}),
    "adamw": (dict(cls=AdamW, lr=0.05), ("AdamW", dict()), {"m": "exp_avg", "v": "exp_avg_sq"}),
    "adamw_amsgrad": (dict(cls=AdamW, lr=0.05, weight_decay=0.3, amsgrad=True),
                      ("AdamW", dict(weight_decay=0.3, amsgrad=True)),
                      {"m": "exp_avg", "v": "exp_avg_sq", "v_max": "max_exp_avg_sq"}),
    "nadam": (dict(cls=NAdam, lr=0.05), ("NAdam", dict()), {"m": "exp_avg", "v": "exp_avg_sq"}),
    "nadam_wd": (dict(cls=NAdam, lr=0.05, weight_decay=0.1, momentum_decay=0.01),
                 ("NAdam", dict(weight_decay=0.1, momentum_decay=0.01)), {"m": "exp_avg", "v": "exp_avg_sq"}),
    "nadam_decoupled": (dict(cls=NAdam, lr=0.05, weight_decay=0.1, decoupled_weight_decay=True),
                        ("NAdam", dict(weight_decay=0.1, decoupled_weight_decay=True)),
                        {"m": "exp_avg", "v": "exp_avg_sq"}),
}


def run_pair(case, dtype, check):
    ours_kw, (tname, tkw), buffers = FIRST_ORDER[case]
    ours_kw = dict(ours_kw)
    cls, lr0 = ours_kw.pop("cls"), ours_kw["lr"]
    f_and_grad, theta0 = make_problem()
    tdtype = torch.float64 if dtype == np.float64 else torch.float32

    theta = theta0.astype(dtype)
    opt = cls(**ours_kw)
    param = torch.tensor(theta0, dtype=tdtype, requires_grad=True)
    topt = getattr(torch.optim, tname)([param], lr=lr0, foreach=False, **tkw)

    def closure():
        loss, g = f_and_grad(theta)
        return loss, g.astype(dtype)

    for step in range(STEPS):
        lr = float(lr_at(step, lr0))
        loss = opt.step(theta, closure, lr=lr)
        assert isinstance(loss, float)
        _, tg = f_and_grad(param.detach().numpy())
        param.grad = torch.tensor(tg, dtype=tdtype)
        topt.param_groups[0]["lr"] = lr
        topt.step()
        check(theta, param.detach().numpy(), f"theta at step {step + 1}")
        tstate = topt.state[param]
        for ours, theirs in buffers.items():
            check(opt.state[ours], tstate[theirs].numpy(), f"{ours} at step {step + 1}")
        if cls is NAdam:
            check(np.array(opt.mu_product), np.array(float(tstate["mu_product"])), "mu_product")
    assert theta.dtype == dtype
    assert all(buf.dtype == dtype for buf in opt.state.values())
    assert opt.t == STEPS


@pytest.mark.parametrize("case", sorted(FIRST_ORDER))
def test_trajectory_float64(case, torch_float64):
    def check(a, b, what):
        np.testing.assert_allclose(a, b, rtol=1e-10, atol=1e-12, err_msg=what)

    run_pair(case, np.float64, check)


@pytest.mark.parametrize("case", ["sgd_nesterov", "sgd_dampening", "adagrad", "rmsprop_centered_momentum", "amsgrad",
                                  "adamw", "nadam"])
def test_trajectory_float32(case):
    def check(a, b, what):
        assert a.dtype == np.float32 or a.ndim == 0
        np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-5, err_msg=what)

    run_pair(case, np.float32, check)


@pytest.mark.parametrize("line_search", [None, "strong_wolfe"])
@pytest.mark.parametrize("max_iter", [1, 4])
def test_lbfgs_trajectory(line_search, max_iter, torch_float64):
    """θ and the whole L-BFGS state (d, step size, H_diag, history pairs, ro) against torch.optim.LBFGS.

    cond(A) = 100 in 40-D with a 5-pair history: ~35-40 iterations and 90-240 closure calls.
    tolerance_grad = 1e-5 (max |g|) stops both before the rounding floor, where the yᵀs > 1e-10 curvature test
    and line-search comparisons of f values ~1e-15 apart decide branches by rounding noise (there two
    correct implementations legitimately part; measured: ≥ 1e-6 apart after cond 1e3 and |g| ~ 1e-5).
    Measured worst |Δθ| / (atol + rtol·|θ|) over these runs: 0.006 (line_search=None, any BLAS kernel).
    strong_wolfe: its cubic interpolation divides f differences ~200 ulps of f (iteration 33, max|g| = 2e-5), so
    NumPy's ddot reduction order (OpenBLAS SkylakeX vs Haswell kernels vs torch's MKL) moves t by 8e-6 relative:
    measured θ 3.5e-10 relative, d/grad/pairs 1.7e-10 absolute — the same between two NumPy runs under
    OPENBLAS_CORETYPE=Haswell and SkylakeX (benchmarks/NOTES.md); ×10: rtol 4e-9, vectors atol 2e-9."""
    f_and_grad, theta0 = make_problem(seed=3, n=40, eigenvalues=np.logspace(-1.0, 1.0, 40))
    steps = STEPS if max_iter == 1 else 60
    kw = dict(lr=0.5 if line_search is None else 1.0, max_iter=max_iter, max_eval=10 * max_iter, history_size=5,
              tolerance_grad=1e-5, tolerance_change=1e-12)
    theta = theta0.copy()
    opt = LBFGS(line_search=line_search, **kw)
    param = torch.tensor(theta0, requires_grad=True)
    topt = torch.optim.LBFGS([param], line_search_fn=line_search, **kw)

    def closure():
        return f_and_grad(theta)

    def tclosure():
        loss, g = f_and_grad(param.detach().numpy())
        param.grad = torch.tensor(g)
        return torch.tensor(loss)

    def check(a, b, what, rtol=1e-10, atol=1e-12):
        np.testing.assert_allclose(a, b, rtol=rtol, atol=atol, err_msg=what)

    # the reduction-order noise floor of the strong-Wolfe interpolation (measured, see the docstring)
    vec_tol = dict(rtol=1e-10, atol=1e-12) if line_search is None else dict(rtol=4e-9, atol=2e-9)
    theta_tol = dict(rtol=1e-10, atol=1e-12) if line_search is None else dict(rtol=4e-9, atol=1e-12)
    for step in range(steps):
        loss = opt.step(theta, closure)
        tloss = topt.step(tclosure)
        check(loss, float(tloss), f"loss at step {step}", **theta_tol)
        check(theta, param.detach().numpy(), f"theta at step {step}", **theta_tol)
        st = topt.state[param]
        if "d" not in st:
            continue
        ours = opt.state_dict()
        assert ours["t"] == st["n_iter"] and ours["func_evals"] == st["func_evals"]
        check(ours["d"], st["d"].numpy(), "d", **vec_tol)
        check(ours["prev_grad"], st["prev_flat_grad"].numpy(), "prev_grad", **vec_tol)
        assert ours["old_dirs"].shape[0] == len(st["old_dirs"])
        if st["old_dirs"]:
            check(ours["old_dirs"], torch.stack(st["old_dirs"]).numpy(), "old_dirs (y)", **vec_tol)
            check(ours["old_stps"], torch.stack(st["old_stps"]).numpy(), "old_stps (s)", **vec_tol)
        # H_diag = yᵀs/yᵀy and ro = 1/yᵀs are ratios of gradient differences y, and the strong-Wolfe step
        # size interpolates differences of f: the ~1e-14 by which the two θ legitimately differ moves g by
        # ~‖A‖·1e-14, i.e. y by a relative 1e-13/‖y‖. Once ‖g‖ < 1e-3 that exceeds 1e-10 (measured 5e-10 at
        # ‖g‖ = 3e-4 while θ agreed to 3e-14), so these three scalars are compared above it.
        if np.max(np.abs(ours["prev_grad"])) > 1e-3:
            check(ours["step_size"], float(st["t"]), "step size t")
            check(ours["H_diag"], float(st["H_diag"]), "H_diag")
            check(ours["ro"], np.array([float(r) for r in st["ro"]]), "ro")
    # the run reached the minimum, so the comparison covered the whole path
    assert np.max(np.abs(f_and_grad(theta)[1])) <= 1e-5
    assert opt.t > 30
