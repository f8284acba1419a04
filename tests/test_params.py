"""θ: pack(model) puts every parameter into one flat vector; views, layout, masks, norms, dtype."""
import numpy as np
import pytest

import descend
from descend import nn
from descend.autodiff import Tensor
from descend.diagnose import gradcheck, numerical_gradient


def make_model(seed=0):
    r = np.random.default_rng(seed)
    return nn.Sequential(nn.Linear(4, 5, rng=r), nn.BatchNorm1d(5), nn.ReLU(), nn.Linear(5, 3, rng=r),
                         nn.Tanh(), nn.Linear(3, 2, bias=False, rng=r))


EXPECTED_LAYOUT = [  # name, shape, kind
    ("0.weight", (5, 4), "weight"), ("0.bias", (5,), "bias"),
    ("1.weight", (5,), "scale"), ("1.bias", (5,), "shift"),
    ("3.weight", (3, 5), "weight"), ("3.bias", (3,), "bias"),
    ("5.weight", (2, 3), "weight"),
]


def batch(seed=1, n=6):
    r = np.random.default_rng(seed)
    return r.standard_normal((n, 4)).astype(np.float32), r.integers(0, 2, n)


def test_layout_names_shapes_offsets_and_kinds():
    params = descend.pack(make_model())
    assert [(e.name, e.shape, e.kind) for e in params.layout] == EXPECTED_LAYOUT
    offset = 0
    for e in params.layout:
        assert e.offset == offset and e.size == int(np.prod(e.shape))
        assert e.slice == slice(offset, offset + e.size)
        offset += e.size
    assert offset == params.theta.size == params.grad.size == len(params)


def test_theta_and_grad_are_contiguous_float32_vectors_by_default():
    params = descend.pack(make_model())
    for vec in (params.theta, params.grad):
        assert vec.dtype == np.float32 and vec.ndim == 1 and vec.flags.c_contiguous and vec.flags.owndata
    assert params.dtype == np.float32
    assert not np.shares_memory(params.theta, params.grad)


def test_pack_keeps_the_parameter_values():
    model = make_model()
    before = {n: p.data.copy() for n, p in model.named_parameters()}
    params = descend.pack(model)
    for e in params.layout:
        np.testing.assert_array_equal(params.theta[e.slice].reshape(e.shape), before[e.name])
        np.testing.assert_array_equal(params.view(e.name), before[e.name])


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_every_parameter_is_a_view_of_theta_and_its_grad_of_grad(dtype):
    model = make_model()
    params = descend.pack(model, dtype=dtype)
    item = np.dtype(dtype).itemsize
    for (name, p), e in zip(model.named_parameters(), params.layout):
        assert p.name == name == e.name
        assert p.data.dtype == p.grad.dtype == dtype
        assert np.shares_memory(p.data, params.theta) and np.shares_memory(p.grad, params.grad)
        assert p.data.base is params.theta and p.grad.base is params.grad
        # the view starts exactly at the layout's offset
        assert p.data.__array_interface__["data"][0] == params.theta.ctypes.data + e.offset * item
        assert p.grad.__array_interface__["data"][0] == params.grad.ctypes.data + e.offset * item
        assert p.data.shape == p.grad.shape == e.shape


def test_writing_theta_changes_the_model_output():
    model = make_model()
    params = descend.pack(model)
    model.eval()
    x, _ = batch()
    before = model(x).data.copy()
    params.theta[params.entry("5.weight").slice] *= 2
    np.testing.assert_allclose(model(x).data, 2 * before, rtol=1e-6)
    params.view("5.weight")[...] = 0
    np.testing.assert_array_equal(model(x).data, 0)
    assert np.all(model[5].weight.data == 0)


