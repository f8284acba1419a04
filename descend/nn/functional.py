"""Fused neural-network functions with hand-written backward passes (forward and backward side by side).

Each is a ``Function`` on ndarrays plus a lowercase function on Tensors. Fusing (e.g. the whole
softmax cross-entropy in one node) is both faster and more exact than composing primitive ops.
Shapes: N samples, D features, C classes.
"""
from __future__ import annotations

import numpy as np

from ..common.kernels import kernels
from ..autodiff.function import Function
from ..autodiff.tensor import Tensor
from . import _scratch

__all__ = [
    "linear", "linear_relu", "sigmoid", "tanh", "relu", "leaky_relu", "elu", "maxout", "softmax", "log_softmax",
    "cross_entropy", "mse", "bce_with_logits", "hinge", "dropout", "batch_norm",
]


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
                if sink is None:
                    gw = g.T @ x
                elif _transposed(sink):  # a column-major weight (Linear with more inputs than outputs)
                    gw = np.matmul(x.T, g, out=sink.T).T  # its gradient as a tall product, in place
                else:
                    gw = np.matmul(g.T, x, out=sink)
            else:
                gw = g.reshape(-1, g.shape[-1]).T @ x.reshape(-1, x.shape[-1])
        return (gx, gw, gb) if self.has_b else (gx, gw)


def _bias_grad(g, out=None):
    """Σₙ g[n, :] (into ``out`` if given): an affine layer's bias gradient. A gradient laid out column by
    column (``_transposed``) is summed by BLAS as gᵀ·1, which took 2.8 against 14.3 µs for np.add.reduce
    on a 128×512 float32 gradient (NumPy reduces such rows one call each); otherwise NumPy's reduction
    (row order) sums it. The fused ``LinearReLU`` sums its gradient here too: same bits either way."""
    if g.ndim == 2 and _transposed(g) and g.dtype in (np.float32, np.float64):
        return np.matmul(g.T, np.ones(g.shape[0], g.dtype), out=out)
    return np.add.reduce(g.reshape(-1, g.shape[-1]), axis=0, out=out)  # the ufunc: np.sum's wrappers cost ~2 µs


def _product(a, b):
    """a @ b, into a recycled array (``_scratch``) for 2-D operands of one dtype: a large batch's fresh
    arrays otherwise cost a page fault per 4 KiB every step (batch 2048 of a 784-512-256-10 MLP:
    1,800 faults a step).

    A wide result (more columns than rows, e.g. a batch of 128 times 512 features) is computed as its
    transpose — (b.T @ a.T), tall, C-contiguous — and returned as that array's transpose (an F-ordered
    view with the asked shape and values). OpenBLAS splits a tall row-major product between its two
    threads in a way that holds up when the machine is busy: the 128×784·784×512 product measured
    435 against 514 µs, 128×512·512×256 151 against 186 µs, in this VM's slow phases (equal otherwise).
    The choice depends on the result's shape alone, so a layer's output and the gradient that comes
    back to it share a layout.
    """
    if a.ndim == 2 and a.dtype == b.dtype:
        m, n = a.shape[0], b.shape[1]
        if n > m and m * n >= TALL_MIN:
            return np.matmul(b.T, a.T, out=_scratch.empty((n, m), a.dtype)).T
        return np.matmul(a, b, out=_scratch.empty((m, n), a.dtype))
    return a @ b


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
        if _transposed(y):  # a wide product comes column by column: the kernel walks its transpose
            _act_kernels().bias_relu_rows(y.T, b)
        else:
            _act_kernels().bias_relu(y, b)
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
        if _transposed(out) and _transposed(g):  # the layout NumPy gives g·(out > 0) (unfused ReLU)
            gz = _scratch.empty(out.shape[::-1], g.dtype).T
            _act_kernels().relu_backward_rows(g.T, out.T, gz.T)
            if want_b:  # the very reduction Linear.backward does on such a gradient (same bits)
                _bias_grad(gz, gb)
        else:  # row-major (a gradient of another layout than the output's is rare: copied)
            gz = _scratch.empty(g.shape, g.dtype)
            _act_kernels().relu_backward_bias(np.ascontiguousarray(g), np.ascontiguousarray(out), gz, gb)
        return self._products(gz, gb)


