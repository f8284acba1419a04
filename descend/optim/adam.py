"""Adam (Kingma & Ba), AdamW (decoupled weight decay) and NAdam (Nesterov-accelerated Adam)."""
import math

import numpy as np

from .base import Optimizer, _k
from ..common.validate import flag, nonnegative, positive, unit_interval

__all__ = ["Adam", "AdamW", "NAdam"]


class Adam(Optimizer):
    """Adam, Kingma & Ba 2015, Algorithm 1 (Andrew Ng, "Improving Deep Neural Networks", week 2; CS231n).

    θ, g and the state ``m``, ``v`` (and ``v_max`` with AMSGrad) are flat arrays of θ's size and dtype.

        g ← g + λ·θ                                   (weight_decay λ, L2 form as torch.optim.Adam)
        m ← b1·m + (1 − b1)·g
        v ← b2·v + (1 − b2)·g²
        AMSGrad (Reddi et al. 2018):  v_max ← max(v_max, v), used in place of v below
        θ ← θ − lr/(1 − b1ᵗ) · m / (√v / √(1 − b2ᵗ) + eps)

    This is m̂/(√v̂ + eps) with m̂ = m/(1 − b1ᵗ), v̂ = v/(1 − b2ᵗ): eps outside the root (PyTorch, Optax),
    arranged as PyTorch does. bias_correction=False drops both corrections (θ ← θ − lr·m/(√v + eps)).

    Defaults (paper, PyTorch): lr=1e-3, b1=0.9, b2=0.999, eps=1e-8, weight_decay=0, amsgrad=False.
    """

    _hyper = ("lr", "b1", "b2", "eps", "weight_decay", "amsgrad", "bias_correction")
    _decoupled = False

    def __init__(self, *, lr=1e-3, b1=0.9, b2=0.999, eps=1e-8, weight_decay=0.0, amsgrad=False, bias_correction=True):
        super().__init__()
        self.lr = positive("lr", lr)
        self.b1 = unit_interval("b1", b1)
        self.b2 = unit_interval("b2", b2)
        self.eps = nonnegative("eps", eps)
        self.weight_decay = nonnegative("weight_decay", weight_decay)
        self.amsgrad = flag("amsgrad", amsgrad)
        self.bias_correction = flag("bias_correction", bias_correction)

    def _buffer_names(self):
        return ("m", "v", "v_max") if self.amsgrad else ("m", "v")

    def step(self, theta, closure, lr=None, keep=None):
        lr, keep, loss, g = self._begin(theta, closure, lr, keep)
        st = self._ensure_state(theta)
        t = self.t + 1
        b1, b2 = self.b1, self.b2
        if self.bias_correction:
            step_size = lr / (1.0 - b1 ** t)
            bc2_sqrt = math.sqrt(1.0 - b2 ** t)
        else:
            step_size, bc2_sqrt = lr, 1.0
        dt = theta.dtype.type
        lams, decays, bounds = self._coupled_or_decoupled(theta, lr, self._decoupled)  # per run of θ
        _k().adam(theta, keep, g, st["m"], st["v"], st.get("v_max"), dt(step_size), dt(b1),
                  dt(1.0 - b1), dt(b2), dt(1.0 - b2), dt(self.eps), dt(bc2_sqrt), lams, decays, bounds,
                  dt(np.finfo(theta.dtype).tiny))
        self.t = t
        return self._end(theta, keep, loss)


class AdamW(Adam):
    """AdamW, Loshchilov & Hutter 2019: Adam with decoupled weight decay (torch.optim.AdamW).

        θ ← (1 − lr·λ)·θ, then the Adam update of ``Adam`` with the raw gradient (no L2 term in g).

    Defaults (PyTorch): lr=1e-3, b1=0.9, b2=0.999, eps=1e-8, weight_decay=1e-2, amsgrad=False.
    """

    _decoupled = True

    def __init__(self, *, lr=1e-3, b1=0.9, b2=0.999, eps=1e-8, weight_decay=1e-2, amsgrad=False, bias_correction=True):
        super().__init__(lr=lr, b1=b1, b2=b2, eps=eps, weight_decay=weight_decay, amsgrad=amsgrad,
                         bias_correction=bias_correction)


class NAdam(Optimizer):
    """NAdam, Dozat 2016 "Incorporating Nesterov Momentum into Adam", as torch.optim.NAdam.

    θ, g and the state ``m``, ``v`` are flat arrays of θ's size and dtype; ``mu_product`` = Π μ₁..ₜ.

        g ← g + λ·θ  (L2; with decoupled_weight_decay=True instead θ ← (1 − lr·λ)·θ)
        μₜ = b1·(1 − ½·0.96^(t·momentum_decay))
        m ← b1·m + (1 − b1)·g;  v ← b2·v + (1 − b2)·g²;  d = √(v/(1 − b2ᵗ)) + eps
        θ ← θ − lr·(1 − μₜ)/(1 − Π₁..ₜ μ)·g/d − lr·μₜ₊₁/(1 − Π₁..ₜ₊₁ μ)·m/d

    Defaults (PyTorch): lr=2e-3, b1=0.9, b2=0.999, eps=1e-8, weight_decay=0, momentum_decay=4e-3.
    """

    _hyper = ("lr", "b1", "b2", "eps", "weight_decay", "momentum_decay", "decoupled_weight_decay")
    _scalars = ("mu_product",)

    def __init__(self, *, lr=2e-3, b1=0.9, b2=0.999, eps=1e-8, weight_decay=0.0, momentum_decay=4e-3,
                 decoupled_weight_decay=False):
        super().__init__()
        self.lr = positive("lr", lr)
        self.b1 = unit_interval("b1", b1)
        self.b2 = unit_interval("b2", b2)
        self.eps = nonnegative("eps", eps)
        self.weight_decay = nonnegative("weight_decay", weight_decay)
        self.momentum_decay = nonnegative("momentum_decay", momentum_decay)
        self.decoupled_weight_decay = flag("decoupled_weight_decay", decoupled_weight_decay)
        self.mu_product = 1.0

    def _buffer_names(self):
        return ("m", "v")

    def step(self, theta, closure, lr=None, keep=None):
        lr, keep, loss, g = self._begin(theta, closure, lr, keep)
        st = self._ensure_state(theta)
        t = self.t + 1
        b1, b2 = self.b1, self.b2
        mu = b1 * (1.0 - 0.5 * 0.96 ** (t * self.momentum_decay))
        mu_next = b1 * (1.0 - 0.5 * 0.96 ** ((t + 1) * self.momentum_decay))
        mu_product = self.mu_product * mu
        cg = -lr * (1.0 - mu) / (1.0 - mu_product)
        cm = -lr * mu_next / (1.0 - mu_product * mu_next)
        dt = theta.dtype.type
        lams, decays, bounds = self._coupled_or_decoupled(theta, lr, self.decoupled_weight_decay)
        _k().nadam(theta, keep, g, st["m"], st["v"], dt(b1), dt(1.0 - b1), dt(b2), dt(1.0 - b2), dt(self.eps),
                   dt(1.0 - b2 ** t), lams, decays, bounds, dt(cg), dt(cm),
                   dt(np.finfo(theta.dtype).tiny))
        self.mu_product = mu_product
        self.t = t
        return self._end(theta, keep, loss)
