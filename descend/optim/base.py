"""Optimizer base class: the step contract, hyperparameter checks, lazy flat state and state_dict."""
import math
import numbers

import numpy as np

from ..common.kernels import kernels
from ..common.validate import nonnegative

__all__ = ["Optimizer"]

def _k():
    """The Numba kernel module, imported on first use (importing numba is slow; NOTES-optim.md)."""
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


class Optimizer:
    """Base of every optimizer: ``step(theta, closure, lr=None, keep=None) -> loss`` on a flat θ updated in place.

    Subclasses list their keyword hyperparameters in ``_hyper`` (stored as attributes of the same
    name), extra scalar state in ``_scalars`` (attributes), and return the names of the flat state
    buffers their configuration needs from ``_buffer_names()``. Buffers live in ``self.state``,
    have θ's size and dtype, and are created on the first step; ``t`` counts steps.
    """

    _hyper: tuple = ()
    _scalars: tuple = ()

    def __init__(self):
        self.t = 0
        self.state: dict[str, np.ndarray] = {}

    # ------------------------------------------------------------------ to implement
    def step(self, theta, closure, lr=None, keep=None):  # pragma: no cover - abstract
        """Update θ in place and return the loss the closure gave for θ before the update.

        ``keep``: an optional array of θ's shape and dtype that receives θ as it was before the update
        (the kernels write it in their one pass, which is cheaper than a copy before the step).
        """
        raise NotImplementedError

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

    def state_dict(self) -> dict:
        """Plain dict: 'optimizer' (class name), hyperparameters, 't', scalar state and copies of the buffers."""
        d = {"optimizer": type(self).__name__, "t": int(self.t)}
        d.update(self.hyperparameters())
        for name in self._scalars:
            d[name] = getattr(self, name)
        for name, arr in self.state.items():
            d[name] = arr.copy()
        return d

    def load_state_dict(self, d) -> None:
        """Restore hyperparameters, counter and buffers exactly; ValueError naming any mismatching entry."""
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
        if isinstance(t, bool) or not isinstance(t, numbers.Integral) or t < 0:
            raise ValueError(f"entry 't' must be an integer >= 0, got {t!r}")
        state = self._load_buffers(fresh, d)
        known = {"optimizer", "t"} | set(self._hyper) | set(self._scalars) | set(state)
        unknown = sorted(set(d) - known)
        if unknown:
            raise ValueError(f"unexpected entries {unknown} in the {type(self).__name__} state")
        for k in self._hyper:
            setattr(self, k, getattr(fresh, k))
        for k in self._scalars:
            setattr(self, k, self._load_scalar(k, d[k]))
        self.t = int(t)
        self.state = state

    def _load_scalar(self, name, value):
        if isinstance(value, np.generic):
            value = value.item()
        if not isinstance(value, (numbers.Real, type(None))):
            raise ValueError(f"entry {name!r} must be a number, got {type(value).__name__}")
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
            state[name] = np.array(arr, dtype=arr.dtype, order="C", copy=True)
        return state

    def _buffers_required_after_step(self):
        return True

    def __repr__(self):
        args = ", ".join(f"{k}={v!r}" for k, v in self.hyperparameters().items())
        return f"{type(self).__name__}({args})"
