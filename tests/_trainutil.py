"""Small shared pieces of the training-loop tests: tiny data sets and models, a θ recorder, one Numba thread."""
from __future__ import annotations

import numpy as np
import pytest

from descend import nn


@pytest.fixture(autouse=False)
def one_numba_thread():
    """Run the optimizer kernels on one thread: on a loaded 2-core machine (pytest -n 2) the OpenMP
    barrier of a ``parallel=True`` kernel costs ~20 ms per step for a tiny θ. Results do not depend
    on it (the kernels are element-wise)."""
    import numba

    n = numba.get_num_threads()
    numba.set_num_threads(1)
    yield
    numba.set_num_threads(n)


def blobs(n: int = 120, features: int = 5, classes: int = 3, seed: int = 0):
    """Gaussian blobs: an easy classification set (float32 X, int64 y)."""
    rng = np.random.default_rng(seed)
    centers = 3 * rng.standard_normal((classes, features))
    y = rng.integers(0, classes, n)
    X = (centers[y] + rng.standard_normal((n, features))).astype(np.float32)
    return X, y


def mlp(sizes=(5, 16, 3), *, seed: int = 0, dropout: float = 0.0):
    rng = np.random.default_rng(seed)
    layers = []
    for i, (a, b) in enumerate(zip(sizes[:-1], sizes[1:])):
        layers.append(nn.Linear(a, b, rng=rng))
        if i < len(sizes) - 2:
            layers.append(nn.ReLU())
            if dropout:
                layers.append(nn.Dropout(dropout, rng=np.random.default_rng(seed + 100)))
    return nn.Sequential(*layers)


class Recorder:
    """Records θ after every step (``steps``) and after every epoch (``epochs``), plus θ before training."""

    def __init__(self):
        self.initial, self.steps, self.epochs = None, [], []

    def on_fit_start(self, state):
        self.initial = state.params.theta.copy()

    def on_step_end(self, state):
        self.steps.append(state.params.theta.copy())

    def on_epoch_end(self, state):
        self.epochs.append(state.params.theta.copy())


def last_good(rec, diverged_at: int, every: int) -> np.ndarray:
    """θ the loop must put back when the loss of step ``diverged_at`` is bad: θ after step s*, the last step
    s ≡ 0 (mod ``every``) whose θ was shown good by the loss of step s + 1 — s* = every·⌊(diverged_at − 2)/every⌋."""
    s = every * ((diverged_at - 2) // every)
    return rec.initial if s == 0 else rec.steps[s - 1]
