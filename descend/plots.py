"""Matplotlib figures of a run (imported lazily: ``import descend`` never loads matplotlib).

Each function takes a ``History`` and a path, draws with the non-interactive Agg backend and
writes a PNG.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np


def pyplot():
    import matplotlib
    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt
    return plt


def plot_loss(history, path, *, beta: float | None = None) -> Path:
    """Loss per step, raw and EWA-smoothed with bias correction (v_t/(1−βᵗ)).

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
    ax.set_xlabel("step")
    ax.set_ylabel("loss")
    if finite.any() and loss[finite].min() > 0 and loss[finite].max() / loss[finite].min() > 50:
        ax.set_yscale("log")
    ax.set_title("Training loss")
    ax.legend()
    ax.grid(alpha=0.3)
    return save_figure(fig, plt, path)


def plot_accuracy(history, path) -> Path:
    """Training vs validation accuracy per epoch (the gap shows over/underfitting)."""
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(7, 4))
    for key, label in (("train_accuracy", "train"), ("val_accuracy", "validation")):
        values = [e[key] for e in history.epochs if key in e]
        epochs = [e["epoch"] for e in history.epochs if key in e]
        if values:
            ax.plot(epochs, values, marker="o", markersize=3, label=label)
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
    return save_figure(fig, plt, path)


def plot_lr(history, path) -> Path:
    """Learning rate per step (the schedule as it was applied)."""
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(7, 3))
    ax.plot(np.arange(1, len(history.step_lr) + 1), history.step_lr, color="C2")
    ax.set_xlabel("step")
    ax.set_ylabel("learning rate")
    ax.set_title("Learning rate per step")
    ax.grid(alpha=0.3)
    return save_figure(fig, plt, path)


def save_figure(fig, plt, path) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path
