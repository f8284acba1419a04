"""θ: every parameter of a model packed into one flat vector ``theta`` with its gradient ``grad``.

After ``pack(model)`` each parameter's ``data`` is a view into ``theta`` and its ``grad`` a view into
``grad``, so backward accumulates straight into the flat gradient and an optimizer, a norm, a mask,
a checkpoint or an all-reduce is one operation on a vector.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..autodiff.tensor import Parameter

__all__ = ["Entry", "Params", "pack"]


@dataclass(frozen=True)
class Entry:
    """Where one parameter lives in θ: ``theta[offset:offset + size].reshape(shape, order=order)``.

    ``order`` is "C" (row-major), or "F" (column-major) for a parameter created column-major: ``pack``
    keeps each parameter's memory order. A ``Linear`` weight with more inputs than outputs is one:
    its gradient, xᵀ·G, is then a tall product, which OpenBLAS computes faster on a busy machine
    (see ``functional.dense._product``). Checkpoints store θ with every parameter row-major.
    """

    name: str
    shape: tuple
    offset: int
    size: int
    kind: str
    order: str = "C"

    @property
    def slice(self) -> slice:
        return slice(self.offset, self.offset + self.size)

    def view(self, vec: np.ndarray) -> np.ndarray:
        """This parameter's view of a θ-sized vector (``theta``, ``grad`` or an optimizer's state)."""
        return vec[self.slice].reshape(self.shape, order=self.order)


class Params:
    """The packed parameters of a model: ``theta``, ``grad``, ``layout`` and helpers over them."""

    def __init__(self, model, theta: np.ndarray, grad: np.ndarray, layout: tuple[Entry, ...],
                 parameters: tuple[Parameter, ...]):
        self.model = model
        self.theta = theta
        self.grad = grad
        self.layout = layout
        self._parameters = parameters
        self._canon_perm = None  # see _canon

    @property
    def _canon(self):
        """θ's positions in canonical order (every parameter row-major), or None when that is θ's own order.
        Built on first use (a checkpoint), so that ``fit`` does not spend that time before its first step."""
        if self._canon_perm is None and any(e.order != "C" for e in self.layout):
            perm = np.arange(self.theta.size)
            for e in self.layout:
                if e.order != "C":
                    perm[e.slice] = e.view(perm).ravel()
            self._canon_perm = perm
        return self._canon_perm

    def __len__(self) -> int:
        return self.theta.size

    @property
    def dtype(self):
        return self.theta.dtype

    def zero_grad(self, *, lazy: bool = False) -> None:
        """Set the flat gradient to zero before a new backward pass.

        ``lazy=True`` (the training loop's hot path) skips the fill: each view is only marked, the
        first gradient backward writes into it overwrites instead of adding, and
        ``zero_unwritten()`` after backward zeroes the views that received nothing — one pass over
        θ saved per step.
        """
        if not lazy:
            self.grad.fill(0)
        for p, e in zip(self._parameters, self.layout):
            if p.grad is None or p.grad.base is not self.grad:  # re-attach if someone rebound p.grad
                p.grad = e.view(self.grad)
            p._grad_zero = True

    def use_grad(self, grad: np.ndarray) -> None:
        """Move the flat gradient into ``grad`` (same length and dtype, contiguous; e.g. memory shared with
        other processes, where an all-reduce reads it in place): the values are copied, every parameter's
        gradient becomes a view of it, and a later ``pack`` of the model returns it."""
        if not isinstance(grad, np.ndarray) or grad.shape != self.grad.shape or grad.dtype != self.grad.dtype \
                or not grad.flags.c_contiguous or not grad.flags.writeable:
            raise ValueError(f"use_grad needs a writeable contiguous {self.grad.dtype} vector of {self.grad.size} "
                             f"values, got {getattr(grad, 'dtype', type(grad).__name__)} "
                             f"{getattr(grad, 'shape', '')}")
        grad[...] = self.grad
        token = (self.theta, grad, self.layout)
        for p, e in zip(self._parameters, self.layout):
            p._packed = token
            p.grad = e.view(grad)
        self.grad = grad

    def zero_unwritten(self) -> None:
        """After a backward that followed ``zero_grad(lazy=True)``: zero the gradients no op wrote."""
        for p in self._parameters:
            if p._grad_zero:
                p.grad[...] = 0

    def entry(self, name: str) -> Entry:
        for e in self.layout:
            if e.name == name:
                return e
        raise KeyError(f"no parameter named {name!r}; the model has {[e.name for e in self.layout]}")

    def view(self, name: str, of: str = "theta") -> np.ndarray:
        """The view of ``theta`` (or ``grad``) holding parameter ``name``."""
        return self.entry(name).view(getattr(self, of))

    def canonical(self, vec: np.ndarray) -> np.ndarray:
        """A θ-indexed array (last axis of θ's size) with every parameter row-major, as checkpoints store
        θ and as ``np.concatenate([p.data.ravel() for p in model.parameters()])`` lists it."""
        return vec if self._canon is None else vec[..., self._canon]

    def from_canonical(self, vec: np.ndarray) -> np.ndarray:
        """The inverse of ``canonical``: θ's own order from the row-major one."""
        if self._canon is None:
            return vec
        out = np.empty_like(vec)
        out[..., self._canon] = vec
        return out

    def mask(self, *kinds: str) -> np.ndarray:
        """Boolean mask over θ selecting parameters of the given kinds ("weight", "bias", "scale", "shift")."""
        known = {e.kind for e in self.layout}
        unknown = set(kinds) - known
        if unknown:
            raise ValueError(f"unknown parameter kind(s) {sorted(unknown)}; this model has {sorted(known)}")
        m = np.zeros(self.theta.size, dtype=bool)
        for e in self.layout:
            if e.kind in kinds:
                m[e.slice] = True
        return m

    def lr_scale(self) -> np.ndarray | None:
        """The learning-rate multiplier of every value of θ: 0 where the parameter is frozen
        (``requires_grad = False``), else its ``lr_scale``; None when every one is a trainable 1."""
        return self._per_value(lambda p: p.lr_scale if p.requires_grad else 0.0)

    def weight_decay_scale(self) -> np.ndarray | None:
        """The weight-decay multiplier of every value of θ (its parameter's ``weight_decay_scale``);
        None when every one is 1."""
        return self._per_value(lambda p: p.weight_decay_scale)

    def _per_value(self, value_of) -> np.ndarray | None:
        """A vector over θ holding each parameter's ``value_of(p)`` on its values; None when all are 1."""
        values = [value_of(p) for p in self._parameters]
        if all(v == 1.0 for v in values):
            return None
        s = np.ones(self.theta.size)
        for v, e in zip(values, self.layout):
            s[e.slice] = v
        return s

    def trainable(self) -> np.ndarray:
        """Boolean mask over θ of the parameters that are not frozen."""
        m = np.ones(self.theta.size, dtype=bool)
        for p, e in zip(self._parameters, self.layout):
            if not p.requires_grad:
                m[e.slice] = False
        return m

    def norms(self, of: str = "theta") -> dict[str, float]:
        """‖·‖₂ of each parameter's slice of ``theta`` or ``grad``."""
        if of not in ("theta", "grad"):
            raise ValueError(f"norms(of=...) takes 'theta' or 'grad', got {of!r}")
        vec = getattr(self, of)
        return {e.name: float(np.linalg.norm(vec[e.slice])) for e in self.layout}

    def layer_norms(self, of: str = "theta") -> dict[str, float]:
        """‖·‖₂ per layer (all parameters whose names share the prefix before the last dot)."""
        out: dict[str, float] = {}
        for name, n in self.norms(of).items():
            layer = name.rpartition(".")[0] or name
            out[layer] = float(np.hypot(out.get(layer, 0.0), n))
        return out

    def buffers(self) -> dict[str, np.ndarray]:
        """The model's non-trained state (e.g. BatchNorm running statistics), by name."""
        return dict(self.model.named_buffers())

    def __repr__(self) -> str:
        return f"Params({self.theta.size} values, dtype={self.theta.dtype}, {len(self.layout)} tensors)"


def pack(model, *, dtype=None) -> Params:
    """Pack ``model``'s parameters into one contiguous vector θ of ``dtype`` (float32 or float64; None: the
    dtype of an earlier packing, else float32).

    Every parameter's ``data`` becomes a view of θ and its ``grad`` a view of the flat gradient, in the
    parameter's own memory order (``Entry.order``); rebinding a packed parameter's array raises.
    Buffers are converted to the same dtype. Packing a packed model again in the same dtype returns a
    ``Params`` over the same θ and gradient (so ``fit``, the diagnostics and the caller share one θ);
    in another dtype (e.g. float64 for a gradient check) it moves the parameters to a new θ.
    """
    named = list(model.named_parameters())
    if not named:
        raise ValueError(f"pack: {type(model).__name__} has no parameters to pack")
    if dtype is None:  # a packed model keeps its dtype; a new one gets float32
        first = named[0][1]
        dtype = first.data.dtype if first._packed else np.float32
    dtype = np.dtype(dtype)
    if dtype not in (np.float32, np.float64):
        raise ValueError(f"pack: dtype must be float32 or float64, got {dtype}")
    existing = _packed_already(model, named, dtype)
    if existing is not None:
        return existing
    seen: dict[int, str] = {}
    for name, p in named:
        if id(p) in seen:
            raise ValueError(f"pack: parameter {name!r} is the same object as {seen[id(p)]!r}; "
                             "shared parameters are not supported in a packed model")
        seen[id(p)] = name
    total = sum(p.data.size for _, p in named)
    theta = np.empty(total, dtype=dtype)
    grad = np.zeros(total, dtype=dtype)
    layout = []
    offset = 0
    for name, p in named:
        n = p.data.size
        column_major = p.data.ndim > 1 and p.data.flags.f_contiguous and not p.data.flags.c_contiguous
        e = Entry(name, tuple(p.data.shape), offset, n, p.kind, "F" if column_major else "C")
        theta[e.slice] = p.data.ravel(order=e.order)
        p._data = e.view(theta)
        p.grad = e.view(grad)
        p.name = name
        p._grad_zero = True
        layout.append(e)
        offset += n
    token = (theta, grad, tuple(layout))  # what a later pack of the same parameters returns (_packed_already)
    for _, p in named:
        p._packed = token
    for mod_name, module in model.named_modules():
        for b in module._buffers:
            arr = getattr(module, b)
            if arr.dtype != dtype:
                module.register_buffer(b, arr.astype(dtype))
    return Params(model, theta, grad, token[2], tuple(p for _, p in named))


def _packed_already(model, named, dtype) -> Params | None:
    """``Params`` over the θ an earlier ``pack`` of exactly these parameters made (each parameter holds that
    packing's (theta, grad, layout) in ``_packed``), or None if they were never packed together in ``dtype``."""
    token = named[0][1]._packed
    if not token or token[0].dtype != dtype or len(token[2]) != len(named):
        return None
    if any(p._packed is not token or e.name != name for (name, p), e in zip(named, token[2])):
        return None
    return Params(model, token[0], token[1], token[2], tuple(p for _, p in named))
