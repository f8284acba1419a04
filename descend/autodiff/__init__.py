"""Reverse-mode automatic differentiation on NumPy arrays."""
from . import ops
from .function import Function, unbroadcast
from .ops import *  # noqa: F401,F403
from .tensor import Parameter, Tensor, is_grad_enabled, no_grad

__all__ = ["Function", "Tensor", "Parameter", "no_grad", "is_grad_enabled", "unbroadcast"] + ops.__all__
