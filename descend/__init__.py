"""descend: train neural networks on NumPy — every step of the classic courses, exact, visible, fast on a CPU."""
from . import autodiff, nn
from .autodiff import Parameter, Tensor, no_grad, tensor
from .nn import Params, pack, summary

__version__ = "0.1.0"
__all__ = ["autodiff", "nn", "Tensor", "Parameter", "tensor", "no_grad", "pack", "Params", "summary"]
