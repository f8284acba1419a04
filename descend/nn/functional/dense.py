"""Dense functions with hand-written backward passes: linear (+ fused ReLU), activations, softmax, dropout.

Each is a ``Function`` on ndarrays plus a lowercase function on Tensors, forward and backward side by
side. Shapes: N samples, D features.
"""
from __future__ import annotations

import numpy as np

from ...autodiff.function import Function
from ...autodiff.tensor import Tensor
from ...common.kernels import kernels
from ...common.validate import generator, integer
from ...common import scratch as _scratch

__all__ = ["linear", "linear_relu", "sigmoid", "tanh", "relu", "leaky_relu", "elu", "maxout", "softmax",
           "log_softmax", "dropout"]


def _data(x):
    return x.data if isinstance(x, Tensor) else np.asarray(x)


# -- linear -----------------------------------------------------------------------------------
class Linear(Function):
    """y = x·Wᵀ + b with W of shape (out_features, in_features) as in PyTorch.

    Backward: dx = G·W, dW = Gᵀ·x, db = Σₙ G. Gradients for W and b are written straight into
    their destination when the caller provides one (``sinks``), avoiding a copy.
    """

    uses_sinks = True

    def forward(self, x, w, b=None):
        if x.shape[-1] != w.shape[1]:
            raise ValueError(f"linear: input has {x.shape[-1]} features (shape {x.shape}) but the layer "
                             f"expects in_features={w.shape[1]}; fix the layer size or the input")
        self.x, self.w, self.has_b = x, w, b is not None
        y = _product(x, w.T)
        if b is not None:
            y += b
        return y

    def backward(self, g):
        nb = self.needs_input_grad[2:]
        gb = None
        if self.has_b and nb and nb[0]:
            gb = _bias_grad(g, self._sinks()[2])
        return self._products(g, gb)

    def _sinks(self):
        return getattr(self, "sinks", (None, None, None))

    def _products(self, g, gb):
        """(dx, dW[, db]) from G, the gradient with respect to x·Wᵀ + b, and db computed by the caller."""
        x, w = self.x, self.w
        nx, nw = self.needs_input_grad[:2]
        gx = _product(g, w) if nx else None
        gw = None
        if nw:
            sink = self._sinks()[1]
            if x.ndim == 2:
                gw = g.T @ x if sink is None else _weight_grad(g, x, sink)
            else:
                gw = g.reshape(-1, g.shape[-1]).T @ x.reshape(-1, x.shape[-1])
        return (gx, gw, gb) if self.has_b else (gx, gw)


def _weight_grad(g, x, sink):
    """dW = Gᵀ·x written into ``sink``; a column-major weight (Linear with more inputs than outputs) gets its
    gradient as the tall product xᵀ·G into its transpose, in place."""
    if _transposed(sink):
        return np.matmul(x.T, g, out=sink.T).T
    return np.matmul(g.T, x, out=sink)


def _bias_grad(g, out=None, ones=None):
    """Σₙ g[n, :] (into ``out`` if given): an affine layer's bias gradient. A gradient laid out column by
    column (``_bias_by_blas``) is summed by BLAS as gᵀ·1 (``ones``: a kept vector of g.shape[0] ones), much
    faster than NumPy, which reduces such rows one call each (benchmarks/NOTES.md); otherwise NumPy's
    reduction (row order) sums it. The fused ``LinearReLU`` sums its gradient here too: same bits either way."""
    if _bias_by_blas(g):
        return np.matmul(g.T, np.ones(g.shape[0], g.dtype) if ones is None else ones, out=out)
    return np.add.reduce(g.reshape(-1, g.shape[-1]), axis=0, out=out)  # the ufunc: np.sum's wrappers cost more


def _bias_by_blas(g) -> bool:
    """Whether ``_bias_grad`` sums ``g`` by BLAS."""
    return g.ndim == 2 and _transposed(g) and g.dtype in (np.float32, np.float64)


def _product(a, b, out=None):
    """a @ b, into a recycled array (``_scratch``) for 2-D operands of one dtype: a large batch's fresh
    arrays otherwise cost a page fault per 4 KiB every step; or into ``out``, an array laid out as this
    function lays out its result (``_product_buffer``).

    A wide result (more columns than rows, e.g. a batch of 128 times 512 features) is computed as its
    transpose — (b.T @ a.T), tall, C-contiguous — and returned as that array's transpose (an F-ordered
    view with the asked shape and values). OpenBLAS splits a tall row-major product between its two
    threads in a way that holds up when the machine is busy (benchmarks/NOTES.md).
    The choice depends on the result's shape alone, so a layer's output and the gradient that comes
    back to it share a layout.
    """
    if a.ndim == 2 and a.dtype == b.dtype:
        m, n = a.shape[0], b.shape[1]
        if out is None:
            out = _product_buffer(m, n, a.dtype, _scratch.empty)
        if _wide(m, n):
            return np.matmul(b.T, a.T, out=out.T).T
        return np.matmul(a, b, out=out)
    return a @ b


