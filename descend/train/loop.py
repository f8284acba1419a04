"""fit: the one training loop — shuffle, batch, lr from the clock, step, observe, stop.

One step (DESIGN.md): take a batch of this epoch's shuffled order, ask the schedule for the learning
rate, let the optimizer evaluate the ``Objective`` (zero grad → forward → loss + L2 → backward into the
flat gradient) and update θ in place, then let the history, stopping rules and callbacks observe.
"""
from __future__ import annotations

import contextlib
import math
import signal
import threading
import time
import warnings
from typing import Callable, Sequence

import numpy as np

from .. import data as D
from ..autodiff import no_grad
from ..common.blas import threads_for
from ..nn import BatchNorm1d, Dropout, pack
from ..nn import functional as F
from ..nn.plan import largest_product
from . import checkpoint as ckpt
from .evaluate import _CLASSIFICATION, evaluate
from .history import History
from .objective import Objective
from .guard import SNAPSHOT_EVERY, Guard
from .state import FitState, Snapshot
from .stopping import AnyOf, Divergence, EarlyStopping, MaxEpochs, MaxSteps, TimeLimit

__all__ = ["fit", "FitState", "SNAPSHOT_EVERY"]



def fit(model, X, y, *, optimizer, loss: Callable = F.cross_entropy, epochs: int | None = None,
        steps: int | None = None, batch_size: int | None = 32, schedule: Callable | None = None,
        schedule_unit: str | None = None, epoch_origin: int = 1, l2: float = 0.0,
        l2_kinds: Sequence[str] = ("weight",), validation: tuple | None = None, stopping: Sequence = (),
        divergence: float | None = 3.0, callbacks: Sequence = (), average=None,
        seed: int | np.random.Generator = 0, shuffle: bool = True, drop_last: bool = False, dtype=np.float32,
        preprocess=None, augment: Callable | None = None, checkpoint=None, checkpoint_every: int | None = None,
        resume=None, config: dict | None = None, distributed=None) -> History:
    """Train ``model`` on (X, y) in place and return its ``History``.

    - ``optimizer``: any descend optimizer (``step(theta, closure, lr)``); L-BFGS wants the full batch.
    - ``epochs`` / ``steps``: limits (at least one, or a stopping rule that ends the run); more rules
      in ``stopping``. ``divergence=k`` stops when the loss is NaN/inf or above k × the initial loss
      and puts back the last good θ, kept every ``SNAPSHOT_EVERY`` steps (None turns it off).
    - ``batch_size``: None = batch gradient descent (whole set), 1 = stochastic, else mini-batch;
      the order is reshuffled every epoch with the run's generator (``seed``).
    - ``schedule``: a function of the clock giving the learning rate; ``schedule_unit`` says whether
      the clock counts epochs (the lectures' decay tables) or steps — by default the schedule's own
      ``unit`` (``descend.optim.schedules``), else epochs. The epoch clock is the number of the epoch
      being trained, counted from ``epoch_origin`` = 1 as the lectures count (Ng's α₀/(1 + rate·epoch)
      gives 0.1, 0.0667, 0.05, 0.04 in epochs 1–4 for α₀ = 0.2, rate 1); pass 0 to count from 0, as
      PyTorch's schedulers do. The step clock is the number of steps taken before this one (0 first).
    - ``l2``: λ of the lectures' (λ/2m)·Σ‖W‖² added to the objective (m = training examples), on
      the parameter kinds in ``l2_kinds`` (weights, not biases, by default).
    - ``validation``: (X_val, y_val) evaluated after every epoch (val_loss, val_accuracy).
    - ``dtype``: θ's dtype and the dtype batches are cast to (float64 for exact comparisons).
    - ``preprocess``: a step of ``descend.data`` (``Standardize()``, ``PCAWhiten()``, …) fitted here on
      the training X only (unless already fitted), applied to every batch and to validation data,
      set as ``model.preprocess`` (``predict``/``evaluate`` apply it) and saved in checkpoints.
    - ``augment``: ``augment(X_batch, rng) -> X_batch`` applied to training batches only (e.g.
      ``descend.data.RandomCrop``), with its own generator derived from ``seed``.
    - ``average``: an ``Averaging`` callback (Polyak / EMA of θ) updated after every step.
    - ``checkpoint``: a file path written (atomically) every ``checkpoint_every`` steps if given, after
      every epoch and at the end; ``resume``: a checkpoint path to continue from, bit-identically.
    - ``distributed``: a ``descend.train.distributed.Distributed`` (run under ``mpiexec``): every rank
      trains on its shard of each global batch of ``batch_size`` and the gradients are summed in one
      all-reduce, so N ranks take the steps one process takes; rank 0 alone writes the checkpoint.
    """
    run = _Run(model, X, y, optimizer=optimizer, loss=loss, epochs=epochs, steps=steps, batch_size=batch_size,
               schedule=schedule, schedule_unit=schedule_unit, epoch_origin=epoch_origin, l2=l2, l2_kinds=l2_kinds,
               validation=validation, stopping=stopping, divergence=divergence, callbacks=callbacks,
               average=average, seed=seed, shuffle=shuffle, drop_last=drop_last, dtype=dtype,
               preprocess=preprocess, augment=augment, checkpoint=checkpoint, resume=resume, config=config,
               distributed=distributed)
    state, objective, guard = run.state, run.objective, run.guard
    started = time.perf_counter() - state.history.elapsed
    # under MPI each rank would see its request at its own step, and the ranks' next collectives would not
    # match: there Ctrl-C interrupts at once and counts as a failure (release then runs no collective)
    reason, interrupt, failed = None, _Interrupt(defer=distributed is None), True
    try:  # from here on the run's release (BLAS threads, MPI memory) happens whatever is raised
        _notify(state, "on_fit_start")
        reason = run.finished_already()
        while reason is None:
            if state.batch == 0 or state.order is None:  # a new epoch: reshuffle
                state.order = D.epoch_order(run.n, rng=state.rng, shuffle=shuffle)
                state.seen = state.correct = 0
            while state.batch < len(run.slices) and reason is None:
                idx = state.order[run.slices[state.batch]]
                objective.batch(run.batch_input(idx), run.y[idx])
                state.lr = run.learning_rate()
                value = guard.step(objective, state.lr)
                state.step += 1
                state.batch += 1
                state.last_loss = value
                state.history.step_loss.append(value)
                state.history.step_lr.append(state.lr)
                reason = guard.check(value)
                if reason:
                    break
                if run.kind is not None and objective.output is not None:
                    seen, correct = objective.tally(run.kind)  # over all workers when distributed
                    state.seen, state.correct = state.seen + seen, state.correct + correct
                state.history.elapsed = time.perf_counter() - started
                _notify(state, "on_step_end")
                reason = _first(run.step_rules, state.history) or _asked(state, interrupt)
                if checkpoint is not None and checkpoint_every and state.step % checkpoint_every == 0:
                    state.save()
            if state.batch < len(run.slices) or guard.diverged:
                break  # stopped inside the epoch, or the epoch's last step diverged
            state.epoch += 1
            state.batch = 0
            run.end_epoch()
            _notify(state, "on_epoch_end")
            # a reason the epoch's last step gave stands (a Ctrl-C then is not lost to the next epoch)
            reason = reason or _first(run.epoch_rules + run.step_rules, state.history) or _asked(state, interrupt)
            if checkpoint is not None and reason is None:
                state.save()
        failed = False
    except KeyboardInterrupt:
        reason, failed = f"interrupted by the user at step {state.step}", distributed is not None
    finally:
        interrupt.restore()
        run.release(failed)
    history = state.history
    history.stop_reason = reason
    history.elapsed = time.perf_counter() - started
    _notify(state, "on_fit_end")
    if checkpoint is not None:
        state.save()  # the state to resume from: θ as trained (the best θ is stored beside it)
    if state.best is not None and any(r.restore_best for r in run.early):
        state.best.put(state.params)
        history.stop_reason += f"; restored θ of the best epoch ({history.best['epoch']})"
    return history


