"""Modules: structure, train/eval mode, forward values, Dropout statistics, BatchNorm1d, dtype of every layer."""
import math

import numpy as np
import pytest

from descend import nn
from descend.autodiff import Tensor
from descend.nn import functional as F
from descend.nn.functional import dense

from _fusion import assert_same_bits, run_both_ways


def rng(seed=0):
    return np.random.default_rng(seed)


# -- Module structure ------------------------------------------------------------------------------
def test_named_parameters_buffers_and_modules():
    model = nn.Sequential(nn.Linear(3, 4, rng=rng()), nn.BatchNorm1d(4), nn.ReLU(), nn.Linear(4, 2, bias=False,
                                                                                              rng=rng()))
    assert [n for n, _ in model.named_parameters()] == ["0.weight", "0.bias", "1.weight", "1.bias", "3.weight"]
    assert [p.kind for p in model.parameters()] == ["weight", "bias", "scale", "shift", "weight"]
    assert [n for n, _ in model.named_buffers()] == ["1.running_mean", "1.running_var"]
    assert [n for n, _ in model.named_modules()] == ["", "0", "1", "2", "3"]
    assert len(model) == 4 and isinstance(model[1], nn.BatchNorm1d) and len(list(model)) == 4
    assert model[3].bias is None


def test_train_and_eval_switch_the_whole_tree():
    model = nn.Sequential(nn.Linear(3, 4, rng=rng()), nn.Sequential(nn.Dropout(0.5, rng=rng()), nn.BatchNorm1d(4)))
    assert model.eval() is model
    assert all(not m.training for _, m in model.named_modules())
    assert model.train() is model
    assert all(m.training for _, m in model.named_modules())


def test_module_subclass_must_call_super_init():
    class Bad(nn.Module):
        def __init__(self):
            self.x = 1

    with pytest.raises(RuntimeError, match="super"):
        Bad()


def test_repr_names_the_layers():
    text = repr(nn.Sequential(nn.Linear(3, 4, rng=rng()), nn.Dropout(0.2, rng=rng()), nn.BatchNorm1d(4)))
    assert "in_features=3, out_features=4" in text and "p=0.2" in text and "BatchNorm1d(4" in text


def test_linear_forward_values_and_ndarray_input():
    lin = nn.Linear(3, 2, rng=rng())
    lin.bias.data[...] = [0.5, -1.0]
    x = rng(1).standard_normal((4, 3)).astype(np.float32)
    expected = x @ lin.weight.data.T + lin.bias.data
    np.testing.assert_allclose(lin(x).data, expected, rtol=1e-6)
    np.testing.assert_allclose(lin(Tensor(x)).data, expected, rtol=1e-6)


@pytest.mark.parametrize("shape,start,expected", [((2, 3, 4, 5), 1, (2, 60)), ((2, 3, 4, 5), 2, (2, 3, 20)),
                                                  ((6, 4), 1, (6, 4))])
def test_flatten_shapes(shape, start, expected):
    x = Tensor(np.arange(np.prod(shape), dtype=np.float64).reshape(shape), requires_grad=True)
    y = nn.Flatten(start)(x)
    assert y.shape == expected
    np.testing.assert_array_equal(y.data.ravel(), x.data.ravel())
    y.backward(np.ones(expected))
    assert x.grad.shape == shape


def test_sequential_refuses_non_modules():
    with pytest.raises(TypeError, match="position 1"):
        nn.Sequential(nn.ReLU(), lambda x: x)