def _product_buffer(m: int, n: int, dtype, alloc=np.empty):
    """An (m, n) array from ``alloc`` laid out as ``_product`` lays out its result: a wide one column by column."""
    return alloc((n, m), dtype).T if _wide(m, n) else alloc((m, n), dtype)


def _wide(m: int, n: int) -> bool:
    """Whether ``_product`` computes an (m, n) result as its transpose."""
    return n > m and m * n >= TALL_MIN


# elements from which a wide result is computed transposed (128×128; smaller products cost the same
# either way, and keep the row-major layout everything else expects by default)
TALL_MIN = 1 << 14


def _transposed(a) -> bool:
    """Whether a 2-D array is laid out column by column (as ``_product`` returns a wide result)."""
    return a.flags.f_contiguous and not a.flags.c_contiguous


def linear(x, weight, bias=None):
    """Affine map y = x·Wᵀ + b. x: (N, in_features), W: (out_features, in_features), b: (out_features,)."""
    if bias is None:
        return Tensor.apply(Linear(), x, weight)
    return Tensor.apply(Linear(), x, weight, bias)


class LinearReLU(Linear):
    """relu(x·Wᵀ + b) for 2-D x as one node: the product by BLAS, then bias + ReLU in one pass in place;
    backward: G = g·(out > 0) and db = Σₙ G in one pass, then dx = G·W, dW = Gᵀ·x as in ``Linear``.
    ``Sequential`` uses it for a ``Linear`` followed by a ``ReLU``; the result equals the two nodes'."""

    def forward(self, x, w, b=None):
        y = super().forward(x, w)  # the product alone: the bias is added in the fused pass
        self.has_b = b is not None
        _bias_relu(y, b)
        self.out = y
        return y

    def backward(self, g):
        out = self.out
        nb = self.needs_input_grad[2:]
        want_b = self.has_b and nb and nb[0]
        gb = None
        if want_b:
            sink = self._sinks()[2]
            gb = sink if sink is not None else np.empty(g.shape[1], g.dtype)
        gz = _relu_grad(g, out, _relu_grad_buffer(g, out, _scratch.empty), gb)
        return self._products(gz, gb)


def _bias_relu(y, b) -> None:
    """y ← relu(y + b) in place; a wide product (column by column) is walked along its transpose."""
    if _transposed(y):
        _act_kernels().bias_relu_rows(y.T, b)
    else:
        _act_kernels().bias_relu(y, b)


def _relu_grad_buffer(g, out, alloc=np.empty):
    """An array from ``alloc`` for G = g·(out > 0), laid out as NumPy lays out that product (unfused ReLU)."""
    if _transposed(out) and _transposed(g):
        return alloc(out.shape[::-1], g.dtype).T
    return alloc(g.shape, g.dtype)


def _relu_grad(g, out, gz, gb=None, ones=None):
    """gz ← g·(out > 0) and, if ``gb`` is given, gb ← Σₙ gz; ``gz`` from ``_relu_grad_buffer``. Returns gz."""
    if _transposed(gz):
        _act_kernels().relu_backward_rows(g.T, out.T, gz.T)
        if gb is not None:  # the very reduction Linear.backward does on such a gradient (same bits)
            _bias_grad(gz, gb, ones)
    else:  # row-major (a gradient of another layout than the output's is rare: copied)
        _act_kernels().relu_backward_bias(np.ascontiguousarray(g), np.ascontiguousarray(out), gz, gb)
    return gz


def linear_relu(x, weight, bias=None):
    """relu(linear(x, weight, bias)), fused (see ``LinearReLU``) for x of shape (N, in_features)."""
    if _data(x).ndim != 2:
        return relu(linear(x, weight, bias))
    if bias is None:
        return Tensor.apply(LinearReLU(), x, weight)
    return Tensor.apply(LinearReLU(), x, weight, bias)



def _act_kernels():
    return kernels("descend.nn.functional._act_kernels")



# -- activations ------------------------------------------------------------------------------
class Sigmoid(Function):
    """σ(x) = 1/(1+e⁻ˣ), computed without overflow; σ' = σ(1−σ)."""

    def forward(self, x):
        e = np.exp(-np.abs(x))
        # numerator 1 for x ≥ 0 and e⁻|ˣ| otherwise, selected by arithmetic (exact, and unlike
        # np.where free of branch mispredictions on random signs)
        pos = x >= 0
        out = (pos + ~pos * e) / (1 + e)
        self.out = out
        return out

    def backward(self, g):
        s = self.out
        return (g * s * (1 - s),)


class Tanh(Function):
    """tanh(x); tanh' = 1 − tanh²."""

    def forward(self, x):
        self.out = np.tanh(x)
        return self.out

    def backward(self, g):
        t = self.out
        return (g * (1 - t * t),)


class ReLU(Function):
    """max(0, x); the gradient at exactly 0 is taken as 0 (as in PyTorch)."""

    def forward(self, x):
        self.out = np.maximum(x, 0)
        return self.out

    def backward(self, g):
        return (g * (self.out > 0),)


class LeakyReLU(Function):
    """x if x > 0 else a·x (a = negative_slope)."""

    def forward(self, x, negative_slope=0.01):
        a = x.dtype.type(negative_slope)
        self.slope = (x > 0) * (1 - a) + a  # 1 where x > 0, a elsewhere
        return x * self.slope

    def backward(self, g):
        return (g * self.slope,)


