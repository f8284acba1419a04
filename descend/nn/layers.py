"""Modules: Module (parameters, buffers, train/eval mode), Sequential, and the dense layers and activations.

Batch normalization layers are in ``norm_layers``, convolution and pooling layers in ``conv_layers``.
"""
from __future__ import annotations

import math
from typing import Callable, Iterator

import numpy as np

from ..autodiff.ops import reshape
from ..autodiff.tensor import Parameter
from ..common.validate import generator, integer, nonnegative
from . import functional as F
from . import init as _init
from .functional.dense import TALL_MIN

__all__ = ["Module", "Sequential", "Linear", "ReLU", "LeakyReLU", "ELU", "Sigmoid", "Tanh", "Maxout",
           "Dropout", "Flatten"]


class Module:
    """Base of every layer and model.

    Attributes that are ``Parameter``s or ``Module``s are registered automatically; arrays that are
    state but not trained (BatchNorm running statistics) are registered with ``register_buffer``.
    ``training`` is instance state switched by ``train()`` / ``eval()`` for the whole tree.
    """

    def __init__(self):
        object.__setattr__(self, "_parameters", {})
        object.__setattr__(self, "_modules", {})
        object.__setattr__(self, "_buffers", [])
        object.__setattr__(self, "training", True)

    def __setattr__(self, name, value):
        if "_parameters" not in self.__dict__:
            raise RuntimeError(f"{type(self).__name__}.__init__ must call super().__init__() before setting attributes")
        if isinstance(value, Parameter):
            if value.name is None:
                value.name = name
            self._parameters[name] = value
        elif isinstance(value, Module):
            self._modules[name] = value
        object.__setattr__(self, name, value)

    def register_buffer(self, name: str, array: np.ndarray) -> None:
        """Keep ``array`` as non-trained state (saved in checkpoints beside θ)."""
        if name not in self._buffers:
            self._buffers.append(name)
        object.__setattr__(self, name, array)

    def named_parameters(self, prefix: str = "") -> Iterator[tuple[str, Parameter]]:
        for name, p in self._parameters.items():
            yield prefix + name, p
        for name, m in self._modules.items():
            yield from m.named_parameters(prefix + name + ".")

    def parameters(self) -> list[Parameter]:
        return [p for _, p in self.named_parameters()]

    def named_buffers(self, prefix: str = "") -> Iterator[tuple[str, np.ndarray]]:
        for name in self._buffers:
            yield prefix + name, getattr(self, name)
        for name, m in self._modules.items():
            yield from m.named_buffers(prefix + name + ".")

    def named_modules(self, prefix: str = "") -> Iterator[tuple[str, "Module"]]:
        yield prefix.rstrip("."), self
        for name, m in self._modules.items():
            yield from m.named_modules(prefix + name + ".")

    def train(self, mode: bool = True) -> "Module":
        for _, m in self.named_modules():
            object.__setattr__(m, "training", bool(mode))
        return self

    def eval(self) -> "Module":
        return self.train(False)

    def freeze(self, *, running_stats: bool = True) -> "Module":
        """Freeze every parameter of this module (``requires_grad = False``): ``fit`` keeps them bit-identical.

        ``running_stats=True`` (the default, as Keras does for a frozen BatchNorm) also keeps the
        running mean/variance of its batch-normalization layers fixed: they normalize with them in
        training too. ``running_stats=False`` lets them go on tracking the new data's batches.
        """
        for p in self.parameters():
            p.requires_grad = False
        for _, m in self.named_modules():
            if hasattr(m, "use_running_stats"):
                m.use_running_stats = bool(running_stats)
        return self

    def unfreeze(self) -> "Module":
        """Make every parameter trainable again and let batch normalization use batch statistics."""
        for p in self.parameters():
            p.requires_grad = True
        for _, m in self.named_modules():
            if hasattr(m, "use_running_stats"):
                m.use_running_stats = False
        return self

    def set_lr_scale(self, scale: float) -> "Module":
        """Multiply the learning rate of this module's parameters by ``scale`` (e.g. 0.1 for a backbone)."""
        scale = nonnegative("lr scale", scale)  # any real number ≥ 0, NumPy scalars included
        for p in self.parameters():
            p.lr_scale = scale
        return self

    def set_weight_decay_scale(self, scale: float) -> "Module":
        """Multiply the weight decay of this module's parameters by ``scale``: the optimizer's
        ``weight_decay`` (L2 or decoupled, as the optimizer does it) and ``fit(l2=...)``'s λ alike
        (0: no decay for this group; e.g. 0.1 for a backbone fine-tuned at lr/10)."""
        scale = nonnegative("weight decay scale", scale)
        for p in self.parameters():
            p.weight_decay_scale = scale
        return self

    def zero_grad(self) -> None:
        """Forget accumulated gradients (a packed parameter's gradient view is zeroed in place)."""
        for p in self.parameters():
            p.zero_grad()

    def forward(self, *args):  # pragma: no cover
        raise NotImplementedError

    def __call__(self, *args, **kwargs):
        return self.forward(*args, **kwargs)

    def extra_repr(self) -> str:
        return ""

    def __repr__(self) -> str:
        if not self._modules:
            return f"{type(self).__name__}({self.extra_repr()})"
        inner = "\n".join(f"  ({name}): " + repr(m).replace("\n", "\n  ") for name, m in self._modules.items())
        return f"{type(self).__name__}(\n{inner}\n)"


