"""The lecture's weight-initialization experiment (CS231n "Training Neural Networks I").

A 10-layer tanh network with 500 units per layer is fed 1000 unit-Gaussian inputs; we look at
every layer's activations for three weight scales:

- W·0.01 (``init.normal(std=0.01)``): the std shrinks by ~0.22× per layer and the activations
  collapse toward 0 (so do the gradients: nothing learns);
- W·1.0 (``init.normal(std=1)``): pre-activations have std ≈ √500 ≈ 22, so almost every tanh unit
  sits at ±1, where its gradient is 0;
- Xavier (``init.xavier_normal``, std √(2/(fan_in + fan_out)) = √(1/500)): the spread stays healthy.

Run ``python examples/init_experiment.py``; it prints each layer's mean/std/saturation and writes
``docs/img/init_experiment.png``.
"""
from __future__ import annotations

import functools
from pathlib import Path

import numpy as np

from descend import nn
from descend.diagnose.activations import activation_stats
from descend.nn import init

REGIMES = {
    "W·0.01": functools.partial(init.normal, std=0.01),
    "W·1.0": functools.partial(init.normal, std=1.0),
    "Xavier": init.xavier_normal,
}


def tanh_net(weight_init, *, depth: int = 10, width: int = 500, rng: np.random.Generator):
    layers = []
    for _ in range(depth):
        layers += [nn.Linear(width, width, init=weight_init, rng=rng), nn.Tanh()]
    return nn.Sequential(*layers)


def run(*, n: int = 1000, width: int = 500, depth: int = 10, seed: int = 0) -> dict:
    """ActivationReport per regime for the same unit-Gaussian batch X (n, width)."""
    X = np.random.default_rng(seed).standard_normal((n, width)).astype(np.float32)
    return {name: activation_stats(tanh_net(f, depth=depth, width=width, rng=np.random.default_rng(seed + 1)), X)
            for name, f in REGIMES.items()}


def main(path: Path = Path(__file__).resolve().parents[1] / "docs" / "img" / "init_experiment.png") -> Path:
    from descend.diagnose.plots import plot_init_experiment

    reports = run()
    for name, rep in reports.items():
        print(f"{name}: {rep.verdict}")
        for s in rep.layers:
            print(f"    layer {s.name:>2}: mean {s.mean:+.2e}  std {s.std:.2e}  saturated {s.saturated:.1%}")
    out = plot_init_experiment(reports, path)
    print(f"wrote {out}")
    return out


if __name__ == "__main__":
    main()