def _notify(state: FitState, event: str) -> None:
    for cb in state.callbacks:
        if hasattr(cb, event):
            getattr(cb, event)(state)


def _asked(state: FitState, interrupt) -> str | None:
    """The reason to stop that the user (Ctrl-C) or a callback (``state.stop``) gave, or None."""
    if interrupt.requested:
        return f"interrupted by the user (Ctrl-C) after step {state.step}"
    return "stopped by a callback" if state.stop else None


def _first(rules, history: History) -> str | None:
    """The reason of the first rule that says stop, or None."""
    for rule in rules:
        reason = rule(history)
        if reason:
            return reason
    return None


def _flatten_rules(rules) -> list:
    out = []
    for r in rules:
        out.extend(_flatten_rules(r.rules) if isinstance(r, AnyOf) else [r])
    return out


def _output_width(model, x) -> int:
    """Number of outputs of ``model`` for the input batch ``x`` (eval mode, no graph; the mode is restored)."""
    was_training = model.training
    model.eval()
    try:
        with no_grad():
            return model(x).shape[-1]
    finally:
        model.train(was_training)


class _Run:
    """Everything ``fit`` sets up before its first step: checked inputs, rules, the objective, the state."""

    def __init__(self, model, X, y, *, optimizer, loss, epochs, steps, batch_size, schedule, schedule_unit,
                 epoch_origin, l2, l2_kinds, validation, stopping, divergence, callbacks, average, seed, shuffle,
                 drop_last, dtype, preprocess, augment, checkpoint, resume, config, distributed):
        own_unit = getattr(schedule, "unit", None)  # descend.optim.schedules say which clock they count
        schedule_unit = schedule_unit or own_unit or "epoch"
        if schedule_unit not in ("epoch", "step"):
            raise ValueError(f"schedule_unit must be 'epoch' or 'step', got {schedule_unit!r}")
        if own_unit is not None and own_unit != schedule_unit:
            raise ValueError(f"the schedule counts {own_unit!r} but schedule_unit={schedule_unit!r}; drop "
                             f"schedule_unit or build the schedule with unit={schedule_unit!r}")
        if epoch_origin not in (0, 1) or isinstance(epoch_origin, bool):
            raise ValueError(f"epoch_origin must be 1 (the lectures' epoch numbers) or 0, got {epoch_origin!r}")
        if l2 < 0:
            raise ValueError(f"l2 (λ) must be ≥ 0, got {l2}")
        dtype = np.dtype(dtype)
        self.kind = kind = _CLASSIFICATION.get(loss)
        task = "regression" if kind is None or kind == "sign" else "classification"
        X, y = D.check_Xy(X, y, task=task, dtype=dtype)
        if kind == "sign" and y.ndim == 1:
            y = y.reshape(-1, 1)
        self.X, self.y, self.n, self.dtype = X, y, len(X), dtype
        bs = D.resolve_batch_size(self.n, batch_size)
        rules = _flatten_rules(stopping)
        rules += [MaxEpochs(epochs)] if epochs is not None else []
        rules += [MaxSteps(steps)] if steps is not None else []
        if not any(isinstance(r, (MaxEpochs, MaxSteps, TimeLimit)) or getattr(r, "per", "") == "epoch"
                   for r in rules):
            raise ValueError("fit needs a limit: pass epochs=..., steps=... or a stopping rule such as "
                             "EarlyStopping or TimeLimit")
        self.early = [r for r in rules if isinstance(r, EarlyStopping)]
        if any(r.monitor.startswith("val_") for r in self.early) and validation is None:
            raise ValueError(f"EarlyStopping monitors {self.early[0].monitor!r} but no validation=(X_val, y_val) "
                             "was given")
        if validation is not None:
            Xv, yv = D.check_Xy(*validation, task=task, name="X_val", dtype=dtype)
            validation = (Xv, yv.reshape(-1, 1) if kind == "sign" and yv.ndim == 1 else yv)
        self.validation, self.loss, self.average = validation, loss, average
        loaded = ckpt.load_checkpoint(resume) if resume is not None else None
        if loaded is not None and "preprocess" in loaded[1]:  # the training statistics of the resumed run
            saved = ckpt.preprocess_from(*loaded)
            if preprocess is None:
                preprocess = saved
            else:
                preprocess.load_state_dict(saved.state_dict())
        elif preprocess is not None and not preprocess.fitted:
            preprocess.fit(X)  # on the training data only
        self.preprocess = preprocess
        if kind == "argmax":  # labels beyond the model's outputs would only fail at their batch, after updates
            self._check_labels(model, validation)
        self.step_rules = [r for r in rules if getattr(r, "per", "step") == "step"]
        self.epoch_rules = [r for r in rules if getattr(r, "per", "step") == "epoch"]
        if getattr(optimizer, "needs_full_batch", False):
            if bs != self.n:
                raise ValueError(f"{type(optimizer).__name__} needs the full batch (batch_size=None), got "
                                 f"batch_size={batch_size}")
            noisy = [name for name, m in model.named_modules() if isinstance(m, (Dropout, BatchNorm1d))]
            if noisy:
                warnings.warn(f"{type(optimizer).__name__} assumes a deterministic objective, but layers {noisy} "
                              "(dropout / batch norm) make it change between evaluations", stacklevel=3)
        callbacks = list(callbacks) + ([average] if average is not None and average not in callbacks else [])
        model.preprocess = preprocess  # predict/evaluate apply it
        rng = seed if isinstance(seed, np.random.Generator) else np.random.default_rng(seed)
        self.augment = augment
        aug_rng = np.random.default_rng(rng.bit_generator.seed_seq.spawn(1)[0]) if augment is not None else None
        params = pack(model, dtype=dtype)
        _set_groups(optimizer, params)
        self.state = state = FitState(model, params, optimizer, History(), rng, aug_rng, preprocess, callbacks,
                                      config or {})
        self.slices = D.batch_slices(self.n, bs, drop_last=drop_last)
        state.batches_per_epoch = len(self.slices)
        state.input_shape, state.loss_name = tuple(X.shape[1:]), getattr(loss, "__name__", None)
        limits = [s for s in (steps, epochs * state.batches_per_epoch if epochs else None) if s]
        state.total_steps = min(limits) if limits else None
        state.save = lambda path=None: ckpt.save_checkpoint(path or checkpoint, *ckpt.capture(state))
        if loaded is not None:
            ckpt.restore(state, *loaded, path=f"checkpoint {resume}")
        self.distributed = distributed
        self.evaluate, self.objective = evaluate, Objective(model, params, loss, l2=l2, m=self.n, l2_kinds=l2_kinds)
        rule = Divergence(divergence) if divergence else None  # refused before the MPI set-up, which only release frees
        if distributed is not None:  # same run on every rank, θ from rank 0, this rank's shards, one writer
            sig = dict(config=config or {}, n=self.n, batch_size=bs, theta=len(params), dtype=dtype.name, epochs=epochs,
                       steps=steps, optimizer=type(optimizer).__name__, rng=state.rng.bit_generator.state)
            self.slices, self.evaluate, self.objective = distributed.prepare(state, self.slices, sig, loss=loss,
                                                                             kind=kind, l2=l2, l2_kinds=l2_kinds)
        needs_change = any(getattr(r, "needs_param_change", False) for r in rules)
        self.guard = Guard(state, rule, needs_change)
        self.schedule, self.schedule_unit, self.epoch_origin = schedule, schedule_unit, epoch_origin
        self.resumed = loaded is not None
        model.train()
        self.blas = threads_for(largest_product(model, bs))  # a small network's products: one BLAS thread
        self.blas.__enter__()

    def _check_labels(self, model, validation) -> None:
        first = D.take(self.X, slice(0, 1), dtype=self.dtype)
        classes = _output_width(model, self.preprocess.transform(first) if self.preprocess is not None else first)
        for name, labels in (("y", self.y), ("y_val", validation[1] if validation is not None else None)):
            over = np.flatnonzero(labels >= classes) if labels is not None else ()
            if len(over):
                i = int(over[0])
                raise ValueError(f"class labels {name} must be < {classes} (the model's outputs), but {len(over)} "
                                 f"are not, first {name}[{i}] = {int(labels[i])}; fix the labels or give the "
                                 f"last layer {int(labels.max()) + 1} outputs")

    def release(self, failed: bool) -> None:
        """What the run set for its duration: BLAS threads; under ``distributed`` synchronized BatchNorm and the
        shared memory of the all-reduce (kept when the run ``failed``: the other ranks may be in a collective)."""
        self.blas.__exit__(None, None, None)
        if self.distributed is not None:
            self.distributed.release(self.state.model, failed)

    def finished_already(self) -> str | None:
        """A resumed run that already met this call's limits (e.g. a finished one) goes no further."""
        return _first(self.epoch_rules + self.step_rules, self.state.history) if self.resumed else None

    def learning_rate(self) -> float:
        """This step's lr: the schedule at the loop's clock (or the optimizer's own), times the plateau scale."""
        state = self.state
        if self.schedule is None:
            return state.optimizer.lr * state.lr_scale
        clock = state.epoch + self.epoch_origin if self.schedule_unit == "epoch" else state.step
        return self.schedule(clock) * state.lr_scale

    def batch_input(self, idx) -> np.ndarray:
        """The training input of the batch ``idx``: gathered, augmented, preprocessed."""
        xb = D.take(self.X, idx, dtype=self.dtype, recycle=True)
        if self.augment is not None:
            xb = self.augment(xb, self.state.aug_rng)
        if self.preprocess is not None:
            xb = self.preprocess.transform(xb)
        return xb

    def end_epoch(self) -> None:
        """Record the finished epoch: train loss and accuracy, validation metrics, lr; keep the best θ."""
        state, history = self.state, self.state.history
        losses = history.step_loss[len(history.step_loss) - state.batches_per_epoch:]
        record = {"epoch": state.epoch, "step": state.step,
                  "train_loss": float(np.mean(losses)) if losses else math.nan}
        if self.kind is not None and state.seen:
            record["train_accuracy"] = state.correct / state.seen
        if self.validation is not None:
            average = self.average
            with (average.applied(state.params) if average is not None and average.evaluate
                  else contextlib.nullcontext()):
                res = self.evaluate(state.model, *self.validation, loss=self.loss)
            record.update({f"val_{k}": v for k, v in res.items()})
        record["lr"] = state.lr
        history.epochs.append(record)
        for r in self.early:
            if r.restore_best and r.best_epoch(history) == len(history.epochs) - 1:
                state.best = (state.best or Snapshot(state.params)).take(state.params, state.step)
                history.best = {"epoch": state.epoch, r.monitor: record.get(r.monitor)}


