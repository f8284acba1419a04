"""Tensor: an ndarray that remembers how it was made, and reverse-mode backpropagation over that graph.

The graph is built as operations run (define-by-run). ``loss.backward()`` visits the nodes in
reverse topological order, applies the chain rule through each ``Function.backward`` and
accumulates gradients into the ``.grad`` of leaf tensors that require them. Afterwards the graph
is freed: intermediate tensors forget their creator and the saved arrays are released.
"""
from __future__ import annotations

import contextlib
import itertools
import threading
from heapq import heappop, heappush

import numpy as np

from .function import Function

_state = threading.local()
_sequence = itertools.count()  # creation order of recorded nodes: the backward pass visits it in reverse


def is_grad_enabled() -> bool:
    return getattr(_state, "enabled", True)


@contextlib.contextmanager
def no_grad():
    """Context in which operations record no graph (evaluation, optimizer updates)."""
    previous = is_grad_enabled()
    _state.enabled = False
    try:
        yield
    finally:
        _state.enabled = previous


def _as_array(value, dtype=None) -> np.ndarray:
    if isinstance(value, Tensor):
        return value.data
    arr = np.asarray(value, dtype=dtype)
    return arr


class Tensor:
    """An ndarray ``data`` with an optional gradient ``grad`` of the same shape.

    ``requires_grad=True`` marks a leaf whose gradient ``backward()`` accumulates into ``grad``.
    Python numbers combined with a Tensor take the Tensor's dtype, so float32 stays float32.
    Operators (``+ * @ [] .T .sum()`` …) are bound in ``ops``, which builds on this module.
    """

    __slots__ = ("_data", "grad", "requires_grad", "_creator", "_inputs", "name", "_grad_zero", "_seq", "__weakref__")
    __array_priority__ = 1000  # so ndarray <op> Tensor defers to Tensor's reflected operators

    def __init__(self, data, *, requires_grad: bool = False, name: str | None = None):
        arr = data.data if isinstance(data, Tensor) else np.asarray(data)
        if arr.dtype.kind in "iub" and requires_grad:
            raise TypeError(f"only floating-point tensors can require gradients, got dtype {arr.dtype}; "
                            "cast the data with .astype(np.float32) first")
        self._data = arr
        self.grad: np.ndarray | None = None
        self.requires_grad = bool(requires_grad)
        self._creator: Function | None = None
        self._inputs: tuple = ()
        self.name = name
        self._grad_zero = False

    # -- data -------------------------------------------------------------------------------
    @property
    def data(self) -> np.ndarray:
        return self._data

    @data.setter
    def data(self, value) -> None:
        self._set_data(value)

    def _set_data(self, value) -> None:
        self._data = np.asarray(value)

    @property
    def shape(self) -> tuple:
        return self._data.shape

    @property
    def ndim(self) -> int:
        return self._data.ndim

    @property
    def dtype(self):
        return self._data.dtype

    @property
    def size(self) -> int:
        return self._data.size

    def __len__(self) -> int:
        return len(self._data)

    def numpy(self) -> np.ndarray:
        return self._data

    def item(self) -> float:
        return self._data.item()

    def detach(self) -> "Tensor":
        return Tensor(self._data)

    def __repr__(self) -> str:
        extra = ", requires_grad=True" if self.requires_grad else ""
        return f"Tensor({np.array2string(self._data, threshold=20)}, dtype={self._data.dtype}{extra})"

    # -- graph ------------------------------------------------------------------------------
    @staticmethod
    def apply(fn: Function, *inputs, **options) -> "Tensor":
        """Run ``fn.forward`` on the inputs' arrays and, if any input requires a gradient, record the node."""
        arrays, needs = [], []
        for x in inputs:  # one pass (this runs for every op of every step)
            if isinstance(x, Tensor):
                arrays.append(x._data)
                needs.append(x.requires_grad)
            else:
                arrays.append(x)
                needs.append(False)
        record = True in needs and getattr(_state, "enabled", True)
        fn.needs_input_grad = tuple(needs)
        out = Tensor(fn.forward(*arrays, **options))
        if record:
            out.requires_grad = True
            out._creator = fn
            out._inputs = inputs
            out._seq = next(_sequence)
        else:
            fn.release()
        return out

    def zero_grad(self) -> None:
        self.grad = None

    def backward(self, grad=None) -> None:
        """Backpropagate from this tensor; ``grad`` defaults to 1 for a scalar.

        Gradients accumulate (+=) into the ``.grad`` of leaves; call ``zero_grad`` between steps.
        The graph is freed afterwards, so calling ``backward`` twice through it raises.
        """
        if not self.requires_grad:
            raise RuntimeError("backward() on a tensor that does not require a gradient: "
                               "no input of the computation had requires_grad=True")
        if grad is None:
            if self._data.size != 1:
                raise RuntimeError(f"backward() without a gradient needs a scalar, got shape {self.shape}; "
                                   "pass grad= of the same shape or reduce with .sum()/.mean() first")
            grad = np.ones_like(self._data)
        else:
            grad = np.asarray(_as_array(grad), dtype=self._data.dtype)
            if grad.shape != self.shape:
                raise ValueError(f"grad has shape {grad.shape} but the tensor has shape {self.shape}")
        if self._creator is None:
            accumulate_leaf(self, grad, False)
            return
        # Nodes are visited in decreasing creation order — a tensor is always created after its
        # inputs, so every consumer of a node has passed its gradient on before the node is visited.
        # Grads of non-leaf nodes wait in ``pending`` until then; ``owned`` says whether the array
        # may be updated in place (a backward may hand one array to several inputs). Leaves
        # accumulate at once.
        pending: dict[int, list] = {id(self): [grad, False]}
        heap = [(-self._seq, self)]
        while heap:
            node = heappop(heap)[1]
            fn = node._creator
            entry = pending.pop(id(node))
            inputs = node._inputs
            if fn.uses_sinks:
                # a packed parameter whose gradient view was just zeroed can receive its gradient
                # directly (e.g. np.matmul(..., out=sink)) instead of through a temporary
                fn.sinks = tuple(grad_sink(inp) for inp in inputs)
            grads = fn.backward(entry[0])
            if not isinstance(grads, tuple):
                grads = (grads,)
            for inp, g in zip(inputs, grads):
                if g is None or not isinstance(inp, Tensor) or not inp.requires_grad:
                    continue
                if inp._creator is None:
                    accumulate_leaf(inp, g, False)
                    continue
                slot = pending.get(id(inp))
                if slot is None:
                    pending[id(inp)] = [g, False]
                    heappush(heap, (-inp._seq, inp))
                elif slot[1]:
                    slot[0] += g
                else:
                    slot[0] = slot[0] + g
                    slot[1] = True
            fn.release()
            node._creator = _FREED
            node._inputs = ()


