"""Autodiff: gradient check of every primitive op (table) and the semantics of Tensor.backward."""
import weakref
from dataclasses import dataclass, field
from typing import Callable

import numpy as np
import pytest

from descend.autodiff import Function, Tensor, is_grad_enabled, no_grad, ops

from _gradcheck_table import check_float32_through, gradcheck_params, run_gradcheck



# -- input makers (float64, kept ≥ 0.1 away from kinks) -------------------------------------------
def normal(*shape):
    return lambda r: r.standard_normal(shape)


def positive(*shape, low=0.5, high=2.0):
    return lambda r: r.uniform(low, high, shape)


def away_from_zero(*shape):
    """|x| ≥ 0.1: random sign times U(0.1, 1.5) (denominators, kinks at 0)."""
    return lambda r: r.choice([-1.0, 1.0], shape) * r.uniform(0.1, 1.5, shape)


def distinct(*shape):
    """All entries different by ≥ 0.25, so max/argmax have no ties within eps."""
    return lambda r: (r.permutation(int(np.prod(shape))).reshape(shape) - np.prod(shape) / 2) * 0.25


def apart_from(other_shape, shape):
    """A pair (a, b) of the given (broadcastable) shapes with |a − b| ≥ 0.1 everywhere (maximum's kink)."""
    def make(r):
        b = r.standard_normal(other_shape)
        a = np.broadcast_to(b, np.broadcast_shapes(shape, other_shape)).copy()
        a = a + r.choice([-1.0, 1.0], a.shape) * r.uniform(0.1, 1.0, a.shape)
        return a, b
    return make


@dataclass
class Case:
    id: str
    fn: Callable
    makers: list  # one maker per input, or a single maker returning a tuple of arrays
    pair: bool = False
    names: list = field(default_factory=list)

    def inputs(self, seed=0):
        r = np.random.default_rng(seed)
        arrays = list(self.makers[0](r)) if self.pair else [m(r) for m in self.makers]
        return [np.asarray(a, dtype=np.float64) for a in arrays]

    def input_names(self):
        n = len(self.inputs())
        return self.names or ["a", "b", "c", "d"][:n]


COND = np.array([[True, False, True, True], [False, False, True, False], [True, True, False, True]])

