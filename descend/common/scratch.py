"""Recycled arrays for large temporaries: linear products, convolution, pooling, gathered training batches.

A fresh array of more than 128 KiB is fresh memory from the kernel, and the first touch of each 4 KiB
page is a page fault, a large share of a training step's time. Changing the process's allocator is not
a library's business, so the layers take their big arrays from this pool instead (the measurements:
benchmarks/NOTES.md).

An array the pool handed out is handed out again only once nothing but the pool refers to it — its
reference count says so. The autodiff graph holding it for backward, a caller keeping an output, or
a view of it (which refers to its base) all keep it busy, so a buffer is never shared by two live
uses. Results are the same bits as with fresh arrays: every buffer is written in full before it is
read (``empty`` semantics). The pool holds at most ``MAX_BYTES``, dropping the least recently used.
"""
from __future__ import annotations

import math
import sys

import numpy as np

MIN_BYTES = 1 << 17  # glibc serves smaller arrays from its heap (its mmap threshold starts at 128 KiB)
MAX_BYTES = 256 << 20  # what the pool may keep alive between uses (the 28×28 CNN at batch 64 needs ~60 MB)

_pool: dict[tuple, list] = {}  # (shape, dtype) -> buffers, in insertion order; the dict in LRU order
_held = [0]


def _free_count() -> int:
    """The reference count of a pooled buffer that nobody else holds, as seen from ``empty``'s loop."""
    bufs = [np.empty(1)]
    for a in bufs:
        return sys.getrefcount(a)


_FREE = _free_count()


def empty(shape, dtype) -> np.ndarray:
    """Like np.empty(shape, dtype) (C order), from the pool when the array is large."""
    dtype = np.dtype(dtype)
    nbytes = math.prod(shape) * dtype.itemsize
    if nbytes < MIN_BYTES or nbytes > MAX_BYTES:
        return np.empty(shape, dtype)
    shape = tuple(int(s) for s in shape)  # the pool's key: NumPy integers hash as ints, but keep it plain
    key = (shape, dtype)
    bufs = _pool.pop(key, None)
    if bufs is None:
        bufs = []
    _pool[key] = bufs  # most recently used last
    for a in bufs:
        if sys.getrefcount(a) == _FREE:
            a.flags.writeable = True  # its last holder may have locked it
            return a
    a = np.empty(shape, dtype)
    bufs.append(a)
    _held[0] += nbytes
    while _held[0] > MAX_BYTES and len(_pool) > 1:
        old_key = next(iter(_pool))
        if old_key == key:
            break
        for b in _pool.pop(old_key):
            _held[0] -= b.nbytes
    return a


def clear() -> None:
    """Forget every pooled buffer (arrays in use stay valid: they are only no longer recycled)."""
    _pool.clear()
    _held[0] = 0
