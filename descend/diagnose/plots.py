"""Figures of the babysitting checks: activation histograms per layer, the LR sweep, update ratios, init regimes.

Matplotlib is imported lazily with the Agg backend (as in ``descend.plots``); each function writes a PNG
and returns its path.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from ..plots import pyplot, save_figure

__all__ = ["plot_activation_histograms", "plot_lr_range", "plot_update_ratios", "plot_init_experiment"]


def plot_activation_histograms(report, path, *, title: str = "Activations per layer") -> Path:
    """One histogram per layer of an ``ActivationReport``, with its mean, std and saturation/dead fraction."""
    plt = pyplot()
    layers = report.layers
    n = max(len(layers), 1)
    fig, axes = plt.subplots(1, n, figsize=(2.4 * n + 0.6, 2.6), squeeze=False)
    for ax, s in zip(axes[0], layers):
        values = s.sample[np.isfinite(s.sample)]
        ax.hist(values, bins=50, color="C0")
        extra = f"\nsat {s.saturated:.0%}" if s.saturated is not None else (
            f"\ndead {s.dead:.0%}" if s.dead is not None else "")
        ax.set_title(f"{s.name} ({s.kind})\nμ={s.mean:.2g} σ={s.std:.2g}{extra}", fontsize=8)
        ax.tick_params(labelsize=7)
        ax.set_yticks([])
    fig.suptitle(title, fontsize=10)
    return save_figure(fig, plt, path)


def plot_lr_range(result, path) -> Path:
    """Loss against learning rate (log axis) for an ``LRRangeResult``, with the minimum, suggestion and configured lr."""
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(7, 4))
    ax.plot(result.lrs, result.losses, color="0.75", linewidth=0.8, label="loss per step")
    finite = np.isfinite(result.smoothed)
    ax.plot(result.lrs[finite], result.smoothed[finite], color="C0", linewidth=1.8, label="smoothed")
    ax.axvline(result.min_loss_lr, color="C3", linestyle=":", label=f"minimum at {result.min_loss_lr:.2g}")
    ax.axvline(result.suggested_lr, color="C2", linestyle="--", label=f"suggested {result.suggested_lr:.2g}")
    if result.lr is not None:
        ax.axvline(result.lr, color="C1", linewidth=2, label=f"configured {result.lr:.2g}")
    ax.set_xscale("log")
    top = np.nanmax(np.where(finite, result.smoothed, np.nan)) if finite.any() else 1.0
    ax.set_ylim(0, 1.3 * top)
    ax.set_xlabel("learning rate")
    ax.set_ylabel("loss")
    ax.set_title("Learning-rate range test")
    ax.legend(fontsize=8)
    ax.grid(alpha=0.3)
    return save_figure(fig, plt, path)


def plot_update_ratios(report, path, *, low: float = 1e-4, high: float = 3e-2) -> Path:
    """Bar chart of ‖Δθ‖/‖θ‖ per parameter tensor on a log axis, with the ~1e-3 rule and the verdict band."""
    plt = pyplot()
    layers = [u for u in report.layers if np.isfinite(u.ratio) and u.ratio > 0]
    fig, ax = plt.subplots(figsize=(7, 3.2))
    ax.bar([u.name for u in layers], [u.ratio for u in layers], color=["C0" if u.kind == "weight" else "C7" for u in layers])
    ax.axhline(1e-3, color="C2", label="1e-3 rule of thumb")
    ax.axhspan(low, high, color="C2", alpha=0.1, label="accepted band")
    ax.set_yscale("log")
    ax.set_ylabel("‖Δθ‖ / ‖θ‖ per step")
    ax.set_title(f"Update-to-parameter ratios (lr {report.lr:g})")
    ax.tick_params(axis="x", labelrotation=45, labelsize=8)
    ax.legend(fontsize=8)
    return save_figure(fig, plt, path)


def plot_init_experiment(reports: dict, path) -> Path:
    """The lecture's figure: per regime, activation mean/std by layer and a histogram per layer."""
    plt = pyplot()
    names = list(reports)
    depth = max(len(r.layers) for r in reports.values())
    fig, axes = plt.subplots(len(names), depth + 1, figsize=(1.6 * depth + 3.5, 2.0 * len(names)), squeeze=False)
    for row, name in zip(axes, names):
        rep = reports[name]
        ax = row[0]
        x = np.arange(1, len(rep.layers) + 1)
        ax.plot(x, [s.std for s in rep.layers], marker="o", markersize=3, label="std")
        ax.plot(x, [s.mean for s in rep.layers], marker="o", markersize=3, label="mean")
        ax.set_yscale("symlog", linthresh=1e-3)
        ax.set_title(f"{name}: {rep.problem or 'healthy'}", fontsize=9)
        ax.set_xlabel("layer", fontsize=8)
        ax.tick_params(labelsize=7)
        ax.legend(fontsize=7)
        for ax, s in zip(row[1:], rep.layers):
            ax.hist(s.sample, bins=40, range=(-1, 1), color="C0")
            ax.set_title(f"σ={s.std:.1g}", fontsize=8)
            ax.set_yticks([])
            ax.tick_params(labelsize=6)
        for ax in row[1 + len(rep.layers):]:
            ax.axis("off")
    fig.suptitle("10-layer tanh network, 500 units, unit-Gaussian input: activations per layer", fontsize=10)
    return save_figure(fig, plt, path)
