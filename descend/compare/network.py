"""Optimizers raced on a network: the config's model from one initial θ, on one batch order, each optimizer in turn."""
from __future__ import annotations

import copy
import time
from dataclasses import dataclass, field

import numpy as np

from ..config import ConfigError, build_model, prepare_data
from .names import NETWORK_LR, make_optimizer

__all__ = ["NetworkRun", "NetworkRace", "compare_on_network", "pick_lr"]


@dataclass
class NetworkRun:
    """One optimizer's training: per-epoch ``train_loss``, ``val_loss``, ``val_accuracy`` and ``seconds`` (wall
    time since the run started, at each epoch's end); ``theta0`` the initial θ and ``orders`` each epoch's
    example order, as the loop used them (the race's fairness is checked on these)."""

    name: str
    lr: float
    epochs: list = field(default_factory=list)
    train_loss: list = field(default_factory=list)
    val_loss: list = field(default_factory=list)
    val_accuracy: list = field(default_factory=list)
    seconds: list = field(default_factory=list)
    theta0: np.ndarray | None = None
    orders: list = field(default_factory=list)
    stop_reason: str | None = None

    def seconds_to(self, target: float):
        """Wall time at the end of the first epoch whose validation loss is ≤ target (None: never)."""
        return next((s for s, v in zip(self.seconds, self.val_loss) if v <= target), None)

    def epochs_to(self, target: float):
        return next((e for e, v in zip(self.epochs, self.val_loss) if v <= target), None)


@dataclass
class NetworkRace:
    runs: list
    target_loss: float | None
    dataset: str

    def table(self) -> str:
        head = f"{'optimizer':<10} {'lr':>9} {'final val acc':>14} {'best val loss':>14} " \
               f"{'epochs to target':>17} {'time to target':>15}  stopped"
        rows = [f"target validation loss: {self.target_loss:.4g}" if self.target_loss is not None else "", head,
                "-" * len(head)]
        for r in self.runs:
            acc = f"{r.val_accuracy[-1]:.4f}" if r.val_accuracy else "—"
            best = f"{min(r.val_loss):.4f}" if r.val_loss else "—"
            ep = r.epochs_to(self.target_loss) if self.target_loss is not None else None
            sec = r.seconds_to(self.target_loss) if self.target_loss is not None else None
            rows.append(f"{r.name:<10} {r.lr:>9.3g} {acc:>14} {best:>14} {'not reached' if ep is None else ep:>17} "
                        f"{'not reached' if sec is None else f'{sec:.2f} s':>15}  {r.stop_reason}")
        return "\n".join(row for row in rows if row)


class _Recorder:
    """Callback: θ at the start, each epoch's example order, and the wall time at each epoch's end."""

    def __init__(self, run: NetworkRun):
        self.run = run

    def on_fit_start(self, state):
        self.t0 = time.perf_counter()
        self.run.theta0 = state.params.theta.copy()

    def on_step_end(self, state):
        if state.batch == 1:
            self.run.orders.append(state.order.copy())

    def on_epoch_end(self, state):
        self.run.seconds.append(time.perf_counter() - self.t0)


def compare_on_network(cfg: dict, names, *, lrs: dict | None = None, epochs: int | None = None,
                       target_loss: float | None = None) -> NetworkRace:
    """Train the model of ``cfg`` (a resolved config) once per optimizer name in ``names`` (the compare table:
    sgd, momentum, nesterov, adagrad, rmsprop, adam), each from the same initial θ (the model is rebuilt with
    ``train.seed``) on the same batches (``fit``'s generator seeded with ``train.seed``), for ``epochs``
    (default ``train.epochs``) with a constant learning rate: ``lrs[name]`` (a number, or "auto": the LR
    range test's suggestion, ``pick_lr``) or ``NETWORK_LR[name]``.

    The config's early stopping and schedule are not used (every optimizer gets the same epochs; a schedule
    would replace the lr being compared); the divergence guard is. ``target_loss`` default: the highest of
    the runs' best validation losses, so every run that learned has a time to it.
    """
    from ..train import fit
    lrs = dict(lrs or {})
    for n in names:
        if n not in NETWORK_LR:
            raise ConfigError(f"{n} is not raced on networks (a dense or line-search method needs the full batch "
                              f"and a small θ); choose from {', '.join(NETWORK_LR)}")
    t = cfg["train"]
    epochs = t["epochs"] if epochs is None else epochs
    if isinstance(epochs, bool) or not isinstance(epochs, int) or epochs < 1:
        raise ConfigError(f"epochs must be a positive integer, got {epochs!r}")
    X, y, Xv, yv, _, _, num_classes, preprocess = prepare_data(cfg)
    batch_size = None if t["batch_size"] == "full" else t["batch_size"]
    runs = []
    for name in names:
        model = build_model(cfg, X.shape[1:], num_classes, np.random.default_rng(t["seed"]))
        lr = lrs.get(name, NETWORK_LR[name])
        if lr == "auto":
            lr = pick_lr(cfg, name, model, X, y, preprocess, batch_size)
        run = NetworkRun(name=name, lr=float(lr))
        # warm-up: one untimed step on a throwaway copy loads this optimizer's Numba kernels (and, for the
        # first run, the model's), so the seconds compare the optimizers rather than compilation
        fit(build_model(cfg, X.shape[1:], num_classes, np.random.default_rng(t["seed"])), X, y,
            optimizer=make_optimizer(name, run.lr), steps=1, batch_size=batch_size, seed=t["seed"],
            preprocess=copy.deepcopy(preprocess))
        history = fit(model, X, y, optimizer=make_optimizer(name, run.lr), epochs=epochs, batch_size=batch_size,
                      l2=t["l2"], validation=(Xv, yv), divergence=t["divergence"] or None, seed=t["seed"],
                      preprocess=copy.deepcopy(preprocess), callbacks=[_Recorder(run)])
        for e in history.epochs:
            run.epochs.append(e["epoch"])
            run.train_loss.append(e["train_loss"])
            run.val_loss.append(e["val_loss"])
            run.val_accuracy.append(e["val_accuracy"])
        run.seconds = run.seconds[:len(run.epochs)]
        run.stop_reason = history.stop_reason
        runs.append(run)
    if target_loss is None:
        bests = [min(r.val_loss) for r in runs if r.val_loss]
        target_loss = max(bests) if bests else None
    return NetworkRace(runs=runs, target_loss=target_loss, dataset=cfg["data"]["dataset"])


def pick_lr(cfg: dict, name: str, model, X, y, preprocess, batch_size) -> float:
    """The learning rate the LR range test (``descend.diagnose.lr_range_test``, Smith 2017) suggests for
    optimizer ``name`` on this model and the (preprocessed) training data; θ is left as it was."""
    from ..diagnose.lr_range import lr_range_test
    if preprocess is not None:
        X = copy.deepcopy(preprocess).fit_transform(X)
    result = lr_range_test(model, X, y, optimizer=make_optimizer(name, NETWORK_LR[name]),
                           batch_size=batch_size or len(X), seed=cfg["train"]["seed"])
    return result.suggested_lr
