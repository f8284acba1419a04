"""Hand a trained model to other runtimes: ONNX export (``to_onnx``) and PyTorch ``state_dict`` import (``load_torch_state``).

ONNX (opset 17; the ``onnx`` extra): the fitted preprocessing becomes the first nodes (Sub/Div/MatMul/Mul
on the flattened sample), then one node per layer through the ``_ONNX`` table below; Dropout is
dropped (inference), BatchNorm uses its running statistics. The graph's input ``input`` is
(N, *input_shape) float32; its outputs are ``logits`` and, for a cross-entropy model, ``probabilities``
(softmax). A layer with no mapping is refused by name before anything is written.

PyTorch: a ``state_dict`` of an ``nn.Sequential`` saved with ``safetensors.torch.save_file`` has the
names descend's ``Sequential`` gives its parameters and buffers: ``"<index>.weight"``,
``"<index>.bias"``, ``"<index>.running_mean"``, ``"<index>.running_var"`` (``num_batches_tracked`` is
ignored). Layouts agree: Linear weight (out_features, in_features), Conv weight (out, in, kH, kW),
BatchNorm weight/bias = γ/β.
"""
from __future__ import annotations

import math
from pathlib import Path

import numpy as np

from . import nn
from .nn import pack

__all__ = ["to_onnx", "load_torch_state", "OPSET"]

OPSET = 17


def _f32(a) -> np.ndarray:
    return np.ascontiguousarray(np.asarray(a, dtype=np.float32))


class _Graph:
    """The nodes and initializers of the graph being built; ``x`` is the name of the current tensor."""

    def __init__(self, helper, numpy_helper):
        self.h, self.nh = helper, numpy_helper
        self.nodes, self.inits, self.x, self.n = [], [], "input", 0

    def const(self, name: str, value: np.ndarray) -> str:
        name = f"{name}_{len(self.inits)}"
        self.inits.append(self.nh.from_array(np.asarray(value), name))
        return name

    def op(self, kind: str, *inputs: str, name: str = "", **attrs) -> str:
        self.n += 1
        out = f"{name or kind.lower()}_{self.n}"
        self.nodes.append(self.h.make_node(kind, [self.x, *inputs], [out], name=out, **attrs))
        self.x = out
        return out


def _conv_attrs(layer) -> dict:
    return {"kernel_shape": list(layer.kernel_size), "strides": list(layer.stride),
            "pads": list(layer.padding) * 2, "dilations": list(layer.dilation)}


def _linear(g, layer, where):
    ins = [g.const(f"{where}.weight", _f32(layer.weight.data))]
    if layer.bias is not None:
        ins.append(g.const(f"{where}.bias", _f32(layer.bias.data)))
    g.op("Gemm", *ins, name=where, transB=1)


def _conv(g, layer, where):
    ins = [g.const(f"{where}.weight", _f32(layer.weight.data))]
    if layer.bias is not None:
        ins.append(g.const(f"{where}.bias", _f32(layer.bias.data)))
    g.op("Conv", *ins, name=where, **_conv_attrs(layer))


def _batch_norm(g, layer, where):
    g.op("BatchNormalization", g.const(f"{where}.weight", _f32(layer.weight.data)),
         g.const(f"{where}.bias", _f32(layer.bias.data)), g.const(f"{where}.running_mean", _f32(layer.running_mean)),
         g.const(f"{where}.running_var", _f32(layer.running_var)), name=where, epsilon=layer.eps)


def _max_pool(g, layer, where):
    g.op("MaxPool", name=where, **_conv_attrs(layer))


def _avg_pool(g, layer, where):
    attrs = _conv_attrs(layer)
    attrs.pop("dilations")
    g.op("AveragePool", name=where, count_include_pad=1, **attrs)


def _global_avg_pool(g, layer, where):
    g.op("GlobalAveragePool", name=where)
    g.op("Flatten", name=where, axis=1)


# layer class → how it becomes ONNX nodes (Dropout: nothing at inference)
_ONNX = {
    nn.Linear: _linear, nn.Conv1d: _conv, nn.Conv2d: _conv,
    nn.BatchNorm1d: _batch_norm, nn.BatchNorm2d: _batch_norm,
    nn.ReLU: lambda g, layer, where: g.op("Relu", name=where),
    nn.LeakyReLU: lambda g, layer, where: g.op("LeakyRelu", name=where, alpha=layer.negative_slope),
    nn.ELU: lambda g, layer, where: g.op("Elu", name=where, alpha=layer.alpha),
    nn.Sigmoid: lambda g, layer, where: g.op("Sigmoid", name=where),
    nn.Tanh: lambda g, layer, where: g.op("Tanh", name=where),
    nn.Dropout: lambda g, layer, where: None,
    nn.Flatten: lambda g, layer, where: g.op("Flatten", name=where, axis=layer.start_dim),
    nn.MaxPool1d: _max_pool, nn.MaxPool2d: _max_pool, nn.AvgPool1d: _avg_pool, nn.AvgPool2d: _avg_pool,
    nn.GlobalAvgPool: _global_avg_pool,
}


