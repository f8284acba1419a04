"""The machinery of the table-driven gradient tests: a case has ``fn``, ``inputs()`` and ``input_names()``."""
from __future__ import annotations

import numpy as np
import pytest

from descend.autodiff import Tensor
from descend.diagnose import gradcheck

GRADCHECK = dict(eps=1e-6, atol=1e-6, rtol=1e-5)  # QUALITY.md: central differences, float64


def gradcheck_params(cases):
    """One test per case with every input differentiable ("all") and one per input alone."""
    out = []
    for case in cases:
        names = case.input_names()
        modes = ["all"] + names if len(names) > 1 else ["all"]
        out += [pytest.param(case, mode, id=f"{case.id}[{mode}]") for mode in modes]
    return out


def run_gradcheck(case, mode):
    """Backprop vs central differences for the inputs ``mode`` selects; the others receive no gradient."""
    tensors = [Tensor(a.copy(), requires_grad=(mode == "all" or mode == n))
               for a, n in zip(case.inputs(), case.input_names())]
    result = gradcheck(case.fn, tensors, **GRADCHECK)
    assert result.ok, result.verdict
    for t in tensors:
        if not t.requires_grad:
            assert t.grad is None
    return result


def check_float32_through(case):
    """float32 inputs give a float32 output and float32 gradients of the inputs' shapes (exact dtype)."""
    tensors = [Tensor(a.astype(np.float32), requires_grad=True) for a in case.inputs()]
    out = case.fn(*tensors)
    assert out.dtype == np.float32
    out.backward(np.ones(out.shape, np.float32))
    for t in tensors:
        assert t.grad is not None and t.grad.dtype == np.float32
        assert t.grad.shape == t.shape