OP_CASES = [
    # arithmetic, same shape and broadcast
    Case("add", lambda a, b: a + b, [normal(3, 4), normal(3, 4)]),
    Case("add-bcast-row", lambda a, b: a + b, [normal(3, 4), normal(4)]),
    Case("add-bcast-outer", lambda a, b: a + b, [normal(3, 1), normal(1, 4)]),
    Case("add-bcast-3d", lambda a, b: ops.add(a, b), [normal(2, 3, 4), normal(3, 1)]),
    Case("add-0d", lambda a, b: a + b, [normal(), normal(3, 4)]),
    Case("add-python-scalar", lambda a: a + 2.5, [normal(3, 4)]),
    Case("radd-python-scalar", lambda a: 2.5 + a, [normal(3, 4)]),
    Case("sub", lambda a, b: a - b, [normal(3, 4), normal(3, 4)]),
    Case("sub-bcast", lambda a, b: ops.sub(a, b), [normal(4), normal(3, 4)]),
    Case("rsub-python-scalar", lambda a: 1.0 - a, [normal(3, 4)]),
    Case("mul", lambda a, b: a * b, [normal(3, 4), normal(3, 4)]),
    Case("mul-bcast-3d", lambda a, b: ops.mul(a, b), [normal(2, 3, 4), normal(3, 1)]),
    Case("mul-self", lambda a: a * a, [normal(3, 4)]),
    Case("div", lambda a, b: a / b, [normal(3, 4), away_from_zero(3, 4)]),
    Case("div-bcast", lambda a, b: ops.div(a, b), [normal(3, 4), away_from_zero(3, 1)]),
    Case("rdiv-python-scalar", lambda a: 3.0 / a, [away_from_zero(3, 4)]),
    Case("neg", lambda a: -a, [normal(3, 4)]),
    Case("neg-fn", lambda a: ops.neg(a), [normal(2, 3)]),
    Case("power-int-exponent", lambda a: a ** 3, [normal(3, 4)]),
    Case("power-half", lambda a: a ** 0.5, [positive(3, 4)]),
    Case("power-tensors", lambda a, b: a ** b, [positive(3, 4), normal(3, 4)], names=["base", "exponent"]),
    Case("power-bcast-exponent", lambda a, b: ops.power(a, b), [positive(3, 4), normal(4)],
         names=["base", "exponent"]),
    Case("rpow-exponent-only", lambda b: 2.0 ** b, [normal(3, 4)], names=["exponent"]),
    # matmul
    Case("matmul-2d", lambda a, b: a @ b, [normal(3, 4), normal(4, 5)]),
    Case("matmul-1d-2d", lambda a, b: a @ b, [normal(4), normal(4, 5)]),
    Case("matmul-2d-1d", lambda a, b: a @ b, [normal(3, 4), normal(4)]),
    Case("matmul-1d-1d", lambda a, b: ops.matmul(a, b), [normal(4), normal(4)]),
    Case("matmul-batched", lambda a, b: a @ b, [normal(2, 3, 4), normal(2, 4, 5)]),
    Case("matmul-bcast-batch", lambda a, b: a @ b, [normal(2, 1, 3, 4), normal(5, 4, 2)]),
    Case("matmul-2d-batched", lambda a, b: a @ b, [normal(3, 4), normal(2, 4, 5)]),
    Case("matmul-1d-batched", lambda a, b: a @ b, [normal(4), normal(2, 4, 5)]),
    Case("matmul-batched-1d", lambda a, b: a @ b, [normal(2, 3, 4), normal(4)]),
    # elementwise
    Case("exp", lambda a: ops.exp(a), [normal(3, 4)]),
    Case("exp-method", lambda a: a.exp(), [normal(2, 3)]),
    Case("log", lambda a: ops.log(a), [positive(3, 4)]),
    Case("log-method", lambda a: a.log(), [positive(2, 3)]),
    Case("sqrt", lambda a: ops.sqrt(a), [positive(3, 4)]),
    Case("sqrt-method", lambda a: a.sqrt(), [positive(2, 3)]),
    # reductions
    Case("sum-all", lambda a: ops.sum(a), [normal(3, 4)]),
    Case("sum-axis0", lambda a: a.sum(axis=0), [normal(3, 4)]),
    Case("sum-axis1-keepdims", lambda a: a.sum(axis=1, keepdims=True), [normal(3, 4)]),
    Case("sum-axes02", lambda a: ops.sum(a, axis=(0, 2)), [normal(2, 3, 4)]),
    Case("sum-axis-neg-keepdims", lambda a: ops.sum(a, axis=-1, keepdims=True), [normal(2, 3, 4)]),
    Case("mean-all", lambda a: ops.mean(a), [normal(3, 4)]),
    Case("mean-axis0", lambda a: a.mean(axis=0), [normal(3, 4)]),
    Case("mean-axes12-keepdims", lambda a: ops.mean(a, axis=(1, 2), keepdims=True), [normal(2, 3, 4)]),
    Case("mean-axis-neg", lambda a: ops.mean(a, axis=-2), [normal(2, 3, 4)]),
    Case("max-all", lambda a: ops.max(a), [distinct(3, 4)]),
    Case("max-all-keepdims", lambda a: ops.max(a, keepdims=True), [distinct(3, 4)]),
    Case("sum-all-keepdims", lambda a: ops.sum(a, keepdims=True), [normal(3, 4)]),
    Case("mean-all-keepdims", lambda a: ops.mean(a, keepdims=True), [normal(3, 4)]),
    Case("concatenate-with-constant", lambda a: ops.concatenate([a, np.ones((1, 3), a.dtype)]), [normal(2, 3)]),
    Case("max-axis0", lambda a: a.max(axis=0), [distinct(3, 4)]),
    Case("max-axis1-keepdims", lambda a: a.max(axis=1, keepdims=True), [distinct(3, 4)]),
    Case("max-axes02", lambda a: ops.max(a, axis=(0, 2)), [distinct(2, 3, 4)]),
    Case("max-axis-neg-keepdims", lambda a: ops.max(a, axis=-1, keepdims=True), [distinct(2, 3, 4)]),
    # shapes
    Case("reshape", lambda a: ops.reshape(a, (2, 6)), [normal(3, 4)]),
    Case("reshape-varargs", lambda a: a.reshape(4, -1), [normal(2, 3, 2)]),
    Case("reshape-flat", lambda a: a.reshape(-1), [normal(3, 4)]),
    Case("transpose-2d", lambda a: ops.transpose(a), [normal(3, 4)]),
    Case("transpose-T", lambda a: a.T, [normal(3, 4)]),
    Case("transpose-axes", lambda a: ops.transpose(a, (2, 0, 1)), [normal(2, 3, 4)]),
    Case("transpose-neg-axes", lambda a: a.transpose((0, -1, 1)), [normal(2, 3, 4)]),
    Case("getitem-slice", lambda a: a[1:3], [normal(4, 3)]),
    Case("getitem-step", lambda a: a[:, ::2], [normal(3, 5)]),
    Case("getitem-neg-step", lambda a: a[::-1, 1:], [normal(3, 4)]),
    Case("getitem-int", lambda a: a[1], [normal(3, 4)]),
    Case("getitem-ellipsis", lambda a: a[..., 2], [normal(2, 3, 4)]),
    Case("getitem-int-array-repeated", lambda a: a[np.array([0, 2, 0, 0, 3])], [normal(4, 3)]),
    Case("getitem-pairs-repeated", lambda a: a[np.array([0, 1, 1, 1]), np.array([2, 2, 3, 2])], [normal(3, 4)]),
    Case("getitem-bool-mask", lambda a: a[COND], [normal(3, 4)]),
    Case("getitem-fn-tensor-index", lambda a: ops.getitem(a, (Tensor(np.array([2, 2])), slice(None))),
         [normal(3, 4)]),
    Case("concatenate-axis0", lambda a, b: ops.concatenate([a, b]), [normal(2, 3), normal(4, 3)]),
    Case("concatenate-axis1", lambda a, b, c: ops.concatenate([a, b, c], axis=1),
         [normal(2, 3), normal(2, 1), normal(2, 2)]),
    Case("concatenate-axis-neg", lambda a, b: ops.concatenate([a, b], axis=-1), [normal(2, 3, 2), normal(2, 3, 1)]),
    Case("stack-axis0", lambda a, b: ops.stack([a, b]), [normal(2, 3), normal(2, 3)]),
    Case("stack-axis1", lambda a, b, c: ops.stack([a, b, c], axis=1), [normal(2, 3), normal(2, 3), normal(2, 3)]),
    Case("stack-axis-neg", lambda a, b: ops.stack([a, b], axis=-1), [normal(2, 3), normal(2, 3)]),
    Case("maximum", lambda a, b: ops.maximum(a, b), [apart_from((3, 4), (3, 4))], pair=True),
    Case("maximum-bcast", lambda a, b: ops.maximum(a, b), [apart_from((4,), (3, 4))], pair=True),
    Case("maximum-python-scalar", lambda a: ops.maximum(a, 0.0), [away_from_zero(3, 4)]),
    Case("where", lambda a, b: ops.where(COND, a, b), [normal(3, 4), normal(3, 4)]),
    Case("where-bcast", lambda a, b: ops.where(COND, a, b), [normal(3, 4), normal(4)]),
    Case("where-tensor-cond-scalar", lambda a: ops.where(Tensor(COND), a, 0.0), [normal(3, 4)]),
    # composites
    Case("composite-softplus", lambda a: ops.log(ops.exp(a) + 1.0), [normal(3, 4)]),
    Case("composite-normalize", lambda a: (a - a.mean(axis=1, keepdims=True))
         / ((a * a).sum(axis=1, keepdims=True) + 1.0).sqrt(), [normal(3, 4)]),
]


