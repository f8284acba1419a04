"""Convolution and pooling layers: Conv1d, Conv2d, max/average pooling and global average pooling."""
from __future__ import annotations

from typing import Callable

import numpy as np

from ..autodiff.tensor import Parameter
from ..common.validate import generator, integer
from . import init as _init
from .functional import conv as C
from .functional import pooling as P
from .layers import Module

__all__ = ["Conv1d", "Conv2d", "MaxPool1d", "MaxPool2d", "AvgPool1d", "AvgPool2d", "GlobalAvgPool"]


class _ConvNd(Module):
    nd = 2

    def __init__(self, in_channels: int, out_channels: int, kernel_size, *, stride=1, padding=0, dilation=1,
                 bias: bool = True, init: Callable | None = None, rng: np.random.Generator | None = None,
                 allow_floor: bool = False):
        super().__init__()
        name = type(self).__name__
        self.in_channels = integer("in_channels", in_channels, 1, name)
        self.out_channels = integer("out_channels", out_channels, 1, name)
        self.kernel_size = C._tuple(kernel_size, self.nd, "kernel_size", name, 1)
        self.stride = C._tuple(stride, self.nd, "stride", name, 1)
        self.padding = C._tuple(padding, self.nd, "padding", name, 0)
        self.dilation = C._tuple(dilation, self.nd, "dilation", name, 1)
        self.allow_floor = bool(allow_floor)
        rng = generator(rng, name, "its initial weights")
        object.__setattr__(self, "_auto_init", init is None)
        object.__setattr__(self, "_rng", rng)
        draw = init or _init.he_normal
        shape = (self.out_channels, self.in_channels, *self.kernel_size)
        self.weight = Parameter(draw(shape, rng=rng), kind="weight")
        self.bias = Parameter(np.zeros(self.out_channels, np.float32), kind="bias") if bias else None

    def forward(self, x):
        return C._conv(x, self.weight, self.bias, self.nd, self.stride, self.padding, self.dilation,
                       self.allow_floor, repr(self))

    def forward_relu(self, x):
        """relu(self(x)) as one node (``Sequential`` uses it when a ``ReLU`` follows)."""
        return C._conv(x, self.weight, self.bias, self.nd, self.stride, self.padding, self.dilation,
                       self.allow_floor, repr(self), relu=True)

    _relu_fusable = forward  # fused only while ``forward`` is this one: a subclass may change it

    def extra_repr(self) -> str:
        show = C._show
        s = (f"{self.in_channels}, {self.out_channels}, kernel_size={show(self.kernel_size)}, "
             f"stride={show(self.stride)}, padding={show(self.padding)}")
        if any(d != 1 for d in self.dilation):
            s += f", dilation={show(self.dilation)}"
        if self.bias is None:
            s += ", bias=False"
        if self.allow_floor:
            s += ", allow_floor=True"
        return s


class Conv2d(_ConvNd):
    """2-D convolution layer: (N, in_channels, H, W) → (N, out_channels, Ho, Wo); see ``F.conv2d``.

    Weight (out_channels, in_channels, kH, kW), bias (out_channels,) starting at zero. ``init`` draws the
    weight (any function of ``descend.nn.init``); by default He normal with fan_in = in_channels·kH·kW
    (std √(2/fan_in)), switched to Xavier by ``Sequential`` when a Tanh/Sigmoid follows; e.g.
    ``init=descend.nn.init.xavier_normal``. ``rng`` (required) is the generator the weight is drawn from.
    ``stride``, ``padding`` and ``dilation`` are ints or (height, width) pairs. Sizes must fit exactly:
    (H + 2P − D·(kH−1) − 1)/S + 1 whole and ≥ 1, else a ValueError explains the fix; ``allow_floor=True``
    floors like PyTorch.
    """

    nd = 2


class Conv1d(_ConvNd):
    """1-D convolution layer: (N, in_channels, L) → (N, out_channels, Lo); weight (out, in, k). See ``Conv2d``."""

    nd = 1


class _PoolNd(Module):
    nd = 2
    has_dilation = True

    def __init__(self, kernel_size, *, stride=None, padding=0, dilation=1, allow_floor: bool = False):
        super().__init__()
        name = type(self).__name__
        self.kernel_size = C._tuple(kernel_size, self.nd, "kernel_size", name, 1)
        self.stride = self.kernel_size if stride is None else C._tuple(stride, self.nd, "stride", name, 1)
        self.padding = C._tuple(padding, self.nd, "padding", name, 0)
        self.dilation = C._tuple(dilation, self.nd, "dilation", name, 1)
        for p, k in zip(self.padding, self.kernel_size):
            if p > k // 2:
                raise ValueError(f"{name}: padding={C._show(self.padding)} is more than half of kernel_size="
                                 f"{C._show(self.kernel_size)}; use padding ≤ "
                                 f"{C._show(tuple(k // 2 for k in self.kernel_size))}")
        self.allow_floor = bool(allow_floor)

    def extra_repr(self) -> str:
        show = C._show
        s = f"kernel_size={show(self.kernel_size)}, stride={show(self.stride)}, padding={show(self.padding)}"
        if any(d != 1 for d in self.dilation):
            s += f", dilation={show(self.dilation)}"
        if self.allow_floor:
            s += ", allow_floor=True"
        return s


class MaxPool2d(_PoolNd):
    """Max pooling over kernel_size windows of (N, C, H, W); stride defaults to kernel_size. See ``F.max_pool2d``."""

    def forward(self, x):
        return P._max_pool(x, self.nd, self.kernel_size, self.stride, self.padding, self.dilation,
                           self.allow_floor, repr(self))


class MaxPool1d(MaxPool2d):
    """Max pooling over windows of (N, C, L); see ``MaxPool2d``."""

    nd = 1


class AvgPool2d(_PoolNd):
    """Average pooling over kernel_size windows of (N, C, H, W), zero padding counted. See ``F.avg_pool2d``."""

    def __init__(self, kernel_size, *, stride=None, padding=0, allow_floor: bool = False):
        super().__init__(kernel_size, stride=stride, padding=padding, allow_floor=allow_floor)

    def forward(self, x):
        return P._avg_pool(x, self.nd, self.kernel_size, self.stride, self.padding, self.allow_floor, repr(self))


class AvgPool1d(AvgPool2d):
    """Average pooling over windows of (N, C, L); see ``AvgPool2d``."""

    nd = 1


class GlobalAvgPool(Module):
    """Global average pooling (Lin et al. 2014): (N, C, H, W) or (N, C, L) → (N, C), the mean over positions."""

    def forward(self, x):
        return P.global_avg_pool(x)
