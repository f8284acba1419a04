"""Validate (X, y) once, at the door: shapes, finiteness, label range; cast to float32 (or float64) / int64 once.

Every error names the bad value and how to fix it (../shared/QUALITY.md, "Bad input"). The caller's
arrays are never written. A memory-mapped X (``np.load(path, mmap_mode="r")``) is checked in chunks
of ``CHUNK_BYTES`` and returned unchanged — never read whole into memory or cast; its batches are
cast (to float32 by default) when ``take`` gathers them.
"""
from __future__ import annotations

import math

import numpy as np

from ..common.validate import float_dtype, integer
from .batching import RowView, _gather, is_mapped

__all__ = ["check_Xy", "num_classes"]

CHUNK_BYTES = 64 << 20  # rows of a memory map are checked this many bytes at a time
# the finiteness scan's block: small enough that its second reduction hits the CPU cache (NOTES.md)
SCAN_BYTES = 1 << 20
_F32_MAX = float(np.finfo(np.float32).max)
_TASKS = ("classification", "regression")


def check_Xy(X, y=None, *, task: str = "classification", num_classes: int | None = None, name: str = "X",
             dtype=np.float32):
    """Validate a data set once and return ``(X, y)`` ready for training.

    X: (N, features...) with N ≥ 1 and at least one feature, finite, real numbers. Returned as
       ``dtype`` (float32 by default; float64 for a float64 model) — the same object if it already is
       (no copy). A memory-mapped X (or a ``RowView`` of one) is validated chunk by chunk and returned
       unchanged; ``take(X, idx, dtype)`` casts its batches.
    y: optional. ``task="classification"``: (N,) integer class labels 0..C-1 (integer-valued
       floats are accepted), returned as int64; ``num_classes`` (C), if given, bounds them.
       ``task="regression"``: (N,) or (N, k) finite targets, returned as ``dtype``.
    name: what to call X in messages (``name="X_val"`` calls y ``y_val``).
    dtype: float32 or float64. With float32, values beyond float32's range are refused.

    Raises ValueError (bad values or shapes) or TypeError (non-numeric data), naming the bad
    value and the fix. Never writes to X or y.
    """
    if task not in _TASKS:
        raise ValueError(f"task must be 'classification' or 'regression', got {task!r}")
    dtype = float_dtype("dtype", dtype)
    if num_classes is not None:
        if task != "classification":
            raise ValueError(f"num_classes={num_classes!r} only applies to task='classification'; drop it")
        num_classes = integer("num_classes", num_classes, 1)
    yname = "y" + name[1:] if name.startswith("X") else "y"

    X = _check_X(X, name, dtype)
    if y is None:
        return X, None
    y = _check_y(y, len(X), task, num_classes, yname, name, dtype)
    return X, y


def num_classes(y) -> int:
    """The number of classes implied by integer labels y: ``max(y) + 1``."""
    y = np.asarray(y)
    if y.size == 0:
        raise ValueError("num_classes(y) needs at least one label, got an empty y")
    if y.dtype.kind not in "biuf":
        raise TypeError(f"labels must be integers, got dtype {y.dtype}; "
                        "encode them with np.unique(y, return_inverse=True)[1]")
    top = y.max()
    if not float(top).is_integer() or y.min() < 0:
        raise ValueError(f"labels must be integers ≥ 0 to count classes, got max {top} and min {y.min()}; "
                         "validate them with check_Xy first")
    return int(top) + 1


# --------------------------------------------------------------------------------------------- X


def _check_X(X, name: str, dtype: np.dtype):
    mapped = is_mapped(X)
    if not mapped and not isinstance(X, np.ndarray):
        X = np.asarray(X)
    _check_kind(X.dtype, name, what="features")
    if X.ndim < 2:
        shape = "a scalar" if X.ndim == 0 else f"a 1-D array of shape {X.shape}"
        raise ValueError(f"{name} must have at least 2 dimensions (N samples, features...), got {shape}; "
                         f"if each entry is one sample's single feature use {name}.reshape(-1, 1), "
                         f"if it is one sample use {name}.reshape(1, -1)")
    if X.shape[0] == 0:
        raise ValueError(f"{name} has 0 samples (shape {X.shape}); training needs at least one sample")
    if math.prod(X.shape[1:]) == 0:
        raise ValueError(f"{name} has 0 features (shape {X.shape}); each sample needs at least one feature")
    _check_finite(X, name, to_float32=dtype == np.float32)
    if mapped:
        return X  # cast per batch by take(); never read whole
    return np.asarray(X, dtype=dtype)  # no copy if already of dtype


def _check_kind(dtype: np.dtype, name: str, *, what: str) -> None:
    if dtype.kind in "biuf":
        return
    if dtype.kind == "c":
        raise TypeError(f"{name} has complex dtype {dtype}; descend trains on real numbers — "
                        f"split it, e.g. np.concatenate([{name}.real, {name}.imag], axis=1)")
    raise TypeError(f"{name} must hold numbers, got dtype {dtype}; convert the {what} to numbers first, "
                    f"e.g. np.asarray({name}, dtype=np.float32)")


