"""Batch normalization layers (Ioffe & Szegedy 2015): BatchNorm1d for (N, D) or (N, D, L), BatchNorm2d for images."""
from __future__ import annotations

import numpy as np

from ..autodiff.tensor import Parameter
from ..common.validate import closed_unit_interval, integer
from . import functional as F
from .layers import Module

__all__ = ["BatchNorm1d", "BatchNorm2d"]


class BatchNorm1d(Module):
    """Batch normalization over features of (N, D) or (N, D, L) input (Ioffe & Szegedy 2015).

    Learnable scale γ (ones) and shift β (zeros); running mean/variance buffers updated in training
    with PyTorch's convention: running = (1 − momentum)·running + momentum·batch (momentum = 0.1,
    unbiased variance). Eval mode normalizes with the running averages.
    """

    expected_ndim = (2, 3)

    def __init__(self, num_features: int, *, eps: float = 1e-5, momentum: float = 0.1):
        super().__init__()
        self.num_features = integer("num_features", num_features, 1, type(self).__name__)
        self.momentum = closed_unit_interval(f"{type(self).__name__}: momentum", momentum)
        if eps <= 0:
            raise ValueError(f"{type(self).__name__}: eps must be > 0, got {eps}")
        self.eps = float(eps)
        self.weight = Parameter(np.ones(self.num_features, np.float32), kind="scale")
        self.bias = Parameter(np.zeros(self.num_features, np.float32), kind="shift")
        self.register_buffer("running_mean", np.zeros(self.num_features, np.float32))
        self.register_buffer("running_var", np.ones(self.num_features, np.float32))
        # data-parallel training sets a function summing an array across workers: synchronized statistics
        self.sync = None
        self.use_running_stats = False  # True (``freeze``): normalize with the running statistics in training too

    def forward(self, x):
        shape = x.shape
        if len(shape) not in self.expected_ndim or shape[1] != self.num_features:
            raise ValueError(f"{type(self).__name__}({self.num_features}) expects input of rank "
                             f"{' or '.join(map(str, self.expected_ndim))} with {self.num_features} "
                             f"features on axis 1, got shape {tuple(shape)}")
        return F.batch_norm(x, self.weight, self.bias, self.running_mean, self.running_var,
                            training=self.training and not self.use_running_stats, momentum=self.momentum, eps=self.eps,
                            reduce=self.sync)

    def extra_repr(self) -> str:
        return f"{self.num_features}, eps={self.eps}, momentum={self.momentum}"


class BatchNorm2d(BatchNorm1d):
    """Batch normalization of (N, C, H, W) per channel: statistics over the N·H·W values of each channel.

    As ``BatchNorm1d`` (Ioffe & Szegedy 2015): scale γ, shift β, running averages with PyTorch's
    convention (momentum = 0.1, unbiased running variance), eval mode uses the running averages.
    """

    expected_ndim = (4,)
