"""Matplotlib figures of a run (imported lazily: ``import descend`` never loads matplotlib).

Each ``*_figure`` function takes a ``History`` and returns the matplotlib figure (its lines carry the
data, which is what the tests read); each ``plot_*`` draws that figure with the non-interactive Agg
backend and writes a PNG.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np


def pyplot():
    import matplotlib
    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt
    return plt


def best_epoch(history) -> dict | None:
    """The epoch record whose θ early stopping kept (``history.best``), or None when no epoch was judged."""
    epoch = (history.best or {}).get("epoch")
    return next((e for e in history.epochs if e["epoch"] == epoch), None)


def _mark_best(ax, x, label) -> None:
    ax.axvline(x, color="C3", linestyle="--", linewidth=1.2, label=label)


def plot_loss(history, path, *, beta: float | None = None) -> Path:
    """Write ``loss_figure(history, beta=beta)`` to ``path`` (PNG)."""
    return save_figure(loss_figure(history, beta=beta), pyplot(), path)


def plot_accuracy(history, path) -> Path:
    """Write ``accuracy_figure(history)`` to ``path`` (PNG)."""
    return save_figure(accuracy_figure(history), pyplot(), path)


def plot_lr(history, path) -> Path:
    """Write ``lr_figure(history)`` to ``path`` (PNG)."""
    return save_figure(lr_figure(history), pyplot(), path)


def loss_figure(history, *, beta: float | None = None):
    """Loss per step, raw and EWA-smoothed with bias correction (v_t/(1−βᵗ)); the validation loss at each
    epoch's last step; the best epoch (the θ early stopping kept) as a dashed vertical line.

    ``beta=None`` averages over about 1/20 of the run (β = 1 − 20/steps), at most the lecture's
    β = 0.98 (≈ 50 steps), so a short run's curve does not lag behind its data.
    """
    from .optim.ewa import ewa
    plt = pyplot()
    loss = np.asarray(history.step_loss, dtype=float)
    if beta is None:
        beta = round(min(0.98, max(0.5, 1 - 20 / max(len(loss), 1))), 3)
    steps = np.arange(1, len(loss) + 1)
    fig, ax = plt.subplots(figsize=(7, 4))
    ax.plot(steps, loss, color="0.75", linewidth=0.8, label="loss per step")
    finite = np.isfinite(loss)
    if finite.any():
        ax.plot(steps[finite], ewa(loss[finite], beta), color="C0", linewidth=1.8,
                label=f"EWA β={beta} (bias-corrected)")
    val = [e for e in history.epochs if "val_loss" in e]
    if val:
        ax.plot([e["step"] for e in val], [e["val_loss"] for e in val], color="C1", marker="o", markersize=3,
                linewidth=1.5, label="validation loss (end of epoch)")
    best = best_epoch(history)
    if best is not None:
        _mark_best(ax, best["step"], f"best epoch ({best['epoch']})")
    ax.set_xlabel("step")
    ax.set_ylabel("loss")
    if finite.any() and loss[finite].min() > 0 and loss[finite].max() / loss[finite].min() > 50:
        ax.set_yscale("log")
    ax.set_title("Training loss")
    ax.legend()
    ax.grid(alpha=0.3)
    return fig


def accuracy_figure(history):
    """Training vs validation accuracy per epoch (the gap shows over/underfitting), the best epoch marked."""
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(7, 4))
    for key, label in (("train_accuracy", "train"), ("val_accuracy", "validation")):
        values = [e[key] for e in history.epochs if key in e]
        epochs = [e["epoch"] for e in history.epochs if key in e]
        if values:
            ax.plot(epochs, values, marker="o", markersize=3, label=label)
    best = best_epoch(history) if ax.lines else None
    if best is not None:
        _mark_best(ax, best["epoch"], f"best epoch ({best['epoch']})")
    ax.set_xlabel("epoch")
    ax.xaxis.get_major_locator().set_params(integer=True)
    ax.set_ylabel("accuracy")
    ax.set_title("Accuracy per epoch")
    if ax.lines:
        ax.legend()
    else:
        ax.text(0.5, 0.5, "no epoch finished: training stopped inside the first one", ha="center",
                va="center", transform=ax.transAxes)
    ax.grid(alpha=0.3)
    return fig


def lr_figure(history):
    """Learning rate per step (the schedule as it was applied)."""
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(7, 3))
    ax.plot(np.arange(1, len(history.step_lr) + 1), history.step_lr, color="C2")
    ax.set_xlabel("step")
    ax.set_ylabel("learning rate")
    ax.set_title("Learning rate per step")
    ax.grid(alpha=0.3)
    return fig


def save_figure(fig, plt, path) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path
