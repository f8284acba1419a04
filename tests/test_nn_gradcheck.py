"""Gradient check (float64 central differences) of every NN function, loss and layer, plus of gradcheck itself."""
from dataclasses import dataclass, field
from typing import Callable

import numpy as np
import pytest

import descend
from descend import nn
from descend.autodiff import Function, Tensor
from descend.diagnose import GradcheckResult, gradcheck, numerical_gradient
from descend.nn import functional as F

from _gradcheck_table import GRADCHECK, check_float32_through, gradcheck_params, run_gradcheck



# -- the checker itself -----------------------------------------------------------------------------
def test_numerical_gradient_of_sum_of_cubes_is_three_x_squared():
    x = np.array([[0.5, -1.2, 2.0], [0.0, 3.0, -0.7]])
    before = x.copy()
    g = numerical_gradient(lambda: float((x ** 3).sum()), x)
    np.testing.assert_allclose(g, 3 * before ** 2, rtol=1e-8, atol=1e-8)
    np.testing.assert_array_equal(x, before)  # nudged in place and restored exactly


def test_numerical_gradient_refuses_float32():
    with pytest.raises(TypeError, match="float32"):
        numerical_gradient(lambda: 0.0, np.ones(3, np.float32))


def test_numerical_gradient_refuses_an_array_it_cannot_nudge_in_place():
    x = np.ones((3, 4)).T  # non-contiguous: reshape(-1) would nudge a copy and report zeros
    with pytest.raises(ValueError, match="contiguous"):
        numerical_gradient(lambda: float((x ** 3).sum()), x)


def test_gradcheck_catches_a_wrong_backward():
    class WrongSquare(Function):
        def forward(self, a):
            self.a = a
            return a * a

        def backward(self, g):
            return (g * self.a,)  # missing factor 2

    x = Tensor(np.array([0.5, 1.0, -2.0]), requires_grad=True)
    result = gradcheck(lambda t: Tensor.apply(WrongSquare(), t), [x])
    assert isinstance(result, GradcheckResult)
    assert not result.ok and not bool(result)
    assert "FAILED" in result.verdict and result.max_rel_error > 1e-2


def test_gradcheck_passes_a_right_backward_with_a_clear_verdict():
    x = Tensor(np.array([0.5, 1.0, -2.0]), requires_grad=True)
    result = gradcheck(lambda t: t * t, [x])
    assert result.ok and "passed" in result.verdict
    np.testing.assert_allclose(result.analytic[0], result.numerical[0], rtol=1e-8)


def test_gradcheck_needs_a_differentiable_float64_input():
    with pytest.raises(ValueError, match="requires_grad"):
        gradcheck(lambda t: t * 2.0, [Tensor(np.ones(2))])
    with pytest.raises(TypeError, match="float64"):
        gradcheck(lambda t: t * 2.0, [Tensor(np.ones(2, np.float32), requires_grad=True)])


# -- input makers -------------------------------------------------------------------------------------
def normal(*shape, scale=1.0):
    return lambda r: r.standard_normal(shape) * scale


def away_from_zero(*shape):
    return lambda r: r.choice([-1.0, 1.0], shape) * r.uniform(0.1, 2.0, shape)


def unit_interval(*shape):
    return lambda r: r.uniform(0.1, 0.9, shape)


def maxout_input(n, groups, pieces):
    """Each group's entries differ by ≥ 0.2, so the arg max is unambiguous."""
    def make(r):
        base = r.standard_normal((n, groups, 1))
        steps = np.stack([r.permutation(pieces) for _ in range(n * groups)]).reshape(n, groups, pieces) * 0.2
        return (base + steps).reshape(n, groups * pieces)
    return make


def hinge_scores(n, c, margin=1.0):
    """Scores whose margins s_j − s_y + Δ are all ≥ 0.1 away from 0 (the hinge's kink)."""
    y = np.arange(n) % c

    def make(r):
        s = r.standard_normal((n, c))
        for _ in range(100):
            m = s - s[np.arange(n), y][:, None] + margin
            m[np.arange(n), y] = 1.0
            bad = np.abs(m) < 0.1
            if not bad.any():
                return s
            s[bad] += 0.3
        raise AssertionError("could not place scores away from the hinge")
    return make, y


