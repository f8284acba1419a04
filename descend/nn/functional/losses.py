"""Losses with hand-written backward passes (cross-entropy, MSE, binary cross-entropy, hinge) and the L2 penalty.

Each data term is a ``Function`` on ndarrays plus a lowercase function on Tensors; the softmax
cross-entropy is one fused node (one Numba pass each way, ``_loss_kernels``). Shapes: N samples,
C classes.
"""
from __future__ import annotations

import numpy as np

from ...autodiff.function import Function
from ...autodiff.tensor import Tensor
from ...common.kernels import kernels
from .dense import _data

__all__ = ["cross_entropy", "mse", "bce_with_logits", "hinge", "l2_penalty", "check_labels"]


def _loss_kernels():
    return kernels("descend.nn.functional._loss_kernels")


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
        if z.dtype != np.float32 and z.dtype != np.float64:  # float32 or float64 arithmetic
            z = z.astype(np.result_type(z.dtype, np.float32))
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
    y = cross_entropy_labels(_data(logits), y)
    return Tensor.apply(CrossEntropy(), logits, y, reduction=reduction)


def cross_entropy_labels(z: np.ndarray, y) -> np.ndarray:
    """``cross_entropy``'s checks of logits z and labels y; the labels as integers (the range is checked in
    the kernel's pass)."""
    if z.ndim != 2:
        raise ValueError(f"cross_entropy expects logits of shape (N, C), got shape {z.shape}")
    return check_labels(y, z.shape[0], z.shape[1], check_range=False)


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


def l2_penalty(weights, lam: float) -> Tensor:
    """L2 regularization (λ/2)·Σ‖W‖² over the given weight tensors (biases are usually left out).

    The training loop divides λ by the number of training examples m, giving the lectures'
    (λ/2m)·Σ‖W‖²; this function applies λ as given.
    """
    if lam < 0:
        raise ValueError(f"L2 strength must be ≥ 0, got {lam}")
    total = None
    for w in weights:
        term = (w * w).sum()
        total = term if total is None else total + term
    if total is None:
        raise ValueError("l2_penalty needs at least one weight tensor")
    return total * (0.5 * lam)