@pytest.mark.parametrize("case,mode", gradcheck_params(OP_CASES))
def test_op_gradcheck(case, mode):
    run_gradcheck(case, mode)


@pytest.mark.parametrize("case", [pytest.param(c, id=c.id) for c in OP_CASES])
def test_op_float32_in_float32_out(case):
    check_float32_through(case)


@pytest.mark.parametrize("case", [pytest.param(c, id=c.id) for c in OP_CASES])
def test_op_forward_matches_numpy_in_float32_and_float64(case):
    """The float32 forward agrees with the float64 forward (no stray precision loss or reordering)."""
    arrays = case.inputs()
    out64 = case.fn(*[Tensor(a) for a in arrays]).data
    out32 = case.fn(*[Tensor(a.astype(np.float32)) for a in arrays]).data
    np.testing.assert_allclose(out32, out64, rtol=1e-5, atol=1e-5)


# -- semantics ------------------------------------------------------------------------------------
def leaf(values, dtype=np.float64):
    return Tensor(np.array(values, dtype=dtype), requires_grad=True)


def test_forward_values_of_primitive_ops():
    a, b = np.array([[1.0, -2.0], [3.0, 4.0]]), np.array([0.5, 2.0])
    ta, tb = Tensor(a), Tensor(b)
    np.testing.assert_array_equal((ta + tb).data, a + b)
    np.testing.assert_array_equal((ta - tb).data, a - b)
    np.testing.assert_array_equal((ta * tb).data, a * b)
    np.testing.assert_array_equal((ta / tb).data, a / b)
    np.testing.assert_array_equal((ta @ tb).data, a @ b)
    np.testing.assert_array_equal((tb ** 2).data, b ** 2)
    np.testing.assert_array_equal(ops.maximum(ta, tb).data, np.maximum(a, b))
    np.testing.assert_array_equal(ops.max(ta, axis=0).data, a.max(axis=0))
    np.testing.assert_array_equal(ta[np.array([1, 1])].data, a[[1, 1]])
    np.testing.assert_array_equal(ops.stack([tb, tb], axis=1).data, np.stack([b, b], axis=1))