# -- dtype: float32 in, float32 out and gradients, for every layer ---------------------------------------
LAYERS = {
    "Linear": (lambda: nn.Linear(3, 4, rng=rng()), (5, 3)),
    "ReLU": (nn.ReLU, (5, 3)),
    "LeakyReLU": (nn.LeakyReLU, (5, 3)),
    "ELU": (nn.ELU, (5, 3)),
    "Sigmoid": (nn.Sigmoid, (5, 3)),
    "Tanh": (nn.Tanh, (5, 3)),
    "Maxout": (lambda: nn.Maxout(3, 2, pieces=3, rng=rng()), (5, 3)),
    "Dropout": (lambda: nn.Dropout(0.3, rng=rng()), (5, 3)),
    "BatchNorm1d-2d": (lambda: nn.BatchNorm1d(3), (5, 3)),
    "BatchNorm1d-3d": (lambda: nn.BatchNorm1d(3), (5, 3, 4)),
    "Flatten": (nn.Flatten, (5, 3, 2)),
    "Sequential": (lambda: nn.Sequential(nn.Flatten(), nn.Linear(6, 4, rng=rng()), nn.BatchNorm1d(4), nn.Tanh(),
                                         nn.Dropout(0.2, rng=rng()), nn.Maxout(4, 2, rng=rng())), (5, 3, 2)),
}


@pytest.mark.parametrize("name", list(LAYERS))
@pytest.mark.parametrize("mode", ["train", "eval"])
def test_layer_float32_in_float32_out(name, mode):
    factory, shape = LAYERS[name]
    layer = factory()
    layer.train(mode == "train")
    x = Tensor(rng(1).standard_normal(shape).astype(np.float32), requires_grad=True)
    y = layer(x)
    assert y.dtype == np.float32
    y.backward(np.ones(y.shape, np.float32))
    assert x.grad.dtype == np.float32
    for p in layer.parameters():
        assert p.dtype == np.float32 and p.grad is not None and p.grad.dtype == np.float32
    for _, b in layer.named_buffers():
        assert b.dtype == np.float32


# -- Dropout -------------------------------------------------------------------------------------------
@pytest.mark.parametrize("p", [0.1, 0.5, 0.8])
def test_dropout_mask_statistics(p):
    n = 1_000_000
    x = Tensor(np.ones(n, np.float32), requires_grad=True)
    y = nn.Dropout(p, rng=rng(3))(x)
    kept = y.data != 0
    sigma = math.sqrt(p * (1 - p) / n)
    assert abs(kept.mean() - (1 - p)) < 5 * sigma
    np.testing.assert_allclose(y.data[kept], 1 / (1 - p), rtol=1e-6)  # inverted scaling
    assert abs(y.data.mean() - 1.0) < 5 * sigma / (1 - p)            # E[output] = input
    y.backward(np.ones(n, np.float32))
    np.testing.assert_array_equal(x.grad, y.data)                   # gradient goes through the same mask


def test_dropout_expectation_on_varied_input():
    x = rng(4).standard_normal(200_000).astype(np.float32) + 2
    outs = [F.dropout(x, 0.5, rng=rng(s)).data for s in range(20)]
    assert np.mean(outs) == pytest.approx(x.mean(), rel=0.01)


def test_dropout_eval_mode_and_p0_are_identity():
    x = Tensor(np.arange(6, dtype=np.float32))
    d = nn.Dropout(0.5, rng=rng()).eval()
    assert d(x) is x
    assert nn.Dropout(0.0)(x) is x                    # p = 0 needs no generator
    assert F.dropout(x, 0.3, training=False) is x
    assert F.dropout(x, 0.0, rng=rng()) is x


def test_dropout_same_seed_same_mask_and_fresh_masks_per_call():
    x = np.ones((50, 40), np.float32)
    a = nn.Dropout(0.5, rng=rng(7))
    b = nn.Dropout(0.5, rng=rng(7))
    first = a(x).data
    np.testing.assert_array_equal(first, b(x).data)
    assert not np.array_equal(first, a(x).data)       # the generator advances: a new mask each step


# -- BatchNorm1d ---------------------------------------------------------------------------------------
def test_batchnorm_training_normalizes_each_feature():
    bn = nn.BatchNorm1d(3)
    x = rng().standard_normal((64, 3)) * [1, 5, 0.1] + [0, -3, 7]
    y = bn(x).data
    np.testing.assert_allclose(y.mean(axis=0), 0, atol=1e-6)
    var = x.var(axis=0)
    np.testing.assert_allclose(y.var(axis=0), var / (var + 1e-5), rtol=1e-6)  # eps inside the root


