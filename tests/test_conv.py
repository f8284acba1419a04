"""Convolution, pooling, BatchNorm2d and summary: gradient checks, the PyTorch oracle, strict sizes, dtypes."""
import io

import numpy as np
import pytest

import descend
from descend import nn
from descend.autodiff.tensor import Tensor
from descend.diagnose.gradcheck import gradcheck
from descend.nn import functional as C
from descend.nn.functional.conv import _kernels

from _fusion import assert_same_bits, run_both_ways


def spaced(shape, rng, step=0.1):
    """Distinct values at least ``step`` apart (no max-pool ties within the finite-difference nudge)."""
    n = int(np.prod(shape))
    return (rng.permutation(n) * step - n * step / 2).reshape(shape)


def leaf(a):
    return Tensor(np.array(a, dtype=np.float64), requires_grad=True)


# -- output sizes -----------------------------------------------------------------------------
def test_conv_output_size_lecture_numbers():
    assert nn.conv_output_size(32, 5) == 28                 # 32×32×3 input, 5×5 filters, stride 1
    assert nn.conv_output_size(32, 5, 1, 2) == 32           # "same" padding (F − 1)/2
    assert nn.conv_output_size(7, 3, 2) == 3                 # CS231n: 7×7 input, 3×3 filter, stride 2
    assert nn.conv_output_size(7, 3, 1, 0, 2) == 3           # dilation 2: the filter spans 5
    assert nn.conv_output_shape((32, 28), 5, padding=(2, 0)) == (32, 24)
    assert nn.conv_output_size(7, 3, 3, allow_floor=True) == 2


@pytest.mark.parametrize("args, words", [
    ((7, 3, 3), ["(7 + 2·0 − 1·(3−1) − 1)/3 + 1", "4/3 + 1", "2.33333", "allow_floor=True", "padding 1"]),
    ((3, 5), ["empty", "padding ≥ 1"]),
])
def test_conv_output_size_errors(args, words):
    with pytest.raises(ValueError) as e:
        nn.conv_output_size(*args)
    for w in words:
        assert w in str(e.value)


def test_conv_output_size_rejects_bad_arguments():
    for bad in [(0, 3), (5, 0), (5, 3, 0), (5, 3, 1, -1), (5, 3, 1, 0, 0), (5.0, 3)]:
        with pytest.raises(ValueError):
            nn.conv_output_size(*bad)
    with pytest.raises(ValueError, match="empty"):
        nn.conv_output_size(3, 5, allow_floor=True)


def test_conv_size_error_names_both_shapes_formula_and_fix(rng):
    x = rng.standard_normal((1, 3, 32, 32)).astype(np.float32)
    w = rng.standard_normal((6, 3, 5, 5)).astype(np.float32)
    with pytest.raises(ValueError) as e:
        C.conv2d(x, w, stride=2)
    msg = str(e.value)
    for part in ["(1, 3, 32, 32)", "(6, 3, 5, 5)", "(32 + 2·0 − 1·(5−1) − 1)/2 + 1 = 27/2 + 1 = 14.5",
                 "padding", "allow_floor=True", "output 14"]:
        assert part in msg, (part, msg)
    layer = nn.Conv2d(3, 6, 5, stride=2, rng=rng)
    with pytest.raises(ValueError, match=r"Conv2d\(3, 6, kernel_size=5, stride=2"):
        layer(x)
    assert nn.Conv2d(3, 6, 5, stride=2, allow_floor=True, rng=rng)(x).shape == (1, 6, 14, 14)


def test_pool_size_error_and_floor(rng):
    x = rng.standard_normal((2, 3, 7, 7))
    with pytest.raises(ValueError) as e:
        nn.MaxPool2d(2)(x)
    assert "(2, 3, 7, 7)" in str(e.value) and "(7 + 2·0 − 1·(2−1) − 1)/2 + 1" in str(e.value)
    assert nn.MaxPool2d(2, allow_floor=True)(x).shape == (2, 3, 3, 3)
    assert nn.AvgPool1d(2, allow_floor=True)(x[:, :, 0]).shape == (2, 3, 3)
    with pytest.raises(ValueError, match="more than half"):
        nn.MaxPool2d(2, padding=2)


