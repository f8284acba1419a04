"""BLAS threads for a training run: one thread when every matrix product of its step is small.

OpenBLAS splits even a small product between its threads. For a small network's products that split
saves nothing on an idle machine and costs several times the product on a busy one, where a thread waits
for its partner's core (measurements: benchmarks/NOTES.md). ``fit`` works out its
step's largest product (``nn.plan.largest_product``) and runs single-threaded below ``SMALL_PRODUCT``.
"""
from __future__ import annotations

import contextlib
import threading

__all__ = ["SMALL_PRODUCT", "threads_for", "at_most"]

# m·n·k of the largest product below which one BLAS thread is as fast as two on this kind of machine
SMALL_PRODUCT = 1 << 20


_lock = threading.Lock()
_state = {"controller": None, "limiter": None, "users": 0}  # one limit shared by the runs that overlap


def threads_for(largest_product: int | None):
    """A context running BLAS with one thread when ``largest_product`` (m·n·k) is small; else a no-op."""
    if largest_product is None or largest_product >= SMALL_PRODUCT:
        return contextlib.nullcontext()
    return _one_thread()


@contextlib.contextmanager
def _one_thread():
    """One BLAS thread while any run in this process wants it: runs in threads (a Dask worker's) overlap, and
    each restoring what it found would leave the last one's limit behind."""
    with _lock:
        if _state["users"] == 0:
            if _state["controller"] is None:  # finding the libraries reads the process's memory maps: once
                from threadpoolctl import ThreadpoolController  # loaded only here
                _state["controller"] = ThreadpoolController()
            _state["limiter"] = _state["controller"].limit(limits=1, user_api="blas")
        _state["users"] += 1
    try:
        yield
    finally:
        with _lock:
            _state["users"] -= 1
            if _state["users"] == 0:
                _state["limiter"].restore_original_limits()
                _state["limiter"] = None


def at_most(threads: int, user_api: str | None = None):
    """Lower each thread-pool library (of ``user_api``: "blas", "openmp"; None: all) to ``threads`` threads,
    never raising one set lower (a user's OPENBLAS_NUM_THREADS=1 stays 1). Returns threadpoolctl's limiter:
    ``restore_original_limits()`` undoes it."""
    from threadpoolctl import ThreadpoolController  # loaded only here
    controller = ThreadpoolController()
    limits: dict = {}
    for lib in controller.lib_controllers:
        if user_api is None or lib.user_api == user_api:
            limits[lib.prefix] = min(limits.get(lib.prefix, threads), lib.num_threads)
    return controller.limit(limits=limits)