class Sequential(Module):
    """Layers applied in order; parameters are named ``"<index>.<name>"`` (e.g. ``"0.weight"``).

    A ``Linear`` or convolution directly followed by a ``ReLU`` runs as one fused node (its
    ``forward_relu``; same result, one pass fewer each way).
    A ``Linear`` or ``Maxout`` left on its automatic initialization that is followed by ``Tanh`` or
    ``Sigmoid`` is redrawn with Xavier (Glorot) initialization, the lectures' advice for those
    activations; otherwise it keeps He initialization (the ReLU family).
    """

    def __init__(self, *layers: Module):
        super().__init__()
        for i, layer in enumerate(layers):
            if not isinstance(layer, Module):
                raise TypeError(f"Sequential takes Modules, got {type(layer).__name__} at position {i}")
            setattr(self, str(i), layer)
        for layer, nxt in zip(layers, layers[1:]):
            if isinstance(nxt, (Tanh, Sigmoid)) and getattr(layer, "_auto_init", False):
                w = layer.weight
                w.data[...] = _init.xavier_normal(w.shape, rng=layer._rng, dtype=w.dtype)

    def __len__(self) -> int:
        return len(self._modules)

    def __getitem__(self, i) -> Module:
        return list(self._modules.values())[i]

    def __setitem__(self, i: int, layer: Module) -> None:
        """Replace layer ``i`` (e.g. a new head: ``model[-1] = nn.Linear(64, 5, rng=rng)``).

        The next ``pack`` (``fit`` packs) builds a new θ holding the other parameters' current values;
        an optimizer's state is then for the old θ, so use a new optimizer. A ``Linear`` replacing a
        ``Linear`` must take as many inputs.
        """
        if not isinstance(layer, Module):
            raise TypeError(f"Sequential takes Modules, got {type(layer).__name__}")
        names = list(self._modules)
        if not -len(names) <= i < len(names):
            raise IndexError(f"layer index {i} is out of range for {len(names)} layers")
        old = self._modules[names[i]]
        if isinstance(old, Linear) and isinstance(layer, Linear) and old.in_features != layer.in_features:
            raise ValueError(f"the new layer {i} takes {layer.in_features} inputs but the layer it replaces took "
                             f"{old.in_features} (the previous layer's outputs); build it as "
                             f"Linear({old.in_features}, {layer.out_features}, ...)")
        setattr(self, names[i], layer)

    def __iter__(self):
        return iter(self._modules.values())

    def forward(self, x):
        layers = list(self._modules.values())
        i = 0
        while i < len(layers):
            layer = layers[i]
            cls = type(layer)
            if (i + 1 < len(layers) and type(layers[i + 1]) is ReLU
                    and cls.forward is getattr(cls, "_relu_fusable", None)):
                x = layer.forward_relu(x)  # one node, one pass each way (same result)
                i += 2
            else:
                x = layer(x)
                i += 1
        return x


