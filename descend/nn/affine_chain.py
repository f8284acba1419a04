"""The execution plan's fast path: a chain of ``Linear`` layers (each maybe fused with its ``ReLU``) under
cross-entropy or MSE, bound once per batch shape.

``functional.dense.Linear`` / ``LinearReLU`` decide at every call how to lay out each product (a wide
result is computed as its transpose), which ReLU kernel walks it, how the bias gradient is summed, and
they take their arrays from the scratch pool. For a fixed batch shape those decisions never change,
so a bound chain makes them once — through the same helpers of ``functional.dense`` (``_product_buffer``,
``_relu_grad_buffer``, ``_bias_by_blas``) — and keeps every array the step needs. A step is then the layers' kernels and BLAS
products called in the same order on the same operands: the same bits as the layers' own backward
(tests/test_plan.py), at a fraction of their Python cost.
"""
from __future__ import annotations

import numpy as np

from ..common import scratch
from .functional import dense as D
from .functional import losses as L
from .functional.dense import _transposed

__all__ = ["Chain", "loss_and_grad"]


def loss_and_grad(cross_entropy: bool, z, y, scale: float, p, losses, mean=None):
    """(J × ``scale`` as a float, dJ/dz) of the batch's logits z: cross-entropy's kernels as
    ``CrossEntropy.forward/backward`` call them, the softmax and then its gradient written into ``p`` (and
    each example's loss into ``losses``); or MSE through its ``Function``. ``mean``: CrossEntropy's
    1/N gradient scale for this batch size, if the caller keeps it. Both plans' loss, the graph's bits."""
    if not cross_entropy:
        L._check_same_shape("mse", z, np.asarray(y))
        fn = L.MSE()
        fn.needs_input_grad = (True, False)
        value = fn.forward(z, np.asarray(y, dtype=z.dtype), reduction="mean")
        return _scaled(value, scale), fn.backward(_seed(scale, z.dtype))[0]
    y = L.cross_entropy_labels(z, y)
    n = z.shape[0]
    if mean is None or scale != 1.0:
        mean = np.asarray(_seed(scale, z.dtype) / n, z.dtype).reshape(1)
    bad, total = L._loss_kernels().softmax_xent_grad(z, y, p, losses, mean)
    if bad:
        raise L._label_range_error(y, z.shape[1])
    return _scaled(np.asarray(np.float64(total) / n, dtype=z.dtype), scale), p


def _seed(scale: float, dtype):
    """dJ/dJ as the graph's backward starts it: 1, or ``scale`` in J's dtype when the loss is scaled."""
    one = np.ones((), dtype)
    return one if scale == 1.0 else one * np.asarray(scale, dtype=dtype)


def _scaled(value, scale: float) -> float:
    """J × ``scale`` as the graph computes ``value * scale``: the number in J's dtype."""
    return float(value if scale == 1.0 else value * np.asarray(scale, dtype=value.dtype))


class Chain:
    """The bound steps of a chain of affine layers; ``run`` as ``Plan.run``."""

    def __init__(self, layers: list, fused: list, cross_entropy: bool):
        self.layers, self.fused, self.cross_entropy = layers, fused, cross_entropy
        self.parameters = [p for layer in layers for p in layer.parameters()]
        self.bound: dict = {}

    def run(self, x: np.ndarray, y, scale: float):
        """(J × scale, the output), or None when this batch needs the layers' general path."""
        if x.ndim != 2 or x.dtype != self.layers[0].weight._data.dtype:
            return None  # e.g. mixed dtypes: NumPy's promotion rules, the layers' general path
        need = tuple([p.requires_grad for p in self.parameters])
        key = (x.shape, x.flags.c_contiguous, need)
        bound = self.bound.get(key, _UNBOUND)
        if bound is _UNBOUND or bound is not None and not bound.current():
            if len(self.bound) > 8:  # e.g. a last smaller batch per epoch; never grow without bound
                self.bound.clear()
            try:
                bound = _Bound(self, x)
            except _Uncovered:
                bound = None  # this shape is the general path's
            self.bound[key] = bound
        if bound is None or not all(p._grad_zero for p in bound.params):
            return None  # a gradient not zeroed before is added to, as the graph does: the general path's work
        return bound.run(x, y, scale)


class _Uncovered(Exception):
    """This batch shape is left to the general path."""


_UNBOUND = object()


