"""Learning-rate schedules: frozen dataclasses, each a pure function of a clock (epochs or steps) -> lr.

Every schedule has a ``unit`` field, "epoch" or "step", telling the training loop which clock to
pass; the loop owns the clock. The clock is whatever the loop passes: for ``unit='epoch'`` fit passes
the epoch number counted from 1 (the lectures' numbering; ``fit(epoch_origin=0)`` for 0-based); for
``unit='step'`` the number of steps taken so far (0 before the first). Clock 0, wherever a caller
passes it, gives the initial learning rate. The formulas are in closed form (never accumulated step
by step), so a schedule can be evaluated at any clock, e.g. after resuming from a checkpoint.
"""
import math
import numbers
from dataclasses import KW_ONLY, dataclass

import numpy as np

from ..common.validate import flag, nonnegative, positive, positive_int

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
        self._set("lr", positive("lr", self.lr))

    def __call__(self, clock):
        _clock(clock)
        return self.lr


def _decay_clock(clock, decay_steps, staircase):
    """t / decay_steps, floored when staircase (Keras' ``step / decay_steps`` and ``staircase``)."""
    c = _clock(clock)
    return float(c // decay_steps) if staircase else c / decay_steps


class _StepwiseDecay(_Schedule):
    """The ``decay_steps`` / ``staircase`` settings that inverse-time and exponential decay share."""

    def _check_steps(self):
        self._set("decay_steps", positive_int("decay_steps", self.decay_steps))
        self._set("staircase", flag("staircase", self.staircase))


@dataclass(frozen=True)
class InverseTimeDecay(_StepwiseDecay):
    """lr(t) = lr / (1 + decay_rate·t/decay_steps), with ⌊t/decay_steps⌋ when staircase=True.

    Andrew Ng, "Improving Deep Neural Networks", week 2, learning-rate decay: α = α₀ / (1 + decay_rate·epoch_num);
    α₀ = 0.2, decay_rate = 1 gives 0.1, 0.0667, 0.05, 0.04 for epochs 1-4 (decay_steps = 1, the default).
    ``decay_steps`` and ``staircase`` (keyword-only) have the meaning of Keras' InverseTimeDecay. Counts epochs
    by default."""

    lr: float
    decay_rate: float
    unit: str = "epoch"
    _: KW_ONLY
    decay_steps: int = 1
    staircase: bool = False

    def _check(self):
        self._set("lr", positive("lr", self.lr))
        self._set("decay_rate", nonnegative("decay_rate", self.decay_rate))
        self._check_steps()

    def __call__(self, clock):
        return self.lr / (1.0 + self.decay_rate * _decay_clock(clock, self.decay_steps, self.staircase))


@dataclass(frozen=True)
class ExponentialDecay(_StepwiseDecay):
    """lr(t) = lr·rate^(t/decay_steps), with ⌊t/decay_steps⌋ when staircase=True.

    Ng, week 2: α = 0.95^epoch_num·α₀; torch ExponentialLR (gamma = rate, decay_steps = 1); ``decay_steps`` and
    ``staircase`` (keyword-only) have the meaning of Keras' ExponentialDecay (its decay_rate is our rate)."""

    lr: float
    rate: float
    unit: str = "epoch"
    _: KW_ONLY
    decay_steps: int = 1
    staircase: bool = False

    def _check(self):
        self._set("lr", positive("lr", self.lr))
        self._set("rate", positive("rate", self.rate))
        self._check_steps()

    def __call__(self, clock):
        return self.lr * self.rate ** _decay_clock(clock, self.decay_steps, self.staircase)


@dataclass(frozen=True)
class InverseSqrtDecay(_Schedule):
    """lr(epoch) = k/√epoch (unit="epoch", default) or lr(t) = k/√t (unit="step")  (Ng, week 2).

    The formula is undefined at 0, so clock 0 gives k, the same as clock 1: the first epoch (or step)
    runs at the initial rate, and the decay starts from the second.
    """

    k: float
    unit: str = "epoch"

    def _check(self):
        self._set("k", positive("k", self.k))

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
        self._set("lr", positive("lr", self.lr))
        self._set("step_size", positive_int("step_size", self.step_size))
        self._set("gamma", positive("gamma", self.gamma))

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
        v = tuple(positive("values[i]", x) for x in self.values)
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
        self._set("lr", positive("lr", self.lr))
        self._set("warmup", positive_int("warmup", self.warmup))
        self._set("start_factor", positive("start_factor", self.start_factor))
        self._set("end_factor", positive("end_factor", self.end_factor))

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
        self._set("lr", positive("lr", self.lr))
        self._set("total", positive_int("total", self.total))
        self._set("min_lr", nonnegative("min_lr", self.min_lr))
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
    if positive_int("total", total) <= positive_int("warmup", warmup):
        raise ValueError(f"total ({total}) must exceed warmup ({warmup})")
    return Sequence((LinearWarmup(lr, warmup, start_factor, 1.0, unit), Cosine(lr, total - warmup, min_lr, unit)),
                    (warmup,), unit)


def preview(schedule, n):
    """The first n values, schedule(0) … schedule(n − 1), as a float64 array (to print or plot)."""
    return np.array([schedule(i) for i in range(positive_int("n", n))], dtype=np.float64)
