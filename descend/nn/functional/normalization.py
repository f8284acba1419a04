"""Batch normalization (Ioffe & Szegedy 2015) with its hand-written backward pass, over axis 1 of any rank."""
from __future__ import annotations

import numpy as np

from ...autodiff.function import Function
from ...autodiff.tensor import Tensor
from .dense import _data

__all__ = ["batch_norm"]


class BatchNorm(Function):
    """Batch normalization (Ioffe & Szegedy 2015) over all axes but the channel axis 1.

    Training: x̂ = (x − μ_B)/√(σ²_B + eps), y = γ·x̂ + β, with the batch mean and biased variance.
    Eval: the running averages replace μ_B and σ²_B. Backward (training):
    dx = γ/(m·√(σ²+eps)) · (m·g − Σg − x̂·Σ(g·x̂)), dγ = Σ g·x̂, dβ = Σ g (sums over the m values per channel).
    """

    def forward(self, x, gamma, beta, *, mean, var, eps, training, m=None, reduce=None):
        axes = (0,) + tuple(range(2, x.ndim))
        shape = [1] * x.ndim
        shape[1] = x.shape[1]
        self.axes, self.shape, self.training, self.reduce = axes, tuple(shape), training, reduce
        self.m = x.size // x.shape[1] if m is None else m
        self.invstd = (1 / np.sqrt(var + x.dtype.type(eps))).astype(x.dtype, copy=False)
        self.xhat = (x - mean.reshape(shape)) * self.invstd.reshape(shape)
        self.gamma = gamma
        return self.xhat * gamma.reshape(shape) + beta.reshape(shape)

    def backward(self, g):
        axes, shape, xhat = self.axes, self.shape, self.xhat
        nx, ng, nb = self.needs_input_grad
        dbeta = g.sum(axis=axes) if (nb or nx) else None
        dgamma = (g * xhat).sum(axis=axes) if (ng or nx) else None
        if self.reduce is not None and nx and self.training:  # dx needs Σg, Σg·x̂ over the global batch
            sums = np.concatenate([dbeta, dgamma])
            self.reduce(sums)
            c = len(dbeta)
            dbeta_all, dgamma_all = sums[:c], sums[c:]
        else:
            dbeta_all, dgamma_all = dbeta, dgamma
        dx = None
        if nx:
            scale = (self.gamma * self.invstd).reshape(shape)
            if self.training:
                m = g.dtype.type(self.m)
                dx = scale / m * (m * g - dbeta_all.reshape(shape) - xhat * dgamma_all.reshape(shape))
            else:
                dx = g * scale
        return dx, dgamma if ng else None, dbeta if nb else None


def batch_norm(x, weight, bias, running_mean: np.ndarray, running_var: np.ndarray, *,
               training: bool, momentum: float = 0.1, eps: float = 1e-5, reduce=None):
    """Batch normalization over axis 1 (features for (N, D), channels for (N, C, H, W)); see ``BatchNorm``.

    In training the running averages are updated in place with PyTorch's convention:
    running = (1 − momentum)·running + momentum·batch_stat, with the *unbiased* batch variance.

    ``reduce``: synchronized batch statistics for data-parallel training — a function summing a float64
    array in place across the workers (``descend.train.distributed``). The statistics are then those of
    the global batch: one reduction of [Σx, Σx², count] per channel forward, one of [Σg, Σg·x̂] backward.
    """
    xd = _data(x)
    if xd.ndim < 2:
        raise ValueError(f"batch_norm expects input of shape (N, C, ...), got shape {xd.shape}")
    m = None
    if training:
        axes = (0,) + tuple(range(2, xd.ndim))
        mean, var, m = _synced_stats(xd, axes, reduce) if reduce is not None else \
            (xd.mean(axis=axes), xd.var(axis=axes), xd.size // xd.shape[1])
        if m < 2:
            raise ValueError(f"batch_norm in training mode needs more than one value per channel, got input "
                             f"shape {xd.shape}{' (over all workers)' if reduce is not None else ''}; use a batch "
                             "size > 1 or call model.eval()")
        running_mean *= 1 - momentum
        running_mean += momentum * mean
        running_var *= 1 - momentum
        running_var += (momentum * m / (m - 1)) * var
    else:
        mean, var = running_mean, running_var
    return Tensor.apply(BatchNorm(), x, weight, bias, mean=mean, var=var, eps=eps, training=training, m=m,
                        reduce=reduce if training else None)


def _synced_stats(xd, axes, reduce):
    """The global batch's mean, biased variance and count per channel: [Σx, Σx², count] summed in float64
    across the workers in one reduction (float64 accumulators, no float64 copy of x)."""
    c = xd.shape[1]
    sums = np.concatenate([xd.sum(axis=axes, dtype=np.float64), np.square(xd).sum(axis=axes, dtype=np.float64),
                           [xd.size // c]])
    reduce(sums)
    m = int(sums[-1])
    mean64 = sums[:c] / m
    var64 = np.maximum(sums[c:2 * c] / m - mean64 * mean64, 0.0)
    return mean64.astype(xd.dtype), var64.astype(xd.dtype), m
