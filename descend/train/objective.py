"""The one closure of training: J(θ) on the current batch — zero grad, forward, loss, L2, backward.

``fit``, the babysitting checks, L-BFGS / Newton (which call it as often as their line search needs) and
data-parallel training all evaluate the objective through this one class.
"""
from __future__ import annotations

from typing import Callable, Sequence

import numpy as np

from ..common.validate import nonnegative
from ..nn import functional as F
from ..nn.plan import Plan
from .evaluate import _correct

__all__ = ["Objective"]


class Objective:
    """``objective() -> (J, grad)``: the loss of ``model`` on the current batch plus the lectures' L2 term.

    J(θ) = loss(model(x), y) + (λ/2m)·Σ cₚ‖Wₚ‖², the sum over the parameters whose kind is in ``l2_kinds``
    (weights, not biases, by default; m = the number of training examples, CS231n / Ng), frozen ones excepted,
    cₚ the parameter's ``weight_decay_scale`` (its group's multiplier of λ; 1 by default). The gradient lands
    in the flat ``params.grad`` (zeroed first) and is returned with J. Set the batch with ``batch(x, y)``;
    the model's output of the last evaluation is ``output`` (for the running accuracy).

    A plain ``Sequential`` model is evaluated through its execution plan (``descend.nn.plan``): the same
    layer kernels in the same order without an autograd graph, the same bits. ``plan=False`` always
    builds the graph (the reference path).
    """

    def __init__(self, model, params, loss: Callable = F.cross_entropy, *, l2: float = 0.0, m: int = 1,
                 l2_kinds: Sequence[str] = ("weight",), plan: bool = True):
        l2 = nonnegative("l2 (λ)", l2)
        if m < 1:
            raise ValueError(f"m (the number of training examples) must be ≥ 1, got {m}")
        self.model, self.params, self.loss = model, params, loss
        self.l2, self.m = l2, m
        # a frozen parameter takes no L2 term: its gradient stays 0 (its penalty is a constant)
        self.l2_terms = [(e.slice, p.weight_decay_scale) for e, p in zip(params.layout, model.parameters())
                         if l2 and e.kind in l2_kinds and p.requires_grad and p.weight_decay_scale != 0.0]
        self.x = self.y = self.output = None
        self.plan = Plan.build(model, loss) if plan else None

    def release(self) -> None:
        """Let go of the arrays the execution plan bound (views of the gradient among them)."""
        if self.plan is not None:
            self.plan.release()

    def batch(self, x, y) -> None:
        """The batch the next evaluations use."""
        self.x, self.y = x, y

    def data_loss(self, *, scale: float = 1.0) -> float:
        """Zero the gradient, run the model and backpropagate ``scale`` × the batch's loss; return that value.

        ``scale`` = the batch's size turns the mean loss into the summed loss (data-parallel training).
        """
        params = self.params
        params.zero_grad(lazy=True)
        done = self.plan.run(self.x, self.y, scale) if self.plan is not None else None
        if done is not None:
            params.zero_unwritten()
            self.output = done[1]
            return done[0]
        out = self.model(self.x)
        value = self.loss(out, self.y)
        if scale != 1.0:
            value = value * scale
        value.backward()
        params.zero_unwritten()
        self.output = out.data
        return float(value.data)

    def add_penalty(self, total: float) -> float:
        """J = ``total`` + (λ/2m)·Σ cₚ‖Wₚ‖², its gradient added into ``params.grad``."""
        theta, grad, lam = self.params.theta, self.params.grad, self.l2 / self.m
        for sl, scale in self.l2_terms:
            w, c = theta[sl], lam * scale
            total += 0.5 * c * float(np.dot(w, w))
            grad[sl] += c * w
        return total

    def tally(self, kind: str) -> tuple[int, int]:
        """(examples, correctly classified) of the last evaluation, for the running accuracy."""
        return len(self.output), _correct(kind, self.output, self.y)

    def __call__(self):
        return self.add_penalty(self.data_loss()), self.params.grad