def test_multiple_use_accumulates_y_eq_x_times_x_plus_x():
    x = leaf([0.5, -1.5, 2.0])
    (x * x + x).sum().backward()
    np.testing.assert_allclose(x.grad, 2 * x.data + 1)


def test_a_plus_a_counts_twice():
    a = leaf([1.0, 2.0])
    (a + a).backward(np.array([1.0, 10.0]))
    np.testing.assert_array_equal(a.grad, [2.0, 20.0])


def test_diamond_graph():
    a = leaf([0.3, -0.7])
    b = a * 2.0
    c = ops.exp(b)
    d = b * 3.0
    (c + d).sum().backward()
    np.testing.assert_allclose(a.grad, 2 * (np.exp(2 * a.data) + 3), rtol=1e-14)


def test_intermediate_used_three_times_and_two_levels():
    x = leaf([0.4, -1.1, 0.9])
    y = x * 2.0
    z = y * y * y + y  # d/dx = (3y² + 1)·2
    w = z + y * z      # reuses both intermediates again
    w.sum().backward()
    yv = 2 * x.data
    zv = yv ** 3 + yv
    dz_dy = 3 * yv ** 2 + 1
    np.testing.assert_allclose(x.grad, 2 * (dz_dy + zv + yv * dz_dy), rtol=1e-13)


def test_add_hands_the_same_array_to_both_inputs_without_aliasing():
    a, b = leaf([1.0, 2.0]), leaf([3.0, 4.0])
    g = np.array([5.0, 6.0])
    (a + b).backward(g)
    assert a.grad is not b.grad and not np.shares_memory(a.grad, b.grad)
    assert not np.shares_memory(a.grad, g) and not np.shares_memory(b.grad, g)
    a.grad[0] = 100.0
    assert b.grad[0] == 5.0 and g[0] == 5.0


