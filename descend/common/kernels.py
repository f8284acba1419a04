"""Load a module of Numba kernels on first use, with descend's threading choice made once, here.

Importing numba is slow, so ``import descend`` never does; kernels load on the first step.
Numba's default OpenMP threading layer leaves its workers spin-waiting after a parallel kernel, and
they then fight OpenBLAS's threads in the next matrix product; the "workqueue" layer sleeps instead
and keeps the parallel optimizer kernels as fast (numbers: benchmarks/NOTES.md). A user's own
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
