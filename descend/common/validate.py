"""User-input checks of scalar settings, shared by every package: each names the value and the fix.

Array inputs (X, y) are checked in ``descend.data.validate``; both raise ``TypeError`` for a wrong type
and ``ValueError`` for a value out of range.
"""
import math
import numbers

import numpy as np

__all__ = ["real", "positive", "nonnegative", "unit_interval", "closed_unit_interval", "positive_int", "flag",
           "choice", "generator", "int_at_least", "generator_for"]


def real(name, value):
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(f"{name} must be a real number, got {value!r} ({type(value).__name__})")
    value = float(value)
    if not math.isfinite(value):
        raise ValueError(f"{name} must be finite, got {value!r}")
    return value


def positive(name, value):
    value = real(name, value)
    if value <= 0.0:
        raise ValueError(f"{name} must be > 0, got {value!r}; pass a positive value such as {name}=0.01")
    return value


def nonnegative(name, value):
    value = real(name, value)
    if value < 0.0:
        raise ValueError(f"{name} must be >= 0, got {value!r}; pass 0 to disable it or a positive value")
    return value


def unit_interval(name, value):
    """A decay rate in [0, 1) (momentum, betas, alpha)."""
    value = real(name, value)
    if not 0.0 <= value < 1.0:
        raise ValueError(f"{name} must be in [0, 1), got {value!r}; typical values are 0.9 to 0.999")
    return value


def closed_unit_interval(name, value):
    value = real(name, value)
    if not 0.0 <= value <= 1.0:
        raise ValueError(f"{name} must be in [0, 1], got {value!r}")
    return value


def positive_int(name, value):
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise TypeError(f"{name} must be an integer, got {value!r} ({type(value).__name__})")
    if value < 1:
        raise ValueError(f"{name} must be >= 1, got {value!r}")
    return int(value)


def flag(name, value):
    if not isinstance(value, (bool, np.bool_)):
        raise TypeError(f"{name} must be True or False, got {value!r}")
    return bool(value)


def choice(name, value, options):
    if value not in options:
        shown = ", ".join(repr(o) for o in options)
        raise ValueError(f"unknown {name} {value!r}; choose one of {shown}")
    return value


def generator(rng, who: str) -> np.random.Generator:
    """``rng`` must be a ``numpy.random.Generator`` (randomness is always explicit in descend)."""
    if not isinstance(rng, np.random.Generator):
        raise TypeError(f"{who} needs rng=numpy.random.default_rng(seed) (a numpy.random.Generator), got "
                        f"{type(rng).__name__}")
    return rng


def int_at_least(name, value, minimum: int = 1, who: str | None = None) -> int:
    """An integer ≥ ``minimum`` (a size, stride or padding); ``who`` (the layer or function) opens the message.

    Anything else — 0, 2.5, True — raises ``ValueError``: a size that is not a whole number is a wrong size.
    """
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Integral) or value < minimum:
        where = f"{who}: " if who else ""
        raise ValueError(f"{where}{name} must be an integer ≥ {minimum}, got {value!r}")
    return int(value)


def generator_for(rng, who: str, draws: str) -> np.random.Generator:
    """``rng`` must be a ``numpy.random.Generator``: ``who`` draws ``draws`` (e.g. "its initial weights") from it."""
    if not isinstance(rng, np.random.Generator):
        raise TypeError(f"{who} draws {draws} from an explicit generator: pass rng=np.random.default_rng(seed) "
                        f"(got {rng!r})")
    return rng
