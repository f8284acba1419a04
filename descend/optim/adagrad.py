"""AdaGrad: per-coordinate step sizes from the running sum of squared gradients."""

from .base import Optimizer, _k
from ..common.validate import flag, nonnegative, positive

__all__ = ["Adagrad"]


class Adagrad(Optimizer):
    """AdaGrad (Duchi, Hazan & Singer 2011; CS231n notes; arithmetic of torch.optim.Adagrad).

    θ, g and the state ``s`` (sum of squared gradients) are flat arrays of θ's size and dtype.

        g ← g + λ·θ                             (weight_decay λ, L2 form)
        s ← s + g²                              (s₀ = initial_accumulator_value)
        lrₜ = lr / (1 + (t − 1)·lr_decay)        (t = 1 on the first step)
        θ ← θ − lrₜ·g / (√s + eps)          (default: eps outside the root, as torch.optim.Adagrad)
        θ ← θ − lrₜ·g / √(s + eps)          (eps_inside=True: d2l.ai §12.7's form, eps inside the root)

    Defaults (PyTorch): lr=0.01, lr_decay=0, weight_decay=0, initial_accumulator_value=0, eps=1e-10,
    eps_inside=False. With eps_inside=True, eps bounds the first steps (|Δθ| ≤ lr·|g|/√eps): d2l uses 1e-6.
    """

    _hyper = ("lr", "lr_decay", "weight_decay", "initial_accumulator_value", "eps", "eps_inside")

    def __init__(self, *, lr=0.01, lr_decay=0.0, weight_decay=0.0, initial_accumulator_value=0.0, eps=1e-10,
                 eps_inside=False):
        super().__init__()
        self.lr = positive("lr", lr)
        self.lr_decay = nonnegative("lr_decay", lr_decay)
        self.weight_decay = nonnegative("weight_decay", weight_decay)
        self.initial_accumulator_value = nonnegative("initial_accumulator_value", initial_accumulator_value)
        self.eps = nonnegative("eps", eps)
        self.eps_inside = flag("eps_inside", eps_inside)

    def _buffer_names(self):
        return ("s",)

    def _buffer_init(self, name):
        return self.initial_accumulator_value

    def step(self, theta, closure, lr=None, keep=None):
        lr, keep, loss, g = self._begin(theta, closure, lr, keep)
        s = self._ensure_state(theta)["s"]
        dt = theta.dtype.type
        clr = lr / (1.0 + self.t * self.lr_decay)
        _k().adagrad(theta, keep, g, s, dt(clr), dt(self.eps), *self._decays(theta), self.eps_inside)
        self.t += 1
        return self._end(theta, keep, loss)
