"""Optimizer base class: the step contract, hyperparameter checks, lazy flat state and state_dict."""
import numbers

import numpy as np

from ..common.kernels import kernels
from ..common.validate import nonnegative

__all__ = ["Optimizer"]

def _k():
    """The Numba kernel module, imported on first use (importing numba is slow; NOTES.md)."""
    return kernels("descend.optim._kernels")


def check_theta(theta):
    """θ must be a writeable C-contiguous 1-D float32/float64 ndarray (it is updated in place)."""
    if not isinstance(theta, np.ndarray):
        raise TypeError(f"theta must be a numpy.ndarray, got {type(theta).__name__}")
    if theta.ndim != 1:
        raise ValueError(f"theta must be a flat 1-D array, got shape {theta.shape}; pass theta.ravel() of a contiguous array")
    if theta.dtype not in (np.float32, np.float64):
        raise ValueError(f"theta must be float32 or float64, got {theta.dtype}")
    if not theta.flags.c_contiguous or not theta.flags.writeable:
        raise ValueError("theta must be a writeable C-contiguous array (it is updated in place); "
                         "use np.ascontiguousarray(theta) or theta.copy()")


def evaluate(closure, theta):
    """Call closure() -> (loss, grad); return (float loss, contiguous grad) after checking grad."""
    out = closure()
    try:
        loss, grad = out
    except (TypeError, ValueError):
        raise TypeError("closure() must return (loss, grad), with grad a flat array shaped like theta; "
                        f"got {type(out).__name__}") from None
    if not isinstance(grad, np.ndarray) or grad.shape != theta.shape:
        shape = getattr(grad, "shape", type(grad).__name__)
        raise ValueError(f"closure() returned grad of shape {shape}; it must match theta's shape {theta.shape}")
    if grad.dtype != theta.dtype:
        raise ValueError(f"closure() returned grad of dtype {grad.dtype}; it must match theta's dtype {theta.dtype}")
    if not grad.flags.c_contiguous:
        grad = np.ascontiguousarray(grad)
    return float(loss), grad


def _scale_vector(name, scale):
    """A θ-sized vector of multipliers, checked: flat, finite, ≥ 0."""
    s = np.asarray(scale, dtype=np.float64)
    if s.ndim != 1 or not np.all(np.isfinite(s)) or np.any(s < 0):
        raise ValueError(f"{name} must be a flat vector of finite values ≥ 0 over θ, got shape {s.shape} "
                         f"with min {s.min() if s.size else None}")
    return s


class _Runs:
    """A θ-sized vector of multipliers as its runs of equal value, in the kernels' form: ``values`` (float64, as
    set) and ``bounds`` (uint64: run r is θ[bounds[r]:bounds[r + 1]]). A parameter's multiplier is one value,
    so a group is a few contiguous runs of θ: the kernels work in place on them, without index arrays."""

    def __init__(self, s):
        starts = np.r_[0, np.flatnonzero(np.diff(s)) + 1]
        self.values = s[starts]  # float64: _scale_vector's
        self.bounds = np.r_[starts, s.size].astype(np.uint64)  # unsigned: see _kernels.py
        self._cast = None

    def values_as(self, dtype):
        """``values`` in θ's dtype (cast once per dtype; the float64 source is never rounded)."""
        if self.values.dtype == dtype:
            return self.values
        if self._cast is None or self._cast.dtype != dtype:
            self._cast = self.values.astype(dtype)
        return self._cast