def test_view_backward_does_not_alias_the_upstream_gradient():
    a = leaf([[1.0, 2.0], [3.0, 4.0]])
    g = np.ones(4)
    a.reshape(-1).backward(g)
    assert not np.shares_memory(a.grad, g)
    a.grad += 1
    np.testing.assert_array_equal(g, np.ones(4))


def test_shared_upstream_gradient_into_two_non_leaf_branches():
    # s = p + q hands one array to both p and q; each later receives a second contribution,
    # which must not be added in place into the shared array
    x = leaf([0.5, 1.5])
    p = x * 2.0
    q = x * 3.0
    s = p + q
    out = s + p * 4.0 + q * 5.0
    out.sum().backward()
    # d/dx = (1 + 4)·2 + (1 + 5)·3
    np.testing.assert_allclose(x.grad, np.full(2, 28.0))


def test_leaf_gradients_accumulate_across_two_backward_calls():
    x = leaf([1.0, -2.0])
    (x * 3.0).sum().backward()
    (x * x).sum().backward()
    np.testing.assert_allclose(x.grad, 3.0 + 2 * x.data)
    x.zero_grad()
    assert x.grad is None


def test_second_backward_through_the_same_graph_raises():
    x = leaf([1.0, 2.0])
    loss = (x * x).sum()
    loss.backward()
    with pytest.raises(RuntimeError, match="freed"):
        loss.backward()
    np.testing.assert_array_equal(x.grad, 2 * x.data)  # unchanged by the refused call


def test_second_backward_through_a_shared_subgraph_raises():
    x = leaf([1.0, 2.0])
    h = x * 2.0
    l1, l2 = (h * h).sum(), h.sum()
    l1.backward()
    with pytest.raises(RuntimeError, match="freed"):
        l2.backward()


def test_graph_is_freed_after_backward_without_gc():
    x = leaf([0.5, 1.0, 1.5])
    constant = np.array([2.0, 3.0, 4.0])
    y = x * constant
    creator = weakref.ref(y._creator)
    saved = weakref.ref(constant)
    loss = ops.exp(y).sum()
    intermediate = weakref.ref(loss._inputs[0])
    del constant
    assert saved() is not None  # kept alive by the graph until backward
    loss.backward()
    assert creator() is None
    assert saved() is None
    assert y._inputs == () and loss._inputs == ()
    del y
    assert intermediate() is None


def test_function_release_drops_saved_arrays():
    x = leaf(np.linspace(-1, 1, 6).reshape(2, 3))
    out = ops.log(ops.exp(x) + 1.0)
    fn = out._creator
    assert fn.__dict__  # something is saved for backward
    out.sum().backward()
    assert fn.__dict__ == {}


def test_no_grad_records_nothing():
    x = leaf([1.0, 2.0])
    with no_grad():
        assert not is_grad_enabled()
        y = x * x + 1.0
        z = ops.exp(y).sum()
    assert is_grad_enabled()
    for t in (y, z):
        assert not t.requires_grad and t._creator is None and t._inputs == ()
    with pytest.raises(RuntimeError, match="does not require a gradient"):
        z.backward()
    assert x.grad is None


def test_no_grad_restores_state_after_an_exception_and_nests():
    with pytest.raises(ZeroDivisionError):
        with no_grad():
            1 / 0
    assert is_grad_enabled()
    with no_grad():
        with no_grad():
            pass
        assert not is_grad_enabled()
    assert is_grad_enabled()


def test_backward_of_non_scalar_needs_a_gradient():
    x = leaf([1.0, 2.0])
    y = x * 2.0
    with pytest.raises(RuntimeError, match=r"scalar.*\(2,\)"):
        y.backward()
    with pytest.raises(ValueError, match=r"\(3,\)"):
        y.backward(np.ones(3))
    y.backward(np.array([1.0, -1.0]))
    np.testing.assert_array_equal(x.grad, [2.0, -2.0])


def test_backward_on_a_leaf_scalar():
    x = leaf(3.0)
    x.backward()
    assert x.grad == 1.0


def test_inputs_without_requires_grad_get_no_gradient():
    x, c = leaf([1.0, 2.0]), Tensor(np.array([3.0, 4.0]))
    (x * c).sum().backward()
    assert c.grad is None
    np.testing.assert_array_equal(x.grad, c.data)


