"""Stochastic gradient descent with momentum in three forms (PyTorch, the lecture's EWA, CS231n) and Nesterov."""
import numpy as np

from .base import Optimizer, _k
from ..common.validate import choice, closed_unit_interval, flag, nonnegative, positive, unit_interval

__all__ = ["SGD"]

MOMENTUM_FORMS = ("pytorch", "ewa", "cs231n")


class SGD(Optimizer):
    """Gradient descent: batch, mini-batch or stochastic (the batch size is the loop's choice).

    θ and g are flat arrays of length D; the state ``v`` (only when momentum > 0) has θ's size and dtype.
    With weight_decay λ the gradient is first replaced by g + λ·θ (L2 penalty, as PyTorch).

    momentum = 0:        θ ← θ − lr·g                                   (Robbins & Monro; every course)

    momentum_form="pytorch" (default; PyTorch, Sutskever et al. 2013 as implemented by torch.optim.SGD):
        v ← μ·v + (1 − dampening)·g   (first step: v ← g)
        θ ← θ − lr·v;  with nesterov=True: θ ← θ − lr·(g + μ·v)
      Nesterov here is PyTorch's reformulation (look-ahead gradient folded into the update), not the
      "evaluate g at θ + μv" form of the paper; both give the same iterates up to a change of variable.

    momentum_form="ewa" (Andrew Ng, "Improving Deep Neural Networks", week 2: momentum as an
    exponentially weighted average, β = momentum):
        v ← β·v + (1 − β)·g   (v₀ = 0);  θ ← θ − lr·v̂,  v̂ = v/(1 − βᵗ) if bias_correction else v

    momentum_form="cs231n" (CS231n notes, "Parameter updates"):
        v ← μ·v − lr·g;  θ ← θ + v

    Defaults (PyTorch): momentum=0, dampening=0, nesterov=False, weight_decay=0. ``lr`` has no
    universal default; it must be given. dampening applies to the PyTorch form only, nesterov needs
    momentum > 0, dampening = 0 and the PyTorch form, and bias_correction applies to the EWA form only.
    """

    _hyper = ("lr", "momentum", "dampening", "nesterov", "weight_decay", "momentum_form", "bias_correction")

    def __init__(self, *, lr, momentum=0.0, dampening=0.0, nesterov=False, weight_decay=0.0,
                 momentum_form="pytorch", bias_correction=False):
        super().__init__()
        self.lr = positive("lr", lr)
        self.momentum = unit_interval("momentum", momentum)
        self.dampening = closed_unit_interval("dampening", dampening)
        self.nesterov = flag("nesterov", nesterov)
        self.weight_decay = nonnegative("weight_decay", weight_decay)
        self.momentum_form = choice("momentum_form", momentum_form, MOMENTUM_FORMS)
        self.bias_correction = flag("bias_correction", bias_correction)
        if self.nesterov and (self.momentum == 0.0 or self.dampening != 0.0):
            raise ValueError(f"nesterov=True needs momentum > 0 and dampening = 0 (got momentum={self.momentum}, "
                             f"dampening={self.dampening}); set momentum=0.9 or nesterov=False")
        if self.nesterov and self.momentum_form != "pytorch":
            raise ValueError(f"nesterov=True is defined for momentum_form='pytorch' only, got {self.momentum_form!r}")
        if self.dampening != 0.0 and self.momentum_form != "pytorch":
            raise ValueError(f"dampening applies to momentum_form='pytorch' only (the EWA form has its own 1 − β); "
                             f"got dampening={self.dampening} with {self.momentum_form!r}")
        if self.bias_correction and self.momentum_form != "ewa":
            raise ValueError(f"bias_correction applies to momentum_form='ewa' only, got {self.momentum_form!r}")

    def _buffer_names(self):
        return ("v",) if self.momentum != 0.0 else ()

    def step(self, theta, closure, lr=None, keep=None):
        lr, keep, loss, g = self._begin(theta, closure, lr, keep)
        dt = theta.dtype.type
        k = _k()
        lams, bounds = self._decays(theta)  # λ per run of θ (parameter groups; one run without)
        if self.momentum == 0.0:
            k.sgd(theta, keep, g, dt(lr), lams, bounds)
            self.t += 1
            return self._end(theta, keep, loss)
        v = self._ensure_state(theta)["v"]
        mu = self.momentum
        tiny = dt(np.finfo(theta.dtype).tiny)
        if self.momentum_form == "pytorch":
            k.sgd_momentum(theta, keep, g, v, dt(lr), dt(mu), dt(1.0 - self.dampening), lams, bounds, self.nesterov,
                           self.t == 0, tiny)
        elif self.momentum_form == "ewa":
            lr_c = lr / (1.0 - mu ** (self.t + 1)) if self.bias_correction else lr
            k.sgd_ewa(theta, keep, g, v, dt(lr_c), dt(mu), dt(1.0 - mu), lams, bounds, tiny)
        else:
            k.sgd_cs231n(theta, keep, g, v, dt(lr), dt(mu), lams, bounds, tiny)
        self.t += 1
        return self._end(theta, keep, loss)