def linear_relu(x, weight, bias=None):
    """relu(linear(x, weight, bias)), fused (see ``LinearReLU``) for x of shape (N, in_features)."""
    if _data(x).ndim != 2:
        return relu(linear(x, weight, bias))
    if bias is None:
        return Tensor.apply(LinearReLU(), x, weight)
    return Tensor.apply(LinearReLU(), x, weight, bias)


def _act_kernels():
    return kernels("descend.nn._act_kernels")


def _loss_kernels():
    return kernels("descend.nn._loss_kernels")


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
    if int(pieces) != pieces or pieces < 1:
        raise ValueError(f"maxout: pieces must be a positive integer, got {pieces!r}")
    return Tensor.apply(Maxout(), z, pieces=int(pieces))


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


def check_labels(y, n: int, num_classes: int, *, check_range: bool = True) -> np.ndarray:
    """Validate integer class labels for N samples and C classes; returns them as an int array.
    ``check_range=False`` leaves the 0..C−1 check to the caller (cross-entropy's kernel does it in its pass)."""
    y = _data(y)
    if y.ndim != 1 or len(y) != n:
        raise ValueError(f"labels must be a 1-D array with one class index per sample: got shape {y.shape} "
                         f"for {n} samples")
    if y.dtype.kind == "f":
        if not np.all(np.isfinite(y)) or np.any(y != np.round(y)):
            bad = y[~np.isfinite(y) | (y != np.round(y))][:3]
            raise ValueError(f"labels must be integer class indices, got non-integer values {bad.tolist()}; "
                             "pass class indices 0..C-1 (e.g. y.astype(int))")
        y = y.astype(np.intp)
    elif y.dtype.kind not in "iu":
        raise TypeError(f"labels must be integer class indices, got dtype {y.dtype}")
    if check_range and n and (y.min() < 0 or y.max() >= num_classes):
        raise _label_range_error(y, num_classes)
    return y


def _label_range_error(y, num_classes: int) -> ValueError:
    bad = y[(y < 0) | (y >= num_classes)][:3]
    return ValueError(f"labels out of range: {bad.tolist()} not in 0..{num_classes - 1} "
                      f"(the output has C={num_classes} classes); fix the labels or the output size")


class CrossEntropy(Function):
    """Mean softmax cross-entropy of logits z (N, C) and integer labels y (N,).

    L = (1/N) Σᵢ (log Σⱼ e^{zᵢⱼ} − z_{i,yᵢ});  dz = (softmax(z) − onehot(y)) / N.
    Exact for logits of ±1000 (log-sum-exp shifted by the row max). One Numba pass each way
    (``_loss_kernels``), which also checks that every label is in 0..C−1.
    """

    def forward(self, z, y, reduction="mean"):
        n = z.shape[0]
        z = z.astype(np.result_type(z.dtype, np.float32), copy=False)  # float32 or float64 arithmetic
        p, losses = np.empty(z.shape, z.dtype), np.empty(n, z.dtype)
        bad, total = _loss_kernels().softmax_xent(z, y, p, losses)
        if bad:
            raise _label_range_error(y, z.shape[1])
        self.p, self.y, self.reduction = p, y, reduction
        if reduction == "none":
            return losses
        total = np.float64(total)  # an empty batch's mean is NaN (with NumPy's warning), not an exception
        return np.asarray(total / n if reduction == "mean" else total, dtype=z.dtype)

    def backward(self, g):
        p, n = self.p, self.p.shape[0]
        if self.reduction == "none":
            scale = np.asarray(g, p.dtype).reshape(n)
        else:
            scale = np.asarray(g / n if self.reduction == "mean" else g, p.dtype).reshape(1)
        _loss_kernels().xent_grad(p, self.y, scale)  # in place: the graph is freed after one backward
        return p, None


def _check_reduction(reduction):
    if reduction not in ("mean", "sum", "none"):
        raise ValueError(f"reduction must be 'mean', 'sum' or 'none', got {reduction!r}")


def cross_entropy(logits, y, *, reduction: str = "mean"):
    """Softmax cross-entropy from logits (N, C) and integer labels (N,); see ``CrossEntropy``."""
    _check_reduction(reduction)
    z = _data(logits)
    if z.ndim != 2:
        raise ValueError(f"cross_entropy expects logits of shape (N, C), got shape {z.shape}")
    y = check_labels(y, z.shape[0], z.shape[1], check_range=False)  # the range: in the kernel's pass
    return Tensor.apply(CrossEntropy(), logits, y, reduction=reduction)