def test_needs_input_grad_lets_backward_skip_work():
    seen = {}

    class Spy(Function):
        def forward(self, a, b):
            return a * b

        def backward(self, g):
            seen["needs"] = self.needs_input_grad
            return (g, None)

    x, c = leaf([1.0]), Tensor(np.array([2.0]))
    Tensor.apply(Spy(), x, c).backward(np.ones(1))
    assert seen["needs"] == (True, False)


def test_integer_tensor_cannot_require_grad():
    with pytest.raises(TypeError, match="int64"):
        Tensor(np.arange(3), requires_grad=True)


def test_max_splits_the_gradient_evenly_between_ties():
    x = leaf([[1.0, 3.0, 3.0], [2.0, 0.0, -1.0]])
    ops.max(x, axis=1).backward(np.array([1.0, 1.0]))
    np.testing.assert_array_equal(x.grad, [[0, 0.5, 0.5], [1, 0, 0]])


def test_maximum_tie_goes_to_the_first_operand():
    a, b = leaf([1.0, 2.0]), leaf([1.0, 1.0])
    ops.maximum(a, b).backward(np.ones(2))
    np.testing.assert_array_equal(a.grad, [1, 1])
    np.testing.assert_array_equal(b.grad, [0, 0])


def test_power_gradient_wrt_exponent_is_a_to_b_log_a():
    a, b = leaf([2.0, 0.5]), leaf([3.0, -1.0])
    (a ** b).sum().backward()
    np.testing.assert_allclose(b.grad, a.data ** b.data * np.log(a.data), rtol=1e-14)
    np.testing.assert_allclose(a.grad, b.data * a.data ** (b.data - 1), rtol=1e-14)


def test_getitem_repeated_indices_accumulate():
    x = leaf([1.0, 2.0, 3.0])
    x[np.array([0, 0, 2, 0])].sum().backward()
    np.testing.assert_array_equal(x.grad, [3, 0, 1])


def test_ndarray_on_the_left_defers_to_tensor():
    x = leaf([1.0, 2.0])
    y = np.array([3.0, 4.0]) * x
    assert isinstance(y, Tensor)
    y.sum().backward()
    np.testing.assert_array_equal(x.grad, [3.0, 4.0])


@pytest.mark.parametrize("expr", [
    pytest.param(lambda x: x + 1, id="add-int"), pytest.param(lambda x: 1.5 + x, id="radd"),
    pytest.param(lambda x: x - 0.25, id="sub"), pytest.param(lambda x: 2.0 - x, id="rsub"),
    pytest.param(lambda x: x * 2.5, id="mul"), pytest.param(lambda x: 3 * x, id="rmul"),
    pytest.param(lambda x: x / 3.0, id="div"), pytest.param(lambda x: 1.0 / x, id="rdiv"),
    pytest.param(lambda x: x ** 2, id="pow"), pytest.param(lambda x: 2.0 ** x, id="rpow"),
    pytest.param(lambda x: ops.maximum(x, 0.0), id="maximum"),
    pytest.param(lambda x: ops.where(x.data > 0, x, 0.0), id="where"),
    pytest.param(lambda x: x * np.float64(2.0), id="numpy-float64-scalar"),
])
def test_python_scalars_do_not_upcast_float32(expr):
    x = Tensor(np.array([0.5, 1.5, 2.5], np.float32), requires_grad=True)
    y = expr(x)
    assert y.dtype == np.float32
    y.sum().backward()
    assert x.grad.dtype == np.float32


def test_integer_tensor_times_python_float_is_not_truncated():
    y = Tensor(np.arange(3)) * 0.5
    np.testing.assert_array_equal(y.data, [0.0, 0.5, 1.0])


def test_float32_backward_with_float64_gradient_stays_float32():
    x = Tensor(np.ones(3, np.float32), requires_grad=True)
    (x * 2.0).backward(np.ones(3, np.float64))
    assert x.grad.dtype == np.float32
