"""Callbacks that watch a run: progress bar, reduce-LR-on-plateau, a metrics log, and θ averaging.

A callback has any of ``on_fit_start``, ``on_step_end``, ``on_epoch_end``, ``on_fit_end`` taking
the loop's ``FitState``; one with ``state_dict``/``load_state_dict`` is saved in checkpoints.
Callbacks observe; the only change they may make is ``state.lr_scale`` (or ``state.stop``).
"""
from __future__ import annotations

import contextlib
import json
import math
import sys
import time
from pathlib import Path

import numpy as np


__all__ = ["ProgressBar", "ReduceLROnPlateau", "MetricsLog", "Averaging"]


class ProgressBar:
    """A tqdm bar over the run's steps showing loss, EWA-smoothed loss, accuracy, lr and the ETA.

    ``enabled=None`` shows it only when stderr is a terminal; the postfix is refreshed at most
    every ``interval`` seconds, so the bar costs little per step.
    """

    def __init__(self, *, enabled: bool | None = None, beta: float = 0.98, interval: float = 0.1, file=None):
        self.enabled = enabled
        self.beta, self.interval, self.file = beta, interval, file
        self.bar = None

    def on_fit_start(self, state):
        show = self.enabled if self.enabled is not None else sys.stderr.isatty()
        if not show:
            return
        from tqdm.auto import tqdm

        from ..optim.ewa import EWA
        self.bar = tqdm(total=state.total_steps, initial=state.step, unit="step", dynamic_ncols=True,
                        file=self.file or sys.stderr, desc="train")
        self.smooth = EWA(self.beta)
        self._last = 0.0

    def on_step_end(self, state):
        if self.bar is None:
            return
        if math.isfinite(state.last_loss):
            self.smooth.update(state.last_loss)
        self.bar.update(1)
        now = time.monotonic()
        if now - self._last >= self.interval:
            self._last = now
            post = {"epoch": state.epoch + 1, "loss": f"{state.last_loss:.4f}",
                    "ewa": f"{float(self.smooth.corrected):.4f}", "lr": f"{state.lr:.3g}"}
            acc = state.history.last("val_accuracy") or state.history.last("train_accuracy")
            if acc is not None:
                post["acc"] = f"{acc:.3f}"
            self.bar.set_postfix(post, refresh=False)

    def on_fit_end(self, state):
        if self.bar is not None:
            self.bar.close()
            self.bar = None


class ReduceLROnPlateau:
    """Multiply the learning rate by ``factor`` when ``monitor`` has not improved for ``patience`` epochs.

    The scale never drops the lr below ``min_scale`` × its scheduled value.
    """

    def __init__(self, *, monitor: str = "val_loss", factor: float = 0.1, patience: int = 3,
                 min_delta: float = 0.0, min_scale: float = 1e-4):
        if not 0 < factor < 1:
            raise ValueError(f"ReduceLROnPlateau: factor must be in (0, 1), got {factor}")
        if int(patience) != patience or patience < 1:
            raise ValueError(f"ReduceLROnPlateau: patience must be a positive integer, got {patience}")
        self.monitor, self.factor, self.patience = monitor, float(factor), int(patience)
        self.min_delta, self.min_scale = float(min_delta), float(min_scale)
        self.best, self.wait = None, 0

    def on_epoch_end(self, state):
        value = state.history.epochs[-1].get(self.monitor)
        if value is None:
            raise ValueError(f"ReduceLROnPlateau monitors {self.monitor!r}, not among the recorded metrics "
                             f"{sorted(state.history.epochs[-1])}")
        maximize = "acc" in self.monitor
        improved = self.best is None or (value > self.best + self.min_delta if maximize
                                         else value < self.best - self.min_delta)
        if improved:
            self.best, self.wait = value, 0
            return
        self.wait += 1
        if self.wait >= self.patience:
            state.lr_scale = max(state.lr_scale * self.factor, self.min_scale)
            self.wait = 0

    def state_dict(self) -> dict:
        return {"best": self.best, "wait": self.wait}

    def load_state_dict(self, d: dict) -> None:
        self.best, self.wait = d["best"], int(d["wait"])


class MetricsLog:
    """Append one JSON line per epoch (and a final line) to ``path``; ``.csv`` paths get CSV rows."""

    def __init__(self, path):
        self.path = Path(path)
        self.csv = self.path.suffix == ".csv"
        self._header_written = False

    def _write(self, record: dict) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with self.path.open("a") as f:
            if self.csv:
                if not self._header_written and (not self.path.exists() or self.path.stat().st_size == 0):
                    f.write(",".join(record) + "\n")
                self._header_written = True
                f.write(",".join(str(v) for v in record.values()) + "\n")
            else:
                f.write(json.dumps(record) + "\n")

    def on_epoch_end(self, state):
        self._write(dict(state.history.epochs[-1]))

    def on_fit_end(self, state):
        if not self.csv:
            self._write({"stop_reason": state.history.stop_reason, "steps": state.step, "epochs": state.epoch,
                         "elapsed": round(state.history.elapsed, 3)})


class Averaging:
    """Average of θ over the run, evaluated in place of θ when asked (Polyak & Juditsky 1992; CS231n).

    ``kind="ema"``: v_t = β·v_{t−1} + (1−β)·θ_t, used bias-corrected v_t/(1−βᵗ);
    ``kind="polyak"``: the running mean of θ_t over steps t ≥ ``start``.
    With ``evaluate=True`` the loop validates the averaged θ. ``applied(params)`` swaps it in
    temporarily; ``apply(params)`` copies it into θ for good.
    """

    def __init__(self, *, kind: str = "ema", beta: float = 0.999, start: int = 0, evaluate: bool = True):
        if kind not in ("ema", "polyak"):
            raise ValueError(f"Averaging: kind must be 'ema' or 'polyak', got {kind!r}")
        if kind == "ema" and not 0 <= beta < 1:
            raise ValueError(f"Averaging: beta must be in [0, 1), got {beta}")
        from ..optim.ewa import EWA
        self.kind, self.beta, self.start, self.evaluate = kind, float(beta), int(start), bool(evaluate)
        self.ewa = EWA(self.beta) if kind == "ema" else None
        self.mean = None
        self.count = 0

    def on_step_end(self, state):
        if state.step <= self.start:
            return
        theta = state.params.theta
        self.count += 1
        if self.kind == "ema":
            self.ewa.update(theta)
        elif self.mean is None:
            self.mean = theta.copy()
        else:
            self.mean += (theta - self.mean) / self.count

    def value(self) -> np.ndarray | None:
        """The averaged θ (bias-corrected for EMA), or None before the first update."""
        if self.count == 0:
            return None
        return np.asarray(self.ewa.corrected) if self.kind == "ema" else self.mean

    @contextlib.contextmanager
    def applied(self, params):
        """Evaluate with the averaged θ inside the block; θ is restored afterwards."""
        avg = self.value()
        if avg is None:
            yield
            return
        saved = params.theta.copy()
        params.theta[...] = avg
        try:
            yield
        finally:
            params.theta[...] = saved

    def apply(self, params) -> None:
        avg = self.value()
        if avg is not None:
            params.theta[...] = avg

    def state_dict(self) -> dict:
        d = {"count": self.count}
        if self.kind == "ema" and self.count:
            d.update(self.ewa.state_dict())
        if self.kind == "polyak" and self.mean is not None:
            d["mean"] = self.mean
        return d

    def load_state_dict(self, d: dict) -> None:
        self.count = int(d["count"])
        if self.kind == "ema" and self.count:
            self.ewa.load_state_dict(d)
        if "mean" in d:
            self.mean = np.array(d["mean"])
