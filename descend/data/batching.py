"""Mini-batching: batch size, one epoch's order, its batch slices, and gathering rows as batches of the model's dtype.

An epoch is ``order = epoch_order(n, rng=rng)`` (a permutation, saved in checkpoints so a run can
resume mid-epoch) cut by ``batch_slices(n, batch_size)``; batch ``k`` is
``take(X, order[slices[k]])`` and ``y[order[slices[k]]]``. ``batch_size=None`` is batch gradient
descent (one batch, the whole set), 1 is stochastic gradient descent, anything else mini-batch
(CS231n, "Optimization"; Goodfellow et al., *Deep Learning*, §8.1.3).

Memory-mapped inputs (``np.load(path, mmap_mode="r")``) are never read whole: ``take`` reads only
the rows of one batch, in file order, and casts just those (float32 by default) — the lectures' m = 5,000,000
case trains in the memory of a batch.
"""
from __future__ import annotations

import math
import mmap
import warnings

import numpy as np

from ..common import scratch
from ..common.validate import float_dtype, integer

__all__ = ["RowView", "take", "resolve_batch_size", "epoch_order", "batch_slices"]


def is_mapped(X) -> bool:
    """True if ``X`` reads from a file mapping (an ``np.memmap``, a view of one, or a ``RowView``)."""
    if isinstance(X, RowView):
        return True
    a = X
    while a is not None:
        if isinstance(a, (np.memmap, mmap.mmap)):
            return True
        a = getattr(a, "base", None)
    return False


class RowView:
    """The rows ``base[index]`` of a (memory-mapped) array, gathered only when asked.

    ``train_val_split`` returns one for the training part of a memory-mapped ``X``, so that the
    file is not loaded whole. It behaves like the array it stands for where the training loop
    needs it: ``len``, ``shape``, ``dtype``, ``ndim``, ``view[i]`` / ``view[i:j]`` / ``view[idx]``
    (which read those rows into memory), and ``take(view, idx)``. ``np.asarray(view)`` reads
    every row — only do that when they fit in memory.
    """

    __slots__ = ("base", "index")

    def __init__(self, base, index):
        index = np.asarray(index)
        if index.size == 0:
            index = index.astype(np.int64)
        if index.ndim != 1 or index.dtype.kind not in "iu":
            raise TypeError(f"RowView needs a 1-D integer row index, got dtype {index.dtype} and shape {index.shape}")
        if isinstance(base, RowView):  # a view of a view indexes the file directly
            index, base = base.index[index], base.base
        index = np.array(index, dtype=np.int64)  # own copy: the caller may reuse theirs
        if len(index) and (index.min() < -len(base) or index.max() >= len(base)):
            raise IndexError(f"RowView index out of range for {len(base)} rows")
        index[index < 0] += len(base)
        index.setflags(write=False)
        self.base = base
        self.index = index

    @property
    def shape(self) -> tuple:
        return (len(self.index),) + tuple(self.base.shape[1:])

    @property
    def dtype(self) -> np.dtype:
        return self.base.dtype

    @property
    def ndim(self) -> int:
        return self.base.ndim

    @property
    def size(self) -> int:
        return int(np.prod(self.shape))

    def __len__(self) -> int:
        return len(self.index)

    def __getitem__(self, key):
        if isinstance(key, tuple):  # rows first, then the rest of the key on the gathered rows
            rows = self[key[0]]
            return rows[key[1:]] if np.ndim(key[0]) == 0 and not isinstance(key[0], slice) \
                else rows[(slice(None),) + key[1:]]
        if isinstance(key, (int, np.integer)):
            return np.array(self.base[self.index[key]])
        if isinstance(key, slice):
            return _gather(self.base, self.index[key], dtype=None)
        return _gather(self.base, self.index[_as_index(key, len(self))], dtype=None)

    def __array__(self, dtype=None, copy=None):
        return _gather(self.base, self.index, dtype=dtype)

    def __repr__(self) -> str:
        return f"RowView({len(self)} of {len(self.base)} rows, shape={self.shape}, dtype={self.dtype})"


def _as_index(idx, n: int) -> np.ndarray:
    idx = np.asarray(idx)
    if idx.size == 0 and idx.ndim == 1:
        return idx.astype(np.int64)  # np.asarray([]) is float64
    if idx.dtype == bool:
        if idx.shape != (n,):
            raise IndexError(f"a boolean row mask must have shape ({n},), got {idx.shape}")
        return np.flatnonzero(idx)
    if idx.dtype.kind not in "iu":
        raise TypeError(f"row indices must be integers (or a slice), got dtype {idx.dtype}; "
                        "use np.asarray(idx, dtype=np.int64)")
    if idx.ndim != 1:
        raise IndexError(f"row indices must be 1-D, got shape {idx.shape}; use idx.ravel()")
    return idx


def _gather(X, idx, *, dtype, recycle: bool = False) -> np.ndarray:
    """Rows ``X[idx]`` as a new C-contiguous array of ``dtype`` (None: X's own); X is never written."""
    if isinstance(X, RowView):
        idx, X = X.index[idx], X.base
    dtype = X.dtype if dtype is None else np.dtype(dtype)
    if isinstance(idx, slice):
        return np.array(X[idx], dtype=dtype, order="C")  # one contiguous read, then one cast
    if not is_mapped(X):
        shape = (len(idx),) + X.shape[1:]
        if recycle and X.dtype == dtype and math.prod(shape) * dtype.itemsize >= scratch.MIN_BYTES \
                and -len(X) <= idx.min() and idx.max() < len(X):
            # a large batch into a recycled array (fresh memory costs a page fault per 4 KiB); with the
            # bounds checked, "wrap" is "raise" without the temporary NumPy makes for out= under "raise"
            return X.take(idx, axis=0, out=scratch.empty(shape, dtype), mode="wrap")
        rows = X.take(idx, axis=0)
        return rows if rows.dtype == dtype else rows.astype(dtype)
    # A memory map: read the rows in file order (one forward sweep over the pages), then put them
    # back in the order asked for. Only the batch's rows are ever read or allocated.
    out = np.empty((len(idx),) + tuple(X.shape[1:]), dtype=dtype)
    if len(idx) > 1 and not np.all(idx[1:] >= idx[:-1]):
        order = np.argsort(idx, kind="stable")
        out[order] = X[idx[order]]
    else:
        out[...] = X[idx]
    return out


