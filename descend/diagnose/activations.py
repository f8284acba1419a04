"""Activation statistics per layer (mean, std, saturation, dead ReLUs), read by walking a Sequential.

CS231n "Training Neural Networks I" (weight initialization): push a batch through the network and
look at every layer's activations. With weights too small they collapse toward 0 layer after layer
(and so do the gradients); with weights too large tanh/sigmoid units sit at ±1 / 0, 1 where their
gradient is ~0; with Xavier (tanh) or He (ReLU) they keep a healthy spread. A ReLU unit that is
never positive on a whole batch is "dead": it passes no gradient and will not come back.

The "hooks" here are a forward walk: ``trace`` runs the model's layers one by one (recursing into
nested Sequentials) and keeps each layer's output, so no layer needs to know it is being watched.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from ..autodiff.tensor import Tensor, no_grad

__all__ = ["LayerActivations", "ActivationReport", "trace", "activation_stats", "layer_stats",
           "SATURATION", "SIGMOID_SATURATION"]

SATURATION = 0.99          # a tanh unit is saturated when |a| > 0.99 (tanh' = 1 − a² < 0.02)
SIGMOID_SATURATION = 0.01  # a sigmoid unit is saturated when σ < 0.01 or σ > 0.99 (σ' < 0.0099)

# activation layers by class name (the diagnosis must not import every layer module to type-check)
_KIND = {"ReLU": "relu", "LeakyReLU": "leaky_relu", "ELU": "elu", "Tanh": "tanh", "Sigmoid": "sigmoid",
         "Maxout": "maxout"}


def _leaves(model, prefix: str = ""):
    """(name, layer) of every non-container layer in execution order (nested Sequentials flattened)."""
    layers = getattr(model, "_modules", None)
    if type(model).__name__ == "Sequential" and layers:
        for name, m in layers.items():
            yield from _leaves(m, f"{prefix}{name}.")
    else:
        yield prefix.rstrip(".") or type(model).__name__, model


def trace(model, X) -> list[tuple[str, object, np.ndarray]]:
    """Run ``model`` on X layer by layer (no graph) and return ``(name, layer, output)`` for every layer.

    ``model`` must be a ``Sequential`` (possibly nested); its mode (train/eval) is used as it is.
    """
    if type(model).__name__ != "Sequential":
        raise TypeError(f"trace needs a Sequential model to walk layer by layer, got {type(model).__name__}; "
                        "wrap the layers in descend.nn.Sequential(...)")
    out = []
    x = X if isinstance(X, Tensor) else Tensor(np.asarray(X, dtype=np.float32))
    with no_grad():
        for name, layer in _leaves(model):
            x = layer(x)
            out.append((name, layer, x.data))
    return out


@dataclass
class LayerActivations:
    """Statistics of one layer's output over a batch.

    mean, std: over every value; ``saturated``: fraction of values in the flat tails (tanh:
    |a| > 0.99; sigmoid: σ < 0.01 or σ > 0.99; None for other layers); ``dead``: fraction of
    units (features, or channel × position for conv maps) that are ≤ 0 for every example of
    the batch (ReLU only, else None); ``sample``: up to ``max_sample`` values for a histogram.
    """

    name: str
    kind: str
    shape: tuple
    mean: float
    std: float
    saturated: float | None = None
    dead: float | None = None
    sample: np.ndarray = field(default=None, repr=False)


def layer_stats(name: str, kind: str, a: np.ndarray, *, max_sample: int = 20000,
                rng: np.random.Generator | None = None) -> LayerActivations:
    """Statistics of the activations ``a`` (N, ...) of one layer of activation type ``kind``."""
    a = np.asarray(a)
    flat = a.reshape(len(a), -1)
    mean = float(flat.mean(dtype=np.float64))
    std = float(flat.std(dtype=np.float64))
    saturated = dead = None
    if kind == "tanh":
        saturated = float(np.mean(np.abs(flat) > SATURATION))
    elif kind == "sigmoid":
        saturated = float(np.mean((flat < SIGMOID_SATURATION) | (flat > 1 - SIGMOID_SATURATION)))
    elif kind == "relu":
        dead = float(np.mean(~(flat > 0).any(axis=0)))
    values = flat.ravel()
    if values.size > max_sample:
        rng = rng if rng is not None else np.random.default_rng(0)
        values = values[rng.choice(values.size, max_sample, replace=False)]
    return LayerActivations(name, kind, tuple(a.shape[1:]), mean, std, saturated, dead,
                            np.array(values, dtype=np.float32))


@dataclass
class ActivationReport:
    """Per-layer activation statistics and the verdict on them.

    ``problem`` is None when healthy, else one of "saturated", "vanishing", "exploding",
    "dead_relu"; ``ok`` is ``problem is None``. ``layers`` lists the activation layers (or every
    layer with ``all_layers=True``) in order; ``input_std`` is the std of the batch fed in.
    """

    layers: list
    input_std: float
    ok: bool
    problem: str | None
    verdict: str

    def layer(self, name: str) -> LayerActivations:
        for s in self.layers:
            if s.name == name:
                return s
        raise KeyError(f"no layer {name!r}; layers: {[s.name for s in self.layers]}")

    @property
    def stds(self) -> list[float]:
        return [s.std for s in self.layers]


def activation_stats(model, X, *, all_layers: bool = False, training: bool = False,
                     saturated_limit: float = 0.3, dead_limit: float = 0.5, vanish_ratio: float = 0.01,
                     explode_std: float = 10.0, max_sample: int = 20000) -> ActivationReport:
    """Push the batch X through ``model`` and summarize each activation layer's output.

    X: (N, ...) — a few hundred training examples are enough. The model runs in eval mode unless
    ``training=True`` (then BatchNorm uses batch statistics; its running statistics are restored
    afterwards). Verdict rules (CS231n weight-initialization experiment):

    - saturated: some tanh/sigmoid layer has more than ``saturated_limit`` of its values in the
      flat tails → weights too large (gradients vanish through saturated units);
    - dead_relu: some ReLU layer has more than ``dead_limit`` of its units never active on the batch;
    - vanishing: the last activation layer's std is below ``vanish_ratio`` × the input's std
      (activations collapse toward 0 layer by layer → weights too small);
    - exploding: some activation layer's std exceeds ``explode_std`` × the input's std (weights too large).
    """
    X = np.asarray(X, dtype=np.float32)
    was_training = model.training
    saved = {k: v.copy() for k, v in model.named_buffers()}
    model.train(training)
    try:
        outputs = trace(model, X)
    finally:
        model.train(was_training)
        buffers = dict(model.named_buffers())
        for k, v in saved.items():
            buffers[k][...] = v
    rng = np.random.default_rng(0)
    stats = []
    for name, layer, a in outputs:
        kind = _KIND.get(type(layer).__name__)
        if kind is None and not all_layers:
            continue
        stats.append(layer_stats(name, kind or type(layer).__name__.lower(), a, max_sample=max_sample, rng=rng))
    input_std = float(X.std(dtype=np.float64)) or 1.0
    return _verdict(stats, input_std, saturated_limit, dead_limit, vanish_ratio, explode_std)


def _verdict(stats, input_std, saturated_limit, dead_limit, vanish_ratio, explode_std) -> ActivationReport:
    acts = [s for s in stats if s.kind in _KIND.values()]
    if not acts:
        return ActivationReport(stats, input_std, True, None, "no activation layers to inspect")
    sat = [s for s in acts if s.saturated is not None and s.saturated > saturated_limit]
    dead = [s for s in acts if s.dead is not None and s.dead > dead_limit]
    big = [s for s in acts if not math.isfinite(s.std) or s.std > explode_std * input_std]
    last = acts[-1]
    if sat:
        worst = max(sat, key=lambda s: s.saturated)
        return ActivationReport(stats, input_std, False, "saturated",
                                f"{worst.kind} units saturate: {worst.saturated:.0%} of layer {worst.name}'s outputs "
                                f"are in the flat tails where the gradient is ~0 ({len(sat)} of {len(acts)} layers "
                                "over the limit) — the weights are too large; use Xavier initialization "
                                "(or batch normalization)")
    if dead:
        worst = max(dead, key=lambda s: s.dead)
        return ActivationReport(stats, input_std, False, "dead_relu",
                                f"{worst.dead:.0%} of the ReLUs of layer {worst.name} are dead (never active on a batch "
                                f"of examples) and pass no gradient — large negative biases or a learning rate that "
                                "knocked them out; check the biases (start at 0 or 0.01), lower the lr, use He "
                                "initialization or a leaky ReLU")
    if big:
        worst = max(big, key=lambda s: s.std if math.isfinite(s.std) else math.inf)
        return ActivationReport(stats, input_std, False, "exploding",
                                f"activations explode: layer {worst.name} has std {worst.std:.3g}, "
                                f"{worst.std / input_std:.3g}× the input's — the weights are too large; "
                                "use He (ReLU) or Xavier (tanh) initialization")
    if last.std < vanish_ratio * input_std:
        return ActivationReport(stats, input_std, False, "vanishing",
                                f"activations collapse toward 0: std falls from {acts[0].std:.3g} (layer "
                                f"{acts[0].name}) to {last.std:.3g} (layer {last.name}); gradients vanish with them "
                                "— the weights are too small; use Xavier (tanh) or He (ReLU) initialization")
    return ActivationReport(stats, input_std, True, None,
                            f"activations look healthy: std from {min(s.std for s in acts):.3g} to "
                            f"{max(s.std for s in acts):.3g} over {len(acts)} activation layers"
                            + (f", at most {max(s.saturated for s in acts if s.saturated is not None):.0%} saturated"
                               if any(s.saturated is not None for s in acts) else "")
                            + (f", at most {max(s.dead for s in acts if s.dead is not None):.0%} dead ReLUs"
                               if any(s.dead is not None for s in acts) else ""))
