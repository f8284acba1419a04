"""Shared helpers for the benchmarks: timing, and the machine's limits measured in the same run."""
from __future__ import annotations

import os
import statistics
import time

import numpy as np


def timeit(fn, *, repeat: int = 7, number: int = 5, warmup: int = 2) -> float:
    """Median seconds per call of ``fn`` over ``repeat`` groups of ``number`` calls, after warm-up."""
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(repeat):
        t = time.perf_counter()
        for _ in range(number):
            fn()
        times.append((time.perf_counter() - t) / number)
    return statistics.median(times)


def matmul_peak_gflops(n: int = 2048) -> float:
    """float32 matrix-product speed of this machine's BLAS on a large square product (GFLOP/s)."""
    rng = np.random.default_rng(0)
    a = rng.standard_normal((n, n), dtype=np.float32)
    b = rng.standard_normal((n, n), dtype=np.float32)
    out = np.empty_like(a)
    t = timeit(lambda: np.matmul(a, b, out=out), repeat=5, number=2, warmup=1)
    return 2 * n ** 3 / t / 1e9


def copy_bandwidth_gbs(n: int = 50_000_000) -> float:
    """Memory bandwidth of a large float32 copy (GB/s, counting bytes read + written)."""
    a = np.ones(n, dtype=np.float32)
    b = np.empty_like(a)
    t = timeit(lambda: np.copyto(b, a), repeat=5, number=2, warmup=1)
    return 2 * a.nbytes / t / 1e9


def threads() -> int:
    return int(os.environ.get("OMP_NUM_THREADS", os.cpu_count() or 1))


def peer_torch(num_threads: int | None = None):
    """PyTorch set to the same thread count as descend, or None when it is not installed (descend's
    numbers are still reported)."""
    try:
        import torch
    except ImportError:
        return None
    torch.set_num_threads(num_threads or threads())
    return torch