def _set_groups(optimizer, params) -> None:
    """Give the optimizer the model's parameter groups (frozen parameters, lr and weight-decay scales) as
    vectors over θ — or None, which clears the groups of an earlier fit (a layer unfrozen since must train)."""
    scale = params.lr_scale()
    if scale is not None and not scale.any():  # said in the model's words before the optimizer's own check
        raise ValueError("every parameter of the model is frozen (requires_grad = False): nothing to train; "
                         "unfreeze some, e.g. model[-1].unfreeze()")
    for name, vec in (("lr_scale", scale), ("weight_decay_scale", params.weight_decay_scale())):
        if hasattr(optimizer, "set_" + name):
            getattr(optimizer, "set_" + name)(vec)
        elif vec is not None:
            raise TypeError(f"the model has parameter groups ({name}), but {type(optimizer).__name__} has no "
                            f"set_{name}(vector) to honour them; use a descend optimizer")


class _Interrupt:
    """Ctrl-C as a request: the loop stops after the current step (θ, clock and callbacks consistent)
    and saves its checkpoint; a second Ctrl-C interrupts at once. Only in the main thread."""

    def __init__(self, defer: bool = True):
        self.requested = False
        self.previous = None
        if defer and threading.current_thread() is threading.main_thread():
            self.previous = signal.signal(signal.SIGINT, self._handle)

    def _handle(self, signum, frame):
        if self.requested:
            raise KeyboardInterrupt
        self.requested = True

    def restore(self) -> None:
        if self.previous is not None:
            signal.signal(signal.SIGINT, self.previous)
            self.previous = None
