"""PyTorch as the oracle: forward and backward of every function, layer and loss in float64 (rtol 1e-10)."""
from dataclasses import dataclass
from typing import Callable

import numpy as np
import pytest

import descend
from descend import nn
from descend.autodiff import Tensor
from descend.nn import functional as F
from descend.nn.functional import dense

torch = pytest.importorskip("torch")
TF = torch.nn.functional

RTOL, ATOL = 1e-10, 1e-13


def close(ours, theirs, what=""):
    theirs = theirs.detach().numpy() if isinstance(theirs, torch.Tensor) else theirs
    ours = ours.data if isinstance(ours, Tensor) else ours
    assert ours.shape == theirs.shape, f"{what}: shape {ours.shape} vs {theirs.shape}"
    np.testing.assert_allclose(ours, theirs, rtol=RTOL, atol=ATOL, err_msg=what)


def normal(*shape, scale=1.0):
    return lambda r: r.standard_normal(shape) * scale


def unit(*shape):
    return lambda r: r.uniform(0.0, 1.0, shape)


@dataclass
class Pair:
    id: str
    ours: Callable
    theirs: Callable
    makers: list


Y5 = np.array([0, 2, 1, 2, 0])
Y5_T = torch.tensor(Y5)


def torch_maxout(z, pieces):
    return z.reshape(*z.shape[:-1], z.shape[-1] // pieces, pieces).amax(dim=-1)


PAIRS = [
    Pair("linear", F.linear, TF.linear, [normal(4, 3), normal(5, 3), normal(5)]),
    Pair("linear-no-bias", F.linear, TF.linear, [normal(4, 3), normal(5, 3)]),
    Pair("linear-3d", F.linear, TF.linear, [normal(2, 4, 3), normal(5, 3), normal(5)]),
    Pair("sigmoid", F.sigmoid, torch.sigmoid, [normal(6, 5, scale=4)]),
    Pair("sigmoid-extreme", F.sigmoid, torch.sigmoid,
         [lambda r: np.array([-800.0, -40.0, -1e-3, 0.0, 1e-3, 40.0, 800.0])]),
    Pair("tanh", F.tanh, torch.tanh, [normal(6, 5, scale=2)]),
    Pair("relu", F.relu, torch.relu, [normal(6, 5)]),
    Pair("leaky_relu-default", F.leaky_relu, TF.leaky_relu, [normal(6, 5)]),
    Pair("leaky_relu-0.2", lambda x: F.leaky_relu(x, 0.2), lambda x: TF.leaky_relu(x, 0.2), [normal(6, 5)]),
    Pair("elu-default", F.elu, TF.elu, [normal(6, 5, scale=2)]),
    Pair("elu-alpha0.5", lambda x: F.elu(x, 0.5), lambda x: TF.elu(x, 0.5), [normal(6, 5, scale=2)]),
    Pair("maxout-2", lambda z: F.maxout(z, 2), lambda z: torch_maxout(z, 2), [normal(5, 8)]),
    Pair("maxout-4", lambda z: F.maxout(z, 4), lambda z: torch_maxout(z, 4), [normal(5, 8)]),
    Pair("softmax", F.softmax, lambda z: TF.softmax(z, dim=-1), [normal(4, 6, scale=3)]),
    Pair("softmax-axis0", lambda z: F.softmax(z, axis=0), lambda z: TF.softmax(z, dim=0), [normal(4, 6)]),
    Pair("log_softmax", F.log_softmax, lambda z: TF.log_softmax(z, dim=-1), [normal(4, 6, scale=3)]),
    Pair("log_softmax-axis0", lambda z: F.log_softmax(z, axis=0), lambda z: TF.log_softmax(z, dim=0),
         [normal(4, 6)]),
    Pair("cross_entropy-mean", lambda z: F.cross_entropy(z, Y5), lambda z: TF.cross_entropy(z, Y5_T),
         [normal(5, 3, scale=3)]),
    Pair("cross_entropy-sum", lambda z: F.cross_entropy(z, Y5, reduction="sum"),
         lambda z: TF.cross_entropy(z, Y5_T, reduction="sum"), [normal(5, 3)]),
    Pair("cross_entropy-none", lambda z: F.cross_entropy(z, Y5, reduction="none"),
         lambda z: TF.cross_entropy(z, Y5_T, reduction="none"), [normal(5, 3)]),
    Pair("cross_entropy-logits-pm1000", lambda z: F.cross_entropy(z, Y5), lambda z: TF.cross_entropy(z, Y5_T),
         [lambda r: r.choice([-1000.0, 1000.0], (5, 3)) + r.standard_normal((5, 3))]),
    Pair("mse-mean", F.mse, TF.mse_loss, [normal(4, 3), normal(4, 3)]),
    Pair("mse-sum", lambda p, t: F.mse(p, t, reduction="sum"), lambda p, t: TF.mse_loss(p, t, reduction="sum"),
         [normal(4, 3), normal(4, 3)]),
    Pair("mse-none", lambda p, t: F.mse(p, t, reduction="none"), lambda p, t: TF.mse_loss(p, t, reduction="none"),
         [normal(4, 3), normal(4, 3)]),
    Pair("linear_relu", F.linear_relu, lambda x, w, b: TF.relu(TF.linear(x, w, b)), [normal(6, 3), normal(5, 3), normal(5)]),
    Pair("linear_relu-no-bias", F.linear_relu, lambda x, w: TF.relu(TF.linear(x, w)), [normal(6, 3), normal(5, 3)]),
    # wide results (128×160 ≥ dense.TALL_MIN elements): computed transposed, forward and backward
    Pair("linear-wide", F.linear, TF.linear, [normal(128, 20), normal(160, 20), normal(160)]),
    Pair("linear_relu-wide", F.linear_relu, lambda x, w, b: TF.relu(TF.linear(x, w, b)),
         [normal(128, 20), normal(160, 20), normal(160)]),
    Pair("bce_with_logits-mean", F.bce_with_logits, TF.binary_cross_entropy_with_logits,
         [normal(4, 3, scale=5), unit(4, 3)]),
    Pair("bce_with_logits-sum", lambda z, t: F.bce_with_logits(z, t, reduction="sum"),
         lambda z, t: TF.binary_cross_entropy_with_logits(z, t, reduction="sum"), [normal(7, scale=5), unit(7)]),
    Pair("bce_with_logits-none", lambda z, t: F.bce_with_logits(z, t, reduction="none"),
         lambda z, t: TF.binary_cross_entropy_with_logits(z, t, reduction="none"), [normal(4, 3), unit(4, 3)]),
    Pair("bce_with_logits-extreme", F.bce_with_logits, TF.binary_cross_entropy_with_logits,
         [lambda r: np.array([-800.0, -30.0, 0.0, 30.0, 800.0]), lambda r: np.array([0.0, 1.0, 0.5, 0.0, 1.0])]),
    # ours is CS231n's SVM loss, Σ_{j≠y} max(0, s_j − s_y + Δ) averaged over N; PyTorch's
    # multi_margin_loss also divides each sample's sum by C, hence the factor C
    Pair("hinge-vs-multi_margin_loss-times-C", lambda s: F.hinge(s, Y5),
         lambda s: TF.multi_margin_loss(s, Y5_T) * s.shape[1], [normal(5, 4)]),
    Pair("hinge-margin0.5", lambda s: F.hinge(s, Y5, margin=0.5),
         lambda s: TF.multi_margin_loss(s, Y5_T, margin=0.5) * s.shape[1], [normal(5, 3)]),
]


@pytest.mark.parametrize("pair", [pytest.param(p, id=p.id) for p in PAIRS])
def test_function_matches_torch(pair):
    r = np.random.default_rng(42)
    arrays = [m(r) for m in pair.makers]
    ours_in = [Tensor(a.copy(), requires_grad=True) for a in arrays]
    theirs_in = [torch.tensor(a, requires_grad=True) for a in arrays]
    ours, theirs = pair.ours(*ours_in), pair.theirs(*theirs_in)
    assert ours.dtype == np.float64 and np.all(np.isfinite(ours.data))
    close(ours, theirs, "forward")
    g = r.standard_normal(ours.shape) if ours.ndim else np.array(1.7)
    ours.backward(g)
    theirs.backward(torch.tensor(g))
    for i, (a, b) in enumerate(zip(ours_in, theirs_in)):
        close(a.grad, b.grad, f"gradient of input {i}")


def test_cross_entropy_of_huge_logits_is_exact_and_finite():
    z = np.array([[1000.0, -1000.0, 0.0], [-1000.0, -1000.0, 1000.0], [1000.0, 1000.0, -1000.0]])
    y = np.array([1, 2, 0])
    t = Tensor(z, requires_grad=True)
    loss = F.cross_entropy(t, y, reduction="none")
    np.testing.assert_array_equal(loss.data, [2000.0, 0.0, np.log(2.0)])  # exact by hand
    loss.backward(np.ones(3))
    assert np.all(np.isfinite(t.grad))
    zt = torch.tensor(z, requires_grad=True)
    TF.cross_entropy(zt, torch.tensor(y), reduction="none").backward(torch.ones(3, dtype=torch.float64))
    close(t.grad, zt.grad)


@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
def test_cross_entropy_in_float32_matches_torch_to_float32_rounding(reduction):
    """The fused kernel computes float32 logits in float32: loss and gradient as torch's float32 ones."""
    r = np.random.default_rng(7)
    z = (r.standard_normal((128, 10)) * 4).astype(np.float32)
    y = r.integers(0, 10, 128)
    t = Tensor(z, requires_grad=True)
    loss = F.cross_entropy(t, y, reduction=reduction)
    assert loss.data.dtype == np.float32
    g = r.standard_normal(loss.shape).astype(np.float32) if reduction == "none" else np.float32(1.7)
    loss.backward(g)
    assert t.grad.dtype == np.float32
    zt = torch.tensor(z, requires_grad=True)
    lt = TF.cross_entropy(zt, torch.tensor(y), reduction=reduction)
    lt.backward(torch.tensor(g))
    np.testing.assert_allclose(loss.data, lt.detach().numpy(), rtol=2e-6, atol=1e-6)
    np.testing.assert_allclose(t.grad, zt.grad.numpy(), rtol=1e-5, atol=1e-8)


def test_cross_entropy_rows_with_nan_or_inf_are_nan_and_leave_other_rows_alone():
    """A NaN or +inf logit, or a row of −inf, makes that row's loss and gradient NaN (as torch, and as the
    max-shifted formula); the other rows are exact."""
    z = np.array([[0.5, np.nan, 1.0], [np.inf, 0.0, 1.0], [-np.inf, -np.inf, -np.inf], [np.nan, 2.0, 0.0],
                  [1.0, -np.inf, 3.0]])
    y = np.array([0, 1, 2, 1, 2])
    t = Tensor(z, requires_grad=True)
    loss = F.cross_entropy(t, y, reduction="none")
    loss.backward(np.ones(5))
    assert np.all(np.isnan(loss.data[:4])) and np.all(np.isnan(t.grad[:4]))
    zt = torch.tensor(z, requires_grad=True)
    lt = TF.cross_entropy(zt, torch.tensor(y), reduction="none")
    lt.backward(torch.ones(5, dtype=torch.float64))
    assert np.all(np.isnan(lt.detach().numpy()[:4]))
    close(loss.data[4], lt.detach().numpy()[4])
    close(t.grad[4], zt.grad.numpy()[4])


def test_cross_entropy_of_an_empty_batch_is_nan_mean_zero_sum():
    z, y = np.zeros((0, 3)), np.zeros(0, int)
    with pytest.warns(RuntimeWarning):
        assert np.isnan(F.cross_entropy(z, y).data)
    assert F.cross_entropy(z, y, reduction="sum").data == 0.0
    assert F.cross_entropy(z, y, reduction="none").data.shape == (0,)


def test_cross_entropy_of_other_dtypes_computes_in_float():
    """float16 logits compute in float32, integer logits in float64 (one kernel per float type)."""
    y = np.array([0, 2])
    half = F.cross_entropy(np.array([[1, 2, 3], [3, 2, 1]], np.float16), y)
    ints = F.cross_entropy(np.array([[1, 2, 3], [3, 2, 1]]), y)
    assert half.data.dtype == np.float32 and ints.data.dtype == np.float64
    want = np.log(np.exp([1, 2, 3]).sum()) - 1  # both rows: log Σe − the smallest logit
    close(ints.data, want)
    np.testing.assert_allclose(half.data, want, rtol=1e-6)


# -- layers ------------------------------------------------------------------------------------------
def copy_params(ours_model, torch_params):
    """Load our packed float64 θ from torch parameters given in our layout order (torch's vector lists each
    parameter row-major: ``Params.canonical`` order)."""
    params = descend.pack(ours_model, dtype=np.float64)
    params.theta[:] = params.from_canonical(np.concatenate([p.detach().numpy().ravel() for p in torch_params]))
    return params


ACTIVATION_LAYERS = [
    ("ReLU", nn.ReLU(), torch.nn.ReLU()),
    ("LeakyReLU", nn.LeakyReLU(0.05), torch.nn.LeakyReLU(0.05)),
    ("ELU", nn.ELU(0.8), torch.nn.ELU(0.8)),
    ("Sigmoid", nn.Sigmoid(), torch.nn.Sigmoid()),
    ("Tanh", nn.Tanh(), torch.nn.Tanh()),
    ("Flatten", nn.Flatten(), torch.nn.Flatten()),
]


@pytest.mark.parametrize("ours,theirs", [pytest.param(o, t, id=n) for n, o, t in ACTIVATION_LAYERS])
def test_parameterless_layer_matches_torch(ours, theirs):
    r = np.random.default_rng(1)
    x = r.standard_normal((4, 3, 2)) * 2
    xo, xt = Tensor(x, requires_grad=True), torch.tensor(x, requires_grad=True)
    yo, yt = ours(xo), theirs(xt)
    close(yo, yt)
    g = r.standard_normal(yo.shape)
    yo.backward(g)
    yt.backward(torch.tensor(g))
    close(xo.grad, xt.grad)


@pytest.mark.parametrize("bias", [True, False], ids=["bias", "no-bias"])
@pytest.mark.parametrize("sizes", [(4, 3), (200, 100), (100, 200)], ids=["small", "narrowing", "widening"])
def test_linear_layer_matches_torch(bias, sizes):
    """The narrowing layer's weight lives column-major in θ (Entry.order "F"), the others row-major."""
    r = np.random.default_rng(2)
    theirs = torch.nn.Linear(*sizes, bias=bias, dtype=torch.float64)
    ours = nn.Linear(*sizes, bias=bias, rng=r)
    params = copy_params(ours, theirs.parameters())
    assert params.entry("weight").order == ("F" if sizes == (200, 100) else "C")
    x = r.standard_normal((6, sizes[0]))
    xo, xt = Tensor(x, requires_grad=True), torch.tensor(x, requires_grad=True)
    yo, yt = ours(xo), theirs(xt)
    close(yo, yt)
    g = r.standard_normal(yo.shape)
    params.zero_grad()
    yo.backward(g)
    yt.backward(torch.tensor(g))
    close(xo.grad, xt.grad, "input")
    close(params.canonical(params.grad), torch.cat([p.grad.ravel() for p in theirs.parameters()]), "θ gradient")


def test_maxout_layer_matches_torch_linear_plus_amax():
    r = np.random.default_rng(3)
    lin = torch.nn.Linear(4, 3 * 2, dtype=torch.float64)
    ours = nn.Maxout(4, 3, pieces=2, rng=r)
    params = copy_params(ours, lin.parameters())
    x = r.standard_normal((5, 4))
    xo, xt = Tensor(x, requires_grad=True), torch.tensor(x, requires_grad=True)
    yo, yt = ours(xo), torch_maxout(lin(xt), 2)
    close(yo, yt)
    g = r.standard_normal(yo.shape)
    params.zero_grad()
    yo.backward(g)
    yt.backward(torch.tensor(g))
    close(xo.grad, xt.grad)
    close(params.canonical(params.grad), torch.cat([p.grad.ravel() for p in lin.parameters()]))


@pytest.mark.parametrize("shape", [(8, 3), (6, 3, 4)], ids=["N-D", "N-D-L"])
@pytest.mark.parametrize("momentum", [0.1, 0.35])
def test_batchnorm1d_training_steps_then_eval_match_torch(shape, momentum):
    r = np.random.default_rng(4)
    theirs = torch.nn.BatchNorm1d(3, momentum=momentum, dtype=torch.float64)
    ours = nn.BatchNorm1d(3, momentum=momentum)
    with torch.no_grad():
        theirs.weight.copy_(torch.tensor(r.uniform(0.5, 1.5, 3)))
        theirs.bias.copy_(torch.tensor(r.standard_normal(3)))
    params = copy_params(ours, theirs.parameters())
    for step in range(6):
        x = r.standard_normal(shape) * 2 + step
        g = r.standard_normal(shape)
        xo, xt = Tensor(x, requires_grad=True), torch.tensor(x, requires_grad=True)
        params.zero_grad()
        theirs.zero_grad()
        yo, yt = ours(xo), theirs(xt)
        close(yo, yt, f"training forward, step {step}")
        yo.backward(g)
        yt.backward(torch.tensor(g))
        close(xo.grad, xt.grad, f"input gradient, step {step}")
        close(params.canonical(params.grad), torch.cat([theirs.weight.grad, theirs.bias.grad]), f"γ, β gradients, step {step}")
        close(ours.running_mean, theirs.running_mean, f"running_mean, step {step}")
        close(ours.running_var, theirs.running_var, f"running_var, step {step}")
    ours.eval()
    theirs.eval()
    x = r.standard_normal(shape) + 1
    g = r.standard_normal(shape)
    xo, xt = Tensor(x, requires_grad=True), torch.tensor(x, requires_grad=True)
    params.zero_grad()
    theirs.zero_grad()
    yo, yt = ours(xo), theirs(xt)
    close(yo, yt, "eval forward")
    yo.backward(g)
    yt.backward(torch.tensor(g))
    close(xo.grad, xt.grad, "eval input gradient")
    close(params.canonical(params.grad), torch.cat([theirs.weight.grad, theirs.bias.grad]), "eval γ, β gradients")
    running = (ours.running_mean.copy(), ours.running_var.copy())
    ours(Tensor(x))
    np.testing.assert_array_equal(ours.running_mean, running[0])  # eval leaves the statistics alone
    np.testing.assert_array_equal(ours.running_var, running[1])


@pytest.mark.parametrize("loss", ["cross_entropy", "hinge", "mse", "bce_with_logits"])
def test_mlp_whole_model_gradient_in_theta_order_matches_torch(loss):
    r = np.random.default_rng(5)
    sizes = [(6, 8), (8, 5), (5, 3)]
    ours = nn.Sequential(nn.Linear(6, 8, rng=r), nn.ReLU(), nn.Linear(8, 5, rng=r), nn.Tanh(),
                         nn.Linear(5, 3, rng=r))
    theirs = torch.nn.Sequential(torch.nn.Linear(*sizes[0]), torch.nn.ReLU(), torch.nn.Linear(*sizes[1]),
                                 torch.nn.Tanh(), torch.nn.Linear(*sizes[2])).double()
    params = copy_params(ours, theirs.parameters())
    assert [e.name for e in params.layout] == [n for n, _ in theirs.named_parameters()]
    x = r.standard_normal((7, 6))
    labels = r.integers(0, 3, 7)
    targets = {"mse": r.standard_normal((7, 3)), "bce_with_logits": r.uniform(0, 1, (7, 3))}
    if loss in ("cross_entropy", "hinge"):
        ours_loss = getattr(nn, loss)(ours(x), labels)
        z = theirs(torch.tensor(x))
        yt = torch.tensor(labels)
        theirs_loss = TF.cross_entropy(z, yt) if loss == "cross_entropy" else TF.multi_margin_loss(z, yt) * 3
    else:
        ours_loss = getattr(nn, loss)(ours(x), targets[loss])
        tt = torch.tensor(targets[loss])
        z = theirs(torch.tensor(x))
        theirs_loss = TF.mse_loss(z, tt) if loss == "mse" else TF.binary_cross_entropy_with_logits(z, tt)
    close(ours_loss, theirs_loss, "loss")
    params.zero_grad()
    ours_loss.backward()
    theirs_loss.backward()
    close(params.canonical(params.grad), torch.cat([p.grad.ravel() for p in theirs.parameters()]), "θ gradient")


def test_mlp_with_batchnorm_gradient_matches_torch():
    r = np.random.default_rng(6)
    ours = nn.Sequential(nn.Linear(4, 6, rng=r), nn.BatchNorm1d(6), nn.ELU(), nn.Linear(6, 3, rng=r))
    theirs = torch.nn.Sequential(torch.nn.Linear(4, 6), torch.nn.BatchNorm1d(6), torch.nn.ELU(),
                                 torch.nn.Linear(6, 3)).double()
    with torch.no_grad():
        theirs[1].weight.uniform_(0.5, 1.5)
        theirs[1].bias.normal_()
    params = copy_params(ours, theirs.parameters())
    assert [e.name for e in params.layout] == [n for n, _ in theirs.named_parameters()]
    for step in range(3):
        x = r.standard_normal((9, 4))
        y = r.integers(0, 3, 9)
        params.zero_grad()
        theirs.zero_grad()
        lo = nn.cross_entropy(ours(x), y)
        lt = TF.cross_entropy(theirs(torch.tensor(x)), torch.tensor(y))
        close(lo, lt)
        lo.backward()
        lt.backward()
        close(params.canonical(params.grad), torch.cat([p.grad.ravel() for p in theirs.parameters()]), f"step {step}")
        close(ours[1].running_var, theirs[1].running_var)
