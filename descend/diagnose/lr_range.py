"""Learning-rate range test: raise the lr exponentially over a few hundred steps and watch the loss.

Smith 2017 ("Cyclical learning rates", the "LR range test"); CS231n's coarse search over lr on a
log scale in one run. At step t of T the lr is lr_min·(lr_max/lr_min)^(t/(T−1)); the loss is
smoothed with a bias-corrected EWA (β = 0.9 by default; run forward and backward
for the final curve, so the smoothing does not shift the minimum to larger lrs). The sweep stops when the smoothed loss
exceeds ``diverge`` × its minimum (or is NaN). The suggested lr is a tenth of the lr at the
minimum of the smoothed loss — below the edge of divergence, where the loss still falls fast.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from .. import data as D
from ..nn import functional as F
from .checks import Probe

__all__ = ["LRRangeResult", "lr_range_test"]


@dataclass
class LRRangeResult:
    """The sweep (lrs, raw and smoothed losses), its minimum, where it diverged, and the suggested lr.

    With ``lr`` (the configured learning rate) given, ``problem`` is "lr_too_high" when lr is above
    the lr of the smoothed minimum (or beyond the divergence point), "lr_too_low" when it is below
    ``suggested / low_factor`` on a sweep whose loss clearly fell; else None.
    """

    lrs: np.ndarray = field(repr=False)
    losses: np.ndarray = field(repr=False)
    smoothed: np.ndarray = field(repr=False)
    min_loss_lr: float
    suggested_lr: float
    diverged_at: float | None
    lr: float | None
    ok: bool
    problem: str | None
    verdict: str


def _ewa(x: np.ndarray, beta: float) -> np.ndarray:
    out, v = np.empty(len(x)), 0.0
    for t, value in enumerate(x, 1):
        v = beta * v + (1 - beta) * value
        out[t - 1] = v / (1 - beta ** t)
    return out


def lr_range_test(model, X, y, *, optimizer, loss=F.cross_entropy, lr_min: float = 1e-6, lr_max: float = 10.0,
                  steps: int = 200, batch_size: int = 32, beta: float = 0.9, diverge: float = 4.0,
                  lr: float | None = None, low_factor: float = 30.0, seed: int = 0) -> LRRangeResult:
    """Sweep the learning rate from ``lr_min`` to ``lr_max`` over ``steps`` mini-batch steps.

    θ and the optimizer's state are restored afterwards. ``lr``: the learning rate the run is
    configured with, judged against the sweep (defaults to ``optimizer.lr``).
    """
    if not 0 < lr_min < lr_max:
        raise ValueError(f"lr_range_test needs 0 < lr_min < lr_max, got lr_min={lr_min}, lr_max={lr_max}")
    if steps < 10:
        raise ValueError(f"lr_range_test needs at least 10 steps for a sweep, got steps={steps}")
    X, y = D.check_Xy(X, y)
    rng = np.random.default_rng(seed)
    n = len(X)
    bs = min(batch_size or n, n)
    slices = D.batch_slices(n, bs)
    lrs, raw, smooth = [], [], []
    v, best, diverged_at = 0.0, math.inf, None
    order, b = None, len(slices)
    with Probe(model, optimizer, loss) as probe:
        for t in range(steps):
            rate = lr_min * (lr_max / lr_min) ** (t / (steps - 1))
            if b == len(slices):
                order, b = D.epoch_order(n, rng=rng), 0
            idx = order[slices[b]]
            b += 1
            value = probe.step(D.take(X, idx), y[idx], rate)
            lrs.append(rate)
            raw.append(value)
            if not math.isfinite(value):
                smooth.append(math.inf)
                diverged_at = rate
                break
            v = beta * v + (1 - beta) * value
            s = v / (1 - beta ** (t + 1))
            smooth.append(s)
            best = min(best, s)
            if t > 10 and s > diverge * best:
                diverged_at = rate
                break
    lrs, raw = np.array(lrs), np.array(raw)
    # the online EWA lags ~1/(1−β) steps — a factor (lr_max/lr_min)^(lag/steps) in lr — so the minimum
    # is located on a zero-phase smoothing (the EWA run forward, then backward over the finite prefix)
    smooth = np.full(len(raw), np.inf)
    k = len(raw) if np.all(np.isfinite(raw)) else int(np.flatnonzero(~np.isfinite(raw))[0])
    if k:
        smooth[:k] = _ewa(_ewa(raw[:k], beta)[::-1], beta)[::-1]
    finite = np.isfinite(smooth)
    i_min = int(np.argmin(np.where(finite, smooth, np.inf)))
    min_lr = float(lrs[i_min])
    suggested = min_lr / 10
    lr = float(lr if lr is not None else getattr(optimizer, "lr", math.nan))
    fell = smooth[i_min] < 0.8 * smooth[0]
    sweep = (f"LR range test ({len(lrs)} steps, lr {lr_min:g} → {lrs[-1]:.3g}): smoothed loss "
             f"{smooth[0]:.3g} → minimum {smooth[i_min]:.3g} at lr {min_lr:.3g}"
             + (f", diverged at lr {diverged_at:.3g}" if diverged_at else "")
             + f"; suggested lr {suggested:.3g}")
    if not math.isfinite(lr):
        return LRRangeResult(lrs, raw, smooth, min_lr, suggested, diverged_at, None, True, None, sweep)
    if fell and (lr > min_lr or (diverged_at is not None and lr >= diverged_at)):
        return LRRangeResult(lrs, raw, smooth, min_lr, suggested, diverged_at, lr, False, "lr_too_high",
                             f"{sweep}. The configured lr {lr:g} is past the loss minimum, where the loss rises "
                             f"again: too high — try about {suggested:.2g}")
    if fell and lr < suggested / low_factor:
        return LRRangeResult(lrs, raw, smooth, min_lr, suggested, diverged_at, lr, False, "lr_too_low",
                             f"{sweep}. The configured lr {lr:g} is more than {low_factor:g}× below the suggestion, "
                             f"where the loss barely moves: too low — try about {suggested:.2g}")
    if not fell:
        return LRRangeResult(lrs, raw, smooth, min_lr, suggested, diverged_at, lr, True, None,
                             f"{sweep}. The loss never fell clearly during the sweep, so it says little about "
                             f"the configured lr {lr:g}")
    return LRRangeResult(lrs, raw, smooth, min_lr, suggested, diverged_at, lr, True, None,
                         f"{sweep}. The configured lr {lr:g} is in the range where the loss falls")
