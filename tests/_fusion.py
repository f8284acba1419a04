"""Shared by the fusion tests: a Sequential whose layers 0 and 1 fuse (Linear or conv + ReLU), run whole
and layer by layer, must give the same bits."""
import numpy as np

from descend.autodiff import Tensor


def run_both_ways(model, x, dtype):
    """[(node type under the output, output, input gradient, parameter gradients)] for the 3-layer
    ``model`` called whole (Sequential fuses layers 0 and 1) and then layer by layer (unfused)."""
    for p in model.parameters():
        p.data = p.data.astype(dtype)
    results = []
    for fused in (True, False):
        for p in model.parameters():
            p.zero_grad()
        xt = Tensor(x.astype(dtype), requires_grad=True)
        out = model(xt) if fused else model[2](model[1](model[0](xt)))
        node = type(out._inputs[0]._creator).__name__  # (backward frees the graph)
        with np.errstate(invalid="ignore"):
            out.backward(np.linspace(-1, 1, out.data.size).reshape(out.shape).astype(dtype))
        results.append((node, out.data, xt.grad, [p.grad.copy() for p in model.parameters()]))
    return results


def assert_same_bits(results, fused_node):
    (node_f, y_f, gx_f, gp_f), (node_u, y_u, gx_u, gp_u) = results
    assert (node_f, node_u) == (fused_node, "ReLU")  # the fused node is the one that ran
    assert np.array_equal(y_f, y_u, equal_nan=True) and np.array_equal(gx_f, gx_u, equal_nan=True)
    for a, b in zip(gp_f, gp_u):
        assert np.array_equal(a, b, equal_nan=True)
