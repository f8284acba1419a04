"""Reductions and shape ops on Tensors (sum, mean, max, reshape, transpose, indexing, concatenate, stack),
each a Function with forward and backward side by side."""
from __future__ import annotations

import numpy as np

from .function import Function
from .tensor import Tensor

__all__ = ["sum", "mean", "max", "reshape", "transpose", "getitem", "concatenate", "stack"]


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
