"""Batch normalization (Ioffe & Szegedy 2015) with its hand-written backward pass, over axis 1 of any rank."""
from __future__ import annotations

import numpy as np

from ...autodiff.function import Function
from ...autodiff.tensor import Tensor

__all__ = ["batch_norm"]


def _data(x):
    return x.data if isinstance(x, Tensor) else np.asarray(x)


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
