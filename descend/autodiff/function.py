"""Function: one differentiable operation, its forward and backward side by side on ndarrays.

This file imports nothing of descend. A subclass implements

    forward(self, *arrays, **options) -> ndarray
    backward(self, grad_out) -> tuple of (ndarray | None), one per array input

and keeps what backward needs on ``self`` (cleared by ``release()`` once backward ran).
``self.needs_input_grad`` tells backward which gradients are wanted, so work for inputs that
do not require a gradient can be skipped.
"""
from __future__ import annotations

import numpy as np


class Function:
    """Base class of every differentiable operation (see the module docstring)."""

    __slots__ = ("needs_input_grad", "__dict__")
    #: True for a Function whose backward may write parameter gradients straight into ``self.sinks``
    #: (one destination array or None per input, set by ``Tensor.backward``)
    uses_sinks = False

    def forward(self, *arrays: np.ndarray, **options) -> np.ndarray:  # pragma: no cover
        raise NotImplementedError

    def backward(self, grad_out: np.ndarray) -> tuple:  # pragma: no cover
        raise NotImplementedError

    def release(self) -> None:
        """Drop the arrays saved for backward so the graph's memory is freed."""
        self.__dict__.clear()


def unbroadcast(grad: np.ndarray, shape: tuple) -> np.ndarray:
    """Sum ``grad`` down to ``shape``: the adjoint of NumPy broadcasting.

    Leading axes that broadcasting added are summed away, then axes where ``shape`` has 1.
    """
    if grad.shape == shape:
        return grad
    extra = grad.ndim - len(shape)
    if extra:
        grad = grad.sum(axis=tuple(range(extra)))
    axes = tuple(i for i, n in enumerate(shape) if n == 1 and grad.shape[i] != 1)
    if axes:
        grad = grad.sum(axis=axes, keepdims=True)
    return grad.reshape(shape)
