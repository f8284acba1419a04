"""User-input checks of scalar settings, shared by every package: each names the value and the fix.

Array inputs (X, y) are checked in ``descend.data.validate``; both raise ``TypeError`` for a wrong type
and ``ValueError`` for a value out of range.
"""
import math
import numbers
import operator

import numpy as np

__all__ = ["real", "positive", "nonnegative", "unit_interval", "closed_unit_interval", "positive_int", "flag",
           "choice", "generator", "open_unit_interval", "float_dtype", "integer"]


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


def open_unit_interval(name, value, hint=""):
    """A fraction strictly between 0 and 1 (a test or validation share)."""
    value = real(name, value)
    if not 0.0 < value < 1.0:
        raise ValueError(f"{name} must be strictly between 0 and 1, got {value!r}{hint}")
    return value


def float_dtype(name, value) -> np.dtype:
    """A floating dtype descend computes in: float32 (the default everywhere) or float64."""
    try:
        dt = np.dtype(value)
    except TypeError:
        raise TypeError(f"{name} must be a NumPy dtype, np.float32 or np.float64, got {value!r}") from None
    if dt not in (np.float32, np.float64):
        raise ValueError(f"{name} must be float32 or float64, got {dt}; pass {name}=np.float32 (or np.float64 "
                         "for a float64 model)")
    return dt


def integer(name, value, low=None, who=None):
    """``value`` as a Python int (bools refused), at least ``low`` if given; ValueError naming it otherwise
    (also for a non-integer: counts and sizes given as 2.5 or "3" are a value error of the setting).
    ``who`` (a layer or function) opens the message."""
    rule = "an integer" if low is None else "a positive integer (≥ 1)" if low == 1 else f"an integer ≥ {low}"
    name = f"{who}: {name}" if who else name
    try:
        if isinstance(value, (bool, np.bool_)):
            raise TypeError
        value = operator.index(value)
    except TypeError:
        raise ValueError(f"{name} must be {rule}, got {value!r}") from None
    if low is not None and value < low:
        raise ValueError(f"{name} must be {rule}, got {value}")
    return value


def generator(rng, who: str, draws: str = "its random numbers") -> np.random.Generator:
    """``rng`` must be a ``numpy.random.Generator``: ``who`` draws ``draws`` (e.g. "its initial weights") from it."""
    if not isinstance(rng, np.random.Generator):
        raise TypeError(f"{who} draws {draws} from an explicit generator: pass rng=np.random.default_rng(seed) "
                        f"(got {rng!r})")
    return rng
