"""One search trial: a ``fit`` run built from the training config with a point's values, scored on validation.

This is what a worker runs. It receives only plain values — the base config (a dict), the point,
a seed, an epoch budget — and returns a plain dict, so any ``concurrent.futures.Executor`` or Dask
can carry it. The test split is never touched here.
"""
from __future__ import annotations

import copy
import json
import math
import os
import threading
import time
import traceback

import numpy as np

from ..common.blas import at_most
from ..config import build_model, build_optimizer, build_schedule, build_stopping, prepare_data, resolve

__all__ = ["apply", "run_trial", "pin_threads", "score_of", "trial_data", "forget_data", "MINIMIZED"]

# metrics where lower is better; every other metric is maximized
MINIMIZED = ("val_loss",)


def apply(cfg: dict, params: dict, *, seed: int | None = None, epochs: int | None = None) -> dict:
    """A resolved copy of ``cfg`` with each dotted key of ``params`` set (and the trial's seed and epochs)."""
    out = copy.deepcopy(cfg)
    for key, value in params.items():
        section, name = key.split(".")
        out[section][name] = copy.deepcopy(value)
    if seed is not None:
        out["train"]["seed"] = int(seed)
    if epochs is not None:
        out["train"]["epochs"] = int(epochs)
    return resolve(out)


def pin_threads(threads: int, *, libraries: bool = True) -> None:
    """Limit this process's BLAS (and OpenMP) and this thread's Numba to at most ``threads`` threads, so parallel
    workers do not oversubscribe; ``libraries=False``: Numba's count only (a caller that limits BLAS itself)."""
    if libraries:
        at_most(threads)
    try:
        import numba
        numba.set_num_threads(min(threads, numba.config.NUMBA_NUM_THREADS))
    except ImportError:  # pragma: no cover - numba is a core dependency
        pass


# A trial run in a thread of the coordinator's process (the local pool's slot) finds here the event that asks
# it to stop: a thread gets no Ctrl-C, and a search that is ending must not wait for its trial to finish.
class _Slot(threading.local):
    stop: threading.Event | None = None


SLOT = _Slot()


class _StopWhenAsked:
    """A ``fit`` callback: once ``event`` is set, the run stops after its current step."""

    def __init__(self, event: threading.Event):
        self.event = event

    def on_step_end(self, state) -> None:
        state.stop = state.stop or self.event.is_set()


_DATA: dict = {}  # this process's prepared data sets, by what they depend on (the search's trials share one)
_DATA_KEPT = 2
_DATA_LOCK = threading.Lock()


def _data_key(cfg: dict) -> str:
    """What ``prepare_data`` reads: the [data] table, whether the model is convolutional, the files' sizes and times."""
    d = cfg["data"]
    files = [(f, os.stat(f).st_size, os.stat(f).st_mtime_ns) if os.path.isfile(f) else (f, None, None)
             for f in (d.get("file"), d.get("test_file")) if f]
    return json.dumps([d, bool(cfg["model"]["conv"]), files], sort_keys=True, default=str)


def trial_data(cfg: dict) -> tuple:
    """``prepare_data(cfg)``, loaded once per process for every trial with the same data (a worker runs many
    trials of one search: reading, generating and splitting the data set each time cost as much as a small
    trial). The arrays are read-only (``fit`` never writes its inputs); the unfitted ``preprocess`` is a
    fresh copy for each call, since ``fit`` fits it."""
    key = _data_key(cfg)
    with _DATA_LOCK:  # a Dask worker runs trials in threads
        if key not in _DATA:
            out = prepare_data(cfg)
            for a in out[:6]:
                a.setflags(write=False)
            while len(_DATA) >= _DATA_KEPT:
                _DATA.pop(next(iter(_DATA)))
            _DATA[key] = out
        out = _DATA[key]
    return out[:7] + (copy.deepcopy(out[7]),)


def forget_data() -> None:
    """Drop this process's prepared data sets (a search that ran its trials in this process has ended)."""
    with _DATA_LOCK:
        _DATA.clear()


def score_of(history, metric: str):
    """The trial's validation ``metric``: at the epoch early stopping restored, else the last epoch's."""
    if history.best is not None and history.best.get(metric) is not None:
        return history.best[metric]
    return history.last(metric)


def run_trial(cfg: dict, params: dict, *, seed: int, epochs: int | None = None, metric: str = "val_accuracy",
              threads: int | None = None) -> dict:
    """Train once and return {status, score, val_loss, val_accuracy, steps, diverged_step, stop_reason,
    error, curve, seconds}: status "done", "diverged" (by the divergence rule, with its step) or "failed"
    (an exception, with its message; the search goes on)."""
    t0 = time.perf_counter()
    if threads:
        pin_threads(threads)
    out = {"status": "failed", "score": None, "val_loss": None, "val_accuracy": None, "steps": None,
           "diverged_step": None, "stop_reason": None, "error": None, "curve": [], "seconds": None}
    try:
        from ..train import fit
        c = apply(cfg, params, seed=seed, epochs=epochs)
        t = c["train"]
        X, y, Xv, yv, _, _, num_classes, preprocess = trial_data(c)
        model = build_model(c, X.shape[1:], num_classes, np.random.default_rng(t["seed"]))
        history = fit(model, X, y, optimizer=build_optimizer(c), epochs=t["epochs"], steps=t["steps"] or None,
                      batch_size=None if t["batch_size"] == "full" else t["batch_size"], schedule=build_schedule(c),
                      l2=t["l2"], validation=(Xv, yv), stopping=build_stopping(c), divergence=t["divergence"] or None,
                      seed=t["seed"], preprocess=preprocess,
                      callbacks=[_StopWhenAsked(SLOT.stop)] if SLOT.stop is not None else ())
        reason = history.stop_reason or ""
        out.update(steps=history.steps, stop_reason=reason,
                   curve=[{"epoch": e["epoch"], "val_loss": e.get("val_loss"), "val_accuracy": e.get("val_accuracy")}
                          for e in history.epochs])
        if "diverged" in reason:
            out.update(status="diverged", diverged_step=history.steps)
        else:
            score = score_of(history, metric)
            out.update(status="done", val_loss=score_of(history, "val_loss"),
                       val_accuracy=score_of(history, "val_accuracy"),
                       score=None if score is None or not math.isfinite(score) else float(score))
    except Exception as e:  # a failed trial is recorded with its error; the search goes on
        out["error"] = f"{type(e).__name__}: {e}"
        out["traceback"] = traceback.format_exc(limit=6)
    out["seconds"] = time.perf_counter() - t0
    return out