@dataclass
class Case:
    id: str
    fn: Callable
    makers: list
    names: list = field(default_factory=list)

    def inputs(self, seed=0):
        r = np.random.default_rng(seed)
        return [np.asarray(m(r), dtype=np.float64) for m in self.makers]

    def input_names(self):
        return self.names or ["x", "w", "b", "t"][:len(self.makers)]


LABELS = np.array([0, 2, 1, 2, 0])
HINGE_MAKE, HINGE_Y = hinge_scores(5, 4)
HINGE_MAKE2, HINGE_Y2 = hinge_scores(6, 3, margin=0.5)


def bn_train(x, w, b):
    c, dtype = x.shape[1], x.dtype  # buffers in the input's dtype, as a packed model keeps them
    return F.batch_norm(x, w, b, np.zeros(c, dtype), np.ones(c, dtype), training=True, momentum=0.1, eps=1e-5)


def bn_eval(x, w, b):
    c, dtype = x.shape[1], x.dtype
    mean, var = np.linspace(-0.5, 0.5, c, dtype=dtype), np.linspace(0.5, 2.0, c, dtype=dtype)
    return F.batch_norm(x, w, b, mean, var, training=False, eps=1e-5)


def dropout_fixed(x, p=0.4):
    # the same seed in every evaluation → the same mask, so the function is deterministic
    return F.dropout(x, p, training=True, rng=np.random.default_rng(7))


FUNCTION_CASES = [
    Case("linear", F.linear, [normal(4, 3), normal(5, 3), normal(5)]),
    Case("linear-no-bias", F.linear, [normal(4, 3), normal(5, 3)]),
    Case("linear-3d-input", F.linear, [normal(2, 4, 3), normal(5, 3), normal(5)]),
    Case("linear-1d-input", F.linear, [normal(3), normal(2, 3), normal(2)]),
    Case("linear_relu", F.linear_relu, [normal(6, 3), normal(5, 3), normal(5)]),
    Case("linear_relu-no-bias", F.linear_relu, [normal(6, 3), normal(5, 3)]),
    Case("sigmoid", F.sigmoid, [normal(4, 3, scale=3)]),
    Case("tanh", F.tanh, [normal(4, 3, scale=2)]),
    Case("relu", F.relu, [away_from_zero(4, 3)]),
    Case("leaky_relu-default", F.leaky_relu, [away_from_zero(4, 3)]),
    Case("leaky_relu-0.2", lambda x: F.leaky_relu(x, 0.2), [away_from_zero(4, 3)]),
    Case("elu-default", F.elu, [away_from_zero(4, 3)]),
    Case("elu-alpha0.5", lambda x: F.elu(x, 0.5), [away_from_zero(4, 3)]),
    Case("maxout-2", lambda z: F.maxout(z, 2), [maxout_input(3, 4, 2)]),
    Case("maxout-3", lambda z: F.maxout(z, 3), [maxout_input(4, 2, 3)]),
    Case("softmax", F.softmax, [normal(3, 5)]),
    Case("softmax-axis0", lambda z: F.softmax(z, axis=0), [normal(3, 5)]),
    Case("log_softmax", F.log_softmax, [normal(3, 5)]),
    Case("log_softmax-axis0", lambda z: F.log_softmax(z, axis=0), [normal(3, 5)]),
    Case("cross_entropy-mean", lambda z: F.cross_entropy(z, LABELS), [normal(5, 3)]),
    Case("cross_entropy-sum", lambda z: F.cross_entropy(z, LABELS, reduction="sum"), [normal(5, 3)]),
    Case("cross_entropy-none", lambda z: F.cross_entropy(z, LABELS, reduction="none"), [normal(5, 3)]),
    Case("cross_entropy-loss-module", lambda z: nn.cross_entropy(z, LABELS), [normal(5, 3, scale=5)]),
    Case("mse-mean", F.mse, [normal(4, 2), normal(4, 2)], ["pred", "target"]),
    Case("mse-sum", lambda p, t: F.mse(p, t, reduction="sum"), [normal(4, 2), normal(4, 2)], ["pred", "target"]),
    Case("mse-none", lambda p, t: F.mse(p, t, reduction="none"), [normal(4, 2), normal(4, 2)], ["pred", "target"]),
    Case("bce_with_logits-mean", F.bce_with_logits, [normal(4, 3, scale=2), unit_interval(4, 3)],
         ["logits", "target"]),
    Case("bce_with_logits-sum", lambda z, t: F.bce_with_logits(z, t, reduction="sum"),
         [normal(6, scale=2), unit_interval(6)], ["logits", "target"]),
    Case("bce_with_logits-none", lambda z, t: F.bce_with_logits(z, t, reduction="none"),
         [normal(4, 3, scale=2), unit_interval(4, 3)], ["logits", "target"]),
    Case("hinge", lambda s: F.hinge(s, HINGE_Y), [HINGE_MAKE]),
    Case("hinge-margin0.5", lambda s: F.hinge(s, HINGE_Y2, margin=0.5), [HINGE_MAKE2]),
    Case("dropout-fixed-mask", dropout_fixed, [normal(5, 4)]),
    Case("dropout-p0.1-fixed-mask", lambda x: dropout_fixed(x, 0.1), [normal(3, 4)]),
    Case("batch_norm-train-2d", bn_train, [normal(5, 3), normal(3), normal(3)]),
    Case("batch_norm-train-3d", bn_train, [normal(4, 3, 2), normal(3), normal(3)]),
    Case("batch_norm-eval-2d", bn_eval, [normal(5, 3), normal(3), normal(3)]),
    Case("batch_norm-eval-3d", bn_eval, [normal(4, 3, 2), normal(3), normal(3)]),
    Case("l2_penalty", lambda w1, w2: nn.l2_penalty([w1, w2], 0.3), [normal(3, 2), normal(4)], ["w1", "w2"]),
    Case("mlp-composite", lambda x, w, b: F.cross_entropy(F.linear(F.tanh(x), w, b), LABELS),
         [normal(5, 4), normal(3, 4), normal(3)]),
]


