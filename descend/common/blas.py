"""BLAS threads for a training run: one thread when every matrix product of its step is small.

OpenBLAS splits a product between its threads from about 2.6·10⁵ multiply-adds on. For a small
network's products that split saves nothing on an idle machine and costs several times the product on
a busy one, where a thread waits for its partner's core (benchmarks/NOTES.md). ``fit`` asks its
execution plan for the step's largest product and runs single-threaded below ``SMALL_PRODUCT``.
"""
from __future__ import annotations

import contextlib

__all__ = ["SMALL_PRODUCT", "threads_for"]

# m·n·k of the largest product below which one BLAS thread is as fast as two on this kind of machine
SMALL_PRODUCT = 1 << 20


_controller = []  # threadpoolctl's view of the loaded libraries: finding them reads the process's maps (ms)


def threads_for(largest_product: int | None):
    """A context running BLAS with one thread when ``largest_product`` (m·n·k) is small; else a no-op."""
    if largest_product is None or largest_product >= SMALL_PRODUCT:
        return contextlib.nullcontext()
    if not _controller:
        from threadpoolctl import ThreadpoolController  # a dependency of scikit-learn; loaded only here
        _controller.append(ThreadpoolController())
    return _controller[0].limit(limits=1, user_api="blas")