def test_batchnorm_running_statistics_formula_and_eval():
    bn = nn.BatchNorm1d(2, momentum=0.2)
    x = np.array([[1.0, 2.0], [3.0, 6.0], [5.0, 1.0]], np.float32)
    bn(x)
    np.testing.assert_allclose(bn.running_mean, 0.8 * 0 + 0.2 * x.mean(axis=0), rtol=1e-6)
    np.testing.assert_allclose(bn.running_var, 0.8 * 1 + 0.2 * x.var(axis=0, ddof=1), rtol=1e-6)
    bn.eval()
    bn.weight.data[...] = [2.0, 0.5]
    bn.bias.data[...] = [1.0, -1.0]
    y = bn(x).data
    expected = (x - bn.running_mean) / np.sqrt(bn.running_var + 1e-5) * [2.0, 0.5] + [1.0, -1.0]
    np.testing.assert_allclose(y, expected, rtol=1e-5)


def test_batchnorm_eval_accepts_a_single_sample():
    bn = nn.BatchNorm1d(3).eval()
    assert bn(np.ones((1, 3), np.float32)).shape == (1, 3)


# -- activations forward values ------------------------------------------------------------------------
def test_activation_forward_values():
    x = np.array([-2.0, -0.5, 0.0, 0.5, 2.0])
    np.testing.assert_allclose(nn.ReLU()(x).data, np.maximum(x, 0))
    np.testing.assert_allclose(nn.LeakyReLU(0.1)(x).data, np.where(x > 0, x, 0.1 * x))
    np.testing.assert_allclose(nn.ELU(0.5)(x).data, np.where(x > 0, x, 0.5 * np.expm1(x)))
    np.testing.assert_allclose(nn.Sigmoid()(x).data, 1 / (1 + np.exp(-x)), rtol=1e-15)
    np.testing.assert_allclose(nn.Tanh()(x).data, np.tanh(x))


def test_relu_gradient_at_zero_is_zero():
    x = Tensor(np.array([-1.0, 0.0, 1.0]), requires_grad=True)
    F.relu(x).backward(np.ones(3))
    np.testing.assert_array_equal(x.grad, [0, 0, 1])


def test_sigmoid_is_finite_at_extremes_in_float32():
    x = np.array([-1e4, -100.0, 0.0, 100.0, 1e4], np.float32)
    y = F.sigmoid(x).data
    assert y.dtype == np.float32 and np.all(np.isfinite(y))
    np.testing.assert_array_equal(y[[0, 2, 4]], [0.0, 0.5, 1.0])


def test_maxout_layer_forward_is_the_max_over_pieces():
    m = nn.Maxout(3, 2, pieces=3, rng=rng())
    x = rng(1).standard_normal((4, 3)).astype(np.float32)
    z = x @ m.weight.data.T + m.bias.data
    np.testing.assert_allclose(m(x).data, z.reshape(4, 2, 3).max(axis=-1), rtol=1e-6)


# -- Linear + ReLU fused inside Sequential -------------------------------------------------------
def _mlp(features, bias=True, hidden=7, last=None):
    return nn.Sequential(nn.Linear(features, hidden, bias=bias, rng=np.random.default_rng(0)), nn.ReLU(),
                         last or nn.Linear(hidden, 3, rng=np.random.default_rng(1)))


# (samples, features, hidden, third layer): small products; a wide hidden layer, computed transposed
# (see dense._product), whose gradient comes back transposed too, with fewer or more than 128 samples
# (NumPy sums up to 128 in one block); and one whose gradient comes back row-major (Sigmoid's backward of
# a row-major incoming gradient)
SHAPES = {"small": (9, 4, 7, None), "wide": (64, 300, 400, None), "wide-long": (300, 50, 400, None),
          "wide-mixed": (64, 300, 400, nn.Sigmoid)}


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("bias", [True, False])
@pytest.mark.parametrize("shape", SHAPES)
def test_sequential_fuses_linear_relu_with_the_same_bits(dtype, bias, shape):
    n, d, h, last = SHAPES[shape]
    x = np.random.default_rng(3).standard_normal((n, d))
    results = run_both_ways(_mlp(d, bias, h, last and last()), x, dtype)
    assert results[0][1].dtype == dtype
    assert_same_bits(results, "LinearReLU")


