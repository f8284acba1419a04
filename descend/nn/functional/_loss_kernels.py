"""Numba kernels for softmax cross-entropy: the loss, the softmax and the label check in one pass over the
logits, and the gradient in one pass over the softmax.

NumPy needs about ten calls for the forward (max, shift, exp, sum, log, gather, sum, ...) and three
for the backward, each costing more than its arithmetic on a (128, 10) batch. Serial (see
``_act_kernels``).

This module imports numba (slow to import), so ``losses`` loads it lazily on first use.
"""
import math

from numba import njit

# error_model="numpy": Python's zero-division checks keep LLVM from vectorizing the loops.


@njit(cache=True, error_model="numpy")
def softmax_xent(z, y, p, losses):
    """For each row i of the logits z (N, C) and label y[i]: losses[i] = log Σⱼ e^{z_ij} − z_{i,yᵢ} and
    p[i] = softmax(z_i) = e/Σe with e = exp(z_i − max z_i), so logits of ±1000 are exact. A NaN or +inf in
    the row (or a row of −inf) makes the row's loss and softmax NaN, as the shifted formula does in NumPy.
    Returns (number of labels outside 0..C−1, Σᵢ losses[i] accumulated in float64); with any bad label
    nothing is computed."""
    n, c = z.shape
    bad = 0
    for i in range(n):
        if y[i] < 0 or y[i] >= c:
            bad += 1
    if bad:
        return bad, 0.0
    total = 0.0
    for i in range(n):
        m = z[i, 0]
        for j in range(1, c):
            if z[i, j] > m:
                m = z[i, j]
        for j in range(c):
            p[i, j] = math.exp(z[i, j] - m)
        s = p[i, 0]
        for j in range(1, c):
            s += p[i, j]
        for j in range(c):
            p[i, j] = p[i, j] / s
        li = math.log(s) - (z[i, y[i]] - m)
        losses[i] = li
        total += li
    return 0, total


@njit(cache=True, error_model="numpy")
def xent_grad(p, y, scale):
    """In place: p[i] ← (p[i] − onehot(y[i]))·s, the cross-entropy gradient from the softmax p, with s the
    incoming gradient: scale[i] per row, or scale[0] for every row when ``scale`` has one entry."""
    n, c = p.shape
    for i in range(n):
        s = scale[i] if scale.size > 1 else scale[0]
        for j in range(c):
            p[i, j] = (p[i, j] - 1 if j == y[i] else p[i, j]) * s


@njit(cache=True, error_model="numpy")
def softmax_xent_grad(z, y, p, losses, scale):
    """``softmax_xent`` and then ``xent_grad``, in one call from Python (the execution plan, which knows the
    scale first): the two kernels themselves, so the same bits."""
    bad, total = softmax_xent(z, y, p, losses)
    if not bad:
        xent_grad(p, y, scale)
    return bad, total
