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


def run(cfg: dict, out, *, resume: bool = False, progress: bool | None = True, transfer: dict | None = None) -> dict:
    """Train as ``cfg`` (a resolved config, see ``descend.config.resolve``) says, writing the run folder ``out``.

    The folder gets ``RUN_FILES``: the config as trained, the per-epoch metrics (JSON lines), the
    final metrics, the checkpoint and the loss / accuracy / learning-rate plots. With ``resume`` the
    run continues from ``out``'s checkpoint. ``transfer`` (keyword arguments of
    ``descend.transfer.transfer_model``: run, freeze, new_head, backbone_lr_scale) starts from a trained
    run's network instead of a new one; it is recorded in the run folder as transfer.json.
    Returns the final metrics (those of metrics.json).
    """
    from . import plots
    from .train import MetricsLog, ProgressBar, evaluate, fit

    t0 = time.perf_counter()
    out = Path(out)
    d, t = cfg["data"], cfg["train"]
    X, y, Xv, yv, Xte, yte, num_classes, preprocess = prepare_data(cfg)
    rng = np.random.default_rng(t["seed"])
    if transfer is not None:
        if resume:
            raise ConfigError("--resume continues a run as it was built; drop --init-from and the transfer flags")
        from .transfer import transfer_model
        try:
            model = transfer_model(input_shape=X.shape[1:], num_classes=num_classes, rng=rng, **transfer)
        except (ValueError, FileNotFoundError) as e:  # the run to start from, or flags that do not fit it
            raise ConfigError(f"--init-from: {e}") from None
    else:
        model = build_model(cfg, X.shape[1:], num_classes, rng)
    optimizer = build_optimizer(cfg)
    schedule = build_schedule(cfg)
    out.mkdir(parents=True, exist_ok=True)
    import tomli_w
    (out / "config.toml").write_text(tomli_w.dumps(cfg))  # on resume: with any new limits from the flags
    if not resume:
        (out / "metrics.jsonl").unlink(missing_ok=True)
    if transfer is not None:
        (out / "transfer.json").write_text(json.dumps(transfer, indent=2) + "\n")
    stopping = build_stopping(cfg)
    ckpt = out / "checkpoint.safetensors"
    if resume and not ckpt.is_file():
        raise ConfigError(f"cannot resume: {out} holds no checkpoint.safetensors (was the run folder moved?)")
    batch_size = None if t["batch_size"] == "full" else t["batch_size"]
    history = fit(model, X, y, optimizer=optimizer, epochs=t["epochs"], steps=t["steps"] or None, batch_size=batch_size,
                  schedule=schedule, l2=t["l2"], validation=(Xv, yv), stopping=stopping,
                  divergence=t["divergence"] or None, seed=t["seed"],
                  callbacks=[ProgressBar(enabled=progress), MetricsLog(out / "metrics.jsonl")],
                  checkpoint=ckpt, checkpoint_every=t["checkpoint_every"] or None,
                  preprocess=preprocess, resume=ckpt if resume else None, config=cfg)
    test = evaluate(model, Xte, yte)
    final = {"dataset": d["dataset"], "test_accuracy": test["accuracy"], "test_loss": test["loss"],
             "val_accuracy": history.last("val_accuracy"), "train_accuracy": history.last("train_accuracy"),
             "stop_reason": history.stop_reason, "epochs": len(history.epochs), "steps": history.steps,
             "best_epoch": (history.best or {}).get("epoch"), "train_seconds": round(history.elapsed, 3),
             "total_seconds": round(time.perf_counter() - t0, 3)}
    (out / "metrics.json").write_text(json.dumps(final, indent=2) + "\n")
    plots.plot_loss(history, out / "loss.png")
    plots.plot_accuracy(history, out / "accuracy.png")
    plots.plot_lr(history, out / "lr.png")
    return final
