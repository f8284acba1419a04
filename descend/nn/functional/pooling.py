"""Max, average and global average pooling of (N, C, H, W) and (N, C, L) arrays, with hand-written backward passes.

Window sizes follow the convolution's rules (``conv``): the output size (W + 2P − D·(F − 1) − 1)/S + 1
must be whole unless ``allow_floor=True``; the stride defaults to the kernel size. The window loops are
Numba kernels in ``_conv_kernels`` (loaded on first use).
"""
from __future__ import annotations

import math

import numpy as np

from ...autodiff.function import Function
from ...autodiff.tensor import Tensor
from ...common import scratch as _scratch
from .conv import _check_input, _data, _kernels, _output_sizes, _show, _tuple

__all__ = ["max_pool1d", "max_pool2d", "avg_pool1d", "avg_pool2d", "global_avg_pool"]


class _Pool(Function):
    """Shared shape handling: (N, C, H, W) or (N, C, L) viewed as N·C planes of (H, W) (L as (1, L))."""

    def _planes(self, x, kernel, stride, padding, out_size):
        self.x_shape = x.shape
        if x.ndim == 3:
            x = x.reshape(x.shape[0], x.shape[1], 1, x.shape[2])
            kernel, stride, padding, out_size = (1, *kernel), (1, *stride), (0, *padding), (1, *out_size)
        n, c, h, w = x.shape
        self.planes = (n * c, h, w)
        self.out_shape = self.x_shape[:2] + tuple(out_size[-(len(self.x_shape) - 2):])
        return np.ascontiguousarray(x).reshape(n * c, h, w), kernel, stride, padding, out_size


class MaxPool(_Pool):
    """Max over each window; backward routes g to the window's (first) maximum, summed where windows overlap."""

    def forward(self, x, *, kernel_size, stride, padding, dilation, out_size):
        x3, kernel, stride, padding, out_size = self._planes(x, kernel_size, stride, padding, out_size)
        if len(dilation) == 1:
            dilation = (1, *dilation)
        y = _scratch.empty((x3.shape[0], *out_size), x.dtype)
        self.idx = _scratch.empty(y.shape, np.int32)
        self.two_by_two = kernel == (2, 2) and stride == (2, 2) and padding == (0, 0) and dilation == (1, 1)
        if self.two_by_two:
            _kernels().max_pool_2x2(x3, y, self.idx)  # the usual pool, specialized (same result)
        else:
            _kernels().max_pool(x3, y, self.idx, *kernel, *stride, *padding, *dilation)
        return y.reshape(self.out_shape)

    def backward(self, g):
        nq, h, w = self.planes
        g2 = np.ascontiguousarray(g).reshape(nq, -1)
        dx = _scratch.empty((nq, h * w), g.dtype)
        if self.two_by_two:
            _kernels().max_pool_2x2_backward(g2, self.idx, dx, *self.idx.shape[1:], h, w)
        else:
            _kernels().max_pool_backward(g2, self.idx.reshape(nq, -1), dx)
        return (dx.reshape(self.x_shape),)


class AvgPool(_Pool):
    """Mean over each window, zero padding counted (PyTorch's count_include_pad=True); dx spreads g/(kH·kW)."""

    def forward(self, x, *, kernel_size, stride, padding, out_size):
        x3, kernel, stride, padding, out_size = self._planes(x, kernel_size, stride, padding, out_size)
        self.geometry = (*kernel, *stride, *padding)
        self.scale = x.dtype.type(1 / math.prod(kernel))
        y = np.empty((x3.shape[0], *out_size), dtype=x.dtype)
        _kernels().avg_pool(x3, y, *self.geometry, self.scale)
        return y.reshape(self.out_shape)

    def backward(self, g):
        nq, h, w = self.planes
        g3 = np.ascontiguousarray(g).reshape(nq, *self.out_shape[2:]) if len(self.x_shape) == 4 else \
            np.ascontiguousarray(g).reshape(nq, 1, -1)
        dx = np.empty(self.planes, dtype=g.dtype)
        _kernels().avg_pool_backward(g3, dx, *self.geometry, g.dtype.type(self.scale))
        return (dx.reshape(self.x_shape),)