class _Affine:
    """One layer's arrays and decisions for a fixed input shape (forward and backward), made by the same helpers
    as ``functional.dense.Linear`` / ``LinearReLU`` make them at every call."""

    def __init__(self, layer, fused: bool, h, wanted_before: bool):
        w, b = layer.weight, layer.bias
        if h.shape[1] != w.shape[1]:
            raise _Uncovered  # the layer's own check names the mismatch
        self.w, self.b = w._data, (b._data if b is not None else None)
        self.fused = fused
        self.need_x = wanted_before
        self.need_w = w.requires_grad
        self.need_b = b is not None and b.requires_grad
        self.params = [p for p in (w, b) if p is not None and p.requires_grad]
        self.out = D._product_buffer(h.shape[0], self.w.shape[0], self.w.dtype)
        self.x = None

    def forward(self, h):
        if self.need_w:
            self.x = h
        out = D._product(h, self.w.T, out=self.out)
        if self.fused:
            D._bias_relu(out, self.b)
        elif self.b is not None:
            out += self.b
        return out

    def bind_backward(self, g, sink_w, sink_b):
        """Decide the backward's layouts for an incoming gradient laid out as ``g``."""
        self.sink_w, self.sink_b = sink_w, sink_b
        self.gz = D._relu_grad_buffer(g, self.out) if self.fused else None
        gz = self.gz if self.fused else g
        self.ones = np.ones(gz.shape[0], gz.dtype) if D._bias_by_blas(gz) else None
        self.gx = D._product_buffer(gz.shape[0], self.w.shape[1], self.w.dtype) if self.need_x else None
        return self.gx

    def backward(self, g):
        sink_b = self.sink_b if self.need_b else None
        if self.fused:
            gz = D._relu_grad(g, self.out, self.gz, sink_b, self.ones)
        else:
            gz = g
            if sink_b is not None:
                D._bias_grad(gz, sink_b, self.ones)
        if self.need_x:
            D._product(gz, self.w, out=self.gx)
        if self.need_w:
            D._weight_grad(gz, self.x, self.sink_w)
            self.x = None
        return self.gx


class _Bound:
    """A chain bound to one input shape: its layers' arrays and the loss's."""

    def __init__(self, chain: Chain, x):
        self.cross_entropy = chain.cross_entropy
        self.layers, h, wanted = [], x, False
        for layer, fused in zip(chain.layers, chain.fused):
            a = _Affine(layer, fused, h, wanted)
            wanted = wanted or bool(a.params)
            self.layers.append(a)
            h = a.out
        if not wanted:
            raise _Uncovered  # nothing to differentiate: the graph says so
        if not chain.cross_entropy and _transposed(h):
            raise _Uncovered  # MSE's gradient would take a layout of NumPy's choosing
        dt = h.dtype
        self.p = np.empty(h.shape, dt)  # cross-entropy's softmax and gradient; for MSE, its gradient's layout
        self.losses = np.empty(h.shape[0], dt) if chain.cross_entropy else None
        self.mean = np.asarray(np.ones((), dt) / h.shape[0], dt).reshape(1)  # CrossEntropy's 1/N, bound once
        g = self.p  # the layout of the loss's gradient: cross-entropy's softmax, or MSE's (both C order)
        for a, layer in zip(reversed(self.layers), reversed(chain.layers)):
            g = a.bind_backward(g, layer.weight.grad if a.need_w else None,
                                layer.bias.grad if a.need_b else None)
            if g is None:
                break
        self.params = [p for a in self.layers for p in a.params]
        self.grads = [p.grad for p in self.params]  # the gradient views bound as the products' destinations

    def current(self) -> bool:
        """Whether the parameters' gradients are still the views bound (data-parallel training moves them)."""
        return all(p.grad is g for p, g in zip(self.params, self.grads))

    def run(self, x, y, scale):
        h = x
        for a in self.layers:
            h = a.forward(h)
        value, g = loss_and_grad(self.cross_entropy, h, y, scale, self.p, self.losses, self.mean)
        for a in reversed(self.layers):
            g = a.backward(g)
            if g is None:
                break
        for p in self.params:
            p._grad_zero = False
        out = scratch.empty(h.shape, h.dtype)  # the buffer is the next step's: the caller gets its own array,
        np.copyto(out, h)  # recycled once the caller lets go of it (a wide output would be fresh pages each step)
        return value, out