def test_input_checks(rng):
    layer = nn.Conv2d(3, 4, 3, rng=rng)
    with pytest.raises(ValueError, match=r"x\[None\]"):
        layer(np.zeros((3, 8, 8), np.float32))
    with pytest.raises(ValueError, match="in_channels=3"):
        layer(np.zeros((1, 2, 8, 8), np.float32))
    with pytest.raises(TypeError, match="explicit generator"):
        nn.Conv2d(3, 4, 3)
    with pytest.raises(ValueError, match="stride"):
        nn.Conv1d(3, 4, 3, stride=0, rng=rng)
    with pytest.raises(ValueError, match="kernel_size needs 2 values"):
        nn.Conv2d(3, 4, (3, 3, 3), rng=rng)


# -- PyTorch oracle ---------------------------------------------------------------------------
CONV2D = [  # N, C, H, W, O, kernel, stride, padding, dilation, bias
    (2, 3, 8, 8, 4, 3, 1, 1, 1, True),
    (2, 3, 9, 9, 5, 3, 2, 1, 1, False),
    (1, 2, 7, 9, 3, (3, 2), (2, 1), (0, 1), (1, 2), True),
    (2, 4, 10, 10, 2, 5, 1, 2, 2, True),
    (3, 1, 6, 6, 2, 1, 1, 0, 1, True),
    (2, 2, 12, 12, 3, 3, 3, 0, 1, True),
    (2, 2, 6, 6, 3, 3, 1, 0, 1, False),
]
CONV1D = [  # N, C, L, O, kernel, stride, padding, dilation, bias
    (2, 3, 16, 4, 3, 1, 1, 1, True),
    (2, 3, 17, 4, 5, 2, 2, 1, False),
    (2, 2, 20, 3, 3, 3, 0, 2, True),
]


