"""The training job of ``descend train`` as a library call: build from a config, fit, write the run folder.

It sits at the top level beside ``config.py`` (not in ``train/``) because it needs the config
tables, which themselves import ``train``; keeping it here keeps ``train`` free of ``config``.
Everything that can be refused (the config, the data, the checkpoint to resume) is checked before
the run folder is touched; a folder made for a job that fails before its first step is removed again.
"""
from __future__ import annotations

import json
import time
from pathlib import Path

import numpy as np

from .config import ConfigError, build_model, build_optimizer, build_schedule, build_stopping, prepare_data
from .runfolder import RunFolder

__all__ = ["run", "RUN_FILES", "RESUMABLE", "is_run", "check_resume", "run_config", "with_schedule_total", "ABORTED"]

# what a finished run folder holds
RUN_FILES = ("config.toml", "metrics.jsonl", "metrics.json", "checkpoint.safetensors", "loss.png", "accuracy.png",
             "lr.png")
CHECKPOINT = "checkpoint.safetensors"
# the settings a resumed run may change: its limits and stopping rules; anything else would make it another run
RESUMABLE = ("train.epochs", "train.steps", "train.patience", "train.min_loss_change", "train.min_param_change",
             "train.time_limit", "train.checkpoint_every", "train.divergence")
ABORTED = ("diverged", "interrupted")  # words of a stop reason that is not a normal end (see descend.cli)


def is_run(folder) -> bool:
    """Whether ``folder`` holds (part of) a run: any of ``RUN_FILES``."""
    return any((Path(folder) / name).exists() for name in RUN_FILES)


def run_config(folder) -> dict:
    """The config a run folder was trained with (its config.toml; else the one inside its checkpoint)."""
    from .config import load_config
    from .train import load_checkpoint
    folder = Path(folder)
    if (folder / "config.toml").is_file():
        return load_config(folder / "config.toml")
    if (folder / CHECKPOINT).is_file():
        return load_checkpoint(folder / CHECKPOINT)[1].get("config") or {}
    raise ConfigError(f"cannot resume {folder} (it holds no config.toml and no {CHECKPOINT}); "
                      "give the folder of an earlier run")


def check_resume(old: dict, new: dict) -> None:
    """Refuse settings that ``new`` changes from the run's ``old`` config, except the ``RESUMABLE`` ones."""
    changed = []
    for section, values in new.items():
        for key, value in values.items():
            before = old.get(section, {}).get(key, value)
            if before != value and f"{section}.{key}" not in RESUMABLE:
                changed.append(f"{section}.{key} = {value!r} where the run has {before!r}")
    if changed:
        raise ConfigError(f"cannot resume with {'; '.join(changed)} (a resumed run continues with its own settings; "
                          f"only {', '.join(k.split('.')[1] for k in RESUMABLE)} may change); drop those flags, "
                          "or start a new run")


class _Log:
    """``MetricsLog`` that writes its final line only if this call trained: resuming a finished run adds nothing."""

    def __init__(self, path):
        from .train import MetricsLog
        self.log, self.first_step = MetricsLog(path), None

    def on_fit_start(self, state):
        self.first_step = state.step

    def on_epoch_end(self, state):
        self.log.on_epoch_end(state)

    def on_fit_end(self, state):
        if state.step > self.first_step:
            self.log.on_fit_end(state)


class _Started:
    """The first callback of the job: when ``fit`` has checked everything and is about to step, the run folder
    gets its config (and an overwritten run loses its old files); until then nothing in the folder changed."""

    def __init__(self, out: Path, cfg: dict, *, fresh: bool, transfer: dict | None = None):
        self.out, self.cfg, self.fresh, self.transfer, self.started = out, cfg, fresh, transfer, False

    def on_fit_start(self, state):
        import tomli_w
        if self.fresh:
            for name in RUN_FILES:
                (self.out / name).unlink(missing_ok=True)
        (self.out / "config.toml").write_text(tomli_w.dumps(self.cfg))  # on resume: with the new limits
        if self.transfer is not None:
            (self.out / "transfer.json").write_text(json.dumps(self.transfer, indent=2) + "\n")
        self.started = True


def _open_folder(cfg: dict, out, *, resume: bool, overwrite: bool, runs_dir) -> RunFolder:
    if resume:
        return RunFolder.claim(out, existing="resume", is_run=lambda p: (p / CHECKPOINT).is_file())
    if out is not None:
        return RunFolder.claim(out, existing="overwrite" if overwrite else "refuse", is_run=is_run)
    return RunFolder.new(runs_dir, _data_name(cfg))


