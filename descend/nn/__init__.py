"""Neural-network building blocks: fused functions, layers, initializers, losses and the packed θ."""
from . import functional, init
from .layers import (ELU, BatchNorm1d, Dropout, Flatten, LeakyReLU, Linear, Maxout, Module, ReLU, Sequential,
                     Sigmoid, Tanh)
from .losses import bce_with_logits, cross_entropy, hinge, l2_penalty, mse
from .params import Entry, Params, pack

__all__ = ["functional", "init", "Module", "Sequential", "Linear", "ReLU", "LeakyReLU", "ELU", "Sigmoid", "Tanh",
           "Maxout", "Dropout", "BatchNorm1d", "Flatten", "cross_entropy", "mse", "bce_with_logits", "hinge",
           "l2_penalty", "Entry", "Params", "pack"]