def _torch_conv_check(torch, fn_ours, fn_torch, x, w, b, g, **kw):
    xt, wt = leaf(x), leaf(w)
    bt = leaf(b) if b is not None else None
    y = fn_ours(xt, wt, bt, **kw)
    y.backward(g)
    X, W = torch.tensor(x, requires_grad=True), torch.tensor(w, requires_grad=True)
    B = torch.tensor(b, requires_grad=True) if b is not None else None
    Y = fn_torch(X, W, B, **kw)
    Y.backward(torch.tensor(g))
    np.testing.assert_allclose(y.data, Y.detach().numpy(), rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(xt.grad, X.grad.numpy(), rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(wt.grad, W.grad.numpy(), rtol=1e-10, atol=1e-12)
    if b is not None:
        np.testing.assert_allclose(bt.grad, B.grad.numpy(), rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("case", CONV2D)
def test_conv2d_matches_torch(case, rng):
    torch = pytest.importorskip("torch")
    n, c, h, w_, o, k, s, p, d, has_b = case
    ks = (k, k) if isinstance(k, int) else k
    x = rng.standard_normal((n, c, h, w_))
    w = rng.standard_normal((o, c, *ks))
    b = rng.standard_normal(o) if has_b else None
    out = C.conv2d(x, w, b, stride=s, padding=p, dilation=d)
    g = rng.standard_normal(out.shape)
    _torch_conv_check(torch, C.conv2d, torch.nn.functional.conv2d, x, w, b, g, stride=s, padding=p, dilation=d)


@pytest.mark.parametrize("case", CONV1D)
def test_conv1d_matches_torch(case, rng):
    torch = pytest.importorskip("torch")
    n, c, L, o, k, s, p, d, has_b = case
    x = rng.standard_normal((n, c, L))
    w = rng.standard_normal((o, c, k))
    b = rng.standard_normal(o) if has_b else None
    g = rng.standard_normal(C.conv1d(x, w, b, stride=s, padding=p, dilation=d).shape)
    _torch_conv_check(torch, C.conv1d, torch.nn.functional.conv1d, x, w, b, g, stride=s, padding=p, dilation=d)


def test_allow_floor_matches_torch(rng):
    torch = pytest.importorskip("torch")
    x, w, b = rng.standard_normal((2, 1, 40)), rng.standard_normal((3, 1, 5)), rng.standard_normal(3)
    g = rng.standard_normal((2, 3, 19))
    _torch_conv_check(torch, lambda *a, **k: C.conv1d(*a, **k, allow_floor=True), torch.nn.functional.conv1d,
                      x, w, b, g, stride=2, padding=1)


POOL2D = [  # N, C, H, W, kernel, stride, padding, dilation (max only)
    (2, 3, 8, 8, 2, None, 0, 1),
    (2, 2, 9, 9, 3, 2, 1, 1),
    (1, 2, 7, 7, 3, 1, 1, 1),
    (1, 2, 9, 9, 2, 1, 0, 2),
    (2, 2, 6, 8, (2, 3), (2, 1), (1, 1), 1),
]
POOL1D = [(2, 3, 16, 2, None, 0, 1), (2, 3, 15, 3, 2, 1, 1), (1, 2, 11, 3, 1, 1, 2)]


def _torch_pool_check(torch, ours, theirs, x, rng, **kw):
    xt = leaf(x)
    y = ours(xt, **kw)
    g = rng.standard_normal(y.shape)
    y.backward(g)
    X = torch.tensor(x, requires_grad=True)
    Y = theirs(X, **kw)
    Y.backward(torch.tensor(g))
    np.testing.assert_allclose(y.data, Y.detach().numpy(), rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(xt.grad, X.grad.numpy(), rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("case", POOL2D)
def test_pool2d_matches_torch(case, rng):
    torch = pytest.importorskip("torch")
    F = torch.nn.functional
    n, c, h, w, k, s, p, d = case
    x = rng.standard_normal((n, c, h, w))
    _torch_pool_check(torch, lambda t, **kw: C.max_pool2d(t, k, **kw),
                      lambda t, **kw: F.max_pool2d(t, k, **kw), x, rng, stride=s, padding=p, dilation=d)
    if d == 1:
        _torch_pool_check(torch, lambda t, **kw: C.avg_pool2d(t, k, **kw),
                          lambda t, **kw: F.avg_pool2d(t, k, **kw), x, rng, stride=s, padding=p)


@pytest.mark.parametrize("case", POOL1D)
def test_pool1d_matches_torch(case, rng):
    torch = pytest.importorskip("torch")
    F = torch.nn.functional
    n, c, L, k, s, p, d = case
    x = rng.standard_normal((n, c, L))
    _torch_pool_check(torch, lambda t, **kw: C.max_pool1d(t, k, **kw),
                      lambda t, **kw: F.max_pool1d(t, k, **kw), x, rng, stride=s, padding=p, dilation=d)
    if d == 1:
        _torch_pool_check(torch, lambda t, **kw: C.avg_pool1d(t, k, **kw),
                          lambda t, **kw: F.avg_pool1d(t, k, **kw), x, rng, stride=s, padding=p)


def test_global_avg_pool_matches_torch(rng):
    torch = pytest.importorskip("torch")
    x = rng.standard_normal((2, 3, 4, 5))
    _torch_pool_check(torch, C.global_avg_pool, lambda t: t.mean(dim=(2, 3)), x, rng)
    _torch_pool_check(torch, C.global_avg_pool, lambda t: t.mean(dim=2), x[:, :, 0], rng)


def test_max_pool_ties_go_to_first_as_in_torch():
    torch = pytest.importorskip("torch")
    x = np.array([[[[1.0, 1.0, 0.0], [1.0, 0.0, 2.0], [2.0, 2.0, 0.0]]]])
    _torch_pool_check(torch, lambda t, **kw: C.max_pool2d(t, 2, **kw),
                      lambda t, **kw: torch.nn.functional.max_pool2d(t, 2, **kw), x, np.random.default_rng(0),
                      stride=1)


def test_batchnorm2d_matches_torch_over_steps(rng):
    torch = pytest.importorskip("torch")
    ours = nn.BatchNorm2d(3, momentum=0.2)
    nn.pack(ours, dtype=np.float64)
    ours.weight.data[...] = rng.standard_normal(3)
    ours.bias.data[...] = rng.standard_normal(3)
    theirs = torch.nn.BatchNorm2d(3, momentum=0.2).double()
    with torch.no_grad():
        theirs.weight.copy_(torch.tensor(ours.weight.data))
        theirs.bias.copy_(torch.tensor(ours.bias.data))
    for step in range(4):
        x = rng.standard_normal((4, 3, 5, 6)) * (step + 1) + step
        g = rng.standard_normal(x.shape)
        xt = leaf(x)
        ours.zero_grad()
        y = ours(xt)
        y.backward(g)
        X = torch.tensor(x, requires_grad=True)
        theirs.zero_grad()
        Y = theirs(X)
        Y.backward(torch.tensor(g))
        np.testing.assert_allclose(y.data, Y.detach().numpy(), rtol=1e-10, atol=1e-12)
        np.testing.assert_allclose(xt.grad, X.grad.numpy(), rtol=1e-9, atol=1e-12)
        np.testing.assert_allclose(ours.weight.grad, theirs.weight.grad.numpy(), rtol=1e-10, atol=1e-12)
        np.testing.assert_allclose(ours.bias.grad, theirs.bias.grad.numpy(), rtol=1e-10, atol=1e-12)
        np.testing.assert_allclose(ours.running_mean, theirs.running_mean.numpy(), rtol=1e-10, atol=1e-12)
        np.testing.assert_allclose(ours.running_var, theirs.running_var.numpy(), rtol=1e-10, atol=1e-12)
    ours.eval()
    theirs.eval()
    x = rng.standard_normal((2, 3, 5, 6))
    np.testing.assert_allclose(ours(x).data, theirs(torch.tensor(x)).detach().numpy(), rtol=1e-10, atol=1e-12)
    with pytest.raises(ValueError, match="rank 4"):
        ours(x[:, :, 0])


# -- gradient checks (float64, central differences) -------------------------------------------
GRAD_FUNCS = {
    "conv2d": (lambda x, w, b: C.conv2d(x, w, b, stride=(2, 1), padding=1, dilation=(1, 2)), (2, 2, 5, 6),
               (3, 2, 3, 2)),
    "conv2d_nobias": (lambda x, w: C.conv2d(x, w, padding=1), (1, 2, 4, 4), (2, 2, 3, 3)),
    "conv1d": (lambda x, w, b: C.conv1d(x, w, b, stride=2, padding=2, dilation=2), (2, 2, 9), (3, 2, 3)),
}


@pytest.mark.parametrize("name", sorted(GRAD_FUNCS))
def test_conv_gradcheck(name, rng):
    fn, xs, ws = GRAD_FUNCS[name]
    inputs = [leaf(rng.standard_normal(xs)), leaf(rng.standard_normal(ws))]
    if fn.__code__.co_argcount == 3:
        inputs.append(leaf(rng.standard_normal(ws[0])))
    for which in [inputs] + [[t if t is one else Tensor(t.data) for t in inputs] for one in inputs]:
        res = gradcheck(fn, which)
        assert res, res.verdict


POOLS = {
    "max_pool2d": (lambda x: C.max_pool2d(x, 3, stride=2, padding=1), (2, 2, 5, 5)),
    "max_pool2d_dilated": (lambda x: C.max_pool2d(x, 2, stride=1, dilation=2), (1, 2, 5, 5)),
    "max_pool1d": (lambda x: C.max_pool1d(x, 3, stride=2, padding=1), (2, 2, 7)),
    "avg_pool2d": (lambda x: C.avg_pool2d(x, 3, stride=2, padding=1), (2, 2, 5, 5)),
    "avg_pool1d": (lambda x: C.avg_pool1d(x, 2), (2, 2, 8)),
    "global_avg_pool": (C.global_avg_pool, (2, 3, 3, 4)),
}


@pytest.mark.parametrize("name", sorted(POOLS))
def test_pool_gradcheck(name, rng):
    fn, shape = POOLS[name]
    res = gradcheck(fn, [leaf(spaced(shape, rng))])
    assert res, res.verdict


LAYERS = {
    "Conv2d": (lambda r: nn.Conv2d(2, 3, 3, stride=2, padding=1, rng=r), (2, 2, 5, 5)),
    "Conv1d": (lambda r: nn.Conv1d(2, 3, 3, padding=1, dilation=2, bias=False, rng=r), (2, 2, 6)),
    "BatchNorm2d": (lambda r: nn.BatchNorm2d(2), (3, 2, 2, 3)),
    "cnn": (lambda r: nn.Sequential(nn.Conv2d(1, 2, 3, padding=1, rng=r), nn.MaxPool2d(2), nn.Tanh(),
                                    nn.Conv2d(2, 2, 2, rng=r), nn.AvgPool2d(1), nn.GlobalAvgPool(),
                                    nn.Linear(2, 3, rng=r)), (2, 1, 6, 6)),
}


@pytest.mark.parametrize("name", sorted(LAYERS))
def test_layer_gradcheck(name, rng):
    make, shape = LAYERS[name]
    model = make(rng)
    params = nn.pack(model, dtype=np.float64)
    params.theta[...] = rng.standard_normal(params.theta.size) * 0.5 + (1.0 if name == "BatchNorm2d" else 0.0)
    x = leaf(spaced(shape, rng))
    ps = model.parameters()
    res = gradcheck(lambda x, *p: model(x), [x, *ps])
    assert res, res.verdict
    res = gradcheck(lambda x, *p: model(x), [Tensor(x.data), *ps])  # parameters alone
    assert res, res.verdict


# -- dtypes, layers, packing ------------------------------------------------------------------
def test_float32_in_float32_out_and_grads(rng):
    model = nn.Sequential(nn.Conv2d(1, 4, 3, padding=1, rng=rng), nn.ReLU(), nn.MaxPool2d(2),
                          nn.BatchNorm2d(4), nn.AvgPool2d(2), nn.Flatten(),
                          nn.Linear(4 * 2 * 2, 3, rng=rng))
    params = nn.pack(model)
    x = rng.standard_normal((5, 1, 8, 8)).astype(np.float32)
    params.zero_grad()
    out = model(Tensor(x, requires_grad=True))
    assert out.dtype == np.float32
    nn.cross_entropy(out, np.arange(5) % 3).backward()
    assert params.grad.dtype == np.float32 and np.all(np.isfinite(params.grad)) and np.any(params.grad != 0)
    y1 = nn.Conv1d(3, 2, 3, rng=rng)(rng.standard_normal((2, 3, 7)).astype(np.float32))
    assert y1.dtype == np.float32 and y1.shape == (2, 2, 5)
    for fn in (lambda t: C.max_pool1d(t, 2), lambda t: C.avg_pool1d(t, 2), C.global_avg_pool):
        assert fn(rng.standard_normal((2, 3, 8)).astype(np.float32)).dtype == np.float32


def test_packed_gradients_land_in_flat_grad_and_accumulate(rng):
    layer = nn.Conv2d(2, 3, 3, padding=1, rng=rng)
    params = nn.pack(layer, dtype=np.float64)
    x = rng.standard_normal((2, 2, 5, 5))
    params.zero_grad()
    layer(x).sum().backward()
    first = params.grad.copy()
    assert np.any(first != 0)
    layer(x).sum().backward()  # without zero_grad: gradients add up
    np.testing.assert_allclose(params.grad, 2 * first)
    # inputs are never mutated; non-contiguous and read-only inputs are accepted
    xn = np.asfortranarray(x)
    xn.flags.writeable = False
    np.testing.assert_allclose(layer(xn).data, layer(x).data)


def test_conv_init_fans_and_xavier_switch(rng):
    big = nn.Conv2d(64, 128, 3, rng=rng)
    assert abs(big.weight.data.std() - np.sqrt(2 / (64 * 9))) < 0.01 * np.sqrt(2 / (64 * 9)) * 5
    assert np.all(big.bias.data == 0)
    model = nn.Sequential(nn.Conv2d(64, 128, 3, rng=rng), nn.Tanh())
    assert abs(model[0].weight.data.std() - np.sqrt(2 / (64 * 9 + 128 * 9))) < 0.002
    xav = nn.Conv1d(16, 32, 5, init=nn.init.xavier_uniform, rng=rng)
    a = np.sqrt(6 / (16 * 5 + 32 * 5))
    assert xav.weight.data.max() <= a and xav.weight.data.min() >= -a


def test_repr_and_layers_keep_pytorch_names(rng):
    layer = nn.Conv2d(3, 8, (3, 5), stride=2, padding=(1, 2), dilation=1, bias=False, rng=rng)
    assert repr(layer) == "Conv2d(3, 8, kernel_size=(3, 5), stride=2, padding=(1, 2), bias=False)"
    assert (layer.in_channels, layer.out_channels, layer.kernel_size) == (3, 8, (3, 5))
    assert repr(nn.MaxPool2d(2)) == "MaxPool2d(kernel_size=2, stride=2, padding=0)"


# -- summary ----------------------------------------------------------------------------------
def test_summary_shapes_counts_and_modes(rng):
    model = nn.Sequential(nn.Conv2d(3, 6, 5, rng=rng), nn.BatchNorm2d(6), nn.ReLU(), nn.MaxPool2d(2), nn.Flatten(),
                          nn.Sequential(nn.Linear(6 * 14 * 14, 10, rng=rng)))
    bn = model[1]
    before = bn.running_mean.copy(), bn.running_var.copy()
    out = io.StringIO()
    rows = descend.summary(model, (3, 32, 32), file=out)
    assert [r.output_shape for r in rows] == [(6, 28, 28), (6, 28, 28), (6, 28, 28), (6, 14, 14), (1176,), (10,)]
    assert [r.params for r in rows] == [456, 12, 0, 0, 0, 11770]
    assert [r.name for r in rows] == ["0", "1", "2", "3", "4", "5.0"]
    text = out.getvalue()
    assert "total parameters: 12,238" in text and "(6, 28, 28)" in text and "Conv2d(3, 6, kernel_size=5" in text
    assert model.training and bn.training
    np.testing.assert_array_equal(bn.running_mean, before[0])
    np.testing.assert_array_equal(bn.running_var, before[1])
    model.eval()
    descend.summary(model, (3, 32, 32), show=False)
    assert not model.training and not bn.training


def test_summary_names_the_layer_that_does_not_fit(rng):
    model = nn.Sequential(nn.Conv2d(3, 6, 5, rng=rng), nn.MaxPool2d(2), nn.Conv2d(6, 16, 5, stride=2, rng=rng))
    with pytest.raises(ValueError) as e:
        descend.summary(model, (3, 32, 32), show=False)
    assert "layer 2" in str(e.value) and "(6, 14, 14)" in str(e.value) and "allow_floor" in str(e.value)
    assert model.training


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("hw", [(8, 6), (7, 9)])  # odd sizes: the floored last row/column is never read
def test_max_pool_2x2_kernel_equals_the_general_one(dtype, hw):
    k = _kernels()
    rng = np.random.default_rng(1)
    x = rng.integers(-2, 3, (5, *hw)).astype(dtype)  # many ties
    x.reshape(-1)[rng.choice(x.size, 9, replace=False)] = np.nan
    x.reshape(-1)[rng.choice(x.size, 5, replace=False)] = -np.inf
    x[0, :2, :2] = np.nan  # a window of NaNs only
    ho, wo = hw[0] // 2, hw[1] // 2
    y1, y2 = np.empty((5, ho, wo), dtype), np.empty((5, ho, wo), dtype)
    i1, i2 = np.empty((5, ho, wo), np.int32), np.empty((5, ho, wo), np.int32)
    k.max_pool(x, y1, i1, 2, 2, 2, 2, 0, 0, 1, 1)
    k.max_pool_2x2(x, y2, i2)
    assert np.array_equal(i1, i2)
    assert np.array_equal(y1, y2, equal_nan=True)


def test_max_pool2d_takes_the_2x2_path_and_matches_torch(rng, monkeypatch):
    torch = pytest.importorskip("torch")
    k = _kernels()
    calls = []
    for name in ("max_pool_2x2", "max_pool_2x2_backward"):
        kernel = getattr(k, name)
        monkeypatch.setattr(k, name, lambda *a, _k=kernel, _n=name: (calls.append(_n), _k(*a))[1])
    x = rng.integers(-2, 3, (2, 3, 6, 8)).astype(np.float64)  # ties
    _torch_pool_check(torch, lambda t, **kw: C.max_pool2d(t, 2, **kw),
                      lambda t, **kw: torch.nn.functional.max_pool2d(t, 2, **kw), x, rng)
    assert calls == ["max_pool_2x2", "max_pool_2x2_backward"]  # the specialized kernels did the work


# -- convolution + ReLU fused inside Sequential ----------------------------------------------------
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("layer, shape", [
    (lambda r: nn.Conv2d(2, 3, 3, padding=1, rng=r), (4, 2, 5, 6)),
    (lambda r: nn.Conv2d(2, 3, 3, stride=2, bias=False, rng=r), (4, 2, 7, 7)),
    (lambda r: nn.Conv1d(2, 3, 3, padding=1, rng=r), (4, 2, 9)),
])
def test_sequential_fuses_conv_relu_with_the_same_bits(dtype, layer, shape):
    r = np.random.default_rng(0)
    x = r.standard_normal(shape)
    x.reshape(-1)[3] = np.nan  # NaN passes through ReLU in both forms
    results = run_both_ways(nn.Sequential(layer(r), nn.ReLU(), nn.Flatten()), x, dtype)
    assert results[0][1].dtype == dtype and np.isnan(results[0][1]).any()
    assert_same_bits(results, "Conv")


def test_a_subclass_with_its_own_forward_is_not_fused():
    class Shifted(nn.Linear):
        def forward(self, x):
            return super().forward(x) + 1.0

    r = np.random.default_rng(0)
    model = nn.Sequential(Shifted(3, 4, rng=r), nn.ReLU())
    x = Tensor(r.standard_normal((5, 3)).astype(np.float32))
    y = model(x)
    assert type(y._creator).__name__ == "ReLU"
    assert np.array_equal(y.data, np.maximum(x.data @ model[0].weight.data.T + model[0].bias.data + 1.0, 0))


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("hw", [(8, 6), (7, 9), (9, 8)])
def test_max_pool_2x2_backward_equals_the_general_one_bit_for_bit(dtype, hw):
    k = _kernels()
    rng = np.random.default_rng(2)
    x = rng.integers(-2, 3, (4, *hw)).astype(dtype)
    ho, wo = hw[0] // 2, hw[1] // 2
    y, idx = np.empty((4, ho, wo), dtype), np.empty((4, ho, wo), np.int32)
    k.max_pool_2x2(x, y, idx)
    g = rng.standard_normal((4, ho * wo)).astype(dtype)
    g[0, :3] = -0.0  # the general kernel accumulates onto 0: +0.0 comes out
    dx1 = np.full((4, hw[0] * hw[1]), np.nan, dtype)
    dx2 = np.full((4, hw[0] * hw[1]), np.nan, dtype)  # every position must be written
    k.max_pool_backward(g, idx.reshape(4, -1), dx1)
    k.max_pool_2x2_backward(g, idx, dx2, ho, wo, *hw)
    bits = np.uint32 if dtype == np.float32 else np.uint64
    assert np.array_equal(dx1.view(bits), dx2.view(bits))
