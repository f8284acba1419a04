"""Learning-rate schedules: frozen dataclasses, each a pure function of a clock (epochs or steps) -> lr.

Every schedule has a ``unit`` field, "epoch" or "step", telling the training loop which clock to
pass; the loop owns the clock. Clock 0 is the first epoch/step and gives the initial learning rate.
The formulas are in closed form (never accumulated step by step), so a schedule can be evaluated at
any clock, e.g. after resuming from a checkpoint.
"""
import math
import numbers
from dataclasses import dataclass

import numpy as np

__all__ = [
    "Constant",
    "InverseTimeDecay",
    "ExponentialDecay",
    "InverseSqrtDecay",
    "StepDecay",
    "PiecewiseConstant",
    "LinearWarmup",
    "Cosine",
    "Sequence",
    "warmup_cosine",
    "preview",
]

UNITS = ("epoch", "step")


def _pos(name, value):
    if isinstance(value, bool) or not isinstance(value, numbers.Real) or not math.isfinite(value) or value <= 0:
        raise ValueError(f"{name} must be a finite number > 0, got {value!r}")
    return float(value)


def _nonneg(name, value):
    if isinstance(value, bool) or not isinstance(value, numbers.Real) or not math.isfinite(value) or value < 0:
        raise ValueError(f"{name} must be a finite number >= 0, got {value!r}")
    return float(value)


def _count(name, value):
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < 1:
        raise ValueError(f"{name} must be an integer >= 1, got {value!r}")
    return int(value)


def _clock(clock):
    if isinstance(clock, bool) or not isinstance(clock, numbers.Integral) or clock < 0:
        raise ValueError(f"the clock must be an integer >= 0 (epoch or step number), got {clock!r}")
    return int(clock)


class _Schedule:
    def __post_init__(self):
        self._check()
        if self.unit not in UNITS:
            raise ValueError(f"unknown unit {self.unit!r}; choose 'epoch' or 'step'")

    def _set(self, name, value):
        object.__setattr__(self, name, value)


@dataclass(frozen=True)
class Constant(_Schedule):
    """lr(clock) = lr."""

    lr: float
    unit: str = "step"

    def _check(self):
        self._set("lr", _pos("lr", self.lr))

    def __call__(self, clock):
        _clock(clock)
        return self.lr


@dataclass(frozen=True)
class InverseTimeDecay(_Schedule):
    """lr(epoch) = lr / (1 + decay_rate·epoch)   (Andrew Ng, "Improving Deep Neural Networks", week 2,
    learning-rate decay: α = α₀ / (1 + decay_rate·epoch_num); α₀ = 0.2, decay_rate = 1 gives
    0.1, 0.0667, 0.05, 0.04 for epochs 1-4). Counts epochs by default."""

    lr: float
    decay_rate: float
    unit: str = "epoch"

    def _check(self):
        self._set("lr", _pos("lr", self.lr))
        self._set("decay_rate", _nonneg("decay_rate", self.decay_rate))

    def __call__(self, clock):
        return self.lr / (1.0 + self.decay_rate * _clock(clock))


@dataclass(frozen=True)
class ExponentialDecay(_Schedule):
    """lr(epoch) = lr·rate^epoch   (Ng, week 2: α = 0.95^epoch_num·α₀; torch ExponentialLR, gamma = rate)."""

    lr: float
    rate: float
    unit: str = "epoch"

    def _check(self):
        self._set("lr", _pos("lr", self.lr))
        self._set("rate", _pos("rate", self.rate))

    def __call__(self, clock):
        return self.lr * self.rate ** _clock(clock)


@dataclass(frozen=True)
class InverseSqrtDecay(_Schedule):
    """lr(epoch) = k/√epoch (unit="epoch", default) or lr(t) = k/√t (unit="step")  (Ng, week 2).

    The formula is undefined at 0, so clock 0 gives k, the same as clock 1: the first epoch (or step)
    runs at the initial rate, and the decay starts from the second.
    """

    k: float
    unit: str = "epoch"

    def _check(self):
        self._set("k", _pos("k", self.k))

    def __call__(self, clock):
        return self.k / math.sqrt(max(_clock(clock), 1))


