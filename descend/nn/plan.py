"""An execution plan for plain ``Sequential`` models: one training evaluation without an autograd graph.

The graph path (a ``Tensor`` per node, a topological backward over a heap, per-input bookkeeping) is
the reference. A plan, built once per model, calls the very same ``Function`` forward and backward
methods in the same order on the same arrays — so its loss, output and gradient are the same bits
(tests/test_plan.py) — and skips what only a general graph needs. ``Plan.build`` returns None for a
model it does not cover; the caller then uses the graph.

Covered: ``Sequential`` (nested too) of ``Linear`` (fused with a following ``ReLU`` as ``Sequential``
fuses it), ``ReLU``, ``LeakyReLU``, ``ELU``, ``Tanh``, ``Sigmoid``, ``Dropout`` and ``Flatten()``, under
``cross_entropy`` or ``mse`` with their default mean reduction, on a 2-D (or flattened) batch.
A chain of ``Linear`` (+ ``ReLU``) layers alone, leading ``Flatten``s allowed, runs bound once per batch shape
(``affine_chain``).
"""
from __future__ import annotations

import math

import numpy as np

from ..autodiff.array_ops import Reshape
from ..autodiff.tensor import accumulate_leaf, grad_sink
from . import functional as F
from .affine_chain import Chain, loss_and_grad
from .functional import dense as D
from .layers import ELU, Dropout, Flatten, LeakyReLU, Linear, ReLU, Sequential, Sigmoid, Tanh

__all__ = ["Plan", "largest_product"]

# a layer type → (the Function its forward applies, the layer attributes passed as its options)
_ACTIVATIONS = {ReLU: (D.ReLU, {}), Tanh: (D.Tanh, {}), Sigmoid: (D.Sigmoid, {}),
                LeakyReLU: (D.LeakyReLU, {"negative_slope": "negative_slope"}), ELU: (D.ELU, {"alpha": "alpha"})}


def _steps(seq: Sequential) -> list | None:
    """The plan's steps for ``seq``, fused exactly as ``Sequential.forward`` fuses; None if not covered."""
    if type(seq).forward is not Sequential.forward:
        return None
    layers, out, i = list(seq), [], 0
    while i < len(layers):
        layer = layers[i]
        cls = type(layer)
        if cls is Linear:
            fused = i + 1 < len(layers) and type(layers[i + 1]) is ReLU
            out.append(("affine", layer, fused))
            i += 2 if fused else 1
            continue
        if cls in _ACTIVATIONS:
            fn, names = _ACTIVATIONS[cls]
            out.append(("act", fn, {k: getattr(layer, a) for k, a in names.items()}))
        elif cls is Dropout:
            out.append(("dropout", layer, None))
        elif cls is Flatten and layer.start_dim == 1:
            out.append(("flatten", None, None))
        elif cls is Sequential:
            inner = _steps(layer)
            if inner is None:
                return None
            out.extend(inner)
        else:
            return None
        i += 1
    return out


def largest_product(model, batch: int) -> int | None:
    """m·n·k of the largest matrix product in a training step of a dense network on ``batch`` examples
    (batch × a weight matrix's size); None for a model with weights of more axes (convolutions)."""
    weights = [p.shape for p in model.parameters() if p.kind == "weight"]
    if not weights or any(len(shape) != 2 for shape in weights):
        return None
    return max(batch * shape[0] * shape[1] for shape in weights)