class _Freed(Function):
    """Stands in for the creator of a node whose graph an earlier ``backward()`` consumed.

    Without it the node would look like a leaf and a second backward would silently stop there.
    """

    def backward(self, grad_out):
        raise RuntimeError("backward() through a graph that an earlier backward() already freed: "
                           "run the forward pass again (each backward() consumes its graph)")


_FREED = _Freed()


def grad_sink(inp):
    """Where a ``Function`` may write ``inp``'s gradient in place: the just-zeroed gradient view of a packed
    leaf, else None."""
    return inp.grad if isinstance(inp, Tensor) and inp._grad_zero and inp._creator is None else None


def accumulate_leaf(leaf: Tensor, g: np.ndarray, owned: bool) -> None:
    """Add a backward pass's gradient ``g`` into the leaf's (written if its view was just zeroed; nothing if it
    was written in place through ``grad_sink``). ``owned``: g may be kept as the leaf's gradient."""
    assert g.shape == leaf.shape, f"backward produced a gradient of shape {g.shape} for a leaf of shape {leaf.shape}"
    if g is leaf.grad:  # written in place through a sink
        pass
    elif leaf.grad is None:
        leaf.grad = g.astype(leaf._data.dtype, copy=not owned)
    elif leaf._grad_zero:
        # a packed parameter whose gradient view was just zeroed: write instead of add (one pass)
        np.copyto(leaf.grad, g)
    else:
        leaf.grad += g
    leaf._grad_zero = False


class Parameter(Tensor):
    """A trainable leaf tensor (``requires_grad=True``) owned by a module.

    ``kind`` says what it is ("weight", "bias", "scale", "shift"), which masks (e.g. L2 on
    weights only) use. ``requires_grad = False`` freezes it, ``lr_scale`` multiplies its learning
    rate and ``weight_decay_scale`` its weight decay (the optimizer's and ``fit``'s L2): its parameter
    group (``Params.lr_scale`` / ``weight_decay_scale`` gather them into vectors over θ for the optimizer). Once packed into a flat vector θ (``descend.pack``), ``data`` is a view of
    θ and may not be rebound: assign into it (``p.data[...] = x``) instead.
    """

    __slots__ = ("kind", "_packed", "lr_scale", "weight_decay_scale")

    def __init__(self, data, *, kind: str = "weight", name: str | None = None):
        arr = np.asarray(data.data if isinstance(data, Tensor) else data)
        if arr.dtype.kind != "f":
            arr = arr.astype(np.float32)
        self._packed = False
        super().__init__(arr, requires_grad=True, name=name)
        self.kind = kind
        self.lr_scale = 1.0  # multiplier of the learning rate for this parameter (a parameter group's)
        self.weight_decay_scale = 1.0  # multiplier of its weight decay and L2 (a parameter group's)

    def zero_grad(self) -> None:
        """Forget the gradient; a packed parameter zeroes its view of the flat gradient in place."""
        if self._packed and self.grad is not None:
            self.grad[...] = 0
            self._grad_zero = True
        else:
            self.grad = None

    def _set_data(self, value) -> None:
        if self._packed:
            raise AttributeError(
                f"parameter {self.name or ''!s} is packed into a flat vector θ; rebinding its array would "
                "detach it from θ. Assign in place instead: p.data[...] = new_values")
        self._data = np.asarray(value)
