"""Load a module of Numba kernels on first use, with descend's threading choice made once, here.

Importing numba costs ~0.3 s, so ``import descend`` never does; kernels load on the first step.
Numba's default OpenMP threading layer leaves its workers spin-waiting after a parallel kernel,
and they then fight OpenBLAS's threads in the next matrix product: one epoch of a 784-512-256-10
MLP with Adam took 4.0 s instead of 0.90 s here (benchmarks/bench_train.py). The "workqueue"
layer sleeps instead of spinning and keeps the parallel optimizer kernels as fast (Adam on 10M
floats: 0.84× PyTorch's fused Adam), whatever was imported before. A user's own
NUMBA_THREADING_LAYER is respected.
"""
from __future__ import annotations

import importlib
import os
from types import ModuleType

_loaded: dict[str, ModuleType] = {}


def kernels(module: str) -> ModuleType:
    """Import ``module`` (a descend module of @njit kernels) once, after configuring numba."""
    mod = _loaded.get(module)
    if mod is None:
        if "NUMBA_THREADING_LAYER" not in os.environ:
            import numba
            numba.config.THREADING_LAYER = "workqueue"
        mod = _loaded[module] = importlib.import_module(module)
    return mod
