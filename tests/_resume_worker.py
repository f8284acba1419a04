"""One small training run for the resume-equivalence tests, usable in-process and as a script.

``run(cfg, steps=..., checkpoint=..., resume=...)`` builds the data, model, optimizer, callbacks and
stopping rules that ``cfg`` (a JSON-able dict) describes, calls ``fit`` and returns everything the
tests compare: θ, buffers, the optimizer's state, the run's and the layers' RNG states, the
history and the callbacks' states.

As a script — ``python _resume_worker.py CFG_JSON CHECKPOINT OUT`` — it continues from CHECKPOINT
in a fresh process for ``cfg["steps"]`` steps in total and writes the result to OUT.npz / OUT.json
(arrays / everything else), so the parent can compare it with a run that never stopped.
"""
from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np

from descend import nn, pack
from descend.optim import SGD, Adam
from descend.train import Averaging, EarlyStopping, ReduceLROnPlateau, fit

N_TRAIN, N_VAL, FEATURES, CLASSES = 150, 40, 10, 3


def data(seed: int = 0):
    """A noisy 3-class problem: labels of a random linear rule with 20 % of them flipped (so metrics plateau)."""
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((N_TRAIN + N_VAL, FEATURES)).astype(np.float32)
    y = (X @ rng.standard_normal((FEATURES, CLASSES))).argmax(axis=1)
    flip = rng.random(len(y)) < 0.2
    y[flip] = rng.integers(0, CLASSES, flip.sum())
    return X[:N_TRAIN], y[:N_TRAIN], X[N_TRAIN:], y[N_TRAIN:]


class Spike:
    """A learning rate that is ``lr`` except at one step, where it is ``high`` (to force divergence there)."""

    def __init__(self, lr: float, at: int, high: float):
        self.lr, self.at, self.high = lr, at, high

    def __call__(self, clock: int) -> float:
        return self.high if clock == self.at else self.lr


def build(cfg: dict):
    rng = np.random.default_rng(cfg.get("model_seed", 1))
    layers = [nn.Linear(FEATURES, 32, rng=rng)]
    if cfg.get("batch_norm"):
        layers.append(nn.BatchNorm1d(32))
    layers.append(nn.ReLU())
    if cfg.get("dropout"):
        layers.append(nn.Dropout(cfg["dropout"], rng=np.random.default_rng(cfg.get("dropout_seed", 2))))
    layers += [nn.Linear(32, 16, rng=rng), nn.Tanh(), nn.Linear(16, CLASSES, rng=rng)]
    model = nn.Sequential(*layers)
    if cfg["optimizer"] == "adam":
        optimizer = Adam(lr=cfg.get("lr", 0.01))
    else:
        optimizer = SGD(lr=cfg.get("lr", 0.05), momentum=0.9, nesterov=cfg.get("nesterov", False))
    callbacks, stopping = [], []
    if cfg.get("plateau"):
        callbacks.append(ReduceLROnPlateau(monitor="val_loss", factor=0.5, patience=1))
    if cfg.get("early"):
        stopping.append(EarlyStopping(monitor="val_loss", patience=cfg["early"], restore_best=True))
    average = Averaging(kind=cfg["average"], beta=0.9, start=2) if cfg.get("average") else None
    schedule = Spike(cfg.get("lr", 0.05), cfg["spike_at"], 1e4) if cfg.get("spike_at") is not None else None
    return model, optimizer, callbacks, stopping, average, schedule


def run(cfg: dict, *, steps: int, checkpoint=None, checkpoint_every=None, resume=None) -> dict:
    X, y, Xv, yv = data(cfg.get("data_seed", 0))
    model, optimizer, callbacks, stopping, average, schedule = build(cfg)
    rng = np.random.default_rng(cfg.get("seed", 0))
    history = fit(model, X, y, optimizer=optimizer, steps=steps, batch_size=cfg.get("batch_size", 16),
                  validation=(Xv, yv), stopping=stopping, callbacks=callbacks, average=average, seed=rng,
                  schedule=schedule, schedule_unit="step", divergence=cfg.get("divergence", 3.0),
                  checkpoint=checkpoint, checkpoint_every=checkpoint_every, resume=resume)
    from descend.train.state import generators

    arrays = {"theta": pack(model).theta.copy()}
    arrays.update({f"buffer.{k}": v.copy() for k, v in model.named_buffers()})
    meta: dict = {"optimizer": {}}
    for k, v in optimizer.state_dict().items():
        if isinstance(v, np.ndarray):
            arrays[f"optimizer.{k}"] = v
        else:
            meta["optimizer"][k] = v
    meta["rng"] = rng.bit_generator.state
    meta["layer_rngs"] = {k: g.bit_generator.state for k, g in generators(model).items()}
    h = history.to_dict()
    h.pop("elapsed")
    meta["history"] = h
    for i, cb in enumerate(callbacks + ([average] if average is not None else [])):
        for k, v in cb.state_dict().items():
            if isinstance(v, np.ndarray):
                arrays[f"callback{i}.{k}"] = v.copy()
            else:
                meta.setdefault("callbacks", {}).setdefault(str(i), {})[k] = v
    if average is not None and average.value() is not None:
        arrays["average"] = np.array(average.value())
    return {"arrays": arrays, "meta": meta}


def subprocess_env() -> dict:
    """The environment for a worker process: this one's, with one Numba thread (see _trainutil)."""
    import os
    return {**os.environ, "NUMBA_NUM_THREADS": "1"}


def _jsonable(meta: dict) -> str:
    return json.dumps(meta, default=lambda o: o.item() if isinstance(o, np.generic) else repr(o))


def save_result(result: dict, out) -> None:
    out = Path(out)
    np.savez(out.with_suffix(".npz"), **result["arrays"])
    out.with_suffix(".json").write_text(_jsonable(result["meta"]))


def load_result(out) -> dict:
    out = Path(out)
    with np.load(out.with_suffix(".npz"), allow_pickle=False) as f:
        arrays = {k: f[k] for k in f.files}
    return {"arrays": arrays, "meta": json.loads(out.with_suffix(".json").read_text())}


if __name__ == "__main__":
    cfg_json, checkpoint, out = sys.argv[1:4]
    cfg = json.loads(cfg_json)
    save_result(run(cfg, steps=cfg["steps"], resume=checkpoint), out)
