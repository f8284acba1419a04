"""Optimizers on a flat parameter vector θ: step(theta, closure, lr=None, keep=None) -> loss, updating θ in place."""
from .adagrad import Adagrad
from .adam import Adam, AdamW, NAdam
from .base import Optimizer
from .bfgs import BFGS
from .clip import clip_grad_norm_, clip_grad_value_
from .lbfgs import LBFGS
from .newton import Newton
from .rmsprop import RMSprop
from .sgd import SGD

__all__ = [
    "Optimizer",
    "SGD",
    "Adagrad",
    "RMSprop",
    "Adam",
    "AdamW",
    "NAdam",
    "LBFGS",
    "BFGS",
    "Newton",
    "clip_grad_norm_",
    "clip_grad_value_",
]