class Plan:
    """``run(x, y, scale)`` → (J, the model's output): the loss of ``model`` on the batch and its gradient
    written into the parameters' gradient views — what ``forward → loss → backward`` computes."""

    def __init__(self, steps: list, loss):
        self.steps, self.loss = steps, loss
        lead = 0  # leading Flattens (an image batch into an MLP): one reshape of the input, as Flatten's forward
        while lead < len(steps) and steps[lead][0] == "flatten":
            lead += 1
        self.flatten, rest = lead > 0, steps[lead:]
        affine = [layer for kind, layer, _ in rest if kind == "affine"]
        # a chain of affine layers (+ ReLU) alone: its fast path, bound once per batch shape
        self.chain = Chain(affine, [fused for _, _, fused in rest], loss is F.cross_entropy) \
            if len(affine) == len(rest) else None

    @classmethod
    def build(cls, model, loss) -> "Plan | None":
        """A plan for ``model`` trained with ``loss``, or None when the graph must do it."""
        if not isinstance(model, Sequential) or (loss is not F.cross_entropy and loss is not F.mse):
            return None
        steps = _steps(model)
        if not steps or not any(kind == "affine" for kind, _, _ in steps):
            return None
        used = [id(p) for kind, layer, _ in steps if kind == "affine" for p in layer.parameters()]
        if len(used) != len(set(used)):
            return None  # a parameter used twice accumulates its gradient: the graph's business
        return cls(steps, loss)

    def release(self) -> None:
        """Forget the arrays bound per batch shape (they are bound again when needed)."""
        if self.chain is not None:
            self.chain.bound.clear()

    def run(self, x, y, scale: float = 1.0):
        """The loss (times ``scale``) and the output, or None when this batch needs the graph (an input that
        is not a 2-D array, or nothing to differentiate)."""
        if not isinstance(x, np.ndarray) or x.ndim != 2 and self.steps[0][0] != "flatten":
            return None
        done = None
        if self.chain is not None:
            done = self.chain.run(x.reshape(x.shape[:1] + (math.prod(x.shape[1:]),)) if self.flatten else x, y, scale)
        if done is not None:
            return done
        tape, h, wanted = [], x, False  # wanted: whether h depends on a parameter that requires a gradient
        for kind, obj, extra in self.steps:
            if kind == "affine":
                w, b = obj.weight, obj.bias
                if h.ndim != 2:
                    return None
                fn = D.LinearReLU() if extra else D.Linear()
                if b is None:
                    fn.needs_input_grad = (wanted, w.requires_grad)
                    h = fn.forward(h, w._data)
                    grads = (w,)
                else:
                    fn.needs_input_grad = (wanted, w.requires_grad, b.requires_grad)
                    h = fn.forward(h, w._data, b._data)
                    grads = (w, b)
                wanted = wanted or True in fn.needs_input_grad[1:]
                tape.append(_record(fn, grads, wanted))
                continue
            if kind == "act":
                fn = obj()
                fn.needs_input_grad = (wanted,)
                h = fn.forward(h, **extra)
            elif kind == "dropout":
                if not obj.training or obj.p == 0:
                    continue
                fn = D.Dropout()
                fn.needs_input_grad = (wanted, False)
                h = fn.forward(h, D.dropout_mask(h, obj.p, obj.rng))
            else:  # flatten: the reshape Flatten's forward applies
                fn = Reshape()
                h = fn.forward(h, h.shape[:1] + (math.prod(h.shape[1:]),))
            tape.append(_record(fn, None, wanted))
        if not wanted:
            return None  # nothing requires a gradient: the graph raises its error
        ce = self.loss is F.cross_entropy  # MSE needs neither of cross-entropy's arrays
        value, g = loss_and_grad(ce, h, y, scale, np.empty(h.shape, h.dtype) if ce else None,
                                 np.empty(h.shape[0], h.dtype) if ce else None)
        for entry in reversed(tape):
            if entry is None:
                break  # the steps before do not depend on a trained parameter
            fn, grads = entry
            if grads is not None:
                fn.sinks = (None, *(grad_sink(p) for p in grads))  # as the graph sets them
            out = fn.backward(g)
            g = out[0]
            if grads is not None:
                for p, pg in zip(grads, out[1:]):
                    if pg is not None and p.requires_grad:
                        accumulate_leaf(p, pg, False)  # as the graph accumulates a leaf's gradient
            fn.release()
        return value, h


def _record(fn, grads, wanted: bool):
    """The tape's entry for a step: (fn, its parameters) when backward goes through it; else None, and
    what fn saved for backward is dropped now (as the graph drops an unrecorded node's)."""
    if wanted:
        return fn, grads
    fn.release()
    return None
