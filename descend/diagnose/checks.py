"""Babysitting checks (CS231n "Training Neural Networks I"): initial loss, overfit a tiny subset, loss-curve and gap verdicts.

Each check returns a small dataclass with the numbers it measured, ``ok``, ``problem`` (None when
healthy, else a short code naming the fault) and ``verdict`` — one sentence in plain words.
Checks that take optimizer steps (``overfit_small_subset`` here, the update ratios and the LR range
test beside it) work on the model's packed θ and put θ, buffers, the optimizer's state and the
layers' generators back afterwards: looking must not change what is looked at.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from .. import data as D
from ..autodiff.tensor import no_grad
from ..nn import functional as F
from ..nn import pack
from ..train.objective import Objective
from ..train.state import generators

__all__ = ["InitialLossResult", "initial_loss_check", "OverfitResult", "overfit_small_subset",
           "LossCurveResult", "loss_curve_verdict", "GapResult", "gap_verdict", "Probe"]


# ------------------------------------------------------------------------------------------ probe


class Probe:
    """Take optimizer steps on a model's θ, then restore everything: θ, buffers, optimizer state, layer RNGs.

    ``with Probe(model, optimizer, loss) as p: p.step(xb, yb, lr)`` — the step is the loop's:
    zero the flat gradient, forward, loss (+ (λ/2m)·Σ‖W‖² when ``l2``), backward, ``optimizer.step``.
    """

    def __init__(self, model, optimizer, loss=F.cross_entropy, *, l2: float = 0.0, n: int = 1):
        self.model, self.optimizer, self.loss = model, optimizer, loss
        self.params = pack(model)
        self.objective = Objective(model, self.params, loss, l2=l2, m=n)

    def __enter__(self) -> "Probe":
        self._theta = self.params.theta.copy()
        self._buffers = {k: v.copy() for k, v in self.model.named_buffers()}
        self._opt = self.optimizer.state_dict()
        self._rngs = [g.bit_generator.state for g in generators(self.model).values()]
        self._training = self.model.training
        self.model.train()
        return self

    def __exit__(self, *exc):
        self.params.theta[...] = self._theta
        self.params.grad.fill(0)
        buffers = dict(self.model.named_buffers())
        for k, v in self._buffers.items():
            buffers[k][...] = v
        self.optimizer.load_state_dict(self._opt)
        for g, s in zip(generators(self.model).values(), self._rngs):
            g.bit_generator.state = s
        self.model.train(self._training)
        return False

    def step(self, xb, yb, lr: float | None = None) -> float:
        """One optimizer step on the batch; returns the objective before the update."""
        self.objective.batch(xb, yb)
        value = self.optimizer.step(self.params.theta, self.objective, lr=lr)
        self.last_output = self.objective.output
        return float(value)


def _eval_loss(model, X, y, loss) -> tuple[float, np.ndarray]:
    was = model.training
    model.eval()
    try:
        with no_grad():
            out = model(X)
            return float(loss(out, y).data), out.data
    finally:
        model.train(was)


# ---------------------------------------------------------------------------------- initial loss


@dataclass
class InitialLossResult:
    """The loss of the untrained model against ln C (softmax cross-entropy with small output weights).

    ``loss`` is the data loss; ``loss_with_l2`` adds (λ/2m)·Σ‖W‖² when ``l2`` > 0 (it must be larger).
    """

    loss: float
    expected: float
    num_classes: int
    loss_with_l2: float | None
    ok: bool
    problem: str | None
    verdict: str


def initial_loss_check(model, X, y, *, num_classes: int | None = None, l2: float = 0.0, n_train: int | None = None,
                       high: float = 1.5, low: float = 0.5) -> InitialLossResult:
    """Compare the untrained model's mean cross-entropy on (X, y) with ln C.

    With small output weights every class gets probability ≈ 1/C, so L₀ ≈ −ln(1/C) = ln C
    (CS231n: 2.302 for 10 classes). Verdicts: L₀ > ``high`` × ln C + 1 → the initial weights are too
    large (the + 1 leaves room for He-initialized output layers, which are not "small") (confident, random predictions; ``problem="init_loss_high"``); L₀ < ``low`` × ln C →
    suspiciously low (is the loss averaged, are labels leaking into the inputs?; ``"init_loss_low"``);
    with ``l2`` > 0 the objective must go up by (λ/2m)·Σ‖W‖² (m = ``n_train`` or len(X)) —
    ``"l2_not_added"`` otherwise.
    """
    X, y = D.check_Xy(X, y)
    C = int(num_classes or D.num_classes(y))
    if C < 2:
        raise ValueError(f"initial_loss_check needs at least 2 classes, got num_classes={C}")
    L0, _ = _eval_loss(model, X, y, F.cross_entropy)
    expected = math.log(C)
    with_l2 = None
    if l2:
        params = pack(model)
        m = n_train or len(X)
        penalty = sum(float(np.dot(params.theta[e.slice], params.theta[e.slice]))
                      for e in params.layout if e.kind == "weight")
        with_l2 = L0 + 0.5 * l2 / m * penalty
    base = f"initial loss {L0:.4g} vs ln C = ln {C} = {expected:.4g}"
    if not math.isfinite(L0) or L0 > high * expected + 1.0:
        return InitialLossResult(L0, expected, C, with_l2, False, "init_loss_high",
                                 f"{base}: far too high — the untrained network already makes confident (random) "
                                 "predictions, so the initial weights are too large; scale them down "
                                 "(He for ReLU, Xavier for tanh, small output layer)")
    if L0 < low * expected:
        return InitialLossResult(L0, expected, C, with_l2, False, "init_loss_low",
                                 f"{base}: suspiciously low for an untrained model — check that the loss is the "
                                 "mean over examples and that the labels do not leak into the inputs")
    if l2 and not with_l2 > L0:
        return InitialLossResult(L0, expected, C, with_l2, False, "l2_not_added",
                                 f"{base}, but with L2 λ={l2:g} the objective did not go up ({with_l2:.4g}); "
                                 "the regularization term is not being added")
    extra = f"; with L2 λ={l2:g} it rises to {with_l2:.4g}, as it must" if l2 else ""
    return InitialLossResult(L0, expected, C, with_l2, True, None, f"{base}: as expected{extra}")


# ------------------------------------------------------------------------------- overfit a subset


@dataclass
class OverfitResult:
    """Training on a tiny subset without regularization: the loss should reach ~0 and accuracy 100 %."""

    n: int
    steps: int
    initial_loss: float
    final_loss: float
    train_accuracy: float
    ok: bool
    problem: str | None
    verdict: str


def overfit_small_subset(model, X, y, *, optimizer, n: int = 20, steps: int = 300, target: float = 0.05,
                         loss=F.cross_entropy, seed: int = 0) -> OverfitResult:
    """Fit ``n`` training examples with full-batch steps and no regularization; θ is restored afterwards.

    CS231n: "make sure you can overfit very small portion of the training data" — 20 examples,
    regularization off, the loss should go to ~0 (below ``target``) with 100 % training accuracy.
    Failure (``problem="cannot_overfit"``) means a bug, too little capacity, or a learning rate
    far too low or too high. Stops early once the loss is below ``target``.
    """
    X, y = D.check_Xy(X, y)
    if n < 1:
        raise ValueError(f"overfit_small_subset: n must be ≥ 1, got {n}")
    rng = np.random.default_rng(seed)
    idx = np.sort(rng.choice(len(X), size=min(n, len(X)), replace=False))
    xb, yb = D.take(X, idx), y[idx]
    first = last = math.nan
    t = 0
    with Probe(model, optimizer, loss) as probe:
        for t in range(1, steps + 1):
            last = probe.step(xb, yb)
            if t == 1:
                first = last
            if not math.isfinite(last) or last < target:
                break
        final, out = _eval_loss(model, xb, yb, loss)
        # the last step's output was before its update: evaluate the final θ (eval mode, no dropout)
        acc = float(np.mean(out.argmax(axis=1) == yb))
    base = f"{len(idx)} examples, {t} full-batch steps: loss {first:.3g} → {final:.3g}, training accuracy {acc:.0%}"
    if math.isfinite(final) and final < target * 2 and acc == 1.0:
        return OverfitResult(len(idx), t, first, final, acc, True, None,
                             f"{base} — the model can memorize a tiny subset, as it should")
    return OverfitResult(len(idx), t, first, final, acc, False, "cannot_overfit",
                         f"{base} — it cannot overfit a tiny subset: a bug in the model or loss, too little "
                         "capacity, or a learning rate far too low (or too high)")


# ----------------------------------------------------------------------------------- loss curves


def _smooth(x: np.ndarray, beta: float) -> np.ndarray:
    """Bias-corrected exponentially weighted average v_t/(1 − βᵗ)."""
    out = np.empty_like(x, dtype=float)
    v = 0.0
    for t, value in enumerate(x, 1):
        v = beta * v + (1 - beta) * value
        out[t - 1] = v / (1 - beta ** t)
    return out


@dataclass
class LossCurveResult:
    """The shape of a training-loss curve (CS231n's loss-curve cartoons) and what it says.

    ``shape``: "explosion", "flat_start", "flat", "linear", "noisy", "healthy" or "too_short";
    ``drop``: relative decrease of the smoothed loss (1 − L_end/L_start); ``curvature``: drop in
    the first half ÷ drop in the second half (≫ 1 for the healthy exponential-looking curve,
    ≈ 1 for a straight line); ``noise``: std of the steps around the smoothed curve ÷ its level,
    over the second half.
    """

    shape: str
    drop: float
    curvature: float
    noise: float
    ok: bool
    problem: str | None
    verdict: str


def loss_curve_verdict(history, *, beta: float = 0.9, divergence: float = 3.0, flat: float = 0.03,
                       slow: float = 0.5, noisy: float = 0.5, min_steps: int = 20) -> LossCurveResult:
    """Read the per-step loss of a ``History`` the way CS231n reads loss curves.

    In order: NaN/inf or a loss above ``divergence`` × the initial one (or a run stopped for
    divergence) → explosion, lr too high (``problem="lr_too_high"``); a plateau over the first
    fifth followed by a real drop → flat start, bad initialization (``"bad_init"``); a smoothed
    decrease below ``flat`` → not learning at all (``"not_learning"``: lr far too low, or a bug);
    a decrease below ``slow`` that is about as steep at the end as at the start (a straight line)
    → lr too low (``"lr_too_low"``); residual noise above ``noisy`` × the level while still falling
    → mini-batch noise (ok, with advice); otherwise healthy.
    """
    loss = np.asarray(history.step_loss, dtype=float)
    stop = history.stop_reason or ""
    if len(loss) and (not np.all(np.isfinite(loss)) or "diverged" in stop
                      or (loss[0] > 0 and loss.max() > divergence * loss[0])):
        bad = np.flatnonzero(~np.isfinite(loss) | (loss > divergence * loss[0]))
        at = int(bad[0]) + 1 if len(bad) else len(loss)
        return LossCurveResult("explosion", math.nan, math.nan, math.nan, False, "lr_too_high",
                               f"the loss exploded (NaN/inf or > {divergence:g}× its initial value) at step {at}: "
                               "the learning rate is too high")
    if len(loss) < min_steps:
        return LossCurveResult("too_short", math.nan, math.nan, math.nan, True, None,
                               f"only {len(loss)} steps: too short to judge the loss curve")
    s = _smooth(loss, beta)
    k = max(len(s) // 10, 2)
    start, end = float(np.mean(loss[:k])), float(np.mean(s[-k:]))
    drop = 1 - end / start if start > 0 else 0.0
    half = len(s) // 2
    mid = float(np.mean(s[half - k // 2: half + k // 2 + 1]))
    d1, d2 = start - mid, mid - end
    curvature = d1 / d2 if d2 > 1e-12 else math.inf
    resid = loss[half:] - s[half:]
    level = float(np.mean(np.abs(s[half:]))) or 1.0
    noise = float(np.std(resid) / level)
    fifth = max(len(s) // 5, 2)
    early = 1 - float(np.mean(loss[max(fifth - k // 2, 0): fifth + k // 2 + 1])) / start if start > 0 else 0.0
    numbers = f"smoothed loss {start:.3g} → {end:.3g} ({drop:.0%} lower) over {len(loss)} steps"
    if early < flat and drop > 0.3:
        return LossCurveResult("flat_start", drop, curvature, noise, False, "bad_init",
                               f"{numbers}, but flat for the first {fifth} steps before it fell: "
                               "a bad initialization (the network first had to escape it)")
    if drop < flat:
        return LossCurveResult("flat", drop, curvature, noise, False, "not_learning",
                               f"{numbers}: the loss does not go down — the learning rate is far too low, "
                               "the gradients vanish, or the inputs carry no signal about the labels")
    if drop < slow and curvature < 2.0:
        return LossCurveResult("linear", drop, curvature, noise, False, "lr_too_low",
                               f"{numbers}, falling in a slow straight line (as steep at the end as at the "
                               f"start, ratio {curvature:.2g}): the learning rate is too low")
    if noise > noisy:
        return LossCurveResult("noisy", drop, curvature, noise, True, None,
                               f"{numbers}: falling but noisy (step-to-step spread {noise:.0%} of the level) — "
                               "mini-batch noise; a larger batch or learning-rate decay would smooth it")
    return LossCurveResult("healthy", drop, curvature, noise, True, None,
                           f"{numbers}: falls fast, then levels off — a good learning rate")


# --------------------------------------------------------------------------- train/validation gap


@dataclass
class GapResult:
    """Training vs validation accuracy (CS231n: "monitor the gap")."""

    train_accuracy: float
    val_accuracy: float
    gap: float
    chance: float
    ok: bool
    problem: str | None
    verdict: str


def gap_verdict(train_accuracy=None, val_accuracy=None, *, history=None, num_classes: int | None = None,
                chance: float | None = None, overfit_gap: float = 0.1, low_accuracy: float = 0.9,
                signal: float = 0.15) -> GapResult:
    """Judge the train/validation accuracy pair (from the arguments or the last epoch of ``history``).

    - validation accuracy within ``signal`` × (1 − chance) of chance while training accuracy is
      clearly above it → the labels do not match the inputs (shuffled labels, misaligned files):
      the model memorizes, nothing generalizes (``problem="no_signal"``);
    - gap train − val > ``overfit_gap`` → overfitting: more regularization (L2, dropout) or more
      data (``"overfitting"``);
    - small gap and training accuracy below ``low_accuracy`` → underfitting: increase capacity
      (wider/deeper) or train longer (``"underfitting"``).
    ``chance`` defaults to 1/C.
    """
    if history is not None:
        train_accuracy = history.last("train_accuracy") if train_accuracy is None else train_accuracy
        val_accuracy = history.last("val_accuracy") if val_accuracy is None else val_accuracy
    if history is not None and (train_accuracy is None or val_accuracy is None):
        return GapResult(math.nan, math.nan, math.nan, chance or math.nan, True, None,
                         "no finished epoch with training and validation accuracy: nothing to compare"
                         + (f" (the run stopped: {history.stop_reason})" if history.stop_reason else ""))
    if train_accuracy is None or val_accuracy is None:
        raise ValueError("gap_verdict needs train_accuracy and val_accuracy (or a history with validation); "
                         "pass validation=(X_val, y_val) to fit")
    if chance is None:
        if not num_classes:
            raise ValueError("gap_verdict needs num_classes (or chance=) to know what chance accuracy is")
        chance = 1.0 / num_classes
    tr, va = float(train_accuracy), float(val_accuracy)
    gap = tr - va
    nums = f"training accuracy {tr:.1%}, validation {va:.1%} (gap {gap:+.1%}, chance {chance:.1%})"
    near_chance = va < chance + signal * (1 - chance)
    if near_chance and tr > va + 0.05:
        return GapResult(tr, va, gap, chance, False, "no_signal",
                         f"{nums}: validation stays at chance while training accuracy rises — the model memorizes "
                         "and nothing generalizes; the labels do not match the inputs (shuffled or misaligned?)")
    if gap > overfit_gap:
        return GapResult(tr, va, gap, chance, False, "overfitting",
                         f"{nums}: a large gap — overfitting; add regularization (L2, dropout), "
                         "get more data or stop earlier")
    if tr < low_accuracy:
        return GapResult(tr, va, gap, chance, False, "underfitting",
                         f"{nums}: little gap but low accuracy — underfitting; increase the model's capacity "
                         "(wider or deeper) or train longer")
    return GapResult(tr, va, gap, chance, True, None, f"{nums}: no sign of over- or underfitting")