def _pool_args(who, x, nd, kernel_size, stride, padding, dilation, allow_floor):
    xd = _data(x)
    _check_input(who, xd, nd)
    kernel = _tuple(kernel_size, nd, "kernel_size", who, 1)
    stride = kernel if stride is None else _tuple(stride, nd, "stride", who, 1)
    padding = _tuple(padding, nd, "padding", who, 0)
    dilation = _tuple(dilation, nd, "dilation", who, 1)
    for p, k in zip(padding, kernel):
        if p > k // 2:
            raise ValueError(f"{who}: padding={_show(padding)} is more than half of kernel_size={_show(kernel)}, so "
                             f"some windows would hold only padding; use padding ≤ {tuple(k // 2 for k in kernel)}")
    what = (f"kernel_size={_show(kernel)}, stride={_show(stride)}, padding={_show(padding)}"
            + (f", dilation={_show(dilation)}" if any(d != 1 for d in dilation) else ""))
    out_size = _output_sizes(who, xd.shape, what, kernel, stride, padding, dilation, allow_floor, True)
    return kernel, stride, padding, dilation, out_size


def _max_pool(x, nd, kernel_size, stride, padding, dilation, allow_floor, who):
    kernel, stride, padding, dilation, out_size = _pool_args(who, x, nd, kernel_size, stride, padding, dilation,
                                                             allow_floor)
    return Tensor.apply(MaxPool(), x, kernel_size=kernel, stride=stride, padding=padding, dilation=dilation,
                        out_size=out_size)


def _avg_pool(x, nd, kernel_size, stride, padding, allow_floor, who):
    kernel, stride, padding, _, out_size = _pool_args(who, x, nd, kernel_size, stride, padding, 1, allow_floor)
    return Tensor.apply(AvgPool(), x, kernel_size=kernel, stride=stride, padding=padding, out_size=out_size)


def max_pool2d(x, kernel_size, *, stride=None, padding=0, dilation=1, allow_floor: bool = False):
    """Max pooling of (N, C, H, W) over kernel_size windows (stride defaults to kernel_size; padding is −∞).

    Output (N, C, Ho, Wo) with Ho = (H + 2P − D·(kH−1) − 1)/S + 1 (whole, unless ``allow_floor``);
    the gradient flows to the first maximum of each window (CS231n), as in PyTorch.
    """
    return _max_pool(x, 2, kernel_size, stride, padding, dilation, allow_floor, "max_pool2d")


def max_pool1d(x, kernel_size, *, stride=None, padding=0, dilation=1, allow_floor: bool = False):
    """Max pooling of (N, C, L) over windows of kernel_size; see ``max_pool2d``."""
    return _max_pool(x, 1, kernel_size, stride, padding, dilation, allow_floor, "max_pool1d")


def avg_pool2d(x, kernel_size, *, stride=None, padding=0, allow_floor: bool = False):
    """Average pooling of (N, C, H, W): each output is the window's sum / (kH·kW), zero padding included.

    Stride defaults to kernel_size; sizes as in ``max_pool2d``. Matches PyTorch's avg_pool2d with
    count_include_pad=True (its default).
    """
    return _avg_pool(x, 2, kernel_size, stride, padding, allow_floor, "avg_pool2d")


def avg_pool1d(x, kernel_size, *, stride=None, padding=0, allow_floor: bool = False):
    """Average pooling of (N, C, L); see ``avg_pool2d``."""
    return _avg_pool(x, 1, kernel_size, stride, padding, allow_floor, "avg_pool1d")


class GlobalAvgPool(Function):
    """Mean over all spatial axes: (N, C, *spatial) → (N, C); dx = g / (number of spatial positions)."""

    def forward(self, x):
        self.shape = x.shape
        return x.mean(axis=tuple(range(2, x.ndim)))

    def backward(self, g):
        count = math.prod(self.shape[2:])
        dx = np.empty(self.shape, dtype=g.dtype)
        dx[...] = (g * g.dtype.type(1 / count)).reshape(g.shape + (1,) * (len(self.shape) - 2))
        return (dx,)


def global_avg_pool(x):
    """Global average pooling (Lin et al. 2014, "Network in Network"): (N, C, H, W) or (N, C, L) → (N, C)."""
    xd = _data(x)
    if xd.ndim < 3:
        raise ValueError(f"global_avg_pool expects input of shape (N, C, H, W) or (N, C, L), got shape {xd.shape}")
    if xd.dtype.kind != "f":
        raise TypeError(f"global_avg_pool expects floating-point input, got dtype {xd.dtype}")
    return Tensor.apply(GlobalAvgPool(), x)