def _layers(module, where=""):
    if type(module) is nn.Sequential:
        for i, m in enumerate(module):
            yield from _layers(m, f"{where}.{i}".lstrip("."))
    else:
        yield where or "model", module


def _preprocess(g, pre, input_shape):
    """The fitted preprocessing as nodes on the flattened sample (float32, as ``transform`` computes it)."""
    kind = pre.kind
    flat = len(input_shape) > 1
    if flat:
        g.op("Reshape", g.const("flat_shape", np.array([-1, math.prod(input_shape)], np.int64)), name="pre")
    if kind not in ("center", "standardize", "pca", "pca_whiten", "zca_whiten"):
        raise ValueError(f"the preprocessing {type(pre).__name__} has no ONNX mapping; export the model without it "
                         "and apply it before")
    g.op("Sub", g.const("pre.mean", _f32(pre.mean)), name="pre")
    if kind == "standardize":
        g.op("Div", g.const("pre.std", _f32(pre.std)), name="pre")
    elif kind in ("pca", "pca_whiten"):
        g.op("MatMul", g.const("pre.components", _f32(pre.components)), name="pre")
        if kind == "pca_whiten":
            g.op("Mul", g.const("pre.scale", _f32(pre.scale)), name="pre")
    elif kind == "zca_whiten":
        g.op("MatMul", g.const("pre.W", _f32(pre.W)), name="pre")
    if flat and kind in ("center", "standardize", "zca_whiten"):
        g.op("Reshape", g.const("sample_shape", np.array([-1, *input_shape], np.int64)), name="pre")


def to_onnx(model, path, *, input_shape=None, probabilities: bool | None = None) -> Path:
    """Write ``model`` (a ``Predictor`` from ``descend.load``, or a ``Module`` with ``input_shape``) as ONNX.

    Refuses a layer with no ONNX mapping (named, e.g. ``layer 3 (Maxout)``) before writing anything.
    ``probabilities`` adds a softmax output (default: for a cross-entropy ``Predictor``).
    """
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    module = getattr(model, "module", model)
    pre = getattr(model, "preprocess", None) if hasattr(model, "module") else getattr(module, "preprocess", None)
    input_shape = tuple(input_shape or getattr(model, "input_shape", None) or ())
    if not input_shape:
        raise ValueError("the input shape is not known: pass input_shape=(features,) or (C, H, W)")
    if probabilities is None:
        probabilities = getattr(model, "loss", None) == "cross_entropy"
    layers = list(_layers(module))
    for where, layer in layers:
        if type(layer) not in _ONNX:
            raise ValueError(f"layer {where} ({type(layer).__name__}) has no ONNX mapping; mappable layers: "
                             f"{sorted(c.__name__ for c in _ONNX)}")
    g = _Graph(helper, numpy_helper)
    if pre is not None:
        _preprocess(g, pre, input_shape)
    for where, layer in layers:
        _ONNX[type(layer)](g, layer, where)
    if g.x == "input":
        g.op("Identity", name="logits")
    g.nodes[-1].output[0] = "logits"
    outputs = [helper.make_tensor_value_info("logits", TensorProto.FLOAT, ["N", "outputs"])]
    if probabilities:
        g.nodes.append(helper.make_node("Softmax", ["logits"], ["probabilities"], axis=1, name="softmax"))
        outputs.append(helper.make_tensor_value_info("probabilities", TensorProto.FLOAT, ["N", "outputs"]))
    graph = helper.make_graph(g.nodes, "descend", [helper.make_tensor_value_info(
        "input", TensorProto.FLOAT, ["N", *input_shape])], outputs, initializer=g.inits)
    onnx_model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", OPSET)], producer_name="descend")
    onnx.checker.check_model(onnx_model)
    path = Path(path)
    onnx.save(onnx_model, path)
    return path


def load_torch_state(model, path) -> "nn.Module":
    """Fill ``model`` (a descend ``Sequential`` equivalent to the PyTorch one) from a ``state_dict`` saved with
    safetensors at ``path``; every parameter and buffer must be present with the same shape (checked first,
    nothing changes on a mismatch). Returns the model."""
    from safetensors.numpy import load_file

    state = {k: v for k, v in load_file(str(path)).items() if not k.endswith("num_batches_tracked")}
    params = pack(model)
    targets = {e.name: e.view(params.theta) for e in params.layout}
    targets.update(dict(model.named_buffers()))
    problems = [f"{k}: missing in the file" for k in targets if k not in state]
    problems += [f"{k}: in the file but not in the model" for k in state if k not in targets]
    problems += [f"{k}: model {targets[k].shape}, file {state[k].shape}" for k in targets
                 if k in state and targets[k].shape != state[k].shape]
    if problems:
        raise ValueError(f"the state_dict {path} does not fit the model: " + "; ".join(problems))
    for k, arr in targets.items():
        arr[...] = state[k]
    return model
