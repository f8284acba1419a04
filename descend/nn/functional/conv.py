"""Convolution of (N, C, H, W) and (N, C, L) arrays with a hand-written backward pass, and the strict size rules.

Layouts and weights follow PyTorch: input (N, C, H, W) or (N, C, L); a convolution weight is
(out_channels, in_channels, kH, kW) or (out_channels, in_channels, k). Like PyTorch (and the
lectures' "filters slid over the input"), a convolution here is a cross-correlation:

    y[n, o, oh, ow] = b[o] + Σ_{c, i, j} W[o, c, i, j] · x[n, c, oh·S + i·D − P, ow·S + j·D − P]

with zero padding P, stride S and dilation D. The output size along an axis of input size W and
kernel size F is the lectures' (W − F + 2P)/S + 1, generalized to dilation:

    (W + 2P − D·(F − 1) − 1)/S + 1

and it must be a whole number ≥ 1, or the call raises a ValueError that shows the formula with the
numbers and the ways to fix it. ``allow_floor=True`` floors instead, as PyTorch does silently
(the last positions of the padded input that no window reaches are then never used).

The convolution is im2col + one matrix product: the input's patches become the columns of a
(C·kH·kW, N·Ho·Wo) matrix and y = W(O, C·kH·kW) @ cols; the backward pass is dW = G·colsᵀ,
dcols = Wᵀ·G and col2im (the adjoint of im2col). The patch copies are Numba kernels in
``_conv_kernels`` (loaded on first use, so ``import descend`` does not import numba); 1-D layers are
the 2-D kernels with height 1. Pooling, with the same size rules, is in ``pooling``.
Sources: CS231n "Convolutional Neural Networks" (size formula, im2col); Dumoulin & Visin 2016,
"A guide to convolution arithmetic for deep learning" (dilation).
"""
from __future__ import annotations

import numpy as np

from ...autodiff.function import Function
from ...autodiff.tensor import Tensor
from ...common.kernels import kernels
from ...common.validate import integer
from ...common import scratch as _scratch
from .dense import _data

__all__ = ["conv_output_size", "conv_output_shape", "conv1d", "conv2d"]


def _kernels():
    return kernels("descend.nn.functional._conv_kernels")


# -- sizes ------------------------------------------------------------------------------------
def _tuple(value, nd: int, name: str, who: str, minimum: int) -> tuple:
    """An int or a tuple of ``nd`` ints, each ≥ ``minimum``, as a tuple of ``nd`` ints."""
    if isinstance(value, (tuple, list)):
        if len(value) != nd:
            raise ValueError(f"{who}: {name} needs {nd} value{'s' if nd > 1 else ''} (one per spatial axis), "
                             f"got {tuple(value)!r}")
        return tuple(integer(name, v, minimum, who) for v in value)
    return (integer(name, value, minimum, who),) * nd


def _formula(W: int, F: int, S: int, P: int, D: int) -> str:
    return f"(W + 2P − D·(F−1) − 1)/S + 1 = ({W} + 2·{P} − {D}·({F}−1) − 1)/{S} + 1"