def _check_same_shape(name, pred, target):
    if pred.shape != target.shape:
        raise ValueError(f"{name}: target shape {target.shape} differs from output shape {pred.shape}; "
                         "they must match exactly (no silent broadcasting) — reshape the target, "
                         "e.g. y.reshape(-1, 1)")


class MSE(Function):
    """Mean squared error L = (1/n) Σ (p − t)² over all n elements; dp = 2(p − t)/n."""

    def forward(self, p, t, reduction="mean"):
        self.diff = p - t
        self.reduction = reduction
        sq = self.diff * self.diff
        if reduction == "none":
            return sq
        return np.asarray(sq.mean() if reduction == "mean" else sq.sum(), dtype=p.dtype)

    def backward(self, g):
        d = self.diff
        scale = 2 / d.size if self.reduction == "mean" else 2
        gp = g * d * d.dtype.type(scale)
        na, nb = self.needs_input_grad
        return (gp if na else None, -gp if nb else None)


def mse(pred, target, *, reduction: str = "mean"):
    """Mean squared error between outputs and targets of the same shape; see ``MSE``."""
    _check_reduction(reduction)
    p, t = _data(pred), _data(target)
    _check_same_shape("mse", p, t)
    if not isinstance(target, Tensor):
        target = np.asarray(target, dtype=p.dtype)
    return Tensor.apply(MSE(), pred, target, reduction=reduction)


class BCEWithLogits(Function):
    """Binary cross-entropy of logits z and targets t ∈ [0, 1], averaged over elements.

    ℓ = max(z, 0) − z·t + log(1 + e^{−|z|}) (stable form of −t·log σ(z) − (1−t)·log(1−σ(z)));
    dz = (σ(z) − t)/n, dt = −z/n.
    """

    def forward(self, z, t, reduction="mean"):
        self.z, self.t, self.reduction = z, t, reduction
        losses = np.maximum(z, 0) - z * t + np.log1p(np.exp(-np.abs(z)))
        if reduction == "none":
            return losses
        return np.asarray(losses.mean() if reduction == "mean" else losses.sum(), dtype=z.dtype)

    def backward(self, g):
        z, t = self.z, self.t
        scale = g / z.size if self.reduction == "mean" else g
        e = np.exp(-np.abs(z))
        pos = z >= 0
        sig = (pos + ~pos * e) / (1 + e)
        nz, nt = self.needs_input_grad
        return ((sig - t) * scale if nz else None, -z * scale if nt else None)


def bce_with_logits(logits, target, *, reduction: str = "mean"):
    """Binary cross-entropy from logits; targets of the same shape with values in [0, 1]."""
    _check_reduction(reduction)
    z, t = _data(logits), _data(target)
    _check_same_shape("bce_with_logits", z, t)
    bad = ~((t >= 0) & (t <= 1))  # written so that NaN counts as bad
    if np.any(bad):
        raise ValueError(f"bce_with_logits: targets must lie in [0, 1] (probabilities or 0/1 labels), got "
                         f"{t[bad][:3].tolist()}; rescale or fix the targets")
    if not isinstance(target, Tensor):
        target = np.asarray(target, dtype=z.dtype)
    return Tensor.apply(BCEWithLogits(), logits, target, reduction=reduction)


class Hinge(Function):
    """Multiclass SVM loss (CS231n): L = (1/N) Σᵢ Σ_{j≠yᵢ} max(0, s_ij − s_{i,yᵢ} + Δ).

    No division by C (PyTorch's ``multi_margin_loss`` divides by C). ds_ij = 1[margin > 0]/N for
    j ≠ yᵢ and ds_{i,yᵢ} = −(number of positive margins)/N.
    """

    def forward(self, s, y, margin=1.0):
        n = s.shape[0]
        rows = np.arange(n)
        m = s - s[rows, y][:, None] + s.dtype.type(margin)
        m[rows, y] = 0
        self.active = m > 0
        self.y = y
        return np.asarray(np.maximum(m, 0).sum() / n, dtype=s.dtype)

    def backward(self, g):
        n = self.active.shape[0]
        grad = self.active.astype(g.dtype)
        grad[np.arange(n), self.y] = -grad.sum(axis=1)
        grad *= g / n
        return grad, None


