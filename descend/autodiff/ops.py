"""The primitive differentiable ops as lowercase functions, and Tensor's operators bound to them.

The ops live in ``math_ops`` (arithmetic, elementwise) and ``array_ops`` (reductions, shapes); both
build on ``tensor``, which knows none of them. Binding the operators here, once both exist, keeps
the imports one-way: tensor <- math_ops, array_ops <- ops.
"""
from __future__ import annotations

import numpy as np

from .array_ops import concatenate, getitem, max, mean, reshape, stack, sum, transpose  # noqa: A004
from .math_ops import add, div, exp, log, matmul, maximum, mul, neg, power, sqrt, sub, where
from .tensor import Tensor

__all__ = [
    "add", "sub", "mul", "div", "neg", "power", "matmul", "exp", "log", "sqrt",
    "sum", "mean", "max", "reshape", "transpose", "getitem", "concatenate", "stack",
    "maximum", "where", "tensor",
]


def tensor(data, *, requires_grad: bool = False, dtype=None) -> Tensor:
    """Make a Tensor from array-like ``data`` (its dtype kept unless ``dtype`` is given)."""
    return Tensor(np.asarray(data, dtype=dtype), requires_grad=requires_grad)


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
Tensor.T = property(lambda a: transpose(a))
