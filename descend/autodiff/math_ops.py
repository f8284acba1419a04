"""Arithmetic and elementwise differentiable ops on Tensors, each a Function with forward and backward side by side.

Binary ops broadcast like NumPy; their backward sums the gradient back to each input's shape
(``unbroadcast``). Python numbers take the dtype of the Tensor they meet.
"""
from __future__ import annotations

import numpy as np

from .function import Function, unbroadcast
from .tensor import Tensor

__all__ = ["add", "sub", "mul", "div", "neg", "power", "matmul", "exp", "log", "sqrt", "maximum", "where"]


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
