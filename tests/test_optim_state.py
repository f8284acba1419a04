"""The public optimizer state protocol: init_state, state_dict (copies, out=), load_state_dict (checks first,
restores exactly) for every optimizer, including L-BFGS and Newton."""
import copy

import numpy as np
import pytest

from descend.optim import BFGS, LBFGS, SGD, Adagrad, Adam, AdamW, NAdam, Newton, RMSprop

N = 7
THETA0 = np.random.default_rng(5).standard_normal(N)

MAKERS = {
    "sgd": lambda: SGD(lr=0.1),
    "sgd_momentum": lambda: SGD(lr=0.05, momentum=0.9, nesterov=True),
    "sgd_ewa": lambda: SGD(lr=0.1, momentum=0.9, momentum_form="ewa", bias_correction=True),
    "sgd_cs231n": lambda: SGD(lr=0.05, momentum=0.9, momentum_form="cs231n"),
    "adagrad": lambda: Adagrad(lr=0.1, lr_decay=0.01, initial_accumulator_value=0.1),
    "adagrad_eps_inside": lambda: Adagrad(lr=0.1, eps=1e-6, eps_inside=True),
    "rmsprop": lambda: RMSprop(centered=True, momentum=0.5),
    "adam": lambda: Adam(lr=0.05, amsgrad=True),
    "adamw": lambda: AdamW(lr=0.05),
    "nadam": lambda: NAdam(lr=0.05),
    "lbfgs_wolfe": lambda: LBFGS(max_iter=2, history_size=3),
    "lbfgs_backtracking": lambda: LBFGS(max_iter=2, history_size=3, line_search="backtracking"),
    "lbfgs_fixed": lambda: LBFGS(lr=0.2, max_iter=2, history_size=3, line_search=None),
    "bfgs_wolfe": lambda: BFGS(max_iter=2),
    "bfgs_backtracking": lambda: BFGS(max_iter=2, line_search="backtracking"),
    "bfgs_fixed": lambda: BFGS(lr=0.2, max_iter=2, line_search=None),
    "newton_fd": lambda: Newton(damping=0.5),
    "newton_cg": lambda: Newton(hessian="cg", damping=0.5),
}


def closure_for(theta):
    """A smooth non-quadratic objective, so that every optimizer keeps moving for a few steps."""
    def closure():
        x = theta.astype(np.float64)
        return float(np.sum(np.cosh(x) + 0.1 * x ** 3 / (1 + x ** 2))), \
            (np.sinh(x) + 0.1 * (x ** 4 + 3 * x ** 2) / (1 + x ** 2) ** 2).astype(theta.dtype)
    return closure


def assert_same_state(a, b):
    assert a.keys() == b.keys()
    for k in a:
        if isinstance(a[k], np.ndarray):
            assert a[k].dtype == b[k].dtype and a[k].shape == b[k].shape and np.array_equal(a[k], b[k]), k
        else:
            assert type(a[k]) is type(b[k]) and a[k] == b[k], k


def run(opt, theta, steps):
    out = []
    for _ in range(steps):
        opt.step(theta, closure_for(theta), lr=None)
        out.append((theta.copy(), opt.state_dict()))
    return out


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("name", sorted(MAKERS))
def test_state_dict_rewinds_exactly(name, dtype):
    """k steps, snapshot, m more steps; load the snapshot (into the same optimizer and into a new one) and
    re-run the m steps from the same θ: bit-identical θ and state at every step."""
    opt = MAKERS[name]()
    theta = THETA0.astype(dtype)
    run(opt, theta, 3)
    snap, theta_k = opt.state_dict(), theta.copy()
    first = run(opt, theta, 4)
    for target in (opt, MAKERS[name]()):
        target.load_state_dict(snap)
        assert_same_state(target.state_dict(), snap)
        theta2 = theta_k.copy()
        again = run(target, theta2, 4)
        for (ta, sa), (tb, sb) in zip(first, again):
            assert np.array_equal(ta, tb)
            assert_same_state(sa, sb)
    assert opt.state_dict()["t"] > 0


@pytest.mark.parametrize("name", sorted(MAKERS))
def test_state_dict_arrays_are_copies_and_values_plain(name):
    opt = MAKERS[name]()
    theta = THETA0.copy()
    run(opt, theta, 2)
    sd = opt.state_dict()
    before = copy.deepcopy(sd)
    for k, v in sd.items():
        assert isinstance(v, (np.ndarray, int, float, bool, str, type(None))), (k, type(v))
        if isinstance(v, np.ndarray):
            v[...] = 123.0  # the caller's copy: the optimizer does not see it
    assert_same_state(opt.state_dict(), before)
    fresh, ref = MAKERS[name](), MAKERS[name]()
    fresh.load_state_dict(before)
    ref.load_state_dict(copy.deepcopy(before))
    for v in before.values():
        if isinstance(v, np.ndarray):
            v[...] = -7.0  # nor does a loaded optimizer see later changes to the dict it loaded
    assert_same_state(fresh.state_dict(), ref.state_dict())
    for (xa, sa), (xb, sb) in zip(run(fresh, theta.copy(), 2), run(ref, theta.copy(), 2)):
        assert np.array_equal(xa, xb)
        assert_same_state(sa, sb)