def test_backward_accumulates_into_grad_without_copies():
    model = make_model()
    params = descend.pack(model)
    grad_obj = params.grad
    grad_views = [p.grad for p in model.parameters()]
    x, y = batch()
    params.zero_grad()
    nn.cross_entropy(model(x), y).backward()
    assert params.grad is grad_obj
    assert all(p.grad is g for p, g in zip(model.parameters(), grad_views))
    assert np.any(params.grad != 0)
    first = params.grad.copy()
    nn.cross_entropy(model(x), y).backward()  # no zero_grad: accumulates (BN in train: same batch, same value)
    np.testing.assert_allclose(params.grad, 2 * first, rtol=1e-5, atol=1e-7)
    for zero in (params.zero_grad, model.zero_grad, lambda: [p.zero_grad() for p in model.parameters()]):
        nn.cross_entropy(model(x), y).backward()
        zero()
        assert params.grad is grad_obj and not np.any(params.grad)
        assert all(p.grad is g for p, g in zip(model.parameters(), grad_views))
        nn.cross_entropy(model(x), y).backward()
        np.testing.assert_allclose(params.grad, first, rtol=1e-5, atol=1e-7)
        assert all(p.grad is g for p, g in zip(model.parameters(), grad_views))


def test_packed_gradient_equals_the_unpacked_gradient():
    x, y = batch()
    unpacked = make_model()
    nn.cross_entropy(unpacked(x), y).backward()
    expected = np.concatenate([p.grad.ravel() for p in unpacked.parameters()])
    model = make_model()
    params = descend.pack(model)
    nn.cross_entropy(model(x), y).backward()
    np.testing.assert_allclose(params.grad, expected, rtol=1e-5, atol=1e-7)


class TwiceShared(nn.Module):
    """The same Linear applied twice plus an L2 term on its weight: three uses of one packed parameter."""

    def __init__(self, rng):
        super().__init__()
        self.lin = nn.Linear(3, 3, rng=rng)

    def forward(self, x):
        return self.lin(nn.functional.tanh(self.lin(x)))


def test_parameter_used_several_times_in_a_packed_model_accumulates_correctly():
    model = TwiceShared(np.random.default_rng(0))
    params = descend.pack(model, dtype=np.float64)
    x = np.random.default_rng(1).standard_normal((4, 3))
    y = np.array([0, 1, 2, 1])

    def loss():
        return nn.cross_entropy(model(x), y) + nn.l2_penalty([model.lin.weight], 0.1)

    for _ in range(2):  # the first pass writes through the zeroed sinks, the second after zero_grad
        params.zero_grad()
        loss().backward()
        numerical = numerical_gradient(lambda: float(loss().data), params.theta)
        np.testing.assert_allclose(params.grad, numerical, atol=1e-7, rtol=1e-6)


def test_rebinding_a_packed_parameter_raises_and_in_place_assignment_works():
    model = make_model()
    params = descend.pack(model)
    w = model[0].weight
    with pytest.raises(AttributeError, match=r"0\.weight.*in place"):
        w.data = np.zeros((5, 4), np.float32)
    w.data[...] = 1.5
    np.testing.assert_array_equal(params.view("0.weight"), 1.5)


def test_unpacked_parameter_may_be_rebound():
    lin = nn.Linear(2, 2, rng=np.random.default_rng(0))
    lin.weight.data = np.ones((2, 2), np.float32)
    np.testing.assert_array_equal(lin.weight.data, 1)


def test_float64_pack_and_gradcheck_through_the_packed_model():
    model = make_model()
    params = descend.pack(model, dtype=np.float64)
    assert params.theta.dtype == params.grad.dtype == np.float64
    x, y = batch()
    x = x.astype(np.float64)
    xt = Tensor(x, requires_grad=True)
    result = gradcheck(lambda inp, *ps: nn.cross_entropy(model(inp), y), [xt, *model.parameters()],
                       atol=1e-6, rtol=1e-5)
    assert result.ok, result.verdict