_FLOATS = (np.dtype(np.float32), np.dtype(np.float64))


def take(X, idx, dtype=np.float32, *, recycle: bool = False) -> np.ndarray:
    """Gather the rows ``X[idx]`` as a C-contiguous batch of ``dtype`` (float32 by default, float64 for a
    float64 model) and shape (len(idx), *X.shape[1:]).

    ``idx`` is a 1-D integer array (rows come out in its order), a boolean mask, or a slice.
    A memory-mapped ``X`` is read only at those rows (sorted for locality, then put back in
    ``idx`` order) and only those rows are cast; a ``RowView`` reads its base's rows. For an in-memory
    ``X`` already of ``dtype`` and C-contiguous, a slice returns a read-only view (no copy — batch
    gradient descent takes the whole set every step); everything else returns a new array. Never
    writes to ``X``. ``recycle=True`` (the training loop's batches) gathers a large batch into an array of
    ``descend.common.scratch``, handed out again once nothing refers to it: no fresh memory per batch.
    """
    if (type(X) is np.ndarray and X.base is None and X.dtype == dtype and X.dtype in _FLOATS
            and type(idx) is np.ndarray and idx.ndim == 1 and idx.dtype.kind in "iu"
            and (not recycle or len(idx) * (X.nbytes // max(len(X), 1)) < scratch.MIN_BYTES)):
        return X.take(idx, axis=0)  # the training loop's common case, recognized in a few operations
    dtype = float_dtype("dtype", dtype)
    if isinstance(idx, slice):
        if (not is_mapped(X) and isinstance(X, np.ndarray) and X.dtype == dtype
                and X.flags.c_contiguous and idx.step in (None, 1)):
            view = X[idx]
            view.flags.writeable = False  # the caller's array must not be written through a batch
            return view
        return _gather(X, idx, dtype=dtype)
    if not isinstance(X, (np.ndarray, RowView)):
        X = np.asarray(X)
    return _gather(X, _as_index(idx, len(X)), dtype=dtype, recycle=recycle)


def resolve_batch_size(n: int, batch_size) -> int:
    """The batch size to use for ``n`` samples.

    ``None`` → n (batch gradient descent: the whole set each step); 1 → stochastic gradient descent;
    otherwise mini-batch. ``batch_size`` ≤ 0 or not an integer raises ``ValueError``; larger than
    ``n`` is clipped to ``n`` with a warning.
    """
    n = integer("n (the number of samples)", n, 1)
    if batch_size is None:
        return n
    if isinstance(batch_size, bool) or not isinstance(batch_size, (int, np.integer)):
        raise ValueError(f"batch_size must be a positive integer or None (the whole set), got {batch_size!r}; "
                         f"e.g. batch_size=32")
    batch_size = int(batch_size)
    if batch_size <= 0:
        raise ValueError(f"batch_size must be ≥ 1 (or None for the whole set), got {batch_size}")
    if batch_size > n:
        warnings.warn(f"batch_size={batch_size} is larger than the {n} samples; using batch_size={n} "
                      "(batch gradient descent). Pass batch_size=None to ask for that explicitly.",
                      stacklevel=2)
        return n
    return batch_size


def epoch_order(n: int, *, rng: np.random.Generator, shuffle: bool = True) -> np.ndarray:
    """The order of the ``n`` samples for one epoch: ``rng.permutation(n)``, or ``np.arange(n)`` if not shuffle.

    Drawn fresh every epoch from the run's ``rng`` (the lectures reshuffle every epoch so that
    batches differ between epochs). The loop keeps it in checkpoints to resume mid-epoch.
    """
    n = integer("n (the number of samples)", n, 0)
    if not isinstance(rng, np.random.Generator):
        raise TypeError(f"epoch_order needs an explicit rng=np.random.default_rng(seed), got {rng!r}")
    if not shuffle:
        return np.arange(n, dtype=np.int64)
    return rng.permutation(n).astype(np.int64, copy=False)


def batch_slices(n: int, batch_size, *, drop_last: bool = False) -> list[slice]:
    """The slices of an epoch's order that form its batches: [0:b], [b:2b], ….

    Every position 0..n-1 is in exactly one slice. The last, smaller batch is kept unless
    ``drop_last`` (then those n mod b samples sit out this epoch; reshuffling gives them their
    turn in others). ``batch_size=None`` means one batch of all n.
    """
    n = integer("n (the number of samples)", n, 0)
    batch_size = n if batch_size is None else integer("batch_size", batch_size, 1)
    if drop_last and n < batch_size:
        raise ValueError(f"drop_last=True with batch_size={batch_size} > {n} samples would leave no batch at all; "
                         f"use a batch_size ≤ {n} or drop_last=False")
    stop = n - n % batch_size if drop_last else n
    return [slice(i, min(i + batch_size, n)) for i in range(0, stop, batch_size)]
