"""Shared helpers for the benchmarks: timing, and the machine's limits measured in the same run."""
from __future__ import annotations

import multiprocessing
import os
import statistics
import time
import warnings
from multiprocessing import shared_memory

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


def matmul_peak_gflops(n: int = 2048, *, best: bool = False) -> float:
    """float32 matrix-product speed of this machine's BLAS on a large square product (GFLOP/s): the median
    of 5 timings of 2 products, or with ``best`` the fastest of 7 single products (the peak)."""
    rng = np.random.default_rng(0)
    a = rng.standard_normal((n, n), dtype=np.float32)
    b = rng.standard_normal((n, n), dtype=np.float32)
    out = np.empty_like(a)
    if best:
        np.matmul(a, b, out=out)
        times = []
        for _ in range(7):
            t = time.perf_counter()
            np.matmul(a, b, out=out)
            times.append(time.perf_counter() - t)
        return 2 * n ** 3 / min(times) / 1e9
    t = timeit(lambda: np.matmul(a, b, out=out), repeat=5, number=2, warmup=1)
    return 2 * n ** 3 / t / 1e9


def copy_bandwidth_gbs(n: int = 50_000_000) -> float:
    """Memory bandwidth of a large float32 copy (GB/s, counting bytes read + written)."""
    a = np.ones(n, dtype=np.float32)
    b = np.empty_like(a)
    t = timeit(lambda: np.copyto(b, a), repeat=5, number=2, warmup=1)
    return 2 * a.nbytes / t / 1e9


def _ping(name: str, side: int, cpu: int, n: int) -> None:
    """One side of ``core_round_trip_ns``: pinned to ``cpu``, hand the shared word back and forth ``n`` times."""
    try:
        os.sched_setaffinity(0, {cpu})
    except OSError:
        raise SystemExit(1) from None  # the caller reports no round trip
    shm = shared_memory.SharedMemory(name=name)
    word = shm.buf.cast("q")  # [0] the ball, [1 + side] that side is ready, [3] go, [4 + side] its nanoseconds
    word[1 + side] = 1
    while word[3] == 0:
        pass
    t = time.perf_counter_ns()
    for _ in range(n):
        if side == 0:
            word[0] = 1
            while word[0] != 0:
                pass
        else:
            while word[0] != 1:
                pass
            word[0] = 0
    word[4 + side] = time.perf_counter_ns() - t
    del word
    shm.close()


def core_round_trip_ns(n: int = 100_000) -> float | None:
    """How long a cache line takes to go from one core to the other and back (ns), measured by two processes
    pinned to the first two CPUs that take turns writing one shared word.

    It tells where the host placed this VM's two vCPUs, which it changes every few minutes. A compiled
    probe on this project's VM measured 70–160 ns, the latency of two cores on one die (CCD), or
    350–650 ns, as across dies; this probe, whose Python loop adds its own time, ~270–360 and ~550–650 ns.
    In the slow placement every product that OpenBLAS splits between two threads, and every array that
    one thread writes and the other reads, costs more: in ``bench_train.py`` runs made in the slow placement,
    the median epoch was 15–26 % longer than in the fast one (scikit-learn least, descend most).
    None where processes cannot be pinned (not Linux, or a single CPU)."""
    cpus = sorted(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else []
    if len(cpus) < 2:
        return None
    ctx = multiprocessing.get_context("fork")
    shm = shared_memory.SharedMemory(create=True, size=64)
    word = shm.buf.cast("q")
    try:
        for i in range(6):
            word[i] = 0
        sides = [ctx.Process(target=_ping, args=(shm.name, side, cpus[side], n)) for side in (0, 1)]
        with warnings.catch_warnings():
            # JAX warns of any fork once its threads run; the children touch no JAX and take no lock of its
            warnings.filterwarnings("ignore", "os.fork", RuntimeWarning)
            for p in sides:
                p.start()
        while not (word[1] and word[2]):
            if not all(p.is_alive() for p in sides):  # a side could not pin itself, or failed
                break
            time.sleep(0.001)
        else:
            word[3] = 1
        for p in sides:
            p.join(timeout=10)
        if any(p.exitcode != 0 for p in sides):
            for p in sides:
                p.kill()
                p.join()
            return None
        return max(word[4], word[5]) / n
    finally:
        del word
        shm.close()
        shm.unlink()


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