def _data_name(cfg: dict) -> str:
    """What the run trains on, for people: the dataset's name, or the data file's stem."""
    return Path(cfg["data"]["file"]).stem if cfg["data"].get("file") else cfg["data"]["dataset"]


def run(cfg: dict, out=None, *, resume: bool = False, overwrite: bool = False, progress: bool | None = True,
        runs_dir="runs", on_folder=None, distributed: bool = False, transfer: dict | None = None) -> dict:
    """Train as ``cfg`` (a resolved config, see ``descend.config.resolve``) says, writing the run folder ``out``.

    ``out=None`` makes a new uniquely named folder under ``runs_dir``; an ``out`` that holds a run is
    refused unless ``resume`` (continue from its checkpoint) or ``overwrite``. The folder is locked
    while the job runs (``descend.runfolder``). It gets ``RUN_FILES``: the config as trained, the
    per-epoch metrics (JSON lines), the final metrics, the checkpoint and the loss / accuracy /
    learning-rate plots. ``on_folder(path)`` is called once the folder is known. Returns the final
    metrics (those of metrics.json) with the folder as "out".

    ``transfer`` (keyword arguments of ``descend.transfer.transfer_model``: run, freeze, new_head,
    backbone_lr_scale, backbone_weight_decay_scale) starts from a trained run's network instead of a new
    one; it is recorded in the run folder as transfer.json.

    ``distributed``: this process is one rank of a job started by ``mpiexec``; the ranks train
    data-parallel (``descend.train.distributed``) and rank 0 alone claims and writes the folder and shows
    progress (the returned dict's ``rank`` says which rank this is).
    """
    from . import plots
    from .train import ProgressBar, evaluate, fit, load_checkpoint

    t0 = time.perf_counter()
    dist = _distributed(cfg) if distributed else None
    writer = dist is None or dist.writer
    if cfg["train"]["batch_size"] == "auto":  # measured once here; config.toml records the choice
        from .search.batch_size import resolve_batch_size
        cfg = resolve_batch_size(cfg)
    t = cfg["train"]
    X, y, Xv, yv, Xte, yte, num_classes, preprocess = prepare_data(cfg)
    cfg = with_schedule_total(cfg, len(X))
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
    stopping = build_stopping(cfg)
    average = _averaging(cfg)
    if resume:
        ckpt = Path(out) / CHECKPOINT
        if not ckpt.is_file():
            raise ConfigError(f"cannot resume {out} (it holds no {CHECKPOINT}); give the folder of an earlier run")
        _, meta = load_checkpoint(ckpt)  # a damaged file is named here, before anything is locked or written
        done = _finished(meta, t, stopping)
        if done is not None and (Path(out) / "metrics.json").is_file():  # nothing to train: change nothing
            RunFolder.claim(out, existing="resume", is_run=lambda p: True).release()  # refused if in use
            final = json.loads((Path(out) / "metrics.json").read_text())
            return {**final, "stop_reason": done, "trained_steps": 0, "out": str(out)}
    batch_size = None if t["batch_size"] == "full" else t["batch_size"]
    if dist is not None:  # every rank needs a share of every batch: refused here as a config error, on all ranks
        from .data import batch_slices
        try:
            dist.shard(batch_slices(len(X), batch_size if batch_size is None else min(batch_size, len(X))))
        except ValueError as e:
            raise ConfigError(f"{e} (train.batch_size = {t['batch_size']}, {len(X)} training examples)") from None
    if not writer:  # the other ranks write nothing: they train, and read the checkpoint to resume
        return _follow(dist, cfg, model, X, y, Xv, yv, Xte, yte, optimizer, schedule, stopping, average, batch_size,
                       preprocess, resume)
    folder = _open_folder(cfg, out, resume=resume, overwrite=overwrite, runs_dir=runs_dir)
    out = folder.path
    if dist is not None:
        dist.comm.bcast(str(out), root=0)  # the folder's name, for the ranks that read its checkpoint
        # mpiexec names a dead process by PID: this file says which rank it was
        (out / "ranks.json").write_text(json.dumps([{"rank": r, "host": h, "pid": p}
                                                    for r, (h, p) in enumerate(dist.processes)], indent=1))
    if on_folder is not None:
        on_folder(out)
    ckpt = out / CHECKPOINT
    started, log = _Started(out, cfg, fresh=not resume, transfer=transfer), _Log(out / "metrics.jsonl")
    try:
        history = fit(model, X, y, optimizer=optimizer, epochs=t["epochs"], steps=t["steps"] or None,
                      batch_size=batch_size, schedule=schedule, l2=t["l2"], validation=(Xv, yv), stopping=stopping,
                      divergence=t["divergence"] or None, seed=t["seed"], average=average,
                      callbacks=[started, ProgressBar(enabled=progress), log],
                      checkpoint=ckpt, checkpoint_every=t["checkpoint_every"] or None,
                      preprocess=preprocess, resume=ckpt if resume else None, config=cfg, distributed=dist)
        if average is not None:  # the model the run delivers is the averaged one (the checkpoint keeps θ as trained)
            from .nn import pack
            average.apply(pack(model))
        test = evaluate(model, Xte, yte)
        final = {"dataset": _data_name(cfg), "test_accuracy": test["accuracy"], "test_loss": test["loss"],
                 "val_accuracy": history.last("val_accuracy"), "train_accuracy": history.last("train_accuracy"),
                 "stop_reason": history.stop_reason, "epochs": len(history.epochs), "steps": history.steps,
                 "best_epoch": (history.best or {}).get("epoch"), "train_seconds": round(history.elapsed, 3),
                 "total_seconds": round(time.perf_counter() - t0, 3),
                 "trained_steps": history.steps - log.first_step}
        if dist is not None:
            final["ranks"] = dist.size
        (out / "metrics.json").write_text(json.dumps(final, indent=2) + "\n")
        plots.plot_loss(history, out / "loss.png")
        plots.plot_accuracy(history, out / "accuracy.png")
        plots.plot_lr(history, out / "lr.png")
    except BaseException:
        if not started.started:
            folder.discard()  # failed before the first step: leave nothing half-made
        raise
    finally:
        folder.release()
    return {**final, "out": str(out)}


