"""summary(model, input_shape): each layer's output shape and parameter count, found by one dummy forward pass."""
from __future__ import annotations

import sys
from dataclasses import dataclass

import numpy as np

from ..autodiff.tensor import no_grad
from .layers import Module, Sequential

__all__ = ["SummaryRow", "summary"]


@dataclass(frozen=True)
class SummaryRow:
    """One layer: its name in the model (e.g. ``"3"``), its description, output shape without the batch axis,
    and the number of trained values it owns."""

    name: str
    layer: str
    output_shape: tuple
    params: int


def _leaves(module: Module, prefix: str = ""):
    """The layers a Sequential applies in order (nested Sequentials expanded); any other module is one layer."""
    if isinstance(module, Sequential):
        for name, child in module._modules.items():
            yield from _leaves(child, f"{prefix}{name}.")
    else:
        yield prefix.rstrip(".") or type(module).__name__, module


def _describe(module: Module) -> str:
    return f"{type(module).__name__}({module.extra_repr()})" if not module._modules else type(module).__name__


def summary(model: Module, input_shape, *, show: bool = True, file=None) -> list[SummaryRow]:
    """Run one example of shape ``input_shape`` (no batch axis, e.g. (3, 32, 32)) through ``model``.

    Returns a ``SummaryRow`` per layer (the layers of a ``Sequential`` in order; another model is one
    row) and, with ``show=True``, prints the table with the total parameter count to ``file``
    (default stdout). The pass runs in eval mode under ``no_grad`` with a zero input in the model's
    dtype, so no running statistic or random state changes; every module's mode is restored after.
    A layer that cannot take its input raises a ValueError naming the layer and the shape it got.
    E.g. a 32×32×3 input through Conv2d(3, 6, 5) gives output shape (6, 28, 28) and 3·6·5·5 + 6 = 456
    parameters (CS231n's size formula (W − F + 2P)/S + 1 = (32 − 5)/1 + 1 = 28).
    """
    if not isinstance(model, Module):
        raise TypeError(f"summary expects a descend Module, got {type(model).__name__}")
    shape = tuple(input_shape)
    if not all(isinstance(s, (int, np.integer)) and s >= 1 for s in shape):
        raise ValueError(f"summary: input_shape must be positive integers without the batch axis, e.g. (3, 32, 32); "
                         f"got {input_shape!r}")
    params = model.parameters()
    dtype = params[0].dtype if params else np.float32
    modes = [(m, m.training) for _, m in model.named_modules()]
    rows = []
    x = np.zeros((1, *shape), dtype=dtype)
    try:
        model.eval()
        with no_grad():
            for name, layer in _leaves(model):
                in_shape = tuple(x.shape[1:])
                try:
                    x = layer(x)
                except (ValueError, TypeError) as e:
                    raise ValueError(f"summary: layer {name} ({_describe(layer)}) cannot take an input of shape "
                                     f"{in_shape} (without the batch axis): {e}") from e
                count = sum(p.data.size for p in layer.parameters())
                rows.append(SummaryRow(name, _describe(layer), tuple(x.shape[1:]), count))
    finally:
        for m, mode in modes:
            object.__setattr__(m, "training", mode)
    if show:
        _print(rows, shape, sum(p.data.size for p in params), file or sys.stdout)
    return rows


def _print(rows, input_shape, total, file) -> None:
    table = [("name", "layer", "output shape", "params"), ("", "input", str(input_shape), "")]
    table += [(r.name, r.layer, str(r.output_shape), f"{r.params:,}") for r in rows]
    widths = [max(len(row[i]) for row in table) for i in range(4)]
    rule = "-" * (sum(widths) + 6)
    for i, row in enumerate(table):
        print(f"{row[0]:<{widths[0]}}  {row[1]:<{widths[1]}}  {row[2]:<{widths[2]}}  {row[3]:>{widths[3]}}",
              file=file)
        if i == 0:
            print(rule, file=file)
    print(rule, file=file)
    print(f"total parameters: {total:,}", file=file)