def test_repacking_moves_parameters_and_converts_buffers():
    model = make_model()
    p32 = descend.pack(model)
    values = p32.theta.copy()
    assert all(b.dtype == np.float32 for _, b in model.named_buffers())
    p64 = descend.pack(model, dtype=np.float64)
    np.testing.assert_array_equal(p64.theta, values.astype(np.float64))
    assert all(b.dtype == np.float64 for _, b in model.named_buffers())
    assert all(np.shares_memory(p.data, p64.theta) for p in model.parameters())
    assert {n for n, _ in model.named_buffers()} == {"1.running_mean", "1.running_var"}
    assert set(p64.buffers()) == {"1.running_mean", "1.running_var"}
    x, _ = batch()
    model(x.astype(np.float64))  # running statistics are updated in float64
    assert model[1].running_mean.dtype == np.float64
    descend.pack(model, dtype=np.float32)
    assert all(b.dtype == np.float32 for _, b in model.named_buffers())


def test_masks_select_exactly_the_right_entries():
    params = descend.pack(make_model())
    weights, biases = params.mask("weight"), params.mask("bias")
    expected_w = np.zeros(len(params), bool)
    expected_b = np.zeros(len(params), bool)
    for e in params.layout:
        (expected_w if e.kind == "weight" else expected_b if e.kind == "bias" else np.zeros(1, bool))[e.slice] = True
    np.testing.assert_array_equal(weights, expected_w)
    np.testing.assert_array_equal(biases, expected_b)
    assert weights.sum() == 5 * 4 + 3 * 5 + 2 * 3 and biases.sum() == 5 + 3
    np.testing.assert_array_equal(params.mask("scale", "shift"),
                                  ~(weights | biases))
    params.theta[:] = 0
    params.theta[weights] = 1
    assert np.all(params.view("0.weight") == 1) and np.all(params.view("0.bias") == 0)
    assert np.all(params.view("1.weight") == 0)
    with pytest.raises(ValueError, match="kernel"):
        params.mask("kernel")


def test_norms_and_layer_norms_match_numpy():
    model = make_model()
    params = descend.pack(model)
    x, y = batch()
    nn.cross_entropy(model(x), y).backward()
    for of, vec in (("theta", params.theta), ("grad", params.grad)):
        norms = params.norms(of)
        assert list(norms) == [e.name for e in params.layout]
        for e in params.layout:
            assert norms[e.name] == pytest.approx(np.linalg.norm(vec[e.slice].astype(np.float64)), rel=1e-6)
        layers = params.layer_norms(of)
        assert list(layers) == ["0", "1", "3", "5"]
        for layer in layers:
            sel = np.concatenate([vec[e.slice] for e in params.layout if e.name.startswith(layer + ".")])
            assert layers[layer] == pytest.approx(np.linalg.norm(sel.astype(np.float64)), rel=1e-6)
    with pytest.raises(ValueError, match="weights"):
        params.norms("weights")


def test_entry_and_view_lookups():
    params = descend.pack(make_model())
    assert params.entry("3.bias").shape == (3,)
    assert np.shares_memory(params.view("3.bias", of="grad"), params.grad)
    with pytest.raises(KeyError, match="nope"):
        params.entry("nope")
    assert "float32" in repr(params)


def test_shared_parameter_objects_and_empty_models_are_refused():
    lin = nn.Linear(2, 2, rng=np.random.default_rng(0))
    with pytest.raises(ValueError, match=r"'1\.weight'.*'0\.weight'"):
        descend.pack(nn.Sequential(lin, lin))
    with pytest.raises(ValueError, match="no parameters"):
        descend.pack(nn.Sequential(nn.ReLU()))


# -- column-major parameters (a Linear with more inputs than outputs, see descend.nn.params.Entry) ----------
def wide_model():
    r = np.random.default_rng(0)
    return nn.Sequential(nn.Linear(200, 100, rng=r), nn.ReLU(), nn.Linear(100, 200, rng=r), nn.ReLU(),
                         nn.Linear(200, 10, rng=r))


