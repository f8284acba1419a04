"""Numba kernels for an affine layer followed by ReLU: bias + ReLU in one pass, and its backward in one pass.

NumPy needs two passes and a temporary for each direction (y += b, then max(y, 0); then g·(out > 0)
and Σₙ for the bias), and a 128×512 float32 pass costs about as much as its Python call; one pass
each way over the freshly computed product is what ``linear_relu`` uses. Serial on purpose (see
``_conv_kernels``: parallel Numba workers and OpenBLAS's threads spin against each other).

This module imports numba (slow to import), so ``dense`` loads it lazily on first use.
"""
from numba import njit

# error_model="numpy": Python's zero-division checks keep LLVM from vectorizing the loops.


# A bias that is absent or not wanted is None: Numba compiles a version without its branch.


@njit(cache=True, error_model="numpy")
def bias_relu(y, b):
    """In place: y[n, j] ← max(y[n, j] + b[j], 0), NaN kept (as np.maximum and torch.relu keep it)."""
    rows, cols = y.shape
    for n in range(rows):
        for j in range(cols):
            v = y[n, j] + b[j] if b is not None else y[n, j]
            y[n, j] = 0 if v <= 0 else v


@njit(cache=True, error_model="numpy")
def relu_backward_bias(g, out, gz, gb):
    """gz[n, j] = g[n, j] if out[n, j] > 0 else 0 and, if gb is given, gb[j] = Σₙ gz[n, j] (summed in row
    order, as np.add.reduce over axis 0 does)."""
    rows, cols = g.shape
    if gb is not None:
        for j in range(cols):
            gb[j] = 0
    for n in range(rows):
        for j in range(cols):
            v = g[n, j] if out[n, j] > 0 else 0
            gz[n, j] = v
            if gb is not None:
                gb[j] += v


# The same for a product laid out column by column (``functional._product``'s wide results): the kernels
# get the C-contiguous transpose, one row per feature, so the bias is one number per row.


@njit(cache=True, error_model="numpy")
def bias_relu_rows(yt, b):
    """In place on yt = yᵀ (features × samples): yt[j, n] ← max(yt[j, n] + b[j], 0), NaN kept."""
    rows, cols = yt.shape
    for j in range(rows):
        if b is not None:
            bj = b[j]
            for n in range(cols):
                v = yt[j, n] + bj
                yt[j, n] = 0 if v <= 0 else v
        else:
            for n in range(cols):
                v = yt[j, n]
                yt[j, n] = 0 if v <= 0 else v


@njit(cache=True, error_model="numpy")
def relu_backward_rows(gt, outt, gzt):
    """gzt[j, n] = gt[j, n] if outt[j, n] > 0 else 0, on the transposes (features × samples)."""
    rows, cols = gt.shape
    for j in range(rows):
        for n in range(cols):
            gzt[j, n] = gt[j, n] if outt[j, n] > 0 else 0