@pytest.mark.parametrize("case,mode", gradcheck_params(FUNCTION_CASES))
def test_function_gradcheck(case, mode):
    run_gradcheck(case, mode)


@pytest.mark.parametrize("case", [pytest.param(c, id=c.id) for c in FUNCTION_CASES])
def test_function_float32_in_float32_out(case):
    check_float32_through(case)


# -- layers -----------------------------------------------------------------------------------------
def _seq_with_everything(r):
    return nn.Sequential(nn.Flatten(), nn.Linear(6, 5, rng=r), nn.BatchNorm1d(5), nn.Tanh(),
                         nn.Maxout(5, 3, pieces=2, rng=r), nn.ELU(), nn.Linear(3, 2, rng=r), nn.Sigmoid())


LAYER_CASES = {
    # id: (model factory, input shape)
    "Linear": (lambda r: nn.Linear(3, 4, rng=r), (5, 3)),
    "Linear-no-bias": (lambda r: nn.Linear(3, 4, bias=False, rng=r), (5, 3)),
    "ReLU": (lambda r: nn.ReLU(), (4, 3)),
    "LeakyReLU": (lambda r: nn.LeakyReLU(0.1), (4, 3)),
    "ELU": (lambda r: nn.ELU(0.7), (4, 3)),
    "Sigmoid": (lambda r: nn.Sigmoid(), (4, 3)),
    "Tanh": (lambda r: nn.Tanh(), (4, 3)),
    "Maxout": (lambda r: nn.Maxout(3, 2, pieces=3, rng=r), (4, 3)),
    "Dropout": (lambda r: nn.Dropout(0.3, rng=r), (4, 3)),
    "BatchNorm1d-2d-train": (lambda r: nn.BatchNorm1d(3), (5, 3)),
    "BatchNorm1d-3d-train": (lambda r: nn.BatchNorm1d(3), (4, 3, 2)),
    "BatchNorm1d-2d-eval": (lambda r: nn.BatchNorm1d(3).eval(), (5, 3)),
    "Flatten": (lambda r: nn.Flatten(), (2, 3, 2)),
    "Sequential-mlp": (lambda r: nn.Sequential(nn.Linear(3, 4, rng=r), nn.ReLU(), nn.Linear(4, 2, rng=r)), (5, 3)),
    "Sequential-everything": (_seq_with_everything, (6, 2, 3)),
}


