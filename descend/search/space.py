"""Search spaces: named dimensions over dotted config keys (``optimizer.lr``), validated, sampled and narrowed.

A numeric dimension works in a *coordinate*: log for ``LogUniform`` (CS231n: ``10**uniform(-6, 1)``),
log2 for ``PowersOfTwo``, the value itself for ``Uniform`` and ``IntUniform``. Sampling is uniform in
the coordinate; coarse-to-fine narrows and widens ranges in the coordinate, so a log range is narrowed
in decades, not in raw units. ``limits`` are hard limits (dropout's 0, a momentum's 1) a range is never
widened past and whose edge is not reported as one to widen.
"""
from __future__ import annotations

import copy
import itertools
import math
from dataclasses import dataclass, replace

import numpy as np

from ..config import DEFAULT_CONFIG, ConfigError

__all__ = ["SpaceError", "LogUniform", "Uniform", "IntUniform", "Choice", "PowersOfTwo", "Space", "HARD_LIMITS",
           "space_from_toml"]

# hard limits of settings that have them, in value space (a dimension's own ``limits`` overrides)
HARD_LIMITS = {"model.dropout": (0.0, 1.0), "data.val_fraction": (0.0, 1.0), "optimizer.momentum": (0.0, 1.0),
               "optimizer.b1": (0.0, 1.0), "optimizer.b2": (0.0, 1.0), "optimizer.alpha": (0.0, 1.0),
               "optimizer.beta": (0.0, 1.0), "train.l2": (0.0, math.inf), "optimizer.lr": (0.0, math.inf),
               "optimizer.weight_decay": (0.0, math.inf), "train.epochs": (1, math.inf),
               "train.batch_size": (1, math.inf)}


class SpaceError(ConfigError):
    """A search space or strategy that cannot run; the message names the dimension and the fix."""


def _number(v) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)


class _Numeric:
    """What the numeric dimensions share: a range [low, high] in value space and its coordinate."""

    log = False
    discrete = False

    def _check(self):
        if not (_number(self.low) and _number(self.high)):
            raise SpaceError(f"needs two finite numbers low, high; got {self.low!r}, {self.high!r}")
        if self.low > self.high:
            raise SpaceError(f"the range is inverted (low {self.low!r} > high {self.high!r}); swap them")
        if self.low == self.high:
            raise SpaceError(f"the range [{self.low!r}, {self.high!r}] is empty; give low < high, "
                             "or set the value in the training config instead")
        if self.limits is not None:
            lo, hi = self.limits
            if not (lo <= self.low and self.high <= hi):
                raise SpaceError(f"the range [{self.low!r}, {self.high!r}] leaves its hard limits [{lo!r}, {hi!r}]")

    def coord(self, v) -> float:
        return float(v)

    def value(self, c: float):
        return float(c)

    @property
    def bounds(self) -> tuple[float, float]:
        return self.coord(self.low), self.coord(self.high)

    def hard_bounds(self) -> tuple[float, float]:
        """The hard limits in the coordinate (±inf when there are none; log 0 = −inf)."""
        if self.limits is None:
            return -math.inf, math.inf
        lo, hi = self.limits
        return (self.coord(lo) if lo > 0 or not self.log else -math.inf,
                self.coord(hi) if math.isfinite(hi) else math.inf)

    def with_bounds(self, lo_c: float, hi_c: float):
        """The same kind of dimension over [lo_c, hi_c] in the coordinate (rounded for integer kinds)."""
        return replace(self, low=self.value(lo_c), high=self.value(hi_c))

    def describe(self) -> str:
        return f"{type(self).__name__}({self.low:g}, {self.high:g})"


@dataclass(frozen=True)
class LogUniform(_Numeric):
    """A positive real drawn uniformly in log space: exp(uniform(log low, log high)) — for lr, l2, weight decay."""

    low: float
    high: float
    limits: tuple | None = None
    log = True

    def __post_init__(self):
        if _number(self.low) and self.low <= 0:
            raise SpaceError(f"a log range needs low > 0, got low = {self.low!r}; e.g. low = 1e-6")
        self._check()

    def coord(self, v):
        return math.log(v)

    def value(self, c):
        return math.exp(c)

    def sample(self, rng, n):
        return [math.exp(c) for c in rng.uniform(math.log(self.low), math.log(self.high), n)]


