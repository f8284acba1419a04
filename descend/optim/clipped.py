"""Gradient clipping as part of a step: ``Clipped(optimizer, max_norm=...)`` clips the flat gradient, then steps.

Any descend optimizer (or one with the same ``step`` / state protocol) is wrapped without changing it:
the closure it evaluates returns the gradient clipped to a global L2 norm ≤ ``max_norm`` (the arithmetic
of ``clip_grad_norm_``). Line-search methods (L-BFGS, Newton) are refused: a clipped gradient is not
the gradient of the objective their line search measures.
"""
from __future__ import annotations

from ..common.validate import positive
from .clip import clip_grad_norm_

__all__ = ["Clipped"]


class Clipped:
    accepts_keep = True  # step(..., keep=): the wrapped optimizer writes θ before its update in its own pass

    """``optimizer`` stepping on gradients clipped to ‖g‖₂ ≤ ``max_norm`` (Pascanu et al. 2013).

        g ← g · max_norm / (‖g‖ + 1e-6)  if ‖g‖ > max_norm;  then the optimizer's own update with g.

    ``lr``, ``state_dict`` and ``load_state_dict`` are the wrapped optimizer's, so schedules,
    checkpoints and resume see the optimizer itself.
    """

    def __init__(self, optimizer, *, max_norm: float):
        if getattr(optimizer, "needs_full_batch", False):
            raise ValueError(f"gradient clipping cannot wrap {type(optimizer).__name__} (its line search needs the "
                             "true gradient); use a first-order optimizer, or no clipping")
        self.optimizer = optimizer
        self.max_norm = positive("max_norm", max_norm)

    @property
    def lr(self):
        return self.optimizer.lr

    @lr.setter
    def lr(self, value):
        self.optimizer.lr = value

    def step(self, theta, closure, lr=None, keep=None):
        def clipped():
            loss, grad = closure()
            clip_grad_norm_(grad, self.max_norm)
            return loss, grad
        return self.optimizer.step(theta, clipped, lr, keep=keep)

    def set_lr_scale(self, scale) -> None:
        """Per-parameter step multipliers (frozen layers, parameter groups): the wrapped optimizer's."""
        self.optimizer.set_lr_scale(scale)

    def set_weight_decay_scale(self, scale) -> None:
        """Per-parameter weight-decay multipliers (parameter groups): the wrapped optimizer's."""
        self.optimizer.set_weight_decay_scale(scale)

    def state_dict(self, *args, **kwargs) -> dict:
        return self.optimizer.state_dict(*args, **kwargs)

    def load_state_dict(self, state: dict) -> None:
        self.optimizer.load_state_dict(state)

    def __repr__(self) -> str:
        return f"Clipped({self.optimizer!r}, max_norm={self.max_norm})"