def _layer_setup(name):
    factory, shape = LAYER_CASES[name]
    r = np.random.default_rng(3)
    model = factory(r)
    params = None
    if model.parameters():
        params = descend.pack(model, dtype=np.float64)
        # non-trivial BatchNorm scale/shift and running statistics (γ = 1, β = 0 would hide bugs)
        params.theta[:] = r.standard_normal(params.theta.size) * 0.8
        for _, buf in model.named_buffers():
            buf[...] = r.uniform(0.5, 1.5, buf.shape)
    x = r.standard_normal(shape)
    if name in ("ReLU", "LeakyReLU", "ELU"):
        x = np.sign(x) * (np.abs(x) + 0.1)  # ≥ 0.1 away from the kink
    return model, params, x


def _fixed_dropout(model):
    """Reset every Dropout's generator before each evaluation so the mask is the same each time."""
    drops = [m for _, m in model.named_modules() if isinstance(m, nn.Dropout)]

    def run(x):
        for d in drops:
            d.rng = np.random.default_rng(11)
        return model(x)
    return run


def _layer_modes():
    out = []
    for name in LAYER_CASES:
        model, _, _ = _layer_setup(name)
        pnames = [n for n, _ in model.named_parameters()]
        for mode in ["all", "input"] + pnames:
            out.append(pytest.param(name, mode, id=f"{name}[{mode}]"))
    return out


@pytest.mark.parametrize("name,mode", _layer_modes())
def test_layer_gradcheck(name, mode):
    model, _, x = _layer_setup(name)
    for pname, p in model.named_parameters():
        p.requires_grad = mode in ("all", pname)
    xt = Tensor(x, requires_grad=mode in ("all", "input"))
    params = [p for p in model.parameters() if p.requires_grad]
    run = _fixed_dropout(model)
    result = gradcheck(lambda xx, *ps: run(xx), [xt, *params], **GRADCHECK)
    assert result.ok, result.verdict


def test_layer_gradcheck_hits_every_kink_guard():
    # the Maxout layer's pre-activations must not be tied within eps in the setup above
    model, _, x = _layer_setup("Maxout")
    z = F.linear(Tensor(x), model.weight, model.bias).data.reshape(4, 2, 3)
    zs = np.sort(z, axis=-1)
    assert np.min(zs[..., -1] - zs[..., -2]) > 1e-3


@pytest.mark.parametrize("loss", ["cross_entropy", "mse", "bce_with_logits", "hinge"])
def test_packed_float64_model_with_loss_passes_gradcheck_on_theta(loss):
    """gradcheck of the flat θ of a packed float64 model, through each loss."""
    r = np.random.default_rng(5)
    out = 3 if loss in ("cross_entropy", "hinge") else 2
    model = nn.Sequential(nn.Linear(4, 6, rng=r), nn.Tanh(), nn.Linear(6, out, rng=r))
    params = descend.pack(model, dtype=np.float64)
    x = r.standard_normal((5, 4))
    targets = {"cross_entropy": LABELS, "hinge": LABELS, "mse": r.standard_normal((5, 2)),
               "bce_with_logits": r.uniform(0, 1, (5, 2))}
    fn = getattr(nn, loss)

    def objective():  # numerical_gradient nudges θ in place; the model reads it through its views
        return float(fn(model(x), targets[loss]).data)

    params.zero_grad()
    fn(model(x), targets[loss]).backward()
    numerical = numerical_gradient(objective, params.theta)
    np.testing.assert_allclose(params.grad, numerical, atol=1e-6, rtol=1e-5)
