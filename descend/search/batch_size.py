"""The batch-size finder: the lecture rule (m ≤ 2,000 → the full batch) and, above it, measured powers of two.

Ng (and the self-driving-cars lesson): with up to ~2,000 training examples use batch gradient
descent; otherwise a power of two (64, 128, 256, 512) that fits in memory. Above the threshold
``find_batch_size`` trains a fresh model for a fixed time budget at each power of two from 16 to
4,096 that fits the memory budget and the data, measures throughput (examples/s) and the validation
loss reached, and recommends the size with the lowest validation loss (the faster one on a tie).
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from ..config import build_model, build_optimizer, prepare_data

__all__ = ["FULL_BATCH_LIMIT", "CANDIDATES", "BatchSizeReport", "lecture_rule", "find_batch_size",
           "resolve_batch_size"]

FULL_BATCH_LIMIT = 2000
CANDIDATES = tuple(2 ** k for k in range(4, 13))  # 16 … 4,096


def lecture_rule(m: int) -> str:
    """What the lecture says for ``m`` training examples, in words."""
    if m <= FULL_BATCH_LIMIT:
        return f"m = {m} ≤ {FULL_BATCH_LIMIT}: use the full batch (batch gradient descent)"
    return f"m = {m} > {FULL_BATCH_LIMIT}: use a power of two that fits in memory (64, 128, 256, 512)"


@dataclass
class BatchSizeReport:
    """The recommendation, the rule and, above the threshold, one measurement per batch size."""

    m: int
    recommended: int | str  # "full" or a power of two
    rule: str
    rows: list = field(default_factory=list)  # {batch_size, steps, examples_per_s, val_loss, memory_mb}

    def render(self) -> str:
        lines = [f"rule: {self.rule}"]
        if self.rows:
            lines.append(f"{'batch':>6} {'steps':>7} {'examples/s':>11} {'val_loss':>9} {'memory MB':>10}")
            for r in self.rows:
                mark = "  ← recommended" if r["batch_size"] == self.recommended else ""
                lines.append(f"{r['batch_size']:>6} {r['steps']:>7} {r['examples_per_s']:>11.0f} "
                             f"{r['val_loss']:>9.4f} {r['memory_mb']:>10.2f}{mark}")
        lines.append(f"recommended: batch_size = {self.recommended!r}")
        return "\n".join(lines)


def _memory_mb(model_widths: list[int], batch: int, n_params: int) -> float:
    """A batch's working memory: activations and their gradients (float32, ×2 for the graph) plus θ-sized buffers."""
    return (batch * sum(model_widths) * 4 * 4 + n_params * 4 * 4) / 2 ** 20


def find_batch_size(cfg: dict, *, time_budget: float = 1.0, memory_budget_mb: float = 1024.0, data=None,
                    candidates=CANDIDATES) -> BatchSizeReport:
    """The lecture rule for the config's training split, measured above ``FULL_BATCH_LIMIT`` examples.

    Each candidate trains a fresh model (the config's seed) for ``time_budget`` seconds (wall clock);
    its validation loss then, and its throughput, are recorded. Candidates larger than the training
    set or than ``memory_budget_mb`` are skipped.
    """
    from ..train import TimeLimit, evaluate, fit
    if not time_budget > 0:
        raise ValueError(f"time_budget = {time_budget!r} must be > 0 seconds")
    X, y, Xv, yv, _, _, num_classes, preprocess = prepare_data(cfg, data)
    m = len(X)
    rule = lecture_rule(m)
    if m <= FULL_BATCH_LIMIT:
        return BatchSizeReport(m, "full", rule)
    t = cfg["train"]
    # warm-up: the first fit compiles the Numba kernels, which is no batch size's cost
    fit(build_model(cfg, X.shape[1:], num_classes, np.random.default_rng(t["seed"])), X, y,
        optimizer=build_optimizer(cfg), steps=2, batch_size=min(candidates[0], m), seed=t["seed"])
    rows = []
    for b in candidates:
        model = build_model(cfg, X.shape[1:], num_classes, np.random.default_rng(t["seed"]))
        from ..nn import pack
        n_params = pack(model).theta.size
        widths = [int(np.prod(X.shape[1:]))] + list(cfg["model"]["hidden"]) + [num_classes]
        mem = _memory_mb(widths, b, n_params)
        if b > m or mem > memory_budget_mb:
            continue
        prep = type(preprocess)() if preprocess is not None else None
        history = fit(model, X, y, optimizer=build_optimizer(cfg), epochs=10 ** 6, batch_size=b, l2=t["l2"],
                      stopping=[TimeLimit(time_budget)], divergence=t["divergence"] or None, seed=t["seed"],
                      preprocess=prep)
        val = evaluate(model, Xv, yv)["loss"]
        rows.append({"batch_size": b, "steps": history.steps,
                     "examples_per_s": history.steps * b / max(history.elapsed, 1e-9),
                     "val_loss": float(val) if math.isfinite(val) else math.inf, "memory_mb": mem})
    if not rows:
        raise ValueError(f"no batch size from {candidates[0]} to {candidates[-1]} fits {memory_budget_mb:g} MB; "
                         "raise the memory budget")
    best = min(rows, key=lambda r: (r["val_loss"], -r["examples_per_s"]))
    return BatchSizeReport(m, best["batch_size"], rule, rows)


def resolve_batch_size(cfg: dict, *, time_budget: float = 1.0) -> dict:
    """``cfg`` with ``train.batch_size = "auto"`` replaced by the finder's choice (other values unchanged)."""
    if cfg["train"]["batch_size"] != "auto":
        return cfg
    out = {**cfg, "train": {**cfg["train"], "batch_size": find_batch_size(cfg, time_budget=time_budget).recommended}}
    return out