@dataclass(frozen=True)
class StepDecay(_Schedule):
    """Staircase: lr(epoch) = lr·gamma^⌊epoch / step_size⌋   (torch StepLR; "step decay" in CS231n)."""

    lr: float
    step_size: int
    gamma: float = 0.1
    unit: str = "epoch"

    def _check(self):
        self._set("lr", _pos("lr", self.lr))
        self._set("step_size", _count("step_size", self.step_size))
        self._set("gamma", _pos("gamma", self.gamma))

    def __call__(self, clock):
        return self.lr * self.gamma ** (_clock(clock) // self.step_size)


@dataclass(frozen=True)
class PiecewiseConstant(_Schedule):
    """Manual decay: values[i] while boundaries[i−1] ≤ clock < boundaries[i] (len(values) = len(boundaries)+1).

    E.g. PiecewiseConstant(boundaries=(30, 60), values=(0.1, 0.01, 0.001)) is torch MultiStepLR with
    milestones (30, 60) and gamma 0.1 ("manual decay", Ng week 2; CS231n step decay)."""

    boundaries: tuple
    values: tuple
    unit: str = "epoch"

    def _check(self):
        b = tuple(self.boundaries)
        v = tuple(_pos("values[i]", x) for x in self.values)
        if any(isinstance(x, bool) or not isinstance(x, numbers.Integral) or x < 1 for x in b):
            raise ValueError(f"boundaries must be integers >= 1, got {b}")
        if any(x >= y for x, y in zip(b, b[1:])):
            raise ValueError(f"boundaries must be strictly increasing, got {b}")
        if len(v) != len(b) + 1:
            raise ValueError(f"values needs len(boundaries) + 1 = {len(b) + 1} entries, got {len(v)}")
        self._set("boundaries", tuple(int(x) for x in b))
        self._set("values", v)

    def __call__(self, clock):
        c = _clock(clock)
        i = 0
        while i < len(self.boundaries) and c >= self.boundaries[i]:
            i += 1
        return self.values[i]


@dataclass(frozen=True)
class LinearWarmup(_Schedule):
    """lr(t) = lr·(start_factor + (end_factor − start_factor)·min(t, warmup)/warmup)   (torch LinearLR;
    Goyal et al. 2017 "gradual warm-up"). Counts steps by default; constant lr·end_factor afterwards."""

    lr: float
    warmup: int
    start_factor: float = 1.0 / 3.0
    end_factor: float = 1.0
    unit: str = "step"

    def _check(self):
        self._set("lr", _pos("lr", self.lr))
        self._set("warmup", _count("warmup", self.warmup))
        self._set("start_factor", _pos("start_factor", self.start_factor))
        self._set("end_factor", _pos("end_factor", self.end_factor))

    def __call__(self, clock):
        frac = min(_clock(clock), self.warmup) / self.warmup
        return self.lr * (self.start_factor + (self.end_factor - self.start_factor) * frac)


@dataclass(frozen=True)
class Cosine(_Schedule):
    """lr(t) = min_lr + (lr − min_lr)·(1 + cos(π·t/total))/2 for t ≤ total, min_lr afterwards
    (Loshchilov & Hutter 2017, SGDR without restarts; torch CosineAnnealingLR, T_max = total)."""

    lr: float
    total: int
    min_lr: float = 0.0
    unit: str = "step"

    def _check(self):
        self._set("lr", _pos("lr", self.lr))
        self._set("total", _count("total", self.total))
        self._set("min_lr", _nonneg("min_lr", self.min_lr))
        if self.min_lr > self.lr:
            raise ValueError(f"min_lr ({self.min_lr}) must not exceed lr ({self.lr})")

    def __call__(self, clock):
        c = min(_clock(clock), self.total)
        return self.min_lr + (self.lr - self.min_lr) * (1.0 + math.cos(math.pi * c / self.total)) / 2.0


@dataclass(frozen=True)
class Sequence(_Schedule):
    """Schedules one after another: schedules[i] runs from boundaries[i−1], on a clock restarted at 0
    there (torch SequentialLR with milestones = boundaries). E.g. warm-up then cosine:
    Sequence((LinearWarmup(lr, 100), Cosine(lr, 900)), boundaries=(100,)). All parts share one unit."""

    schedules: tuple
    boundaries: tuple
    unit: str = None  # taken from the parts

    def _check(self):
        s, b = tuple(self.schedules), tuple(self.boundaries)
        if not s or not all(callable(x) and isinstance(x, _Schedule) for x in s):
            raise ValueError("schedules must be a non-empty sequence of descend.optim.schedules schedules")
        if len(b) != len(s) - 1:
            raise ValueError(f"boundaries needs len(schedules) − 1 = {len(s) - 1} entries, got {len(b)}")
        if any(isinstance(x, bool) or not isinstance(x, numbers.Integral) or x < 1 for x in b) or \
                any(x >= y for x, y in zip(b, b[1:])):
            raise ValueError(f"boundaries must be strictly increasing integers >= 1, got {b}")
        units = {x.unit for x in s}
        if len(units) > 1:
            raise ValueError(f"all schedules in a Sequence must count the same clock, got units {sorted(units)}")
        self._set("schedules", s)
        self._set("boundaries", tuple(int(x) for x in b))
        if self.unit is not None and self.unit != s[0].unit:
            raise ValueError(f"unit {self.unit!r} differs from the schedules' unit {s[0].unit!r}")
        self._set("unit", s[0].unit)

    def __call__(self, clock):
        c = _clock(clock)
        start, i = 0, 0
        while i < len(self.boundaries) and c >= self.boundaries[i]:
            start = self.boundaries[i]
            i += 1
        return self.schedules[i](c - start)


def warmup_cosine(lr, warmup, total, *, start_factor=1.0 / 3.0, min_lr=0.0, unit="step"):
    """Linear warm-up over ``warmup`` steps, then cosine decay to min_lr at step ``total``."""
    if _count("total", total) <= _count("warmup", warmup):
        raise ValueError(f"total ({total}) must exceed warmup ({warmup})")
    return Sequence((LinearWarmup(lr, warmup, start_factor, 1.0, unit), Cosine(lr, total - warmup, min_lr, unit)),
                    (warmup,), unit)


def preview(schedule, n):
    """The first n values, schedule(0) … schedule(n − 1), as a float64 array (to print or plot)."""
    return np.array([schedule(i) for i in range(_count("n", n))], dtype=np.float64)