def _misfit(W: int, F: int, S: int, P: int, D: int, axis: str, max_padding: int | None) -> str:
    """Why (W + 2P − D·(F−1) − 1)/S + 1 is not a whole number ≥ 1, and what would fix it."""
    num = W + 2 * P - D * (F - 1) - 1
    if num < 0:
        span = D * (F - 1) + 1
        need = -(-(span - W) // 2)
        fix = f"padding ≥ {need}" if max_padding is None or need <= max_padding else None
        options = [f for f in (fix, "a smaller kernel_size" + (" or dilation" if D > 1 else ""),
                               f"an input of size ≥ {span - 2 * P} along {axis}") if f]
        return (f"the output would be empty: {_formula(W, F, S, P, D)} = {num / S + 1:g} < 1 "
                f"(the {'dilated ' if D > 1 else ''}kernel spans {span} positions but the padded input "
                f"has only {W} + 2·{P} = {W + 2 * P}). Fix: " + ", or ".join(options) + ".")
    r = num % S
    fixes = []
    top = P + S if max_padding is None else max_padding
    candidates = [p for p in range(0, top + 1) if (W + 2 * p - D * (F - 1) - 1) % S == 0
                  and W + 2 * p - D * (F - 1) - 1 >= 0 and p != P]
    if candidates:
        p = min(candidates, key=lambda c: (abs(c - P), c))
        fixes.append(f"padding {p} along {axis} (output {(W + 2 * p - D * (F - 1) - 1) // S + 1})")
    s = max(d for d in range(1, S) if num % d == 0)
    fixes.append(f"stride {s} along {axis} (output {num // s + 1})")
    fixes.append(f"an input of size {W - r} or {W + S - r} along {axis}")
    unused = f"the last {r} positions of the padded input along {axis} are" if r > 1 else \
        f"the last position of the padded input along {axis} is"
    fixes.append(f"allow_floor=True to floor like PyTorch (output {num // S + 1}; {unused} then never used)")
    return (f"the output size {_formula(W, F, S, P, D)} = {num}/{S} + 1 = {num / S + 1:g} is not a whole "
            f"number, so the windows do not tile the input. Fix: " + "; or ".join(fixes) + ".")


def conv_output_size(W: int, F: int, S: int = 1, P: int = 0, D: int = 1, *, allow_floor: bool = False) -> int:
    """Output size of a convolution or pooling window along one axis: (W + 2P − D·(F−1) − 1)/S + 1.

    W: input size, F: kernel (filter) size, S: stride, P: zero padding on each side, D: dilation.
    With D = 1 this is the lectures' (W − F + 2P)/S + 1 (CS231n): a 32×32×3 input with 5×5 filters,
    stride 1 and no padding gives ``conv_output_size(32, 5) == 28``.
    Raises ValueError when the result is not a whole number ≥ 1 (the message shows the formula with
    the numbers and the fixes), unless ``allow_floor=True``, which floors like PyTorch (an output
    below 1 is still refused).
    """
    who = "conv_output_size"
    W, F = integer("W (input size)", W, 1, who), integer("F (kernel size)", F, 1, who)
    S, P = integer("S (stride)", S, 1, who), integer("P (padding)", P, 0, who)
    D = integer("D (dilation)", D, 1, who)
    num = W + 2 * P - D * (F - 1) - 1
    if num < 0 or (num % S and not allow_floor):
        raise ValueError(f"{who}(W={W}, F={F}, S={S}, P={P}, D={D}): {_misfit(W, F, S, P, D, 'the axis', None)}")
    return num // S + 1


def conv_output_shape(input_shape, kernel_size, stride=1, padding=0, dilation=1, *,
                      allow_floor: bool = False) -> tuple:
    """Spatial output shape for spatial ``input_shape`` ((H, W) or (L,)); each argument an int or a tuple."""
    shape = tuple(input_shape)
    nd = len(shape)
    who = "conv_output_shape"
    k, s = _tuple(kernel_size, nd, "kernel_size", who, 1), _tuple(stride, nd, "stride", who, 1)
    p, d = _tuple(padding, nd, "padding", who, 0), _tuple(dilation, nd, "dilation", who, 1)
    return tuple(conv_output_size(*args, allow_floor=allow_floor) for args in zip(shape, k, s, p, d))


def _output_sizes(who: str, x_shape: tuple, what: str, kernel, stride, padding, dilation,
                  allow_floor: bool, pooling: bool) -> tuple:
    """Per-axis output sizes, or a ValueError naming the input shape, the layer's parameters and the formula."""
    axes = ("L",) if len(kernel) == 1 else ("H", "W")
    out = []
    for axis, W, F, S, P, D in zip(axes, x_shape[2:], kernel, stride, padding, dilation):
        num = W + 2 * P - D * (F - 1) - 1
        if num >= 0 and (num % S == 0 or allow_floor):
            out.append(num // S + 1)
            continue
        layout = "(N, C, L)" if len(axes) == 1 else "(N, C, H, W)"
        raise ValueError(f"{who}: input of shape {tuple(x_shape)} {layout} does not fit {what} along {axis}: "
                         + _misfit(W, F, S, P, D, axis, F // 2 if pooling else None))
    return tuple(out)


def _check_input(who: str, x: np.ndarray, nd: int) -> None:
    layout = "(N, C, L)" if nd == 1 else "(N, C, H, W)"
    if x.ndim != nd + 2:
        hint = "; for a single example add the batch axis: x[None]" if x.ndim == nd + 1 else ""
        raise ValueError(f"{who} expects input of shape {layout}, got shape {x.shape}{hint}")
    if x.dtype.kind != "f":
        raise TypeError(f"{who} expects floating-point input, got dtype {x.dtype}; cast it with .astype(np.float32)")
    if 0 in x.shape:
        raise ValueError(f"{who}: input of shape {x.shape} is empty")


# -- convolution ------------------------------------------------------------------------------
class Conv(Function):
    """Convolution (cross-correlation) of (N, C, H, W) or (N, C, L) input with (O, C, kH, kW) or (O, C, k) weights.

    Forward: cols = im2col(x) (C·kH·kW, N·P), Y = W·cols (O, N·P), y = Y laid out as (N, O, Ho, Wo) + b.
    Backward: G = g laid out as (O, N·P); dW = G·colsᵀ, db = Σ G over N·P, dx = col2im(Wᵀ·G).
    The input is converted to the weights' dtype (the model's dtype decides; float32 stays float32).
    ``relu=True`` returns relu(conv) as one node: ReLU is applied in the layout pass after the product
    and its derivative in the layout pass before the backward products (``Sequential`` uses it for a
    convolution followed by a ``ReLU``; the result equals the two nodes').
    """

    uses_sinks = True

    def forward(self, x, w, b=None, *, stride, padding, dilation, out_size, relu=False):
        k = _kernels()
        self.relu = relu
        dtype = w.dtype
        self.x_shape, self.w_shape, self.has_b = x.shape, w.shape, b is not None
        if x.ndim == 3:  # 1-D: the 2-D kernels with height 1
            x = x.reshape(x.shape[0], x.shape[1], 1, x.shape[2])
            w = w.reshape(w.shape[0], w.shape[1], 1, w.shape[2])
            stride, padding, dilation, out_size = (1, *stride), (0, *padding), (1, *dilation), (1, *out_size)
        x = np.ascontiguousarray(x, dtype=dtype)
        n, c, h, wd = x.shape
        o, _, kh, kw = w.shape
        ho, wo = out_size
        self.geometry = (h, wd, kh, kw, *stride, *padding, *dilation, ho, wo)
        cols = _scratch.empty((c * kh * kw, n * ho * wo), dtype)
        k.im2col(x.reshape(n, c, h * wd), cols, *self.geometry)
        w2 = np.ascontiguousarray(w.reshape(o, c * kh * kw))
        y2 = np.matmul(w2, cols, out=_scratch.empty((o, cols.shape[1]), dtype))
        out = _scratch.empty((n, o, ho * wo), dtype)
        bias = None if b is None else np.ascontiguousarray(b, dtype=dtype)
        k.rows_to_batch(y2, bias, out, relu)
        self.cols, self.w2, self.x4_shape = cols, w2, x.shape
        if relu:
            self.out = out
        return out.reshape((n, o, ho, wo) if len(self.x_shape) == 4 else (n, o, wo))

    def backward(self, g):
        k = _kernels()
        nx, nw, *nb = self.needs_input_grad
        sinks = getattr(self, "sinks", None) or (None, None, None)
        cols, w2 = self.cols, self.w2
        dtype = w2.dtype
        o, kk = w2.shape
        n = self.x4_shape[0]
        g3 = np.ascontiguousarray(g, dtype=dtype).reshape(n, o, -1)
        gt = _scratch.empty((o, cols.shape[1]), dtype)
        k.batch_to_rows(g3, gt, self.out.reshape(-1) if self.relu else None)
        gx = gw = gb = None
        if nw:
            sink = sinks[1]
            if sink is not None and sink.dtype == dtype and sink.flags.c_contiguous:
                np.matmul(gt, cols.T, out=sink.reshape(o, kk))
                gw = sink
            else:
                gw = (gt @ cols.T).reshape(self.w_shape)
        if self.has_b and nb[0]:
            sink = sinks[2] if len(sinks) > 2 else None
            if sink is not None and sink.dtype == dtype:
                gb = np.sum(gt, axis=1, out=sink)
            else:
                gb = gt.sum(axis=1)
        if nx:
            dcols = np.matmul(w2.T, gt, out=_scratch.empty(cols.shape, dtype))
            n, c, h, wd = self.x4_shape
            dx = _scratch.empty((n, c, h * wd), dtype)
            k.col2im(dcols, dx, *self.geometry)
            gx = dx.reshape(self.x_shape)
        return (gx, gw, gb) if self.has_b else (gx, gw)


def _conv(x, weight, bias, nd: int, stride, padding, dilation, allow_floor: bool, who: str, relu: bool = False):
    xd, wd = _data(x), _data(weight)
    _check_input(who, xd, nd)
    kernel_names = "(out_channels, in_channels, k)" if nd == 1 else "(out_channels, in_channels, kH, kW)"
    if wd.ndim != nd + 2:
        raise ValueError(f"{who}: weight must have shape {kernel_names}, got shape {wd.shape}")
    if xd.shape[1] != wd.shape[1]:
        raise ValueError(f"{who}: input of shape {xd.shape} has C={xd.shape[1]} channels but the weight of shape "
                         f"{wd.shape} expects in_channels={wd.shape[1]}; fix in_channels or the input")
    if bias is not None and _data(bias).shape != (wd.shape[0],):
        raise ValueError(f"{who}: bias must have shape (out_channels,) = ({wd.shape[0]},), "
                         f"got {_data(bias).shape}")
    stride = _tuple(stride, nd, "stride", who, 1)
    padding = _tuple(padding, nd, "padding", who, 0)
    dilation = _tuple(dilation, nd, "dilation", who, 1)
    what = (f"the weight of shape {wd.shape} {kernel_names} with stride={_show(stride)}, "
            f"padding={_show(padding)}, dilation={_show(dilation)}")
    out_size = _output_sizes(who, xd.shape, what, wd.shape[2:], stride, padding, dilation, allow_floor, False)
    inputs = (x, weight) if bias is None else (x, weight, bias)
    return Tensor.apply(Conv(), *inputs, stride=stride, padding=padding, dilation=dilation, out_size=out_size,
                        relu=relu)


def _show(t: tuple):
    """A per-axis tuple as the user would write it: 3 for (3, 3), (3, 5) as is."""
    return t[0] if len(set(t)) == 1 else t


def conv2d(x, weight, bias=None, *, stride=1, padding=0, dilation=1, allow_floor: bool = False):
    """2-D convolution: x (N, C, H, W), weight (O, C, kH, kW), bias (O,) → (N, O, Ho, Wo); see ``Conv``.

    ``stride``, ``padding`` (zeros on each side) and ``dilation`` are ints or (height, width) pairs.
    Ho = (H + 2P − D·(kH−1) − 1)/S + 1 must be whole (``allow_floor=True`` floors like PyTorch).
    """
    return _conv(x, weight, bias, 2, stride, padding, dilation, allow_floor, "conv2d")


def conv1d(x, weight, bias=None, *, stride=1, padding=0, dilation=1, allow_floor: bool = False):
    """1-D convolution: x (N, C, L), weight (O, C, k), bias (O,) → (N, O, Lo); see ``Conv`` and ``conv2d``."""
    return _conv(x, weight, bias, 1, stride, padding, dilation, allow_floor, "conv1d")