def hinge(scores, y, *, margin: float = 1.0):
    """Multiclass SVM (hinge) loss of scores (N, C) and integer labels (N,); see ``Hinge``."""
    s = _data(scores)
    if s.ndim != 2:
        raise ValueError(f"hinge expects scores of shape (N, C), got shape {s.shape}")
    y = check_labels(y, s.shape[0], s.shape[1])
    return Tensor.apply(Hinge(), scores, y, margin=margin)


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
    if rng is None:
        raise TypeError("dropout in training mode needs an explicit rng=np.random.default_rng(seed)")
    xd = _data(x)
    mask = rng.random(xd.shape, dtype=np.float64 if xd.dtype == np.float64 else np.float32) >= p
    mask = mask.astype(xd.dtype) * xd.dtype.type(1 / (1 - p))
    return Tensor.apply(Dropout(), x, mask)


# -- batch normalization ----------------------------------------------------------------------
class BatchNorm(Function):
    """Batch normalization (Ioffe & Szegedy 2015) over all axes but the channel axis 1.

    Training: x̂ = (x − μ_B)/√(σ²_B + eps), y = γ·x̂ + β, with the batch mean and biased variance.
    Eval: the running averages replace μ_B and σ²_B. Backward (training):
    dx = γ/(m·√(σ²+eps)) · (m·g − Σg − x̂·Σ(g·x̂)), dγ = Σ g·x̂, dβ = Σ g (sums over the m values per channel).
    """

    def forward(self, x, gamma, beta, *, mean, var, eps, training):
        axes = (0,) + tuple(range(2, x.ndim))
        shape = [1] * x.ndim
        shape[1] = x.shape[1]
        self.axes, self.shape, self.training = axes, tuple(shape), training
        self.m = x.size // x.shape[1]
        self.invstd = (1 / np.sqrt(var + x.dtype.type(eps))).astype(x.dtype, copy=False)
        self.xhat = (x - mean.reshape(shape)) * self.invstd.reshape(shape)
        self.gamma = gamma
        return self.xhat * gamma.reshape(shape) + beta.reshape(shape)

    def backward(self, g):
        axes, shape, xhat = self.axes, self.shape, self.xhat
        nx, ng, nb = self.needs_input_grad
        dbeta = g.sum(axis=axes) if (nb or nx) else None
        dgamma = (g * xhat).sum(axis=axes) if (ng or nx) else None
        dx = None
        if nx:
            scale = (self.gamma * self.invstd).reshape(shape)
            if self.training:
                m = g.dtype.type(self.m)
                dx = scale / m * (m * g - dbeta.reshape(shape) - xhat * dgamma.reshape(shape))
            else:
                dx = g * scale
        return dx, dgamma if ng else None, dbeta if nb else None


def batch_norm(x, weight, bias, running_mean: np.ndarray, running_var: np.ndarray, *,
               training: bool, momentum: float = 0.1, eps: float = 1e-5):
    """Batch normalization over axis 1 (features for (N, D), channels for (N, C, H, W)); see ``BatchNorm``.

    In training the running averages are updated in place with PyTorch's convention:
    running = (1 − momentum)·running + momentum·batch_stat, with the *unbiased* batch variance.
    """
    xd = _data(x)
    if xd.ndim < 2:
        raise ValueError(f"batch_norm expects input of shape (N, C, ...), got shape {xd.shape}")
    if training:
        axes = (0,) + tuple(range(2, xd.ndim))
        m = xd.size // xd.shape[1]
        if m < 2:
            raise ValueError(f"batch_norm in training mode needs more than one value per channel, got input "
                             f"shape {xd.shape}; use a batch size > 1 or call model.eval()")
        mean = xd.mean(axis=axes)
        var = xd.var(axis=axes)
        running_mean *= 1 - momentum
        running_mean += momentum * mean
        running_var *= 1 - momentum
        running_var += (momentum * m / (m - 1)) * var
    else:
        mean, var = running_mean, running_var
    return Tensor.apply(BatchNorm(), x, weight, bias, mean=mean, var=var, eps=eps, training=training)
