"""Numba kernels for an affine layer followed by ReLU: bias + ReLU in one pass, and its backward in one pass.

NumPy needs two passes and a temporary for each direction (y += b, then max(y, 0); then g·(out > 0)
and Σₙ for the bias), and a 128×512 float32 pass costs about as much as its Python call; one pass
each way over the freshly computed product is what ``linear_relu`` uses. Serial on purpose (see
``_conv_kernels``: parallel Numba workers and OpenBLAS's threads spin against each other).

This module imports numba (about 0.3 s), so ``functional.py`` imports it lazily on first use.
"""
from numba import njit

# error_model="numpy": Python's zero-division checks keep LLVM from vectorizing the loops.


@njit(cache=True, error_model="numpy")
def bias_relu(y, b, has_b):
    """In place: y[n, j] ← max(y[n, j] + b[j], 0), NaN kept (as np.maximum and torch.relu keep it)."""
    rows, cols = y.shape
    for n in range(rows):
        for j in range(cols):
            v = y[n, j] + b[j] if has_b else y[n, j]
            y[n, j] = 0 if v <= 0 else v


@njit(cache=True, error_model="numpy")
def relu_backward_bias(g, out, gz, gb, has_b):
    """gz[n, j] = g[n, j] if out[n, j] > 0 else 0 and, if has_b, gb[j] = Σₙ gz[n, j] (summed in row order,
    as np.add.reduce over axis 0 does)."""
    rows, cols = g.shape
    if has_b:
        for j in range(cols):
            gb[j] = 0
    for n in range(rows):
        for j in range(cols):
            v = g[n, j] if out[n, j] > 0 else 0
            gz[n, j] = v
            if has_b:
                gb[j] += v
