"""Primitive differentiable ops on Tensors, each a Function with forward and backward side by side.

Binary ops broadcast like NumPy; their backward sums the gradient back to each input's shape
(``unbroadcast``). Python numbers take the dtype of the Tensor they meet.
"""
from __future__ import annotations

import numpy as np

from .function import Function, unbroadcast
from .tensor import Tensor

__all__ = [
    "add", "sub", "mul", "div", "neg", "power", "matmul", "exp", "log", "sqrt",
    "sum", "mean", "max", "reshape", "transpose", "getitem", "concatenate", "stack",
    "maximum", "where", "tensor",
]


def tensor(data, *, requires_grad: bool = False, dtype=None) -> Tensor:
    """Make a Tensor from array-like ``data`` (its dtype kept unless ``dtype`` is given)."""
    return Tensor(np.asarray(data, dtype=dtype), requires_grad=requires_grad)


def _scalar_dtype(value, other):
    # a number takes a floating Tensor's dtype (float32 stays float32); an integer Tensor keeps
    # NumPy's promotion, so int_tensor * 0.5 is not truncated to 0
    if isinstance(other, Tensor) and np.ndim(value) == 0 and other.dtype.kind == "f":
        return other.dtype
    return None


def _pair(a, b):
    """Turn Python numbers into arrays of the other operand's dtype, so float32 stays float32."""
    if not isinstance(a, Tensor):
        a = np.asarray(a, dtype=_scalar_dtype(a, b))
    if not isinstance(b, Tensor):
        b = np.asarray(b, dtype=_scalar_dtype(b, a))
    return a, b


# -- arithmetic -------------------------------------------------------------------------------
class Add(Function):
    def forward(self, a, b):
        self.shapes = (a.shape, b.shape)
        return a + b

    def backward(self, g):
        sa, sb = self.shapes
        na, nb = self.needs_input_grad
        return (unbroadcast(g, sa) if na else None, unbroadcast(g, sb) if nb else None)


class Sub(Function):
    def forward(self, a, b):
        self.shapes = (a.shape, b.shape)
        return a - b

    def backward(self, g):
        sa, sb = self.shapes
        na, nb = self.needs_input_grad
        return (unbroadcast(g, sa) if na else None, unbroadcast(-g, sb) if nb else None)


class Mul(Function):
    def forward(self, a, b):
        self.a, self.b = a, b
        return a * b

    def backward(self, g):
        na, nb = self.needs_input_grad
        return (unbroadcast(g * self.b, self.a.shape) if na else None,
                unbroadcast(g * self.a, self.b.shape) if nb else None)


class Div(Function):
    def forward(self, a, b):
        self.a, self.b = a, b
        return a / b

    def backward(self, g):
        na, nb = self.needs_input_grad
        ga = unbroadcast(g / self.b, self.a.shape) if na else None
        gb = unbroadcast(-g * self.a / (self.b * self.b), self.b.shape) if nb else None
        return ga, gb


class Neg(Function):
    def forward(self, a):
        return -a

    def backward(self, g):
        return (-g,)


class Power(Function):
    """a ** b; d/da = b·a^(b−1), d/db = a^b·ln a (only where a > 0)."""

    def forward(self, a, b):
        self.a, self.b = a, b
        self.out = np.power(a, b)
        return self.out

    def backward(self, g):
        na, nb = self.needs_input_grad
        a, b = self.a, self.b
        ga = unbroadcast(g * b * np.power(a, b - 1), a.shape) if na else None
        gb = None
        if nb:
            safe = np.where(a > 0, a, 1)
            gb = unbroadcast(g * self.out * np.log(safe), b.shape)
        return ga, gb


class MatMul(Function):
    """a @ b for 2-D (and batched) operands; dA = G·Bᵀ, dB = Aᵀ·G."""

    def forward(self, a, b):
        if a.ndim == 0 or b.ndim == 0:
            raise ValueError("matmul needs operands with at least one dimension; use * for scalars")
        self.a, self.b = a, b
        return a @ b

    def backward(self, g):
        a, b = self.a, self.b
        na, nb = self.needs_input_grad
        a2 = a[None, :] if a.ndim == 1 else a
        b2 = b[:, None] if b.ndim == 1 else b
        g2 = g
        # restore the axes that 1-D operands dropped: b's trailing one first, so that the
        # 0-d gradient of a 1-D · 1-D product becomes (1, 1)
        if b.ndim == 1:
            g2 = np.expand_dims(g2, -1)
        if a.ndim == 1:
            g2 = np.expand_dims(g2, -2)
        ga = gb = None
        if na:
            ga = g2 @ np.swapaxes(b2, -1, -2)
            ga = unbroadcast(ga, a2.shape).reshape(a.shape)
        if nb:
            gb = np.swapaxes(a2, -1, -2) @ g2
            gb = unbroadcast(gb, b2.shape).reshape(b.shape)
        return ga, gb