class ELU(Function):
    """x if x > 0 else α(eˣ − 1); derivative 1 or α·eˣ (Clevert et al. 2015)."""

    def forward(self, x, alpha=1.0):
        a = x.dtype.type(alpha)
        neg = a * np.expm1(np.minimum(x, 0))
        self.pos = x > 0
        self.slope = self.pos + ~self.pos * (neg + a)  # 1 where x > 0, α·eˣ elsewhere
        return np.maximum(x, 0) + neg

    def backward(self, g):
        return (g * self.slope,)


class Maxout(Function):
    """Max over groups of ``pieces`` consecutive features: (N, D·k) → (N, D) (Goodfellow et al. 2013).

    Feature j of the output is max(z[:, j·k], …, z[:, j·k + k − 1]); the gradient goes to the arg max.
    """

    def forward(self, z, pieces):
        n, f = z.shape[0], z.shape[-1]
        if f % pieces:
            raise ValueError(f"maxout: {f} features cannot be split into groups of pieces={pieces}; "
                             "make the feature count a multiple of pieces")
        zz = z.reshape(*z.shape[:-1], f // pieces, pieces)
        self.idx = zz.argmax(axis=-1)
        self.shape = zz.shape
        return np.take_along_axis(zz, self.idx[..., None], axis=-1)[..., 0]

    def backward(self, g):
        out = np.zeros(self.shape, dtype=g.dtype)
        np.put_along_axis(out, self.idx[..., None], g[..., None], axis=-1)
        return (out.reshape(*self.shape[:-2], -1),)


def sigmoid(x):
    return Tensor.apply(Sigmoid(), x)


def tanh(x):
    return Tensor.apply(Tanh(), x)


def relu(x):
    return Tensor.apply(ReLU(), x)


def leaky_relu(x, negative_slope: float = 0.01):
    return Tensor.apply(LeakyReLU(), x, negative_slope=negative_slope)


def elu(x, alpha: float = 1.0):
    return Tensor.apply(ELU(), x, alpha=alpha)


def maxout(z, pieces: int = 2):
    """Maxout over groups of ``pieces`` features; see ``Maxout``."""
    pieces = integer("pieces", pieces, 1, "maxout")
    return Tensor.apply(Maxout(), z, pieces=pieces)


# -- softmax family ---------------------------------------------------------------------------
def _log_softmax(z, axis=-1):
    shifted = z - z.max(axis=axis, keepdims=True)
    return shifted - np.log(np.exp(shifted).sum(axis=axis, keepdims=True))


class LogSoftmax(Function):
    """log softmax(z) = z − log Σ eᶻ (shifted by the max, exact for huge logits); dz = g − softmax·Σg."""

    def forward(self, z, axis=-1):
        self.axis = axis
        self.out = _log_softmax(z, axis)
        return self.out

    def backward(self, g):
        return (g - np.exp(self.out) * g.sum(axis=self.axis, keepdims=True),)


class Softmax(Function):
    """softmax(z) = eᶻ/Σeᶻ; dz = s·(g − Σ g·s)."""

    def forward(self, z, axis=-1):
        self.axis = axis
        e = np.exp(z - z.max(axis=axis, keepdims=True))
        self.out = e / e.sum(axis=axis, keepdims=True)
        return self.out

    def backward(self, g):
        s = self.out
        return (s * (g - (g * s).sum(axis=self.axis, keepdims=True)),)


def log_softmax(z, axis: int = -1):
    return Tensor.apply(LogSoftmax(), z, axis=axis)


def softmax(z, axis: int = -1):
    return Tensor.apply(Softmax(), z, axis=axis)


# -- dropout ----------------------------------------------------------------------------------
class Dropout(Function):
    """Inverted dropout: keep each unit with probability 1 − p and scale kept units by 1/(1 − p)."""

    def forward(self, x, mask):
        self.mask = mask
        return x * mask

    def backward(self, g):
        return g * self.mask, None


def dropout(x, p: float = 0.5, *, training: bool = True, rng: np.random.Generator | None = None):
    """Inverted dropout (Srivastava et al. 2014, CS231n): identity when not training or p = 0.

    The mask is drawn from ``rng`` (required in training), so runs with the same seed agree.
    """
    if not 0 <= p < 1:
        raise ValueError(f"dropout p must be in [0, 1) (the probability of dropping a unit), got {p!r}; "
                         "p = 1 would drop every unit")
    if not training or p == 0:
        return x
    generator(rng, "dropout in training mode", "its mask")
    return Tensor.apply(Dropout(), x, dropout_mask(_data(x), p, rng))


def dropout_mask(x: np.ndarray, p: float, rng: np.random.Generator) -> np.ndarray:
    """The inverted-dropout mask for ``x``: 1/(1 − p) where a unit is kept, 0 where dropped (drawn from ``rng``)."""
    mask = rng.random(x.shape, dtype=np.float64 if x.dtype == np.float64 else np.float32) >= p
    return mask.astype(x.dtype) * x.dtype.type(1 / (1 - p))
