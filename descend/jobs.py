"""The training job of ``descend train`` as a library call: build from a config, fit, write the run folder.

It sits at the top level beside ``config.py`` (not in ``train/``) because it needs the config
tables, which themselves import ``train``; keeping it here keeps ``train`` free of ``config``.
"""
from __future__ import annotations

import json
import time
from pathlib import Path

import numpy as np

from .config import ConfigError, build_model, build_optimizer, build_schedule, build_stopping, prepare_data

__all__ = ["run", "RUN_FILES"]

# what a finished run folder holds
RUN_FILES = ("config.toml", "metrics.jsonl", "metrics.json", "checkpoint.safetensors", "loss.png", "accuracy.png",
             "lr.png")


def run(cfg: dict, out, *, resume: bool = False, progress: bool | None = True, distributed: bool = False) -> dict:
    """Train as ``cfg`` (a resolved config, see ``descend.config.resolve``) says, writing the run folder ``out``.

    The folder gets ``RUN_FILES``: the config as trained, the per-epoch metrics (JSON lines), the
    final metrics, the checkpoint and the loss / accuracy / learning-rate plots. With ``resume`` the
    run continues from ``out``'s checkpoint. Returns the final metrics (those of metrics.json).

    ``distributed``: this process is one rank of a job started by ``mpiexec``; the ranks train
    data-parallel (``descend.train.distributed``) and rank 0 alone writes the folder and shows progress
    (the returned dict's ``rank`` says which rank this is).
    """
    from . import plots
    from .train import MetricsLog, ProgressBar, evaluate, fit

    t0 = time.perf_counter()
    dist = _distributed(cfg) if distributed else None
    writer = dist is None or dist.writer
    out = Path(out)
    d, t = cfg["data"], cfg["train"]
    X, y, Xv, yv, Xte, yte, num_classes, preprocess = prepare_data(cfg)
    rng = np.random.default_rng(t["seed"])
    model = build_model(cfg, X.shape[1:], num_classes, rng)
    optimizer = build_optimizer(cfg)
    schedule = build_schedule(cfg)
    if writer:
        out.mkdir(parents=True, exist_ok=True)
        if dist is not None:  # mpiexec names a dead process by PID: this file says which rank it was
            (out / "ranks.json").write_text(json.dumps([{"rank": r, "host": h, "pid": p}
                                                        for r, (h, p) in enumerate(dist.processes)], indent=1))
        import tomli_w
        (out / "config.toml").write_text(tomli_w.dumps(cfg))  # on resume: with any new limits from the flags
        if not resume:
            (out / "metrics.jsonl").unlink(missing_ok=True)
    stopping = build_stopping(cfg)
    ckpt = out / "checkpoint.safetensors"
    if resume and not ckpt.is_file():
        raise ConfigError(f"cannot resume: {out} holds no checkpoint.safetensors (was the run folder moved?)")
    batch_size = None if t["batch_size"] == "full" else t["batch_size"]
    if dist is not None:  # every rank needs a share of every batch: refused here as a config error, on all ranks
        from .data import batch_slices
        try:
            dist.shard(batch_slices(len(X), batch_size if batch_size is None else min(batch_size, len(X))))
        except ValueError as e:
            raise ConfigError(f"{e} (train.batch_size = {t['batch_size']}, {len(X)} training examples)") from None
    history = fit(model, X, y, optimizer=optimizer, epochs=t["epochs"], steps=t["steps"] or None, batch_size=batch_size,
                  schedule=schedule, l2=t["l2"], validation=(Xv, yv), stopping=stopping,
                  divergence=t["divergence"] or None, seed=t["seed"],
                  callbacks=[ProgressBar(enabled=progress), MetricsLog(out / "metrics.jsonl")] if writer else [],
                  checkpoint=ckpt, checkpoint_every=t["checkpoint_every"] or None,
                  preprocess=preprocess, resume=ckpt if resume else None, config=cfg, distributed=dist)
    test = evaluate(model, Xte, yte)
    final = {"dataset": d["dataset"], "test_accuracy": test["accuracy"], "test_loss": test["loss"],
             "val_accuracy": history.last("val_accuracy"), "train_accuracy": history.last("train_accuracy"),
             "stop_reason": history.stop_reason, "epochs": len(history.epochs), "steps": history.steps,
             "best_epoch": (history.best or {}).get("epoch"), "train_seconds": round(history.elapsed, 3),
             "total_seconds": round(time.perf_counter() - t0, 3)}
    if dist is not None:
        final["ranks"] = dist.size
    if not writer:
        return dict(final, rank=dist.rank)
    (out / "metrics.json").write_text(json.dumps(final, indent=2) + "\n")
    plots.plot_loss(history, out / "loss.png")
    plots.plot_accuracy(history, out / "accuracy.png")
    plots.plot_lr(history, out / "lr.png")
    return final


def _distributed(cfg: dict):
    """This rank's ``Distributed``, after checking every rank has the same config (a hash); outside
    ``mpiexec``, without mpi4py or with differing configs, a config error (every rank stops the same way)."""
    from .train.distributed import Distributed

    try:
        dist = Distributed.from_launch()
        dist.agree("config", cfg)
    except (RuntimeError, ValueError) as e:
        raise ConfigError(str(e)) from None
    return dist
