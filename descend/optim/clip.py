"""Gradient clipping on the flat gradient, in place: by global L2 norm and by value."""
import math

import numpy as np

from ..common.validate import positive

__all__ = ["clip_grad_norm_", "clip_grad_value_"]


def _norm(grad):
    if not isinstance(grad, np.ndarray) or grad.dtype not in (np.float32, np.float64):
        raise TypeError(f"grad must be a float32/float64 numpy array, got {getattr(grad, 'dtype', type(grad).__name__)}")
    if not grad.flags.writeable:
        raise ValueError("grad must be writeable: it is clipped in place")
    flat = grad.reshape(-1)
    return math.sqrt(float(flat @ flat))


def clip_grad_norm_(grad, max_norm):
    """Rescale grad in place so that ‖grad‖₂ ≤ max_norm; return the norm before clipping.

        if ‖g‖ > max_norm:  g ← g · max_norm / (‖g‖ + 1e-6)

    (Pascanu et al. 2013; the arithmetic of torch.nn.utils.clip_grad_norm_, whose 1e-6 guards a zero
    norm.) Because θ's gradient is one flat vector, this is the *global* norm over all layers.
    A non-finite norm is returned unchanged and the gradient left as is, so the caller can stop.
    """
    max_norm = positive("max_norm", max_norm)
    norm = _norm(grad)
    coef = max_norm / (norm + 1e-6)
    if coef < 1.0:
        np.multiply(grad, coef, out=grad)
    return norm


def clip_grad_value_(grad, clip):
    """Clamp every component of grad to [−clip, clip] in place; return ‖grad‖₂ before clipping."""
    clip = positive("clip", clip)
    norm = _norm(grad)
    np.clip(grad, -clip, clip, out=grad)
    return norm
