"""Losses on Tensors: the data terms (from ``functional``) and the L2 regularization penalty."""
from __future__ import annotations

from ..autodiff.tensor import Tensor
from .functional import bce_with_logits, cross_entropy, hinge, mse

__all__ = ["cross_entropy", "mse", "bce_with_logits", "hinge", "l2_penalty"]


def l2_penalty(weights, lam: float) -> Tensor:
    """L2 regularization (λ/2)·Σ‖W‖² over the given weight tensors (biases are usually left out).

    The training loop divides λ by the number of training examples m, giving the lectures'
    (λ/2m)·Σ‖W‖²; this function applies λ as given.
    """
    if lam < 0:
        raise ValueError(f"L2 strength must be ≥ 0, got {lam}")
    total = None
    for w in weights:
        term = (w * w).sum()
        total = term if total is None else total + term
    if total is None:
        raise ValueError("l2_penalty needs at least one weight tensor")
    return total * (0.5 * lam)
