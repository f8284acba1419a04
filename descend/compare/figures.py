"""Figures of a race: trajectories over the function's contours, f − f* per step, an animated GIF, and network curves."""
from __future__ import annotations

from pathlib import Path

import numpy as np

from ..plots import pyplot, save_figure

__all__ = ["trajectory_figure", "plot_trajectories", "plot_gap", "animate_trajectories", "network_figure",
           "plot_network"]


def _contours(ax, function, *, n=200):
    """The landscape: log10(f − min) as a shaded image plus 12 contour lines (the valleys the pictures are
    about); an image rather than filled contours because the GIF redraws it every frame."""
    (x_lo, x_hi), (y_lo, y_hi) = function.domain
    xs, ys = np.meshgrid(np.linspace(x_lo, x_hi, n), np.linspace(y_lo, y_hi, n))
    z = function.formula(xs, ys)
    z = np.log10(z - z.min() + 1e-3) if function.f_min is not None else z  # no minimum (saddle): f itself
    ax.imshow(z, extent=(x_lo, x_hi, y_lo, y_hi), origin="lower", cmap="Greys", alpha=0.45, aspect="auto",
              interpolation="bilinear")
    ax.contour(xs, ys, z, levels=12, colors="0.5", linewidths=0.5)
    ax.set_xlim(x_lo, x_hi)
    ax.set_ylim(y_lo, y_hi)


def trajectory_figure(race):
    """The contour plot: one line per optimizer through its recorded points (labelled with its name, with
    ``gid`` = the name), the shared start (black circle), each end (a cross in the line's colour), the
    known minima (white stars). Returns (fig, plt)."""
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(10, 6))
    f = race.function
    _contours(ax, f)
    for i, tr in enumerate(race.trajectories):
        color = f"C{i % 10}"
        line, = ax.plot(tr.points[:, 0], tr.points[:, 1], "-", color=color, linewidth=1.4, marker=".",
                        markersize=3, label=f"{tr.name} ({_short(tr)})")
        line.set_gid(tr.name)
        ax.plot(tr.points[-1, 0], tr.points[-1, 1], "x", color=color, markersize=9, markeredgewidth=2)
    ax.plot(*race.start, "o", color="black", markersize=7, label="start", zorder=5)
    for j, m in enumerate(f.minima):
        ax.plot(*m, "*", color="white", markeredgecolor="black", markersize=15, zorder=5,
                label="minimum" if j == 0 else None)
    ax.set_xlabel("x")
    ax.set_ylabel("y")
    ax.set_title(f"{f.name}: {f.latex}", fontsize=10)
    ax.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.01, 1.0))  # outside: "best" is slow and may hide a path
    return fig, plt


def _short(tr) -> str:
    if tr.outcome == "reached":
        return f"f − f* < target at step {tr.steps_to_target}"
    if tr.outcome == "diverged":
        return f"diverged at step {tr.steps}"
    return tr.outcome


def plot_trajectories(race, path) -> Path:
    fig, plt = trajectory_figure(race)
    return save_figure(fig, plt, path)


def plot_gap(race, path) -> Path:
    """log-scale f − f* per step (f itself, linear, when f* is unknown), one line per optimizer."""
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(7.5, 4.5))
    has_min = race.function.f_min is not None
    for i, tr in enumerate(race.trajectories):
        gap = race.gap(tr)
        if has_min:  # an exact 0 (Newton on a quadratic) is drawn at the smallest positive double
            gap = np.maximum(gap, np.finfo(float).tiny)
        ax.plot(np.arange(len(gap)), gap, color=f"C{i % 10}", label=tr.name + (" (diverged)" if tr.outcome == "diverged" else ""))
    if has_min:
        ax.set_yscale("log")
        ax.axhline(race.target, color="0.3", linestyle=":", linewidth=1, label=f"target {race.target:g}")
        ax.set_ylabel("f(θ) − f*")
    else:
        ax.set_ylabel("f(θ)")
    ax.set_xlabel("step")
    ax.set_title(f"{race.function.name}: progress per step")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    return save_figure(fig, plt, path)


def animate_trajectories(race, path, *, frames: int = 30, fps: int = 8, dpi: int = 60) -> Path:
    """An animated GIF of the trajectories drawn step by step (matplotlib's animation, written by Pillow)."""
    from matplotlib.animation import FuncAnimation, PillowWriter
    fig, plt = trajectory_figure(race)
    ax = fig.axes[0]
    lines = [ln for ln in ax.get_lines() if ln.get_gid() in {tr.name for tr in race.trajectories}]
    longest = max(tr.steps for tr in race.trajectories)
    ks = np.unique(np.linspace(0, longest, min(frames, longest + 1)).astype(int))

    def draw(k):
        for ln, tr in zip(lines, race.trajectories):
            ln.set_data(tr.points[:k + 1, 0], tr.points[:k + 1, 1])
        ax.set_title(f"{race.function.name}: step {k}", fontsize=10)
        return lines

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    FuncAnimation(fig, draw, frames=ks, blit=False).save(path, writer=PillowWriter(fps=fps), dpi=dpi)
    plt.close(fig)
    return path


def network_figure(race):
    """Training loss vs epoch, loss vs seconds and validation accuracy vs epoch, one line per optimizer on
    shared axes. Returns (fig, plt)."""
    plt = pyplot()
    fig, axes = plt.subplots(1, 3, figsize=(14, 4.2))
    for i, run in enumerate(race.runs):
        c, lab = f"C{i % 10}", f"{run.name} (lr {run.lr:g})"
        axes[0].plot(run.epochs, run.train_loss, color=c, label=lab + " train")
        axes[0].plot(run.epochs, run.val_loss, color=c, linestyle="--", label=lab + " val")
        axes[1].plot(run.seconds, run.val_loss, color=c, label=lab)
        axes[2].plot(run.epochs, run.val_accuracy, color=c, marker="o", markersize=3, label=lab)
    axes[0].set(xlabel="epoch", ylabel="loss", title="loss vs epoch (— train, -- validation)")
    axes[1].set(xlabel="seconds", ylabel="validation loss", title="validation loss vs wall time")
    axes[2].set(xlabel="epoch", ylabel="validation accuracy", title="validation accuracy")
    if race.target_loss is not None:
        for ax in axes[:2]:
            ax.axhline(race.target_loss, color="0.3", linestyle=":", linewidth=1)
    for ax in axes:
        ax.grid(alpha=0.3)
    axes[0].set_yscale("log")
    axes[1].set_yscale("log")
    axes[2].legend(fontsize=8)
    axes[0].legend(fontsize=7)
    return fig, plt


def plot_network(race, path) -> Path:
    fig, plt = network_figure(race)
    return save_figure(fig, plt, path)