@dataclass(frozen=True)
class Uniform(_Numeric):
    """A real drawn uniformly from [low, high] — for dropout, momentum."""

    low: float
    high: float
    limits: tuple | None = None

    def __post_init__(self):
        self._check()

    def sample(self, rng, n):
        return [float(c) for c in rng.uniform(self.low, self.high, n)]


@dataclass(frozen=True)
class IntUniform(_Numeric):
    """An integer drawn uniformly from low..high inclusive — for epochs, a layer's width."""

    low: int
    high: int
    limits: tuple | None = None
    discrete = True

    def __post_init__(self):
        if not all(isinstance(v, int) and not isinstance(v, bool) for v in (self.low, self.high)):
            raise SpaceError(f"needs integer low, high; got {self.low!r}, {self.high!r}")
        self._check()

    def value(self, c):
        return int(round(c))

    def with_bounds(self, lo_c, hi_c):
        lo, hi = int(math.floor(lo_c)), int(math.ceil(hi_c))
        return replace(self, low=lo, high=max(hi, lo + 1))

    def sample(self, rng, n):
        return [int(v) for v in rng.integers(self.low, self.high + 1, n)]

    def grid(self):
        return list(range(self.low, self.high + 1))


@dataclass(frozen=True)
class PowersOfTwo(_Numeric):
    """A power of two from low to high (both powers of two) — for batch sizes (Ng: 64, 128, 256, 512)."""

    low: int
    high: int
    limits: tuple | None = None
    log = True
    discrete = True

    def __post_init__(self):
        for v in (self.low, self.high):
            if not (isinstance(v, int) and not isinstance(v, bool) and v > 0 and v & (v - 1) == 0):
                raise SpaceError(f"PowersOfTwo needs powers of two for low and high, got {v!r}; e.g. 16, 512")
        self._check()

    def coord(self, v):
        return math.log2(v)

    def value(self, c):
        return 2 ** int(round(c))

    def with_bounds(self, lo_c, hi_c):
        lo, hi = int(math.floor(lo_c + 1e-9)), int(math.ceil(hi_c - 1e-9))
        return replace(self, low=2 ** lo, high=2 ** max(hi, lo + 1))

    def sample(self, rng, n):
        lo, hi = self.bounds
        return [2 ** int(k) for k in rng.integers(int(lo), int(hi) + 1, n)]

    def grid(self):
        lo, hi = self.bounds
        return [2 ** k for k in range(int(lo), int(hi) + 1)]


@dataclass(frozen=True)
class Choice:
    """One of a list of values (optimizer names, hidden-layer lists); never narrowed."""

    choices: tuple
    discrete = True

    def __post_init__(self):
        if not isinstance(self.choices, (list, tuple)) or len(self.choices) == 0:
            raise SpaceError(f"Choice needs a non-empty list of values, got {self.choices!r}")
        object.__setattr__(self, "choices", tuple(self.choices))

    def sample(self, rng, n):
        return [copy.deepcopy(self.choices[i]) for i in rng.integers(0, len(self.choices), n)]

    def grid(self):
        return [copy.deepcopy(c) for c in self.choices]

    def describe(self) -> str:
        return f"Choice({list(self.choices)})"


def _known_key(key: str) -> None:
    """Refuse a dotted key that is not a training-config setting ([optimizer] and [schedule] are open tables)."""
    section, _, name = key.partition(".")
    if section not in DEFAULT_CONFIG:
        raise SpaceError(f"search.space: unknown config key {key!r}; the tables are {sorted(DEFAULT_CONFIG)}")
    if not name or "." in name:
        raise SpaceError(f"search.space: {key!r} must be a dotted key section.name, e.g. 'optimizer.lr'")
    if section not in ("optimizer", "schedule") and name not in DEFAULT_CONFIG[section]:
        raise SpaceError(f"search.space: unknown config key {key!r}; known keys in [{section}]: "
                         f"{sorted(DEFAULT_CONFIG[section])}")