class Linear(Module):
    """Affine layer y = x·Wᵀ + b; W: (out_features, in_features), b: (out_features,).

    ``init`` draws W (any function of ``descend.nn.init`` or a partial of one); by default He normal
    (std √(2/in_features)), switched to Xavier by ``Sequential`` when a Tanh/Sigmoid follows.
    Biases start at zero.
    """

    def __init__(self, in_features: int, out_features: int, *, bias: bool = True,
                 init: Callable | None = None, rng: np.random.Generator | None = None):
        super().__init__()
        self.in_features = integer("in_features", in_features, 1, "Linear")
        self.out_features = integer("out_features", out_features, 1, "Linear")
        rng = generator(rng, "Linear", "its initial weights")
        object.__setattr__(self, "_auto_init", init is None)
        object.__setattr__(self, "_rng", rng)
        draw = init or _init.he_normal
        w = draw((self.out_features, self.in_features), rng=rng)
        if self.in_features > self.out_features and w.size >= TALL_MIN:
            # column-major, and so in θ once packed: the weight gradient xᵀ·G is then a tall product
            # (see functional.dense._product), faster on a busy machine
            w = np.asfortranarray(w)
        self.weight = Parameter(w, kind="weight")
        self.bias = Parameter(np.zeros(self.out_features, np.float32), kind="bias") if bias else None

    def forward(self, x):
        return F.linear(x, self.weight, self.bias)

    def forward_relu(self, x):
        """relu(self(x)) as one node (``Sequential`` uses it when a ``ReLU`` follows)."""
        return F.linear_relu(x, self.weight, self.bias)

    _relu_fusable = forward  # fused only while ``forward`` is this one: a subclass may change it

    def extra_repr(self) -> str:
        return f"in_features={self.in_features}, out_features={self.out_features}, bias={self.bias is not None}"


class ReLU(Module):
    """max(0, x)."""

    def forward(self, x):
        return F.relu(x)


class LeakyReLU(Module):
    """x if x > 0 else negative_slope·x (default 0.01, as in PyTorch and CS231n)."""

    def __init__(self, negative_slope: float = 0.01):
        super().__init__()
        if not 0 <= negative_slope < 1:
            raise ValueError(f"LeakyReLU: negative_slope should be in [0, 1), got {negative_slope}")
        self.negative_slope = float(negative_slope)

    def forward(self, x):
        return F.leaky_relu(x, self.negative_slope)

    def extra_repr(self) -> str:
        return f"negative_slope={self.negative_slope}"


class ELU(Module):
    """x if x > 0 else α(eˣ − 1), α = 1 by default."""

    def __init__(self, alpha: float = 1.0):
        super().__init__()
        if alpha < 0:
            raise ValueError(f"ELU: alpha must be ≥ 0, got {alpha}")
        self.alpha = float(alpha)

    def forward(self, x):
        return F.elu(x, self.alpha)


class Sigmoid(Module):
    """σ(x) = 1/(1 + e⁻ˣ)."""

    def forward(self, x):
        return F.sigmoid(x)


class Tanh(Module):
    """tanh(x)."""

    def forward(self, x):
        return F.tanh(x)


class Maxout(Module):
    """Maxout unit (Goodfellow et al. 2013): yⱼ = max_k (W_k x + b_k)ⱼ over ``pieces`` affine maps.

    Implemented as one Linear to out_features·pieces features followed by a max over each group.
    """

    def __init__(self, in_features: int, out_features: int, *, pieces: int = 2, init: Callable | None = None,
                 rng: np.random.Generator | None = None):
        super().__init__()
        self.pieces = integer("pieces", pieces, 1, "Maxout")
        self.out_features = integer("out_features", out_features, 1, "Maxout")
        self.in_features = integer("in_features", in_features, 1, "Maxout")
        rng = generator(rng, "Maxout", "its initial weights")
        object.__setattr__(self, "_auto_init", init is None)
        object.__setattr__(self, "_rng", rng)
        draw = init or _init.he_normal
        self.weight = Parameter(draw((self.out_features * self.pieces, self.in_features), rng=rng), kind="weight")
        self.bias = Parameter(np.zeros(self.out_features * self.pieces, np.float32), kind="bias")

    def forward(self, x):
        return F.maxout(F.linear(x, self.weight, self.bias), self.pieces)


class Dropout(Module):
    """Inverted dropout with drop probability ``p``; identity in eval mode. Masks come from ``rng``."""

    def __init__(self, p: float = 0.5, *, rng: np.random.Generator | None = None):
        super().__init__()
        if not 0 <= p < 1:
            raise ValueError(f"Dropout: p must be in [0, 1) (the probability of dropping a unit), got {p!r}")
        self.p = float(p)
        object.__setattr__(self, "rng", generator(rng, "Dropout", "its masks") if p > 0 else rng)

    def forward(self, x):
        return F.dropout(x, self.p, training=self.training, rng=self.rng)

    def extra_repr(self) -> str:
        return f"p={self.p}"


class Flatten(Module):
    """Flatten all axes from ``start_dim`` on: (N, C, H, W) → (N, C·H·W)."""

    def __init__(self, start_dim: int = 1):
        super().__init__()
        self.start_dim = int(start_dim)

    def forward(self, x):
        shape = x.shape
        return reshape(x, tuple(shape[:self.start_dim]) + (math.prod(shape[self.start_dim:]),))
