"""fit: the one training loop — mini-batches, the schedule's clock, L2, validation, stopping, checkpoints.

One step (DESIGN.md): take a float32 batch of this epoch's shuffled order, ask the schedule for
the learning rate, let the optimizer call the closure (zero grad → forward → loss + L2 →
backward into the flat gradient) and update θ in place, then let the history, stopping rules and
callbacks observe.
"""
from __future__ import annotations

import copy
import math
import signal
import threading
import time
import warnings
from dataclasses import dataclass, field
from typing import Callable, Sequence

import numpy as np

from .. import data as D
from ..data.preprocess import from_state_dict as from_preprocess_state
from ..autodiff.tensor import no_grad
from ..nn import functional as F
from ..nn import BatchNorm1d, Dropout
from ..nn.params import Params, pack
from ..optim.base import Optimizer
from . import checkpoint as ckpt
from .evaluate import _CLASSIFICATION, _correct, evaluate
from .history import History
from .stopping import AnyOf, Divergence, EarlyStopping, MaxEpochs, MaxSteps, TimeLimit

__all__ = ["fit", "FitState"]

# Replay instead of copies for divergence's last good θ (see fit): an anchor at least every ANCHOR_SECONDS of
# training bounds a replay to about twice that, whatever the model; an epoch of fewer batches than
# REPLAY_MIN_BATCHES (full-batch methods) keeps copies.
ANCHOR_SECONDS = 2.0
REPLAY_MIN_BATCHES = 8


def _anchor_due(steps: int, seconds: float) -> bool:
    """Whether to take an anchor mid-epoch, ``steps`` steps and ``seconds`` seconds after the last one."""
    return seconds >= ANCHOR_SECONDS

@dataclass
class FitState:
    """What callbacks observe: the model and its θ, the optimizer, the history and the loop's clock.

    ``lr_scale`` (reduce-on-plateau) is the one thing a callback may change.
    """

    model: object
    params: Params
    optimizer: object
    history: History
    epoch: int = 0
    step: int = 0
    batch: int = 0
    batches_per_epoch: int = 0
    total_steps: int | None = None
    lr: float = 0.0
    lr_scale: float = 1.0
    last_loss: float = math.nan
    order: np.ndarray | None = None
    stop: bool = False
    save: Callable | None = field(default=None, repr=False)


def _on_disk(params: Params, arrays: dict, convert) -> dict:
    """``arrays`` with ``convert`` (``params.canonical`` to save, ``params.from_canonical`` to load) applied
    to those indexed by θ — θ itself, the last good and best θ, and optimizer and callback arrays whose last
    axis has θ's length — so that a checkpoint holds every parameter row-major whatever θ's own order."""
    n = params.theta.size
    return {k: convert(v) if ((k in ("theta", "good.theta", "best.theta") or k.startswith(("optimizer.", "callback")))
                              and v.ndim and v.shape[-1] == n) else v
            for k, v in arrays.items()}


def _packed(model, dtype) -> Params:
    params = getattr(model, "_packed_params", None)
    if params is None or params.theta.dtype != dtype or not all(p._packed for p in model.parameters()):
        params = pack(model, dtype=dtype)
        object.__setattr__(model, "_packed_params", params)
    return params


def _output_width(model, x) -> int:
    """Number of outputs of ``model`` for the input batch ``x`` (eval mode, no graph; the mode is restored)."""
    was_training = model.training
    model.eval()
    try:
        with no_grad():
            return model(x).shape[-1]
    finally:
        model.train(was_training)


def _flatten_rules(rules) -> list:
    out = []
    for r in rules:
        out.extend(_flatten_rules(r.rules) if isinstance(r, AnyOf) else [r])
    return out


def _generators(model) -> dict[str, np.random.Generator]:
    """Every random generator the model's layers hold (dropout masks), by module path."""
    out = {}
    for name, m in model.named_modules():
        for key, value in vars(m).items():
            if isinstance(value, np.random.Generator):
                out[f"{name}.{key}" if name else key] = value
    return out


