"""descend: train neural networks on NumPy — every step of the classic courses, exact, visible, fast on a CPU.

The parts load on first use (``descend.train``, ``descend.fit``, ``from descend import nn``), so that
``import descend`` costs little more than importing NumPy; see docs/architecture.md for the parts.
"""
import importlib as _importlib

from .threads import pin_threads_per_rank as _pin_threads

_pin_threads()  # under mpiexec: cores / ranks BLAS threads, before NumPy loads

__version__ = "0.1.0"

# name → the part that defines it: loaded when first asked for (PEP 562)
_PARTS = ("autodiff", "nn", "optim", "data", "train", "diagnose", "config")
_NAMES = {"Tensor": "autodiff", "Parameter": "autodiff", "tensor": "autodiff", "no_grad": "autodiff",
          "pack": "nn", "Params": "nn", "summary": "nn",
          "fit": "train", "evaluate": "train", "predict": "train", "load_model": "train", "load": "train",
          "Predictor": "train"}

__all__ = ["autodiff", "nn", "optim", "data", "train", "diagnose", "config", "Tensor", "Parameter", "tensor",
           "no_grad", "pack", "Params", "summary", "fit", "evaluate", "predict", "load_model", "load", "Predictor"]


def __getattr__(name):
    if name in _PARTS:
        return _importlib.import_module(f"{__name__}.{name}")
    if name in _NAMES:
        value = getattr(_importlib.import_module(f"{__name__}.{_NAMES[name]}"), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'descend' has no attribute {name!r}")


def __dir__():
    return sorted(set(globals()) | set(__all__))