def test_wide_products_come_transposed_and_equal_the_plain_product():
    """The wide cases above do take the transposed path, and its values are those of x @ w.T."""
    r = np.random.default_rng(0)
    x, w = r.standard_normal((64, 300)), r.standard_normal((400, 300))
    for fn in (F.linear, F.linear_relu):
        y = fn(Tensor(x), Tensor(w)).data
        assert dense._transposed(y) and y.shape == (64, 400)
    np.testing.assert_allclose(F.linear(Tensor(x), Tensor(w)).data, x @ w.T, rtol=1e-12)
    assert not dense._transposed(F.linear(Tensor(x[:9, :4]), Tensor(w[:7, :4])).data)  # small: row-major


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_bias_gradient_of_a_column_major_gradient_is_the_column_sum(dtype):
    """The bias gradient of a gradient laid out column by column (summed by BLAS): the exact sum within
    rounding, NaN and inf carried as a sum carries them, and a row-major copy's sums up to rounding."""
    r = np.random.default_rng(0)
    g = np.asfortranarray(r.standard_normal((300, 200)) * 10.0 ** r.integers(-3, 4, (300, 200))).astype(dtype)
    g[5, 7], g[9, 8], g[3, 9], g[4, 9] = np.nan, np.inf, np.inf, -np.inf
    assert dense._transposed(g)
    with np.errstate(invalid="ignore"):  # inf − inf, as NumPy's own sum warns of it
        gb, row_major = dense._bias_grad(g), dense._bias_grad(np.ascontiguousarray(g))
    finite = np.isfinite(g).all(axis=0)
    exact = np.array([math.fsum(col) if ok else np.nan for col, ok in zip(g.astype(np.float64).T, finite)])
    assert np.isnan(gb[7]) and gb[8] == np.inf and np.isnan(gb[9]) and finite.sum() == 197
    scale = np.abs(g[:, finite]).astype(np.float64).sum(axis=0)
    assert np.all(np.abs(gb[finite] - exact[finite]) <= 300 * np.finfo(dtype).eps * scale)
    out = np.empty(200, dtype)
    with np.errstate(invalid="ignore"):
        assert dense._bias_grad(g, out) is out and np.array_equal(out, gb, equal_nan=True)
    # the row-major copy is summed by NumPy's reduction: the same sums, other rounding
    assert np.all(np.abs(row_major[finite] - gb[finite]) <= 2 * 300 * np.finfo(dtype).eps * scale)


def test_fused_linear_relu_keeps_nan_like_relu():
    x = np.random.default_rng(3).standard_normal((5, 4))
    x[2, 1] = np.nan
    results = run_both_ways(_mlp(4), x, np.float32)
    assert np.isnan(results[0][1][2]).all()
    assert_same_bits(results, "LinearReLU")
    h = F.linear_relu(Tensor(x.astype(np.float32)), Tensor(np.ones((3, 4), np.float32)))
    assert np.isnan(h.data[2]).all() and not np.isnan(h.data[[0, 1, 3, 4]]).any()


def test_linear_relu_on_other_ranks_is_the_two_ops():
    x = np.random.default_rng(0).standard_normal((2, 5, 4)).astype(np.float32)
    w, b = np.ones((3, 4), np.float32), np.zeros(3, np.float32)
    y = F.linear_relu(Tensor(x), Tensor(w), Tensor(b))
    assert y.shape == (2, 5, 3) and np.array_equal(y.data, np.maximum(x @ w.T + b, 0))