def fit(model, X, y, *, optimizer, loss: Callable = F.cross_entropy, epochs: int | None = None,
        steps: int | None = None, batch_size: int | None = 32, schedule: Callable | None = None,
        schedule_unit: str | None = None, l2: float = 0.0, l2_kinds: Sequence[str] = ("weight",),
        validation: tuple | None = None, stopping: Sequence = (), divergence: float | None = 3.0,
        callbacks: Sequence = (), average=None, seed: int | np.random.Generator = 0, shuffle: bool = True,
        drop_last: bool = False, dtype=np.float32, preprocess=None, augment: Callable | None = None,
        checkpoint=None, checkpoint_every: int | None = None, resume=None, config: dict | None = None) -> History:
    """Train ``model`` on (X, y) in place and return its ``History``.

    - ``optimizer``: any descend optimizer (``step(theta, closure, lr)``); L-BFGS wants the full batch.
    - ``epochs`` / ``steps``: limits (at least one, or a stopping rule that ends the run); more rules
      in ``stopping``. ``divergence=k`` stops when the loss is NaN/inf or above k × the initial loss
      and keeps the last good θ (None turns it off). Without ``checkpoint`` that θ is recomputed when
      needed by replaying recorded steps; randomness the run cannot restore (a loss or ``augment`` with
      its own generator, one kept by a layer outside its attributes) makes the replay differ, and fit
      then keeps an older good θ and warns.
    - ``batch_size``: None = batch gradient descent (whole set), 1 = stochastic, else mini-batch;
      the order is reshuffled every epoch with the run's generator (``seed``).
    - ``schedule``: a function of the clock giving the learning rate; ``schedule_unit`` says whether
      the clock counts epochs (the lectures' decay tables) or steps — by default the schedule's own
      ``unit`` (``descend.optim.schedules``), else epochs.
    - ``l2``: λ of the lectures' (λ/2m)·Σ‖W‖² added to the objective (m = training examples), on
      the parameter kinds in ``l2_kinds`` (weights, not biases, by default).
    - ``validation``: (X_val, y_val) evaluated after every epoch (val_loss, val_accuracy).
    - ``preprocess``: a step of ``descend.data`` (``Standardize()``, ``PCAWhiten()``, …) fitted here on
      the training X only (unless already fitted), applied to every batch and to validation data,
      attached to the model as ``model.preprocess`` (so ``predict``/``evaluate`` apply it) and saved
      in checkpoints.
    - ``augment``: ``augment(X_batch, rng) -> X_batch`` applied to training batches only (e.g.
      ``descend.data.RandomCrop``), with its own generator derived from ``seed``.
    - ``average``: an ``Averaging`` callback (Polyak / EMA of θ) updated after every step.
    - ``checkpoint``: a file path written (atomically) every ``checkpoint_every`` steps if given, after
      every epoch and at the end; ``resume``: a checkpoint path to continue from, bit-identically.
    """
    own_unit = getattr(schedule, "unit", None)  # descend.optim.schedules say which clock they count
    if schedule_unit is None:
        schedule_unit = own_unit or "epoch"
    if schedule_unit not in ("epoch", "step"):
        raise ValueError(f"schedule_unit must be 'epoch' or 'step', got {schedule_unit!r}")
    if own_unit is not None and own_unit != schedule_unit:
        raise ValueError(f"the schedule counts {own_unit!r} but schedule_unit={schedule_unit!r}; drop schedule_unit "
                         f"or build the schedule with unit={schedule_unit!r}")
    if l2 < 0:
        raise ValueError(f"l2 (λ) must be ≥ 0, got {l2}")
    kind = _CLASSIFICATION.get(loss)
    task = "regression" if kind is None or kind == "sign" else "classification"
    X, y = D.check_Xy(X, y, task=task)
    if kind == "sign" and y.ndim == 1:
        y = y.reshape(-1, 1)
    n = len(X)
    bs = D.resolve_batch_size(n, batch_size)
    rules = _flatten_rules(stopping)
    if epochs is not None:
        rules.append(MaxEpochs(epochs))
    if steps is not None:
        rules.append(MaxSteps(steps))
    if not any(isinstance(r, (MaxEpochs, MaxSteps, TimeLimit)) for r in rules) and not any(
            getattr(r, "per", "") == "epoch" for r in rules):
        raise ValueError("fit needs a limit: pass epochs=..., steps=... or a stopping rule such as EarlyStopping "
                         "or TimeLimit")
    divergence_rule = Divergence(divergence) if divergence else None
    early = [r for r in rules if isinstance(r, EarlyStopping)]
    if any(r.monitor.startswith("val_") for r in early) and validation is None:
        raise ValueError(f"EarlyStopping monitors {early[0].monitor!r} but no validation=(X_val, y_val) was given")
    if validation is not None:
        Xv, yv = D.check_Xy(*validation, task=task, name="X_val")
        validation = (Xv, yv.reshape(-1, 1) if kind == "sign" and yv.ndim == 1 else yv)
    loaded = ckpt.load_checkpoint(resume) if resume is not None else None
    if loaded is not None and "preprocess" in loaded[1]:  # the training statistics of the resumed run
        state_pre = dict(loaded[1]["preprocess"])
        state_pre.update({k[len("preprocess."):]: v for k, v in loaded[0].items() if k.startswith("preprocess.")})
        if preprocess is None:
            preprocess = from_preprocess_state(state_pre)
        else:
            preprocess.load_state_dict(state_pre)
    elif preprocess is not None and not preprocess.fitted:
        preprocess.fit(X)  # on the training data only
    if kind == "argmax":  # labels beyond the model's outputs would only fail at their batch, after updates
        first = D.take(X, slice(0, 1))
        classes = _output_width(model, preprocess.transform(first) if preprocess is not None else first)
        for name, labels in (("y", y), ("y_val", validation[1] if validation is not None else None)):
            over = np.flatnonzero(labels >= classes) if labels is not None else ()
            if len(over):
                i = int(over[0])
                raise ValueError(f"class labels {name} must be < {classes} (the model's outputs), but {len(over)} "
                                 f"are not, first {name}[{i}] = {int(labels[i])}; fix the labels or give the "
                                 f"last layer {int(labels.max()) + 1} outputs")
    step_rules = [r for r in rules if getattr(r, "per", "step") == "step"]
    epoch_rules = [r for r in rules if getattr(r, "per", "step") == "epoch"]
    needs_change = any(getattr(r, "needs_param_change", False) for r in rules)
    callbacks = list(callbacks) + ([average] if average is not None and average not in callbacks else [])
    if getattr(optimizer, "needs_full_batch", False):
        if bs != n:
            raise ValueError(f"{type(optimizer).__name__} needs the full batch (batch_size=None), got batch_size={batch_size}")
        stochastic = [name for name, m in model.named_modules() if isinstance(m, (Dropout, BatchNorm1d))]
        if stochastic:
            warnings.warn(f"{type(optimizer).__name__} assumes a deterministic objective, but layers {stochastic} "
                          "(dropout / batch norm) make it change between evaluations", stacklevel=2)

    object.__setattr__(model, "preprocess", preprocess)  # predict/evaluate apply it
    rng = seed if isinstance(seed, np.random.Generator) else np.random.default_rng(seed)
    aug_rng = np.random.default_rng(rng.bit_generator.seed_seq.spawn(1)[0]) if augment is not None else None
    params = _packed(model, np.dtype(dtype))
    theta, grad = params.theta, params.grad
    history = History()
    state = FitState(model, params, optimizer, history)
    state.batches_per_epoch = len(D.batch_slices(n, bs, drop_last=drop_last))
    limits = [s for s in (steps, epochs * state.batches_per_epoch if epochs else None) if s]
    state.total_steps = min(limits) if limits else None
    l2_slices = [e.slice for e in params.layout if e.kind in l2_kinds] if l2 else []
    l2c = l2 / n
    best = {"theta": None}
    counters = {"seen": 0, "correct": 0}  # this epoch's running accuracy
    epoch_losses: list = []

    def snapshot() -> tuple[dict, dict]:
        arrays = {"theta": theta}
        arrays.update({f"buffer.{k}": v for k, v in params.buffers().items()})
        meta_opt = {}
        for k, v in optimizer.state_dict().items():
            if isinstance(v, np.ndarray):
                arrays[f"optimizer.{k}"] = v
            else:
                meta_opt[k] = v
        if state.order is not None:
            arrays["order"] = state.order
        if preprocess is not None:
            pre_state = preprocess.state_dict()
            arrays.update({f"preprocess.{k}": v for k, v in pre_state.items() if isinstance(v, np.ndarray)})
        if good is not None:
            arrays["good.theta"] = good  # divergence's "last good θ" (θ before the last step)
        elif anchors:
            arrays["good.theta"] = replayed(good_step)  # the same θ, recomputed (see replayed)
        if best["theta"] is not None:
            arrays["best.theta"] = best["theta"]
            arrays.update({f"best.buffer.{k}": v for k, v in best["buffers"].items()})
        cb_states = {}
        for i, cb in enumerate(callbacks):
            if hasattr(cb, "state_dict"):
                s = cb.state_dict()
                arrays.update({f"callback{i}.{k}": v for k, v in s.items() if isinstance(v, np.ndarray)})
                cb_states[str(i)] = {k: v for k, v in s.items() if not isinstance(v, np.ndarray)}
        meta = {
            "layout": [[e.name, list(e.shape), str(theta.dtype)] for e in params.layout],
            "optimizer": meta_opt, "history": history.to_dict(), "rng": rng.bit_generator.state,
            "layer_rngs": {k: g.bit_generator.state for k, g in _generators(model).items()},
            "clock": {"epoch": state.epoch, "step": state.step, "batch": state.batch, "lr_scale": state.lr_scale,
                      "seen": counters["seen"], "correct": counters["correct"]},
            "callbacks": cb_states, "config": config or {},
        }
        if preprocess is not None:
            meta["preprocess"] = {k: v for k, v in pre_state.items() if not isinstance(v, np.ndarray)}
        if aug_rng is not None:
            meta["aug_rng"] = aug_rng.bit_generator.state
        return _on_disk(params, arrays, params.canonical), meta

    def save(path=None) -> None:
        arrays, meta = snapshot()
        ckpt.save_checkpoint(path or checkpoint, arrays, meta)

    state.save = save

    if loaded is not None:
        arrays, meta = loaded
        arrays = _on_disk(params, arrays, params.from_canonical)
        # check everything before changing anything: a refused checkpoint leaves model and optimizer as they were
        ckpt.check_layout([[e.name, list(e.shape), str(theta.dtype)] for e in params.layout], meta["layout"])
        missing = [k for k in params.buffers() if f"buffer.{k}" not in arrays]
        if missing:
            raise ValueError(f"the checkpoint {resume} lacks the model's buffers {missing} (another architecture?)")
        opt_state = dict(meta["optimizer"])
        opt_state.update({k[len("optimizer."):]: v for k, v in arrays.items() if k.startswith("optimizer.")})
        copy.deepcopy(optimizer).load_state_dict(opt_state)  # raises, naming the entry, if it does not fit
        optimizer.load_state_dict(opt_state)
        theta[...] = arrays["theta"]
        for k, v in params.buffers().items():
            v[...] = arrays[f"buffer.{k}"]
        rng.bit_generator.state = meta["rng"]
        if aug_rng is not None and "aug_rng" in meta:
            aug_rng.bit_generator.state = meta["aug_rng"]
        gens = _generators(model)
        for k, s in meta["layer_rngs"].items():
            if k in gens:
                gens[k].bit_generator.state = s
        history = state.history = History.from_dict(meta["history"])
        clock = meta["clock"]
        state.epoch, state.step, state.batch, state.lr_scale = clock["epoch"], clock["step"], clock["batch"], clock["lr_scale"]
        counters["seen"], counters["correct"] = clock["seen"], clock["correct"]
        epoch_losses = history.step_loss[len(history.step_loss) - state.batch:]
        history.stop_reason = None  # continue: the new call's limits decide when to stop
        state.order = arrays.get("order")
        if "best.theta" in arrays:
            best["theta"] = arrays["best.theta"].copy()
            best["buffers"] = {k[len("best.buffer."):]: v.copy() for k, v in arrays.items() if k.startswith("best.buffer.")}
        for i, cb in enumerate(callbacks):
            if hasattr(cb, "load_state_dict") and str(i) in meta["callbacks"]:
                s = dict(meta["callbacks"][str(i)])
                s.update({k[len(f"callback{i}."):]: v for k, v in arrays.items() if k.startswith(f"callback{i}.")})
                cb.load_state_dict(s)

    # Divergence's "last good θ" — θ before the step whose loss was the last good one — and ‖Δθ‖ need θ
    # before each step. Kept as copies (``before``, ``good``), that is one more θ-sized write every step,
    # about 5 % of an epoch of the benchmark MLP. Where it can, fit keeps no copies: it takes "anchors" (θ,
    # optimizer state, buffers and generators) at the start of the run, of every epoch and every
    # ANCHOR_SECONDS, and recomputes the last good θ from the newest anchor before it when it is wanted
    # (a divergence, or a checkpoint a callback asks for), replaying the recorded batches and learning
    # rates — the same bits, as each replayed loss is checked against the recorded one.
    replay = (divergence_rule is not None and not needs_change and isinstance(optimizer, Optimizer)
              and type(optimizer).state_dict is Optimizer.state_dict  # all its state in t, _scalars, .state
              and checkpoint is None and resume is None and state.batches_per_epoch >= REPLAY_MIN_BATCHES)
    keep = (divergence_rule is not None or needs_change) and not replay
    before = np.empty_like(theta) if keep else None
    fused_keep = keep and isinstance(optimizer, Optimizer)  # a user's own optimizer may lack step(keep=)
    good = theta.copy() if divergence_rule is not None and not replay else None
    if loaded is not None and good is not None and "good.theta" in arrays:
        good[...] = arrays["good.theta"]
    anchors: list = []  # the last two, oldest first (replay mode)
    taken = 0  # anchors taken so far
    good_step = state.step  # the step after which θ was last known good (replay mode)
    out_box: list = [None]

    def storage(with_grad: bool = False) -> dict:
        return {"theta": np.empty_like(theta), "grad": np.empty_like(grad) if with_grad else None,
                "state": {k: np.empty_like(v) for k, v in optimizer.state.items()}}

    fresh = False  # whether this run created the optimizer's buffers (replay mode)
    if replay:  # the optimizer's buffers now rather than at its first step, so that the two anchors' arrays
        fresh = not optimizer.state  # are allocated once, here, and the memory stays flat from now on
        optimizer._ensure_state(theta)
        slots = [storage(), storage()]

    def capture(into: dict) -> dict:
        """What a replay starts from, or comes back to — θ (and the gradient if ``into`` has room), the
        optimizer's state, buffers, generators — copied into the arrays of ``into``."""
        np.copyto(into["theta"], theta)
        if into["grad"] is not None:
            np.copyto(into["grad"], grad)
        initial = fresh and optimizer.t == 0  # the optimizer's buffers hold their initial values: not copied
        for k, v in optimizer.state.items():
            if not initial:
                np.copyto(into["state"][k], v)
        return {**into, "initial": initial, "clock": time.perf_counter(), "step": state.step, "batch": state.batch,
                "order": state.order, "t": optimizer.t,
                "scalars": {k: getattr(optimizer, k) for k in optimizer._scalars},
                "buffers": {k: v.copy() for k, v in params.buffers().items()},
                "rngs": {k: g.bit_generator.state for k, g in _generators(model).items()},
                "aug_rng": aug_rng.bit_generator.state if aug_rng is not None else None}

    def restore(c: dict) -> None:
        theta[...] = c["theta"]
        if c["grad"] is not None:
            grad[...] = c["grad"]
        optimizer.t = c["t"]
        for k, v in c["scalars"].items():
            setattr(optimizer, k, v)
        for k, v in optimizer.state.items():
            v[...] = optimizer._buffer_init(k) if c["initial"] else c["state"][k]
        for k, v in params.buffers().items():
            v[...] = c["buffers"][k]
        for k, g in _generators(model).items():
            g.bit_generator.state = c["rngs"][k]
        if aug_rng is not None:
            aug_rng.bit_generator.state = c["aug_rng"]

    def batch_input(idx):
        """The training input of the batch ``idx``: gathered, augmented, preprocessed."""
        xb = D.take(X, idx)
        if augment is not None:
            xb = augment(xb, aug_rng)
        if preprocess is not None:
            xb = preprocess.transform(xb)
        return xb

    def replayed(target: int) -> np.ndarray:
        """θ after step ``target`` (a copy), recomputed from the newest anchor at or before it with the
        batches and learning rates the run recorded. θ, gradient, optimizer, buffers and generators are
        left as they were. Should a replayed loss differ from the recorded one (a nondeterministic
        closure), the anchor's own θ — good, but older — is returned, with a warning."""
        nonlocal xb, yb
        start = max((a for a in anchors if a["step"] <= target), key=lambda a: a["step"])
        now = capture(storage(with_grad=True))
        restore(start)
        exact = True
        for k in range(start["step"], target):  # step k + 1: batch start["batch"] + k - start["step"]
            idx = start["order"][slices[start["batch"] + k - start["step"]]]
            xb, yb = batch_input(idx), y[idx]
            value = optimizer.step(theta, closure, lr=history.step_lr[k])
            if value != history.step_loss[k]:
                exact = False
                break
        out = theta.copy() if exact else start["theta"].copy()
        restore(now)
        if not exact:
            warnings.warn(f"replaying steps {start['step'] + 1}–{target} to recover the last good θ gave other "
                          f"losses than the run recorded (a closure that is not deterministic?); keeping θ "
                          f"after step {start['step']} instead", RuntimeWarning, stacklevel=3)
        return out

    def closure():
        params.zero_grad(lazy=True)
        out = model(xb)
        value = loss(out, yb)
        value.backward()
        params.zero_unwritten()
        out_box[0] = out.data
        total = float(value.data)
        for sl in l2_slices:
            w = theta[sl]
            total += 0.5 * l2c * float(np.dot(w, w))
            grad[sl] += l2c * w
        return total, grad

    model.train()
    for cb in callbacks:
        if hasattr(cb, "on_fit_start"):
            cb.on_fit_start(state)
    reason = None
    if resume is not None:  # a run that already met this call's limits (e.g. a finished one) goes no further
        for rule in epoch_rules + step_rules:
            reason = reason or rule(history)
    started = time.perf_counter() - history.elapsed
    slices = D.batch_slices(n, bs, drop_last=drop_last)
    diverged = False
    interrupt = _Interrupt()
    try:
        while reason is None:
            if state.batch == 0 or state.order is None:
                state.order = D.epoch_order(n, rng=rng, shuffle=shuffle)
                epoch_losses = []
                counters["seen"] = counters["correct"] = 0
            order = state.order
            while state.batch < len(slices) and reason is None:
                if replay and (state.batch == 0 or _anchor_due(state.step - anchors[-1]["step"],
                                                               time.perf_counter() - anchors[-1]["clock"])):
                    anchors[:] = anchors[-1:] + [capture(slots[taken % 2])]  # over the one before last
                    taken += 1
                idx = order[slices[state.batch]]
                xb, yb = batch_input(idx), y[idx]
                clock = state.epoch if schedule_unit == "epoch" else state.step
                lr = (schedule(clock) if schedule is not None else optimizer.lr) * state.lr_scale
                if fused_keep:  # the optimizer writes θ's previous value into `before` in its own pass
                    value = optimizer.step(theta, closure, lr=lr, keep=before)
                else:
                    if keep:
                        np.copyto(before, theta)
                    value = optimizer.step(theta, closure, lr=lr)
                state.step += 1
                state.batch += 1
                state.lr, state.last_loss = lr, value
                history.step_loss.append(value)
                history.step_lr.append(lr)
                if divergence_rule is not None:
                    reason = divergence_rule.check(value, history.initial_loss, state.step)
                    if reason:  # back to the last θ whose loss was finite and under k × initial
                        theta[...] = good if good is not None else replayed(good_step)
                        diverged = True
                        break
                    good_step = state.step - 1  # θ before this step had a good loss
                    if good is not None:
                        good, before = before, good
                if needs_change:
                    prev = good if divergence_rule is not None else before
                    history.param_change.append(float(np.linalg.norm(theta - prev)))
                epoch_losses.append(value)
                if kind is not None and out_box[0] is not None:
                    counters["seen"] += len(idx)
                    counters["correct"] += _correct(kind, out_box[0], yb)
                history.elapsed = time.perf_counter() - started
                for cb in callbacks:
                    if hasattr(cb, "on_step_end"):
                        cb.on_step_end(state)
                for rule in step_rules:
                    reason = rule(history)
                    if reason:
                        break
                if interrupt.requested and not reason:
                    reason = f"interrupted by the user (Ctrl-C) after step {state.step}"
                if checkpoint is not None and checkpoint_every and state.step % checkpoint_every == 0:
                    save()
            if state.batch < len(slices) or diverged:
                break  # stopped inside the epoch, or the epoch's last step diverged
            # -- end of epoch ---------------------------------------------------------------------
            state.epoch += 1
            state.batch = 0
            record = {"epoch": state.epoch, "step": state.step,
                      "train_loss": float(np.mean(epoch_losses)) if epoch_losses else math.nan}
            if kind is not None and counters["seen"]:
                record["train_accuracy"] = counters["correct"] / counters["seen"]
            if validation is not None:
                with (average.applied(params) if average is not None and average.evaluate else _null()):
                    res = evaluate(model, *validation, loss=loss)
                record.update({f"val_{k}": v for k, v in res.items()})
            record["lr"] = state.lr
            history.epochs.append(record)
            for r in early:
                if r.restore_best and r.best_epoch(history) == len(history.epochs) - 1:
                    best["theta"] = theta.copy()
                    best["buffers"] = {k: v.copy() for k, v in params.buffers().items()}
                    history.best = {"epoch": state.epoch, r.monitor: record.get(r.monitor)}
            for cb in callbacks:
                if hasattr(cb, "on_epoch_end"):
                    cb.on_epoch_end(state)
            for rule in epoch_rules + step_rules:
                reason = reason or rule(history)
            if state.stop and not reason:
                reason = "stopped by a callback"
            if checkpoint is not None and reason is None:
                save()
    except KeyboardInterrupt:
        reason = f"interrupted by the user at step {state.step}"
    finally:
        interrupt.restore()
    history.stop_reason = reason
    history.elapsed = time.perf_counter() - started
    for cb in callbacks:
        if hasattr(cb, "on_fit_end"):
            cb.on_fit_end(state)
    if checkpoint is not None:
        save()  # the state to resume from: θ as trained (the best θ is stored beside it)
    if best["theta"] is not None and any(r.restore_best for r in early):
        theta[...] = best["theta"]
        for k, v in params.buffers().items():
            v[...] = best["buffers"][k]
        history.stop_reason += f"; restored θ of the best epoch ({history.best['epoch']})"
    return history


class _Interrupt:
    """Ctrl-C as a request: the loop stops after the current step (θ, clock and callbacks consistent)
    and saves its checkpoint; a second Ctrl-C interrupts at once. Only in the main thread."""

    def __init__(self):
        self.requested = False
        self.previous = None
        if threading.current_thread() is threading.main_thread():
            self.previous = signal.signal(signal.SIGINT, self._handle)

    def _handle(self, signum, frame):
        if self.requested:
            raise KeyboardInterrupt
        self.requested = True

    def restore(self) -> None:
        if self.previous is not None:
            signal.signal(signal.SIGINT, self.previous)
            self.previous = None


class _null:
    def __enter__(self):
        return None

    def __exit__(self, *exc):
        return False