class Space:
    """Named dimensions over dotted config keys, in a fixed order (the order given)."""

    def __init__(self, dims):
        items = list(dims.items()) if isinstance(dims, dict) else list(dims)
        if not items:
            raise SpaceError("search.space is empty; add at least one dimension, e.g. "
                             "'optimizer.lr' = { log_uniform = [1e-4, 1e-1] }")
        self.dims: dict = {}
        for key, dim in items:
            if key in self.dims:
                raise SpaceError(f"search.space: {key!r} is set twice; keep one dimension per key")
            _known_key(key)
            if not isinstance(dim, (_Numeric, Choice)):
                raise SpaceError(f"search.space: {key!r} must be a dimension (LogUniform, Uniform, IntUniform, "
                                 f"Choice, PowersOfTwo), got {dim!r}")
            if isinstance(dim, _Numeric) and dim.limits is None and key in HARD_LIMITS:
                try:
                    dim = replace(dim, limits=HARD_LIMITS[key])
                except SpaceError as e:
                    raise SpaceError(f"search.space: {key!r}: {e}") from None
            self.dims[key] = dim

    def __eq__(self, other):
        return isinstance(other, Space) and self.dims == other.dims

    def __repr__(self):
        return "Space(" + ", ".join(f"{k}={d.describe()}" for k, d in self.dims.items()) + ")"

    def numeric(self) -> dict:
        return {k: d for k, d in self.dims.items() if isinstance(d, _Numeric)}

    def sample(self, rng: np.random.Generator, n: int) -> list[dict]:
        """``n`` points, each dimension drawn in turn (the draws depend only on ``rng``)."""
        columns = {k: d.sample(rng, n) for k, d in self.dims.items()}
        return [{k: columns[k][i] for k in self.dims} for i in range(n)]

    def grid(self) -> list[dict]:
        """Every combination of the dimensions' values (the Cartesian product, last dimension fastest)."""
        continuous = [k for k, d in self.dims.items() if not d.discrete]
        if continuous:
            raise SpaceError(f"a grid needs discrete dimensions, but {continuous} are continuous; "
                             "use choice = [...] for them, or strategy = \"random\"")
        keys = list(self.dims)
        return [dict(zip(keys, combo)) for combo in itertools.product(*(self.dims[k].grid() for k in keys))]

    def with_dims(self, changes: dict) -> "Space":
        return Space({k: changes.get(k, d) for k, d in self.dims.items()})

    def corners(self) -> list[dict]:
        """One point per dimension end (each other dimension at its low end): enough to pre-check every value."""
        base = {k: (d.low if isinstance(d, _Numeric) else d.choices[0]) for k, d in self.dims.items()}
        points = [base]
        for k, d in self.dims.items():
            for v in ([d.high] if isinstance(d, _Numeric) else d.choices[1:]):
                points.append({**base, k: v})
        return points


_KINDS = {"log_uniform": LogUniform, "uniform": Uniform, "int_uniform": IntUniform, "powers_of_two": PowersOfTwo,
          "choice": Choice}


def _dim_from_toml(key: str, spec: dict):
    kinds = [k for k in spec if k in _KINDS]
    extra = sorted(set(spec) - set(_KINDS) - {"limits"})
    if len(kinds) != 1 or extra:
        raise SpaceError(f"search.space: {key!r} = {spec!r} must name exactly one kind of {sorted(_KINDS)}, "
                         "e.g. { log_uniform = [1e-4, 1e-1] } (and optionally limits = [low, high])")
    kind, arg = kinds[0], spec[kinds[0]]
    try:
        if kind == "choice":
            return Choice(arg)
        if not (isinstance(arg, list) and len(arg) == 2):
            raise SpaceError(f"{kind} needs [low, high], got {arg!r}")
        limits = spec.get("limits")
        if limits is not None and not (isinstance(limits, list) and len(limits) == 2 and all(map(_number, limits))):
            raise SpaceError(f"limits must be [low, high], got {limits!r}")
        return _KINDS[kind](arg[0], arg[1], tuple(limits) if limits else None)
    except SpaceError as e:
        raise SpaceError(f"search.space: {key!r}: {e}") from None


def space_from_toml(table: dict) -> Space:
    """The ``[search.space]`` table as a Space: quoted dotted keys ("optimizer.lr") and nested tables
    (optimizer.lr = ...) both name a setting; the same setting named both ways is refused."""
    if not isinstance(table, dict):
        raise SpaceError("search.space must be a table of dimensions, e.g. 'optimizer.lr' = { log_uniform = [a, b] }")
    items = []

    def walk(prefix, t):
        for k, v in t.items():
            key = f"{prefix}.{k}" if prefix else k
            if isinstance(v, dict) and v and all(isinstance(x, dict) for x in v.values()):
                walk(key, v)  # a nested table: optimizer = { lr = {...} }
            elif isinstance(v, dict):
                items.append((key, _dim_from_toml(key, v)))
            else:
                raise SpaceError(f"search.space: {key!r} = {v!r} must be a dimension, "
                                 "e.g. { log_uniform = [1e-4, 1e-1] } or { choice = [...] }")
    walk("", table)
    return Space(items)
