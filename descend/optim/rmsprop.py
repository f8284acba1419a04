"""RMSProp: step sizes from an exponentially weighted average of squared gradients (centered, momentum)."""
import numpy as np

from .base import Optimizer, _k
from ..common.validate import flag, nonnegative, positive, unit_interval

__all__ = ["RMSprop"]


class RMSprop(Optimizer):
    """RMSProp (Hinton, Coursera "Neural Networks for ML" lecture 6e; Graves 2013 for the centered
    variant; arithmetic of torch.optim.RMSprop).

    θ, g and the state (``s``; ``g_avg`` when centered; ``b`` when momentum > 0) are flat arrays of
    θ's size and dtype.

        g ← g + λ·θ                              (weight_decay λ, L2 form)
        s ← α·s + (1 − α)·g²
        centered:  ḡ ← α·ḡ + (1 − α)·g;  s̃ = s − ḡ²   (else s̃ = s)
        d = √s̃ + eps          (default, eps outside the root as PyTorch)
        d = √(s̃ + eps)        (eps_inside_sqrt=True, as Andrew Ng's lecture writes √(S_dW + ε))
        momentum μ > 0:  b ← μ·b + g/d;  θ ← θ − lr·b
        else:            θ ← θ − lr·g/d

    Defaults (PyTorch): lr=0.01, alpha=0.99, eps=1e-8, weight_decay=0, momentum=0, centered=False.
    """

    _hyper = ("lr", "alpha", "eps", "weight_decay", "momentum", "centered", "eps_inside_sqrt")

    def __init__(self, *, lr=0.01, alpha=0.99, eps=1e-8, weight_decay=0.0, momentum=0.0, centered=False,
                 eps_inside_sqrt=False):
        super().__init__()
        self.lr = positive("lr", lr)
        self.alpha = unit_interval("alpha", alpha)
        self.eps = nonnegative("eps", eps)
        self.weight_decay = nonnegative("weight_decay", weight_decay)
        self.momentum = unit_interval("momentum", momentum)
        self.centered = flag("centered", centered)
        self.eps_inside_sqrt = flag("eps_inside_sqrt", eps_inside_sqrt)

    def _buffer_names(self):
        return ("s",) + (("g_avg",) if self.centered else ()) + (("b",) if self.momentum > 0.0 else ())

    def step(self, theta, closure, lr=None, keep=None):
        lr, keep, loss, g = self._begin(theta, closure, lr, keep)
        st = self._ensure_state(theta)
        dt = theta.dtype.type
        _k().rmsprop(theta, keep, g, st["s"], st.get("g_avg"), st.get("b"), dt(lr), dt(self.alpha),
                     dt(1.0 - self.alpha), dt(self.eps), *self._decays(theta), dt(self.momentum),
                     self.eps_inside_sqrt, dt(np.finfo(theta.dtype).tiny))
        self.t += 1
        return self._end(theta, keep, loss)