# -- elementwise ------------------------------------------------------------------------------
class Exp(Function):
    def forward(self, a):
        self.out = np.exp(a)
        return self.out

    def backward(self, g):
        return (g * self.out,)


class Log(Function):
    def forward(self, a):
        self.a = a
        return np.log(a)

    def backward(self, g):
        return (g / self.a,)


class Sqrt(Function):
    def forward(self, a):
        self.out = np.sqrt(a)
        return self.out

    def backward(self, g):
        return (g / (2 * self.out),)


class Maximum(Function):
    """Elementwise max; a tie sends the gradient to the first operand."""

    def forward(self, a, b):
        self.first = a >= b
        self.shapes = (a.shape, b.shape)
        return np.maximum(a, b)

    def backward(self, g):
        na, nb = self.needs_input_grad
        sa, sb = self.shapes
        return (unbroadcast(np.where(self.first, g, 0), sa) if na else None,
                unbroadcast(np.where(self.first, 0, g), sb) if nb else None)


class Where(Function):
    def forward(self, cond, a, b):
        self.cond = np.asarray(cond, dtype=bool)
        self.shapes = (a.shape, b.shape)
        return np.where(self.cond, a, b)

    def backward(self, g):
        _, na, nb = self.needs_input_grad
        sa, sb = self.shapes
        return (None,
                unbroadcast(np.where(self.cond, g, 0), sa) if na else None,
                unbroadcast(np.where(self.cond, 0, g), sb) if nb else None)


# -- reductions -------------------------------------------------------------------------------
def _normalize_axis(axis, ndim):
    if axis is None:
        return tuple(range(ndim))
    axes = (axis,) if isinstance(axis, int) else tuple(axis)
    return tuple(sorted(a % ndim for a in axes))


def _expand_to(g, shape, axes, keepdims):
    if not keepdims:
        for ax in axes:
            g = np.expand_dims(g, ax)
    return np.broadcast_to(g, shape)


class Sum(Function):
    def forward(self, a, axis=None, keepdims=False):
        self.shape, self.axes, self.keepdims = a.shape, _normalize_axis(axis, a.ndim), keepdims
        return np.asarray(a.sum(axis=self.axes, keepdims=keepdims))

    def backward(self, g):
        return (np.array(_expand_to(g, self.shape, self.axes, self.keepdims)),)


class Mean(Function):
    def forward(self, a, axis=None, keepdims=False):
        self.shape, self.axes, self.keepdims = a.shape, _normalize_axis(axis, a.ndim), keepdims
        self.count = int(np.prod([a.shape[i] for i in self.axes])) if self.axes else 1
        return np.asarray(a.mean(axis=self.axes, keepdims=keepdims))

    def backward(self, g):
        return (np.array(_expand_to(g, self.shape, self.axes, self.keepdims)) / np.asarray(self.count, g.dtype),)


class Max(Function):
    """Max over axes; the gradient is split evenly between tied maxima (as in PyTorch's amax)."""

    def forward(self, a, axis=None, keepdims=False):
        self.axes, self.keepdims = _normalize_axis(axis, a.ndim), keepdims
        out = a.max(axis=self.axes, keepdims=True)
        self.mask = a == out
        return np.asarray(out if keepdims else out.squeeze(self.axes) if self.axes else out.reshape(()))

    def backward(self, g):
        mask = self.mask
        count = mask.sum(axis=self.axes, keepdims=True)
        gk = g if self.keepdims else g.reshape(count.shape)
        return (mask * (gk / count).astype(g.dtype, copy=False),)


# -- shapes -----------------------------------------------------------------------------------
class Reshape(Function):
    def forward(self, a, shape):
        self.shape = a.shape
        return a.reshape(shape)

    def backward(self, g):
        return (g.reshape(self.shape),)


class Transpose(Function):
    def forward(self, a, axes=None):
        self.axes = None if axes is None else [ax % a.ndim for ax in axes]  # argsort needs axes ≥ 0
        return np.transpose(a, axes)

    def backward(self, g):
        if self.axes is None:
            return (np.transpose(g),)
        return (np.transpose(g, np.argsort(self.axes)),)


class GetItem(Function):
    """a[index] for any NumPy index; repeated integer indices accumulate (np.add.at)."""

    def forward(self, a, index):
        self.shape, self.dtype, self.index = a.shape, a.dtype, index
        return np.asarray(a[index])

    def backward(self, g):
        out = np.zeros(self.shape, dtype=g.dtype)
        np.add.at(out, self.index, g)
        return (out,)