def _follow(dist, cfg, model, X, y, Xv, yv, Xte, yte, optimizer, schedule, stopping, average, batch_size,
            preprocess, resume) -> dict:
    """A rank other than 0: the same ``fit`` (same collectives), with no folder, callbacks or files of its own."""
    from .train import evaluate, fit
    out = Path(dist.comm.bcast(None, root=0))
    t = cfg["train"]
    history = fit(model, X, y, optimizer=optimizer, epochs=t["epochs"], steps=t["steps"] or None,
                  batch_size=batch_size, schedule=schedule, l2=t["l2"], validation=(Xv, yv), stopping=stopping,
                  divergence=t["divergence"] or None, seed=t["seed"], average=average,
                  checkpoint=out / CHECKPOINT, checkpoint_every=t["checkpoint_every"] or None,
                  preprocess=preprocess, resume=out / CHECKPOINT if resume else None, config=cfg, distributed=dist)
    if average is not None:
        from .nn import pack
        average.apply(pack(model))
    test = evaluate(model, Xte, yte)
    return {"dataset": _data_name(cfg), "test_accuracy": test["accuracy"], "test_loss": test["loss"],
            "val_accuracy": history.last("val_accuracy"), "stop_reason": history.stop_reason,
            "steps": history.steps, "ranks": dist.size, "rank": dist.rank, "out": str(out)}


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


def _finished(meta: dict, t: dict, stopping: list) -> str | None:
    """Why a checkpointed run already meets the limits and rules of ``t`` (the [train] table), or None."""
    from .train import MaxEpochs, MaxSteps
    from .train.history import History
    history = History.from_dict(meta["history"])
    if meta["clock"].get("batch"):
        return None  # stopped inside an epoch (e.g. interrupted): the epoch goes on
    rules = [MaxEpochs(t["epochs"])] + ([MaxSteps(t["steps"])] if t["steps"] else []) + list(stopping)
    return next((r for r in (rule(history) for rule in rules) if r), None)


def with_schedule_total(cfg: dict, n: int) -> dict:
    """``cfg`` with a cosine schedule's ``total`` set to the run's length when the config leaves it out: the
    epoch limit for ``unit = "epoch"``, else the steps the run takes (its step limit, or epochs × batches of
    ``n`` training examples, whichever ends it first)."""
    s, t = cfg["schedule"], cfg["train"]
    if s["name"] not in ("cosine", "warmup_cosine") or "total" in s:
        return cfg
    if s.get("unit", "step") == "epoch":
        total = t["epochs"]
    else:
        batch = n if t["batch_size"] == "full" else min(t["batch_size"], n)
        total = t["epochs"] * -(-n // batch)
        total = min(total, t["steps"]) if t["steps"] else total
    return {**cfg, "schedule": {**s, "total": total}}


def _averaging(cfg: dict):
    """The ``train.average`` setting as an ``Averaging`` callback ("ema", "polyak" or "" for none)."""
    kind = cfg["train"].get("average", "")
    if not kind:
        return None
    from .train import Averaging
    return Averaging(kind=kind)