def _row_chunks(A, chunk_bytes: int = CHUNK_BYTES):
    """Yield (first_row, rows) blocks of about ``chunk_bytes`` each; only one block is in memory at a time."""
    n = len(A)
    row_bytes = max(1, A.dtype.itemsize * math.prod(A.shape[1:]))
    step = max(1, chunk_bytes // row_bytes)
    for start in range(0, n, step):
        stop = min(n, start + step)
        if isinstance(A, RowView):
            yield start, _gather(A, slice(start, stop), dtype=None)
        else:
            yield start, A[start:stop]


def _check_finite(A, name: str, *, to_float32: bool) -> None:
    """Raise if A holds NaN/inf, or (to_float32) values a float32 cannot hold. Allocates one chunk at most."""
    if A.dtype.kind != "f":
        return  # integers and bools are always finite (and within float32 range)
    wide = to_float32 and A.dtype.itemsize > 4
    # min and max propagate NaN and reveal ±inf, and reduce without a temporary the size of the data.
    for _, chunk in _row_chunks(A, SCAN_BYTES):
        lo, hi = float(chunk.min()), float(chunk.max())
        if not (math.isfinite(lo) and math.isfinite(hi)) or (wide and max(-lo, hi) > _F32_MAX):
            break
    else:
        return
    count, first, value = 0, None, None
    for start, chunk in _row_chunks(A):
        chunk = np.asarray(chunk)
        bad = ~np.isfinite(chunk)
        if wide:
            with np.errstate(invalid="ignore"):
                bad |= np.abs(chunk) > _F32_MAX
        k = int(np.count_nonzero(bad))
        if k and first is None:
            pos = np.unravel_index(int(np.flatnonzero(bad)[0]), chunk.shape)
            value = float(chunk[pos])
            first = (start + int(pos[0]),) + tuple(int(p) for p in pos[1:])
        count += k
    where = f"{name}[{', '.join(map(str, first))}] = {value!r}"
    if math.isfinite(value):
        raise ValueError(f"{name} has {count} value(s) too large for float32 (|x| > {_F32_MAX:.3g}), "
                         f"first {where}; rescale {name} (e.g. standardize it) before training")
    fix = (f"drop those samples, e.g. keep = np.isfinite({name}).reshape(len({name}), -1).all(axis=1), "
           "then index both X and y with keep, or impute the missing values")
    raise ValueError(f"{name} has {count} NaN/inf value(s), first {where}; {fix}")


# --------------------------------------------------------------------------------------------- y


def _check_y(y, n: int, task: str, num_classes: int | None, yname: str, xname: str, dtype=np.float32) -> np.ndarray:
    if isinstance(y, RowView):
        y = np.asarray(y)
    y = np.array(y) if is_mapped(y) else np.asarray(y)  # labels are small: hold them in memory
    _check_kind(y.dtype, yname, what="labels" if task == "classification" else "targets")
    if y.ndim == 0:
        raise ValueError(f"{yname} must be an array of {n} {'labels' if task == 'classification' else 'targets'}, "
                         f"got a scalar {y!r}")
    if len(y) != n:
        raise ValueError(f"{xname} has {n} samples but {yname} has {len(y)}; they must match, one "
                         f"{'label' if task == 'classification' else 'target'} per sample")
    if task == "regression":
        if y.ndim > 2:
            raise ValueError(f"regression targets {yname} must have shape (N,) or (N, k), got {y.shape}; "
                             f"use {yname}.reshape(len({yname}), -1)")
        _check_finite(y, yname, to_float32=dtype == np.float32)
        return np.asarray(y, dtype=dtype)
    if y.ndim != 1:
        if y.ndim == 2 and y.shape[1] == 1:
            fix = f"use {yname}.ravel()"
        elif y.ndim == 2:
            fix = (f"if {yname} is one-hot, use {yname}.argmax(axis=1); for real-valued targets use a regression loss "
                   "(fit(..., loss=F.mse); check_Xy(..., task='regression'))")
        else:
            fix = f"use a 1-D array of class indices"
        raise ValueError(f"class labels {yname} must be 1-D with shape ({n},), got shape {y.shape}; {fix}")
    if y.dtype.kind == "f":
        _check_finite(y, yname, to_float32=False)
        frac = np.flatnonzero(y != np.floor(y))
        if len(frac):
            i = int(frac[0])
            raise ValueError(f"class labels {yname} must be integers, but {len(frac)} are not, first "
                             f"{yname}[{i}] = {float(y[i])!r}; for real-valued targets use a regression loss (fit(..., "
                             f"loss=F.mse); check_Xy(..., task='regression')), else round them, e.g. "
                             f"np.rint({yname}).astype(np.int64)")
        if len(y) and float(y.max()) > np.iinfo(np.int64).max:
            raise ValueError(f"class label {float(y.max())} in {yname} does not fit in int64; "
                             f"map labels to 0..C-1 with np.unique({yname}, return_inverse=True)[1]")
    elif y.dtype.kind == "u" and y.dtype.itemsize == 8 and int(y.max()) > np.iinfo(np.int64).max:
        raise ValueError(f"class label {int(y.max())} in {yname} does not fit in int64; "
                         f"map labels to 0..C-1 with np.unique({yname}, return_inverse=True)[1]")
    y = np.asarray(y, dtype=np.int64)  # no copy if already int64
    neg = np.flatnonzero(y < 0)
    if len(neg):
        i = int(neg[0])
        raise ValueError(f"class labels {yname} must be ≥ 0 (indices 0..C-1), but {len(neg)} are negative, "
                         f"first {yname}[{i}] = {int(y[i])}; map labels to 0..C-1 with "
                         f"np.unique({yname}, return_inverse=True)[1]")
    if num_classes is not None:
        over = np.flatnonzero(y >= num_classes)
        if len(over):
            i = int(over[0])
            raise ValueError(f"class labels {yname} must be < num_classes={num_classes}, but {len(over)} are not, "
                             f"first {yname}[{i}] = {int(y[i])}; pass num_classes={int(y.max()) + 1} "
                             f"or map labels to 0..C-1 with np.unique({yname}, return_inverse=True)[1]")
    return y
