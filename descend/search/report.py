"""What a finished search leaves: the trial table sorted by validation score, best.toml, and the figures.

``score_vs_dims.png``: validation score against each numeric dimension (log axis for log dimensions),
coloured by stage — the lecture's coarse-search picture; ``best_curves.png``: the best trials'
validation curves. ``best.toml`` is a training config that ``descend train --config`` accepts.
"""
from __future__ import annotations

import math
from pathlib import Path

from .trial import apply

__all__ = ["trial_table", "best_config", "write_report", "ranked"]


def ranked(trials: list[dict], *, maximize: bool) -> list[dict]:
    """Scored trials best first (ties in plan order), then diverged, failed and unfinished ones."""
    scored = [t for t in trials if t["score"] is not None]
    scored.sort(key=lambda t: -t["score"] if maximize else t["score"])
    order = {"done": 0, "diverged": 1, "failed": 2, "running": 3, "pending": 4}
    rest = sorted((t for t in trials if t["score"] is None), key=lambda t: (order[t["status"]], t["stage"], t["idx"]))
    return scored + rest


def _fmt(v) -> str:
    if isinstance(v, float):
        return f"{v:.4g}"
    return str(v)


def trial_table(trials: list[dict], *, metric: str, maximize: bool, limit: int | None = None) -> str:
    """A plain-text table of the trials, best validation score first."""
    rows = ranked(trials, maximize=maximize)[:limit]
    keys = list(rows[0]["params"]) if rows else []
    head = ["stage", "trial", *keys, "status", metric, "epochs", "note"]
    body = []
    for t in rows:
        note = (f"diverged at step {t['diverged_step']}" if t["status"] == "diverged"
                else (t["error"] or "")[:60] if t["status"] == "failed" else "")
        body.append([str(t["stage"]), str(t["idx"]), *(_fmt(t["params"][k]) for k in keys), t["status"],
                     "—" if t["score"] is None else f"{t['score']:.4f}", str(t["epochs"] or ""), note])
    widths = [max(len(r[i]) for r in [head] + body) for i in range(len(head))]
    return "\n".join("  ".join(c.ljust(w) for c, w in zip(r, widths)).rstrip() for r in [head] + body)


def best_config(base_cfg: dict, trials: list[dict], *, maximize: bool) -> dict | None:
    """The training config of the best trial: the base config with its values (the base's epochs and seed)."""
    best = ranked(trials, maximize=maximize)
    if not best or best[0]["score"] is None:
        return None
    return apply(base_cfg, best[0]["params"])


def write_report(folder, base_cfg: dict, trials: list[dict], *, metric: str, maximize: bool, space,
                 best_curves: int = 5) -> list[Path]:
    """Write trials.txt, best.toml (when any trial scored) and the two figures into ``folder``; the paths written."""
    import tomli_w
    folder = Path(folder)
    written = []
    (folder / "trials.txt").write_text(trial_table(trials, metric=metric, maximize=maximize) + "\n")
    written.append(folder / "trials.txt")
    cfg = best_config(base_cfg, trials, maximize=maximize)
    if cfg is not None:
        (folder / "best.toml").write_text(tomli_w.dumps(cfg))
        written.append(folder / "best.toml")
    written += _plots(folder, trials, metric=metric, maximize=maximize, space=space, best_curves=best_curves)
    return written


def _plots(folder: Path, trials, *, metric, maximize, space, best_curves) -> list[Path]:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    numeric = space.numeric()
    scored = [t for t in trials if t["score"] is not None and math.isfinite(t["score"])]
    out = []
    if numeric:
        fig, axes = plt.subplots(1, len(numeric), figsize=(4.2 * len(numeric), 3.6), squeeze=False)
        stages = sorted({t["stage"] for t in trials})
        cmap = plt.get_cmap("viridis", max(len(stages), 2))
        for ax, (key, dim) in zip(axes[0], numeric.items()):
            for s in stages:
                pts = [t for t in scored if t["stage"] == s]
                ax.scatter([t["params"][key] for t in pts], [t["score"] for t in pts], s=18, color=cmap(s),
                           label=f"stage {s + 1}")
            if dim.log:
                ax.set_xscale("log", base=2 if type(dim).__name__ == "PowersOfTwo" else 10)
            ax.set_xlabel(key)
            ax.set_ylabel(f"validation {metric.removeprefix('val_')}")
            ax.grid(alpha=0.3)
        axes[0][0].legend(fontsize=8)
        fig.suptitle("search: validation score per dimension, by stage")
        fig.tight_layout()
        fig.savefig(folder / "score_vs_dims.png", dpi=110)
        plt.close(fig)
        out.append(folder / "score_vs_dims.png")
    best = ranked(scored, maximize=maximize)[:best_curves]
    if best:
        fig, ax = plt.subplots(figsize=(6, 4))
        for t in best:
            curve = [c for c in t["curve"] if c.get(metric) is not None]
            label = f"s{t['stage'] + 1}#{t['idx']} " + ", ".join(f"{k.split('.')[-1]}={_fmt(v)}"
                                                                for k, v in t["params"].items())
            ax.plot([c["epoch"] for c in curve], [c[metric] for c in curve], marker=".", label=label[:60])
        ax.set_xlabel("epoch")
        ax.set_ylabel(f"validation {metric.removeprefix('val_')}")
        ax.set_title(f"the {len(best)} best trials")
        ax.legend(fontsize=7)
        ax.grid(alpha=0.3)
        fig.tight_layout()
        fig.savefig(folder / "best_curves.png", dpi=110)
        plt.close(fig)
        out.append(folder / "best_curves.png")
    return out