class Concatenate(Function):
    def forward(self, *arrays, axis=0):
        self.axis = axis
        self.splits = np.cumsum([a.shape[axis] for a in arrays])[:-1]
        return np.concatenate(arrays, axis=axis)

    def backward(self, g):
        parts = np.split(g, self.splits, axis=self.axis)
        return tuple(p if need else None for p, need in zip(parts, self.needs_input_grad))


class Stack(Function):
    def forward(self, *arrays, axis=0):
        self.axis = axis
        return np.stack(arrays, axis=axis)

    def backward(self, g):
        n = g.shape[self.axis]
        return tuple(np.take(g, i, axis=self.axis) if need else None
                     for i, need in zip(range(n), self.needs_input_grad))


# -- lowercase functions ----------------------------------------------------------------------
def add(a, b):
    return Tensor.apply(Add(), *_pair(a, b))


def sub(a, b):
    return Tensor.apply(Sub(), *_pair(a, b))


def mul(a, b):
    return Tensor.apply(Mul(), *_pair(a, b))


def div(a, b):
    return Tensor.apply(Div(), *_pair(a, b))


def neg(a):
    return Tensor.apply(Neg(), a)


def power(a, b):
    return Tensor.apply(Power(), *_pair(a, b))


def matmul(a, b):
    return Tensor.apply(MatMul(), *_pair(a, b))


def exp(a):
    return Tensor.apply(Exp(), a)


def log(a):
    return Tensor.apply(Log(), a)


def sqrt(a):
    return Tensor.apply(Sqrt(), a)


def maximum(a, b):
    return Tensor.apply(Maximum(), *_pair(a, b))


def where(cond, a, b):
    a, b = _pair(a, b)
    cond = cond.data if isinstance(cond, Tensor) else cond
    return Tensor.apply(Where(), cond, a, b)


def sum(a, axis=None, keepdims=False):  # noqa: A001 - mirrors numpy
    return Tensor.apply(Sum(), a, axis=axis, keepdims=keepdims)


def mean(a, axis=None, keepdims=False):
    return Tensor.apply(Mean(), a, axis=axis, keepdims=keepdims)


def max(a, axis=None, keepdims=False):  # noqa: A001 - mirrors numpy
    return Tensor.apply(Max(), a, axis=axis, keepdims=keepdims)


def reshape(a, *shape):
    if len(shape) == 1 and isinstance(shape[0], (tuple, list)):
        shape = tuple(shape[0])
    return Tensor.apply(Reshape(), a, shape=shape)


def transpose(a, axes=None):
    return Tensor.apply(Transpose(), a, axes=axes)


def getitem(a, index):
    if isinstance(index, Tensor):
        index = index.data
    elif isinstance(index, tuple):
        index = tuple(i.data if isinstance(i, Tensor) else i for i in index)
    return Tensor.apply(GetItem(), a, index=index)


def concatenate(tensors, axis=0):
    return Tensor.apply(Concatenate(), *tensors, axis=axis)


def stack(tensors, axis=0):
    return Tensor.apply(Stack(), *tensors, axis=axis)


# -- operators on Tensor ----------------------------------------------------------------------
Tensor.__add__ = lambda a, b: add(a, b)
Tensor.__radd__ = lambda a, b: add(b, a)
Tensor.__sub__ = lambda a, b: sub(a, b)
Tensor.__rsub__ = lambda a, b: sub(b, a)
Tensor.__mul__ = lambda a, b: mul(a, b)
Tensor.__rmul__ = lambda a, b: mul(b, a)
Tensor.__truediv__ = lambda a, b: div(a, b)
Tensor.__rtruediv__ = lambda a, b: div(b, a)
Tensor.__neg__ = lambda a: neg(a)
Tensor.__pow__ = lambda a, b: power(a, b)
Tensor.__rpow__ = lambda a, b: power(b, a)
Tensor.__matmul__ = lambda a, b: matmul(a, b)
Tensor.__rmatmul__ = lambda a, b: matmul(b, a)
Tensor.__getitem__ = lambda a, index: getitem(a, index)
Tensor.sum = lambda a, axis=None, keepdims=False: sum(a, axis, keepdims)
Tensor.mean = lambda a, axis=None, keepdims=False: mean(a, axis, keepdims)
Tensor.max = lambda a, axis=None, keepdims=False: max(a, axis, keepdims)
Tensor.exp = lambda a: exp(a)
Tensor.log = lambda a: log(a)
Tensor.sqrt = lambda a: sqrt(a)
Tensor.reshape = lambda a, *shape: reshape(a, *shape)
Tensor.transpose = lambda a, axes=None: transpose(a, axes)