class Optimizer:
    """Base of every optimizer: ``step(theta, closure, lr=None, keep=None) -> loss`` on a flat θ updated in place.

    **State protocol** — the only way code outside ``descend.optim`` reads, saves or restores an optimizer
    (checkpoints, resume, the diagnostics' probes):

    - ``init_state(theta)``: create the state for this θ now rather than at the first step (idempotent;
      optional — ``step`` creates it too). Lets a caller allocate snapshots of the state up front.
    - ``state_dict(out=None) -> dict``: everything ``step`` depends on, as plain values —
      ``'optimizer'`` (the class name), every hyperparameter under its constructor keyword,
      ``'t'`` (int, steps taken; L-BFGS: iterations), the class's scalar state (NAdam ``mu_product``;
      L-BFGS ``step_size``, ``H_diag``, ``prev_loss``, ``func_evals``) and its arrays, each a **copy**
      (SGD ``v``; Adagrad ``s``; RMSprop ``s``, ``g_avg``, ``b``; Adam ``m``, ``v``, ``v_max``; NAdam
      ``m``, ``v``; L-BFGS ``d``, ``prev_grad``, ``old_dirs``, ``old_stps``, ``ro``; none for Newton).
      Arrays are absent until the state exists. Non-array values are JSON scalars (str, int, float,
      bool, None). Changing the dict never changes the optimizer.
    - ``load_state_dict(d)``: checks all of ``d`` first — class name, hyperparameters (the constructor's
      own checks), ``t``, scalars, each array's shape and dtype, no unknown entries — and on any mismatch
      raises ``ValueError``/``TypeError`` naming the entry with nothing changed. Then it restores
      hyperparameters, counter, scalars and arrays exactly (copied, never aliased): the next ``step``
      calls are bit-identical to those of the optimizer the dict came from.

    Subclasses list their keyword hyperparameters in ``_hyper`` (stored as attributes of the same
    name), extra scalar state in ``_scalars`` (attributes), and return the names of the flat state
    buffers their configuration needs from ``_buffer_names()``. Buffers live in ``self.state`` (read-only
    for others), have θ's size and dtype, and are created by ``init_state`` or the first step; ``t``
    counts steps.
    """

    _hyper: tuple = ()
    _scalars: tuple = ()
    accepts_keep = True  # step(..., keep=) writes θ before the update (the training loop's snapshots)

    def __init__(self):
        self.t = 0
        self.state: dict[str, np.ndarray] = {}
        self.lr_scale = self._lr_runs = None  # per-parameter step multipliers (``set_lr_scale``); None: all 1
        self.weight_decay_scale = self._decay_runs = None  # per-parameter decay multipliers; None: all 1
        self._decay_cache = None  # the kernels' per-run weight-decay arrays for the groups (``_decay_terms``)

    # ------------------------------------------------------------------ parameter groups
    def set_lr_scale(self, scale) -> None:
        """Per-parameter learning-rate multipliers: a θ-sized vector s ≥ 0 (None removes them).

        Every optimizer honours it where its update happens: with θ₀ the value before a step and θ₁ the
        optimizer's own result, θ ← θ₀ + s·(θ₁ − θ₀). Where s = 0 (frozen) θ₀ is put back exactly, where
        s = 1 θ₁ is left as computed, so frozen parameters stay bit-identical under any update rule,
        decoupled weight decay included. For the first-order methods, whose step is lr times a term
        that does not depend on lr (SGD in the PyTorch and EWA forms, AdaGrad, RMSprop, Adam, AdamW,
        NAdam), this is exactly the step with lr·s per parameter — PyTorch's parameter groups with
        their own ``lr``, vectorized; a decoupled decay is scaled with it, as in PyTorch's groups. For
        CS231n momentum, L-BFGS and Newton it scales (or, at 0, undoes) the step taken. Not part of
        ``state_dict``: it describes the model's parameter groups, which ``fit`` sets from the model.
        """
        if scale is None:
            self.lr_scale = self._lr_runs = None
            return
        s = _scale_vector("lr_scale", scale)
        if not np.any(s > 0):
            raise ValueError("lr_scale is 0 for every parameter: nothing would be trained; unfreeze some "
                             "parameters (e.g. the new head)")
        self.lr_scale, self._lr_runs = s, _Runs(s)

    def set_weight_decay_scale(self, scale) -> None:
        """Per-parameter weight-decay multipliers: a θ-sized vector c ≥ 0 (None removes them).

        A parameter's weight decay is c·``weight_decay``, in the optimizer's own form: the L2 term
        g ← g + c·λ·θ of SGD, AdaGrad, RMSprop, Adam and NAdam, or the decoupled θ ← (1 − lr·c·λ)·θ of
        AdamW (and NAdam with decoupled_weight_decay). With ``set_lr_scale`` this is PyTorch's parameter
        groups, each with its own ``lr`` = s·lr and ``weight_decay`` = c·λ (c = 0: no decay, e.g. for a
        backbone or for biases). The kernels take one λ per contiguous run of θ with one c, in their one
        pass (no gathers, no per-element decay vector, no extra call); without groups θ is one run.
        Optimizers without a weight decay (L-BFGS, BFGS, Newton) accept and ignore it. Not part of
        ``state_dict``: ``fit`` sets it from the model's parameters, as it sets the lr scales.
        """
        self._decay_cache = None
        if scale is None:
            self.weight_decay_scale = self._decay_runs = None
            return
        s = _scale_vector("weight_decay_scale", scale)
        self.weight_decay_scale = s
        self._decay_runs = None if np.all(s == 1.0) else _Runs(s)

    def _decays(self, theta):
        """(λ of each run of θ, the runs' bounds): the kernels' weight decay, one run without groups."""
        c = self._decay_terms(theta)
        return c["lams"], c["bounds"]

    def _coupled_or_decoupled(self, theta, lr: float, decoupled: bool):
        """(λ of each run for the L2 term g + λ·θ, each run's factor d for θ ← d·θ, bounds): (λ, 1) for L2;
        (0, 1 − lr·λ) for a decoupled decay, the factor computed in float64 and rounded once to θ's dtype,
        as PyTorch's ``AdamW`` rounds it."""
        c = self._decay_terms(theta)
        if not decoupled:
            return c["lams"], c["ones"], c["bounds"]
        if c.get("lr") != lr:  # a schedule changes lr; a constant one forms the factors once
            c["lr"], c["decays"] = lr, (1.0 - lr * c["lams64"]).astype(theta.dtype)
        return c["zeros"], c["decays"], c["bounds"]

    def _decay_terms(self, theta) -> dict:
        """The per-run weight-decay arrays, cached: rebuilt only when θ's size or dtype, the groups or
        ``weight_decay`` change."""
        wd = getattr(self, "weight_decay", 0.0)
        key = (theta.size, theta.dtype, wd)
        cache = self._decay_cache
        if cache is None or cache["key"] != key:
            runs = self._decay_runs
            if runs is not None and wd != 0.0:
                lams64, bounds = wd * runs.values, runs.bounds
            else:  # one run: all of θ
                lams64, bounds = np.array([wd]), np.array([0, theta.size], dtype=np.uint64)
            self._decay_cache = cache = {"key": key, "lams64": lams64, "lams": lams64.astype(theta.dtype),
                                         "bounds": bounds, "zeros": np.zeros(len(lams64), theta.dtype),
                                         "ones": np.ones(len(lams64), theta.dtype)}
        return cache

    def _end(self, theta, keep, loss):
        """Apply ``lr_scale`` to the step just taken (θ before it is in ``keep``); return ``loss``."""
        if self.lr_scale is not None:  # one pass over the runs: θ₀ + s·(θ₁ − θ₀) in θ's dtype, θ₀ exactly at s = 0
            _k().rescale(theta, keep, self._lr_runs.values_as(theta.dtype), self._lr_runs.bounds)
        return loss

    # ------------------------------------------------------------------ to implement
    def step(self, theta, closure, lr=None, keep=None):  # pragma: no cover - abstract
        """Update θ in place and return the loss the closure gave for θ before the update.

        ``keep``: an optional array of θ's shape and dtype that receives θ as it was before the update
        (the kernels write it in their one pass, which is cheaper than a copy before the step).
        """
        raise NotImplementedError

    def init_state(self, theta) -> None:
        """Create the state buffers for ``theta`` now (zeros or the class's initial value) instead of at the
        first step. Idempotent: existing state is kept; a θ of another size or dtype than the existing
        state raises ValueError. θ is not changed."""
        check_theta(theta)
        self._ensure_state(theta)

    def _buffer_names(self):
        return ()

    def _buffer_init(self, name):
        """Initial value of a buffer (0 unless a subclass says otherwise)."""
        return 0.0

    # ------------------------------------------------------------------ helpers for subclasses
    def _lr(self, lr):
        """The learning rate of this step: the optimizer's own, or the caller's override (>= 0)."""
        if lr is None:
            return self.lr
        return nonnegative("lr", lr)

    def _ensure_state(self, theta):
        """Create the buffers on the first step; afterwards refuse a θ of another size or dtype."""
        names = self._buffer_names()
        if not self.state:
            for name in names:
                self.state[name] = np.full(theta.shape, self._buffer_init(name), dtype=theta.dtype)
            return self.state
        for name in names:
            buf = self.state[name]
            if buf.shape != theta.shape or buf.dtype != theta.dtype:
                raise ValueError(f"optimizer state {name!r} has shape {buf.shape} and dtype {buf.dtype}, but theta "
                                 f"has shape {theta.shape} and dtype {theta.dtype}; use a new optimizer for a new theta")
        return self.state

    def _begin(self, theta, closure, lr, keep):
        """The start every ``step`` shares: check θ and ``keep`` and resolve the learning rate (so bad
        arguments raise before anything runs), then evaluate the closure once at θ.
        Returns (lr, keep or None, loss, grad)."""
        check_theta(theta)
        keep = self._keep(keep, theta)
        lr = self._lr(lr)
        if self.lr_scale is not None:  # θ before the step is needed to scale it (``_end``)
            if self.lr_scale.shape != theta.shape:
                raise ValueError(f"lr_scale has {self.lr_scale.size} entries but theta {theta.size}; set it "
                                 "again for this θ (set_lr_scale) or remove it (set_lr_scale(None))")
            if keep is None:
                if getattr(self, "_before", None) is None or self._before.shape != theta.shape \
                        or self._before.dtype != theta.dtype:
                    self._before = np.empty_like(theta)
                keep = self._before
        if self.weight_decay_scale is not None and self.weight_decay_scale.shape != theta.shape:
            raise ValueError(f"weight_decay_scale has {self.weight_decay_scale.size} entries but theta {theta.size}; "
                             "set it again for this θ (set_weight_decay_scale) or remove it (None)")
        loss, g = evaluate(closure, theta)
        return lr, keep, loss, g

    def _keep(self, keep, theta):
        """Check the ``keep`` argument of ``step`` (None: not wanted)."""
        if keep is None:
            return None
        if (not isinstance(keep, np.ndarray) or keep.shape != theta.shape or keep.dtype != theta.dtype
                or not keep.flags.c_contiguous or not keep.flags.writeable):
            raise ValueError(f"keep must be a writeable C-contiguous array shaped like theta {theta.shape} with dtype "
                             f"{theta.dtype}, got {getattr(keep, 'shape', type(keep).__name__)} "
                             f"{getattr(keep, 'dtype', '')}; pass np.empty_like(theta)")
        if np.may_share_memory(keep, theta):
            raise ValueError("keep must not overlap theta: pass a separate buffer such as np.empty_like(theta)")
        return keep

    # ------------------------------------------------------------------ state round trip
    def hyperparameters(self) -> dict:
        return {name: getattr(self, name) for name in self._hyper}

    def state_dict(self, *, out=None) -> dict:
        """The optimizer's whole state as a plain dict (keys: see the class docstring); arrays are copies.

        ``out``: a dict an earlier ``state_dict()`` returned. Its arrays of matching shape and dtype are
        overwritten in place and it is returned updated, so repeated snapshots allocate nothing.
        """
        d = {"optimizer": type(self).__name__, "t": int(self.t)}
        d.update(self.hyperparameters())
        for name in self._scalars:
            d[name] = getattr(self, name)
        for name, arr in self._state_arrays():
            dst = out.get(name) if out is not None else None
            if (isinstance(dst, np.ndarray) and dst.shape == arr.shape and dst.dtype == arr.dtype
                    and dst.flags.c_contiguous and dst.flags.writeable and not np.may_share_memory(dst, arr)):
                np.copyto(dst, arr)
                d[name] = dst
            else:
                d[name] = np.array(arr, dtype=arr.dtype, order="C", copy=True)
        if out is None:
            return d
        out.clear()
        out.update(d)
        return out

    def _state_arrays(self):
        """(name, array) of the array state, in a fixed order (the arrays may be the live buffers)."""
        return self.state.items()

    def load_state_dict(self, d) -> None:
        """Restore a ``state_dict()`` exactly, after checking every entry (nothing changes if one is wrong).

        Raises TypeError if ``d`` is not a dict, ValueError naming the first entry that does not fit
        (another optimizer class, a missing or unknown entry, an invalid hyperparameter, ``t`` < 0, a
        non-numeric scalar, an array of the wrong shape or dtype, or of another size than this
        optimizer's existing state). The arrays are copied (into the existing buffers when they fit).
        """
        if not isinstance(d, dict):
            raise TypeError(f"state must be a dict from state_dict(), got {type(d).__name__}")
        if d.get("optimizer") != type(self).__name__:
            raise ValueError(f"entry 'optimizer' is {d.get('optimizer')!r}; this state cannot load into {type(self).__name__}")
        for key in ("t",) + self._hyper + self._scalars:
            if key not in d:
                raise ValueError(f"entry {key!r} is missing from the {type(self).__name__} state")
        try:  # validates the hyperparameters with the constructor's own checks
            fresh = type(self)(**{k: d[k] for k in self._hyper})
        except (TypeError, ValueError) as err:
            raise ValueError(f"invalid hyperparameter in state: {err}") from None
        t = d["t"]
        if isinstance(t, (bool, np.bool_)) or not isinstance(t, numbers.Integral) or t < 0:
            raise ValueError(f"entry 't' must be an integer >= 0, got {t!r}")
        scalars = {k: self._load_scalar(k, d[k]) for k in self._scalars}
        arrays = self._load_buffers(fresh, d)
        known = {"optimizer", "t"} | set(self._hyper) | set(self._scalars) | set(arrays)
        unknown = sorted(set(d) - known)
        if unknown:
            raise ValueError(f"unexpected entries {unknown} in the {type(self).__name__} state")
        # everything checked: from here on nothing raises
        for k in self._hyper:
            setattr(self, k, getattr(fresh, k))
        for k, v in scalars.items():
            setattr(self, k, v)
        self.t = int(t)
        self._set_arrays(arrays)

    def _set_arrays(self, arrays):
        """Install checked arrays: copied into the existing buffers when the names and shapes match."""
        same = set(arrays) == set(self.state) and all(
            self.state[k].shape == v.shape and self.state[k].dtype == v.dtype for k, v in arrays.items())
        if same:
            for k, v in arrays.items():
                np.copyto(self.state[k], v)
        else:
            self.state = {k: np.array(v, dtype=v.dtype, order="C", copy=True) for k, v in arrays.items()}

    _nullable: tuple = ()  # scalar state entries that may be None (not yet set)

    def _load_scalar(self, name, value):
        if isinstance(value, np.generic):
            value = value.item()
        if value is None and name in self._nullable:
            return None
        if isinstance(value, bool) or not isinstance(value, numbers.Real):
            raise ValueError(f"entry {name!r} must be a number, got {value!r} ({type(value).__name__})")
        return value

    def _load_buffers(self, fresh, d):
        names = fresh._buffer_names()
        present = [n for n in names if n in d]
        if not present:
            if d["t"] > 0 and names and self._buffers_required_after_step():
                raise ValueError(f"entry {names[0]!r} is missing from the {type(self).__name__} state (t = {d['t']})")
            return {}
        missing = [n for n in names if n not in d]
        if missing:
            raise ValueError(f"entry {missing[0]!r} is missing from the {type(self).__name__} state")
        if self.state:  # must match this optimizer's current state
            ref_name, ref = "this optimizer's state", next(iter(self.state.values()))
        else:  # must match each other
            ref_name, ref = repr(present[0]), d[present[0]]
            if not isinstance(ref, np.ndarray):
                raise ValueError(f"entry {present[0]!r} must be an ndarray, got {type(ref).__name__}")
        state = {}
        for name in names:
            arr = d[name]
            if not isinstance(arr, np.ndarray):
                raise ValueError(f"entry {name!r} must be an ndarray, got {type(arr).__name__}")
            if arr.ndim != 1 or arr.dtype not in (np.float32, np.float64):
                raise ValueError(f"entry {name!r} must be a 1-D float32/float64 array, got shape {arr.shape} dtype {arr.dtype}")
            if arr.shape != ref.shape or arr.dtype != ref.dtype:
                raise ValueError(f"entry {name!r} has shape {arr.shape} and dtype {arr.dtype}, but {ref_name} has "
                                 f"shape {ref.shape} and dtype {ref.dtype}")
            state[name] = arr
        return state

    def _buffers_required_after_step(self):
        return True

    def __repr__(self):
        args = ", ".join(f"{k}={v!r}" for k, v in self.hyperparameters().items())
        return f"{type(self).__name__}({args})"