def test_pack_keeps_column_major_weights_and_converts_to_the_row_major_order():
    model = wide_model()
    before = {name: p.data.copy() for name, p in model.named_parameters()}
    params = descend.pack(model)
    # only the narrowing layer big enough to matter (200×100) is column-major
    assert [e.order for e in params.layout] == ["F", "C", "C", "C", "C", "C"]
    for e, p in zip(params.layout, model.parameters()):
        assert np.shares_memory(p.data, params.theta) and np.shares_memory(p.grad, params.grad)
        assert np.array_equal(p.data, before[e.name]) and np.array_equal(params.view(e.name), p.data)
        assert (p.data.ndim == 2 and not p.data.flags.c_contiguous) == (e.order == "F")
    row_major = np.concatenate([p.data.ravel() for p in model.parameters()])
    assert not np.array_equal(params.theta, row_major)  # θ's own order differs ...
    assert np.array_equal(params.canonical(params.theta), row_major)  # ... and converts exactly
    assert np.array_equal(params.from_canonical(row_major), params.theta)
    stack = np.stack([params.theta, 2 * params.theta])  # along the last axis, as L-BFGS's history
    assert np.array_equal(params.canonical(stack), np.stack([row_major, 2 * row_major]))
    small = descend.pack(make_model())
    assert all(e.order == "C" for e in small.layout) and small.canonical(small.theta) is small.theta


def test_column_major_weights_train_as_row_major_ones():
    """The same network with its weights forced row-major gives the same loss and gradient (to rounding:
    the BLAS products run in another orientation)."""
    x = np.random.default_rng(1).standard_normal((64, 200)).astype(np.float32)
    y = np.arange(64) % 10
    grads = []
    for force_c in (False, True):
        model = wide_model()
        if force_c:
            for p in model.parameters():
                p.data = np.ascontiguousarray(p.data)
        params = descend.pack(model)
        assert (params.layout[0].order == "C") == force_c
        params.zero_grad()
        nn.cross_entropy(model(Tensor(x)), y).backward()
        grads.append(params.canonical(params.grad).copy())
    np.testing.assert_allclose(grads[0], grads[1], rtol=1e-4, atol=1e-7)


def test_packing_a_packed_model_again_returns_the_same_theta_even_after_a_grad_was_rebound():
    from descend import nn, pack
    r = np.random.default_rng(0)
    m = nn.Sequential(nn.Linear(300, 200, rng=r), nn.ReLU(), nn.Linear(200, 10, rng=r))
    p = pack(m)
    m[0].weight.grad = None  # e.g. a user clearing a gradient
    q = pack(m)
    assert q.theta is p.theta and q.grad is p.grad and q.layout == p.layout
    q.zero_grad()  # the view is re-attached to the flat gradient
    assert np.shares_memory(m[0].weight.grad, q.grad)
    assert pack(m, dtype=np.float64).theta is not p.theta  # another dtype: a new θ


def test_use_grad_moves_the_flat_gradient_into_given_memory():
    model = make_model()
    params = descend.pack(model)
    x, y = batch()
    params.zero_grad()
    nn.cross_entropy(model(x), y).backward()
    before = params.grad.copy()
    raw = bytearray(params.grad.nbytes + 12)  # memory from elsewhere (as an MPI window), with room after it
    new = np.frombuffer(raw, np.float32, count=len(params))
    params.use_grad(new)
    assert params.grad is new and np.array_equal(new, before)  # the values moved with it
    assert descend.pack(model).grad is new  # a later pack returns the moved gradient
    new.fill(np.nan)  # what backward does not write stays NaN
    params.zero_grad(lazy=True)
    nn.cross_entropy(model(x), y).backward()
    params.zero_unwritten()
    np.testing.assert_array_equal(new, before)  # backward writes into the new memory, the same bits
    assert all(np.shares_memory(p.grad, new) and p.grad.base is new for p in model.parameters())
    for bad in (np.zeros(len(params) + 1, np.float32), np.zeros(len(params)), np.zeros(2 * len(params), np.float32)[::2],
                list(before)):
        with pytest.raises(ValueError, match=f"writeable contiguous float32 vector of {len(params)} values"):
            params.use_grad(bad)
    assert params.grad is new