@pytest.mark.parametrize("name", sorted(MAKERS))
def test_state_dict_out_reuses_arrays(name):
    opt = MAKERS[name]()
    theta = THETA0.copy()
    run(opt, theta, 2)
    snap = opt.state_dict()
    ids = {k: id(v) for k, v in snap.items() if isinstance(v, np.ndarray)}
    run(opt, theta, 1)
    again = opt.state_dict(out=snap)
    assert again is snap
    assert_same_state(snap, opt.state_dict())
    for k, v in snap.items():
        if isinstance(v, np.ndarray) and v.shape == opt.state_dict()[k].shape and k in ids:
            if not name.startswith("lbfgs"):  # L-BFGS's history grows; fixed-size buffers are reused
                assert id(v) == ids[k], k


def _bad_variants(sd):
    """(description, bad dict) pairs: each must be refused."""
    arrays = [k for k, v in sd.items() if isinstance(v, np.ndarray)]
    hyper = next(k for k in sd if k not in ("optimizer", "t") and not isinstance(sd[k], np.ndarray))
    out = [("class", {**sd, "optimizer": "Other"}), ("t<0", {**sd, "t": -1}), ("t float", {**sd, "t": 1.5}),
           ("unknown", {**sd, "zzz": 1}), ("missing t", {k: v for k, v in sd.items() if k != "t"}),
           ("missing hyper", {k: v for k, v in sd.items() if k != hyper}), ("lr<0", {**sd, "lr": -1.0})]
    for k in arrays:
        v = sd[k]
        out.append((f"{k} shape", {**sd, k: np.zeros(v.shape[:-1] + (v.shape[-1] + 1,), v.dtype) if v.size else
                                   np.zeros(5)}))
        out.append((f"{k} dtype", {**sd, k: v.astype(np.float32 if v.dtype == np.float64 else np.float64)}))
        out.append((f"{k} list", {**sd, k: v.tolist()}))
        out.append((f"missing {k}", {kk: vv for kk, vv in sd.items() if kk != k}))
    return out


@pytest.mark.parametrize("name", sorted(MAKERS))
def test_bad_state_changes_nothing(name):
    opt = MAKERS[name]()
    theta = THETA0.copy()
    run(opt, theta, 2)
    sd = opt.state_dict()
    sd_scalars = [k for k in ("mu_product", "H_diag", "func_evals") if k in sd]
    variants = _bad_variants(sd) + [(f"{k} str", {**sd, k: "x"}) for k in sd_scalars]
    live = dict(opt.state)
    for what, bad in variants:
        before = opt.state_dict()
        with pytest.raises((ValueError, TypeError)):
            opt.load_state_dict(bad)
            pytest.fail(f"accepted a bad state ({what})")
        assert_same_state(opt.state_dict(), before)
        assert all(opt.state[k] is v for k, v in live.items()), what  # the very same buffers
    # and it still continues exactly like an untouched copy
    ref = MAKERS[name]()
    ref.load_state_dict(sd)
    ta, tb = theta.copy(), theta.copy()
    for (xa, sa), (xb, sb) in zip(run(opt, ta, 2), run(ref, tb, 2)):
        assert np.array_equal(xa, xb)
        assert_same_state(sa, sb)


@pytest.mark.parametrize("name", sorted(MAKERS))
def test_init_state_is_idempotent_and_changes_no_step(name):
    a, b = MAKERS[name](), MAKERS[name]()
    theta = THETA0.copy()
    a.init_state(theta)
    first = a.state_dict()
    a.init_state(theta)
    assert_same_state(a.state_dict(), first)
    assert first["t"] == 0 and np.array_equal(theta, THETA0)
    ta, tb = theta.copy(), theta.copy()
    for (xa, sa), (xb, sb) in zip(run(a, ta, 3), run(b, tb, 3)):
        assert np.array_equal(xa, xb)
        assert_same_state(sa, sb)
    if any(isinstance(v, np.ndarray) for v in a.state_dict().values()):  # state of another size is refused
        with pytest.raises(ValueError, match="theta"):
            a.init_state(np.zeros(N + 1))
    with pytest.raises((TypeError, ValueError)):
        a.init_state([0.0] * N)


def test_init_state_creates_the_buffers_now():
    opt = Adam(amsgrad=True)
    opt.init_state(np.zeros(4, np.float32))
    sd = opt.state_dict()
    assert {k: (v.shape, v.dtype) for k, v in sd.items() if isinstance(v, np.ndarray)} == \
        {k: ((4,), np.float32) for k in ("m", "v", "v_max")}
    acc = Adagrad(initial_accumulator_value=0.25)
    acc.init_state(np.zeros(3))
    assert np.array_equal(acc.state_dict()["s"], np.full(3, 0.25))
