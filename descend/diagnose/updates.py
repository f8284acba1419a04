"""Gradient norms and update-to-parameter ratios per layer (CS231n: the ratio should be around 1e-3).

For each weight tensor W: ratio = ‖ΔW‖ / ‖W‖, the size of one optimizer step relative to the
weights it moves. CS231n ("Training Neural Networks I", babysitting): "ratio between the updates
and values: ~0.0002 / 0.02 = 1e-3, about okay — want this to be somewhere around 0.001 or so".
Much higher → the learning rate is too high; much lower → too low.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from .. import data as D
from ..nn import functional as F
from .checks import Probe

__all__ = ["LayerUpdate", "UpdateReport", "update_ratios"]


@dataclass
class LayerUpdate:
    """One parameter tensor: ‖θ‖ before, mean ‖g‖ and ‖Δθ‖ per step, and ratio = mean ‖Δθ‖ / ‖θ‖."""

    name: str
    kind: str
    param_norm: float
    grad_norm: float
    update_norm: float
    ratio: float


@dataclass
class UpdateReport:
    """Per-tensor gradient and update norms; ``ratio`` is the median update/weight ratio of the weight tensors.

    ``problem``: None, "update_too_large" (lr too high), "update_too_small" (lr too low),
    "nonfinite_gradient" or "zero_gradient" (a weight tensor receives no gradient at all).
    """

    layers: list
    ratio: float
    lr: float
    steps: int
    ok: bool
    problem: str | None
    verdict: str


def update_ratios(model, X, y, *, optimizer, loss=F.cross_entropy, steps: int = 5, batch_size: int = 32,
                  lr: float | None = None, low: float = 1e-4, high: float = 3e-2, seed: int = 0) -> UpdateReport:
    """Take ``steps`` optimizer steps on mini-batches of (X, y) and measure, per parameter tensor,
    ‖g‖ and ‖Δθ‖ per step against ‖θ‖; θ and the optimizer's state are restored afterwards.

    The verdict looks at the median ratio over weight tensors (biases start at 0, so their ratio
    says nothing): above ``high`` → "update_too_large", below ``low`` → "update_too_small"
    (the 1e-3 rule of thumb with a generous band: adaptive methods start a little above it).
    """
    X, y = D.check_Xy(X, y)
    rng = np.random.default_rng(seed)
    with Probe(model, optimizer, loss) as probe:
        params = probe.params
        layout = params.layout
        lr = float(lr if lr is not None else optimizer.lr)
        before = {e.name: float(np.linalg.norm(params.theta[e.slice])) for e in layout}
        grads = {e.name: 0.0 for e in layout}
        moves = {e.name: 0.0 for e in layout}
        prev = params.theta.copy()
        finite = True
        for _ in range(steps):
            idx = rng.choice(len(X), size=min(batch_size, len(X)), replace=False)
            probe.step(D.take(X, idx), y[idx], lr)
            g = params.grad
            finite = finite and bool(np.all(np.isfinite(g)))
            for e in layout:
                grads[e.name] += float(np.linalg.norm(g[e.slice])) / steps
                moves[e.name] += float(np.linalg.norm(params.theta[e.slice] - prev[e.slice])) / steps
            np.copyto(prev, params.theta)
    layers = [LayerUpdate(e.name, e.kind, before[e.name], grads[e.name], moves[e.name],
                          moves[e.name] / before[e.name] if before[e.name] > 0 else math.inf) for e in layout]
    weights = [u for u in layers if u.kind == "weight"] or layers
    ratios = [u.ratio for u in weights if math.isfinite(u.ratio)]
    ratio = float(np.median(ratios)) if ratios else math.nan
    spread = (f"update/weight ratio {ratio:.2g} (median over {len(weights)} weight tensors, "
              f"from {min(ratios):.2g} to {max(ratios):.2g}) at lr {lr:g}" if ratios else "")
    if not finite or not math.isfinite(ratio):
        return UpdateReport(layers, ratio, lr, steps, False, "nonfinite_gradient",
                            "the gradient has NaN/inf entries: the loss overflowed — the learning rate or the "
                            "initial weights are far too large")
    zero = [u.name for u in weights if u.grad_norm == 0.0]
    if zero:
        return UpdateReport(layers, ratio, lr, steps, False, "zero_gradient",
                            f"weights {zero} receive no gradient at all: dead units (ReLUs that never fire) or a "
                            "detached part of the graph")
    if ratio > high:
        return UpdateReport(layers, ratio, lr, steps, False, "update_too_large",
                            f"{spread}: far above the ~1e-3 rule of thumb — every step rewrites a sizeable part "
                            "of the weights; the learning rate is too high")
    if ratio < low:
        return UpdateReport(layers, ratio, lr, steps, False, "update_too_small",
                            f"{spread}: far below the ~1e-3 rule of thumb — the weights barely move; the learning "
                            "rate is too low")
    return UpdateReport(layers, ratio, lr, steps, True, None, f"{spread}: within the band around the ~1e-3 rule of thumb")
