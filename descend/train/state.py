"""The loop's public state: ``FitState`` (what callbacks and checkpoints read) and ``Snapshot`` (a kept θ)."""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Callable

import numpy as np

from .history import History

__all__ = ["FitState", "Snapshot", "generators"]


def generators(model) -> dict[str, np.random.Generator]:
    """Every random generator the model's layers hold (dropout masks), by module path and attribute."""
    out = {}
    for name, m in model.named_modules():
        for key, value in vars(m).items():
            if isinstance(value, np.random.Generator):
                out[f"{name}.{key}" if name else key] = value
    return out


class Snapshot:
    """θ and the model's buffers at one step, in arrays allocated once (the last good θ, the best epoch's θ)."""

    def __init__(self, params):
        self.theta = np.empty_like(params.theta)
        self.buffers = {k: np.empty_like(v) for k, v in params.buffers().items()}
        self.step = -1  # θ after this many steps; -1: empty

    def take(self, params, step: int, *, theta: bool = True) -> "Snapshot":
        """Copy the buffers (and θ unless an optimizer writes it into ``self.theta`` in its own pass)."""
        if theta:
            np.copyto(self.theta, params.theta)
        for k, v in params.buffers().items():
            np.copyto(self.buffers[k], v)
        self.step = step
        return self

    def put(self, params) -> None:
        """Write this θ and these buffers back into the model."""
        params.theta[...] = self.theta
        for k, v in params.buffers().items():
            v[...] = self.buffers[k]


@dataclass
class FitState:
    """What callbacks, stopping rules and checkpoints observe: model and θ, optimizer, history and clock.

    ``lr_scale`` (reduce-on-plateau) and ``stop`` are the only things a callback may change; ``save()``
    writes a checkpoint of this state. The clock: ``epoch`` finished epochs, ``step`` steps taken,
    ``batch`` steps taken in the current epoch, whose example order is ``order``.
    """

    model: object
    params: object
    optimizer: object
    history: History
    rng: np.random.Generator
    aug_rng: np.random.Generator | None = None
    preprocess: object = None
    callbacks: list = field(default_factory=list)
    config: dict = field(default_factory=dict)
    epoch: int = 0
    step: int = 0
    batch: int = 0
    batches_per_epoch: int = 0
    total_steps: int | None = None
    lr: float = 0.0
    lr_scale: float = 1.0
    last_loss: float = math.nan
    order: np.ndarray | None = None
    seen: int = 0  # examples and correct predictions of this epoch so far (running train accuracy)
    correct: int = 0
    good: Snapshot | None = None  # divergence's last good θ
    best: Snapshot | None = None  # early stopping's best epoch
    stop: bool = False  # set by a callback: the run ends after the current step (or epoch, from on_epoch_end)
    save: Callable | None = field(default=None, repr=False)
    input_shape: tuple | None = None  # one sample's shape and the loss's name: what ``descend.load`` needs
    loss_name: str | None = None
