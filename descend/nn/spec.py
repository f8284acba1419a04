"""Architecture as data: ``describe(model)`` → a JSON list of layers and their arguments; ``build(spec)`` → the model.

A checkpoint records ``describe(model)`` so that a run folder can be loaded without the caller building
the network (``descend.load``). ``LAYERS`` below is the one visible table from a layer's type name to
its class and the constructor arguments it is described by; nothing else is stored (no pickle, no
code), and a name missing from the table is refused. The weights are not part of the spec: ``build``
draws throwaway initial values from a fixed generator, which the loader overwrites with the stored θ.
"""
from __future__ import annotations

import numpy as np

from .conv_layers import AvgPool1d, AvgPool2d, Conv1d, Conv2d, GlobalAvgPool, MaxPool1d, MaxPool2d
from .layers import ELU, Dropout, Flatten, LeakyReLU, Linear, Maxout, Module, ReLU, Sequential, Sigmoid, Tanh
from .norm_layers import BatchNorm1d, BatchNorm2d

__all__ = ["LAYERS", "SPEC_VERSION", "describe", "build", "describable"]

SPEC_VERSION = 1

_CONV = ("in_channels", "out_channels", "kernel_size", "stride", "padding", "dilation", "bias", "allow_floor")
_POOL = ("kernel_size", "stride", "padding", "dilation", "allow_floor")
_AVG = ("kernel_size", "stride", "padding", "allow_floor")

# type name → (class, the constructor arguments that describe it; "bias" is stored as a bool)
LAYERS: dict[str, tuple[type, tuple[str, ...]]] = {
    "Linear": (Linear, ("in_features", "out_features", "bias")),
    "Maxout": (Maxout, ("in_features", "out_features", "pieces")),
    "ReLU": (ReLU, ()),
    "LeakyReLU": (LeakyReLU, ("negative_slope",)),
    "ELU": (ELU, ("alpha",)),
    "Sigmoid": (Sigmoid, ()),
    "Tanh": (Tanh, ()),
    "Dropout": (Dropout, ("p",)),
    "Flatten": (Flatten, ("start_dim",)),
    "BatchNorm1d": (BatchNorm1d, ("num_features", "eps", "momentum")),
    "BatchNorm2d": (BatchNorm2d, ("num_features", "eps", "momentum")),
    "Conv1d": (Conv1d, _CONV),
    "Conv2d": (Conv2d, _CONV),
    "MaxPool1d": (MaxPool1d, _POOL),
    "MaxPool2d": (MaxPool2d, _POOL),
    "AvgPool1d": (AvgPool1d, _AVG),
    "AvgPool2d": (AvgPool2d, _AVG),
    "GlobalAvgPool": (GlobalAvgPool, ()),
}
_NEEDS_RNG = (Linear, Maxout, Conv1d, Conv2d, Dropout)


def _value(layer: Module, name: str):
    v = getattr(layer, name)
    if name == "bias":
        return v is not None
    return list(v) if isinstance(v, tuple) else v


def _describe_layer(layer: Module, where: str) -> dict:
    if type(layer) is Sequential:
        return {"type": "Sequential", "layers": [_describe_layer(m, f"{where}.{i}".lstrip(".")) for i, m in enumerate(layer)]}
    name = type(layer).__name__
    if name not in LAYERS or LAYERS[name][0] is not type(layer):
        raise ValueError(f"layer {where or 'model'} of type {name} has no architecture description; known types: "
                         f"Sequential, {', '.join(LAYERS)} (a custom layer: build the model yourself and use "
                         "descend.load_model)")
    return {"type": name, "args": {a: _value(layer, a) for a in LAYERS[name][1]}}


def describe(model: Module) -> dict:
    """The architecture of ``model`` as JSON data: ``{"version": 1, "model": {"type": ..., "args"/"layers": ...}}``.

    Raises ValueError naming the first layer whose type is not in ``LAYERS``.
    """
    return {"version": SPEC_VERSION, "model": _describe_layer(model, "")}


def describable(model: Module) -> bool:
    """Whether ``describe(model)`` succeeds (every layer's type is in ``LAYERS``)."""
    try:
        describe(model)
    except ValueError:
        return False
    return True


def _build_layer(d, where: str) -> Module:
    if not isinstance(d, dict) or "type" not in d:
        raise ValueError(f"architecture entry {where or 'model'} is not a layer description: {d!r}")
    kind = d["type"]
    if kind == "Sequential":
        return Sequential(*[_build_layer(m, f"{where}.{i}".lstrip(".")) for i, m in enumerate(d.get("layers", []))])
    if kind not in LAYERS:
        raise ValueError(f"unknown layer type {kind!r} at {where or 'model'} in the architecture; this descend "
                         f"knows {['Sequential', *LAYERS]} (was the file written by a newer or extended descend?)")
    cls, names = LAYERS[kind]
    args = d.get("args", {})
    extra = sorted(set(args) - set(names))
    if extra:
        raise ValueError(f"layer {where or 'model'} ({kind}) has unknown arguments {extra}; it takes {list(names)}")
    kw = {a: (tuple(v) if isinstance(v, list) else v) for a, v in args.items()}  # every argument is a keyword
    if cls in _NEEDS_RNG:
        kw["rng"] = np.random.default_rng(0)  # initial values only: the stored θ replaces them
    try:
        return cls(**kw)
    except (TypeError, ValueError) as e:
        raise ValueError(f"layer {where or 'model'} ({kind}) cannot be built from {args}: {e}") from None


def build(spec: dict) -> Module:
    """The model ``spec`` (from ``describe``) describes, with throwaway initial weights.

    Refuses a spec of a newer version or with a layer type not in ``LAYERS``, naming it.
    """
    if not isinstance(spec, dict) or "model" not in spec:
        raise ValueError("the architecture description is malformed (no 'model' entry)")
    version = spec.get("version")
    if not isinstance(version, int) or version > SPEC_VERSION:
        raise ValueError(f"the architecture description has version {version!r}, this descend reads up to "
                         f"{SPEC_VERSION}; upgrade descend to load it")
    return _build_layer(spec["model"], "")
