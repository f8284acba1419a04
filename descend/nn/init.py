"""Weight initializers: each draws an array of a given shape from an explicit ``numpy.random.Generator``.

Fans follow PyTorch: for a weight of shape (out, in, *kernel), fan_in = in·∏kernel and
fan_out = out·∏kernel, so the same functions serve linear and convolution layers.
Every function has the signature ``f(shape, *, rng, dtype=np.float32) -> ndarray``
(``zeros``/``constant`` ignore ``rng``), so any of them, or a ``functools.partial`` of one,
can be passed as a layer's ``init=``.
"""
from __future__ import annotations

import math

import numpy as np

from ..common.validate import generator

__all__ = ["fans", "zeros", "constant", "normal", "small_random", "xavier_normal", "xavier_uniform",
           "he_normal", "he_uniform"]


def fans(shape: tuple) -> tuple[int, int]:
    """(fan_in, fan_out) of a weight of shape (out, in, *kernel); a 1-D shape has fan_in = fan_out = its length."""
    shape = tuple(shape)
    if len(shape) == 0:
        raise ValueError("an initializer needs a shape with at least one dimension")
    if len(shape) == 1:
        return shape[0], shape[0]
    receptive = math.prod(shape[2:])
    return shape[1] * receptive, shape[0] * receptive


def zeros(shape, *, rng=None, dtype=np.float32) -> np.ndarray:
    """All zeros — the lectures' bias initialization."""
    return np.zeros(shape, dtype=dtype)


def constant(shape, *, value: float = 0.0, rng=None, dtype=np.float32) -> np.ndarray:
    """Every entry equal to ``value``."""
    return np.full(shape, value, dtype=dtype)


def normal(shape, *, rng, std: float = 1.0, mean: float = 0.0, dtype=np.float32) -> np.ndarray:
    """N(mean, std²); std = 1 is the lecture's "standard normal weights" (too large for deep nets)."""
    generator(rng, "an initializer", "its values")
    if std < 0:
        raise ValueError(f"normal init: std must be ≥ 0, got {std}")
    return (rng.standard_normal(shape) * std + mean).astype(dtype)


def small_random(shape, *, rng, scale: float = 0.01, dtype=np.float32) -> np.ndarray:
    """0.01·N(0, 1) (CS231n "small random numbers"): fine for small nets, collapses activations in deep ones."""
    return normal(shape, rng=rng, std=scale, dtype=dtype)


def xavier_normal(shape, *, rng, gain: float = 1.0, dtype=np.float32) -> np.ndarray:
    """Glorot & Bengio 2010: N(0, σ²) with σ = gain·√(2/(fan_in + fan_out)). Default for tanh/sigmoid."""
    fan_in, fan_out = fans(shape)
    return normal(shape, rng=rng, std=gain * math.sqrt(2.0 / (fan_in + fan_out)), dtype=dtype)


def xavier_uniform(shape, *, rng, gain: float = 1.0, dtype=np.float32) -> np.ndarray:
    """Glorot & Bengio 2010: U(−a, a) with a = gain·√(6/(fan_in + fan_out))."""
    generator(rng, "an initializer", "its values")
    fan_in, fan_out = fans(shape)
    a = gain * math.sqrt(6.0 / (fan_in + fan_out))
    return rng.uniform(-a, a, size=shape).astype(dtype)


def he_normal(shape, *, rng, gain: float = math.sqrt(2.0), dtype=np.float32) -> np.ndarray:
    """He et al. 2015: N(0, σ²) with σ = gain/√fan_in, gain = √2 for ReLU. Default for the ReLU family."""
    fan_in, _ = fans(shape)
    return normal(shape, rng=rng, std=gain / math.sqrt(fan_in), dtype=dtype)


def he_uniform(shape, *, rng, gain: float = math.sqrt(2.0), dtype=np.float32) -> np.ndarray:
    """He et al. 2015: U(−a, a) with a = gain·√(3/fan_in)."""
    generator(rng, "an initializer", "its values")
    fan_in, _ = fans(shape)
    a = gain * math.sqrt(3.0 / fan_in)
    return rng.uniform(-a, a, size=shape).astype(dtype)
