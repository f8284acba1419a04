"""Stopping rules: pure functions of the History that return a sentence saying why to stop, or None.

Each rule is a frozen dataclass, ``rule(history) -> str | None``; combine them with ``AnyOf``.
The loop checks step rules after every step and epoch rules after every epoch.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

from .history import History

__all__ = ["MaxSteps", "MaxEpochs", "SmallParamChange", "SmallLossChange", "EarlyStopping", "Divergence",
           "TimeLimit", "AnyOf"]


def _positive_int(rule: str, name: str, value) -> None:
    if isinstance(value, bool) or int(value) != value or value < 1:
        raise ValueError(f"{rule}: {name} must be a positive integer, got {value!r}")


def _positive(rule: str, name: str, value) -> None:
    if not value > 0:
        raise ValueError(f"{rule}: {name} must be > 0, got {value!r}")


@dataclass(frozen=True)
class MaxSteps:
    """Stop after ``steps`` parameter updates (the lectures' "max iterations")."""

    steps: int
    per = "step"

    def __post_init__(self):
        _positive_int("MaxSteps", "steps", self.steps)

    def __call__(self, h: History) -> str | None:
        if h.steps >= self.steps:
            return f"reached the maximum of {self.steps} steps"
        return None


@dataclass(frozen=True)
class MaxEpochs:
    """Stop after ``epochs`` passes over the training set."""

    epochs: int
    per = "epoch"

    def __post_init__(self):
        _positive_int("MaxEpochs", "epochs", self.epochs)

    def __call__(self, h: History) -> str | None:
        if len(h.epochs) >= self.epochs:
            return f"reached the maximum of {self.epochs} epochs"
        return None


@dataclass(frozen=True)
class SmallParamChange:
    """Stop when a step moves θ by less than ``tol``: ‖θ_{t+1} − θ_t‖₂ < tol (the loop measures it)."""

    tol: float
    per = "step"
    needs_param_change = True

    def __post_init__(self):
        _positive("SmallParamChange", "tol", self.tol)

    def __call__(self, h: History) -> str | None:
        if h.param_change and h.param_change[-1] < self.tol:
            return (f"parameter change ‖Δθ‖ = {h.param_change[-1]:.3g} fell below tol = {self.tol:g} "
                    f"at step {h.steps}")
        return None


@dataclass(frozen=True)
class SmallLossChange:
    """Stop when the epoch's mean training loss changes by less than ``tol`` for ``patience`` epochs in a row.

    |J_e − J_{e−1}| < tol, J_e the mean mini-batch objective of epoch e (less noisy than single steps).
    """

    tol: float
    patience: int = 1
    per = "epoch"

    def __post_init__(self):
        _positive("SmallLossChange", "tol", self.tol)
        _positive_int("SmallLossChange", "patience", self.patience)

    def __call__(self, h: History) -> str | None:
        losses = h.metric("train_loss")
        if len(losses) <= self.patience:
            return None
        changes = [abs(a - b) for a, b in zip(losses[-self.patience - 1:-1], losses[-self.patience:])]
        if all(c < self.tol for c in changes):
            return (f"training loss changed by less than tol = {self.tol:g} for {self.patience} epoch(s) "
                    f"({losses[-2]:.6g} → {losses[-1]:.6g}) at epoch {len(h.epochs)}")
        return None


@dataclass(frozen=True)
class EarlyStopping:
    """Stop when ``monitor`` has not improved by more than ``min_delta`` for ``patience`` epochs.

    ``mode`` "min" for losses, "max" for accuracies ("auto": max if the name contains "acc").
    With ``restore_best`` the loop puts back the θ of the best epoch when training ends.
    """

    monitor: str = "val_loss"
    patience: int = 5
    min_delta: float = 0.0
    mode: str = "auto"
    restore_best: bool = True
    per = "epoch"

    def __post_init__(self):
        _positive_int("EarlyStopping", "patience", self.patience)
        if self.mode not in ("auto", "min", "max"):
            raise ValueError(f"EarlyStopping: mode must be 'auto', 'min' or 'max', got {self.mode!r}")
        if self.min_delta < 0:
            raise ValueError(f"EarlyStopping: min_delta must be ≥ 0, got {self.min_delta}")

    @property
    def maximize(self) -> bool:
        return self.mode == "max" or (self.mode == "auto" and "acc" in self.monitor)

    def best_epoch(self, h: History) -> int | None:
        """Index (0-based) of the best epoch so far, counting only improvements larger than min_delta."""
        best_i, best = None, None
        for i, e in enumerate(h.epochs):
            v = e.get(self.monitor)
            if v is None or (isinstance(v, float) and math.isnan(v)):
                continue
            if best is None or (v > best + self.min_delta if self.maximize else v < best - self.min_delta):
                best_i, best = i, v
        return best_i

    def __call__(self, h: History) -> str | None:
        if not h.epochs:
            return None
        if self.monitor not in h.epochs[-1]:
            raise ValueError(f"EarlyStopping monitors {self.monitor!r}, which the history does not record; "
                             f"recorded: {sorted(h.epochs[-1])}. Pass validation data for val_* metrics.")
        best = self.best_epoch(h)
        if best is not None and len(h.epochs) - 1 - best >= self.patience:
            value = h.epochs[best][self.monitor]
            return (f"early stopping: {self.monitor} did not improve for {self.patience} epochs "
                    f"(best {value:.4g} at epoch {best + 1})")
        return None


@dataclass(frozen=True)
class Divergence:
    """Stop when the loss is NaN/inf or exceeds ``factor`` × the initial loss (CS231n: factor 3).

    The loop then keeps the last θ whose loss was finite and below the threshold.
    """

    factor: float = 3.0
    per = "step"

    def __post_init__(self):
        if not self.factor > 1:
            raise ValueError(f"Divergence: factor must be > 1, got {self.factor!r}")

    def check(self, loss: float, initial: float | None, step: int) -> str | None:
        """The reason if ``loss`` at ``step`` diverged, given the initial loss."""
        if not math.isfinite(loss):
            return f"loss became {loss} at step {step}: diverged (learning rate too high?)"
        if initial is not None and initial > 0 and loss > self.factor * initial:
            return (f"loss exceeded {self.factor:g} × initial loss ({initial:.4g} → {loss:.4g}) at step {step}: "
                    "diverged (learning rate too high?)")
        return None

    def __call__(self, h: History) -> str | None:
        if not h.step_loss:
            return None
        return self.check(h.step_loss[-1], h.initial_loss, h.steps)


@dataclass(frozen=True)
class TimeLimit:
    """Stop once training has run for ``seconds`` (wall clock, measured by the loop into the history)."""

    seconds: float
    per = "step"

    def __post_init__(self):
        _positive("TimeLimit", "seconds", self.seconds)

    def __call__(self, h: History) -> str | None:
        if h.elapsed >= self.seconds:
            return f"time limit of {self.seconds:g} s reached after {h.steps} steps"
        return None


@dataclass(frozen=True)
class AnyOf:
    """Stop as soon as any of ``rules`` says so (its reason is the reason)."""

    rules: tuple

    def __init__(self, *rules):
        object.__setattr__(self, "rules", tuple(rules))

    def __call__(self, h: History) -> str | None:
        for rule in self.rules:
            reason = rule(h)
            if reason:
                return reason
        return None
