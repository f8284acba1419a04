"""Gradient check: backprop's gradient against central differences ("nudge one weight, run forward again").

The numerical gradient of f at x is (f(x + h·eᵢ) − f(x − h·eᵢ)) / 2h for every coordinate i, in
float64. The verdict uses CS231n's relative error |a − n| / max(|a|, |n|) and passes when the two
agree within ``atol + rtol·|n|`` everywhere.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable, Sequence

import numpy as np

from ..autodiff.tensor import Tensor, no_grad

__all__ = ["numerical_gradient", "gradcheck", "GradcheckResult"]


def numerical_gradient(f: Callable[[], float], x: np.ndarray, *, eps: float = 1e-6) -> np.ndarray:
    """Central-difference gradient of the scalar ``f()`` with respect to the array ``x``.

    ``x`` is nudged in place one entry at a time and restored exactly; ``f`` must read it.
    """
    if x.dtype != np.float64:
        raise TypeError(f"numerical_gradient needs a float64 array (got {x.dtype}): finite differences "
                        "in float32 lose most of their digits; pack the model with dtype=np.float64")
    grad = np.zeros_like(x)
    flat, gflat = x.reshape(-1), grad.reshape(-1)
    # a non-contiguous x makes reshape copy (and the copy's .base is not None): nudging it would
    # leave x untouched and every derivative 0
    if x.size and not np.shares_memory(flat, x):
        raise ValueError("numerical_gradient needs a contiguous array it can nudge in place")
    for i in range(flat.size):
        old = flat[i]
        flat[i] = old + eps
        fp = float(f())
        flat[i] = old - eps
        fm = float(f())
        flat[i] = old
        gflat[i] = (fp - fm) / (2 * eps)
    return grad


@dataclass
class GradcheckResult:
    """Analytic vs numerical gradient of each input, with the largest errors and a verdict."""

    ok: bool
    max_abs_error: float
    max_rel_error: float
    analytic: list = field(repr=False, default_factory=list)
    numerical: list = field(repr=False, default_factory=list)

    @property
    def verdict(self) -> str:
        r = self.max_rel_error
        if r < 1e-7:
            quality = "excellent (relative error < 1e-7)"
        elif r < 1e-4:
            quality = "fine for smooth functions (relative error < 1e-4); look closer if there are no kinks"
        elif r < 1e-2:
            quality = "suspicious (relative error between 1e-4 and 1e-2): probably a bug or a kink"
        else:
            quality = "wrong (relative error > 1e-2): the backward pass has a bug"
        return f"gradient check {'passed' if self.ok else 'FAILED'}: max relative error {r:.2e}, " \
               f"max absolute error {self.max_abs_error:.2e} — {quality}"

    def __bool__(self) -> bool:
        return self.ok


def gradcheck(fn: Callable[..., Tensor], inputs: Sequence[Tensor], *, eps: float = 1e-6, atol: float = 1e-6,
              rtol: float = 1e-5, seed: int = 0) -> GradcheckResult:
    """Check backprop through ``fn(*inputs)`` against central differences for every input with requires_grad.

    A non-scalar output is reduced with a fixed random projection Σ r ⊙ out, so every output
    entry's gradient is exercised. Inputs must be float64 Tensors.
    """
    inputs = list(inputs)
    targets = [t for t in inputs if isinstance(t, Tensor) and t.requires_grad]
    if not targets:
        raise ValueError("gradcheck: no input has requires_grad=True, so there is nothing to check")
    for t in targets:
        if t.dtype != np.float64:
            raise TypeError(f"gradcheck needs float64 inputs, got {t.dtype}; use Tensor(x.astype(np.float64)) "
                            "or pack(model, dtype=np.float64)")
    with no_grad():
        out = fn(*inputs)
    proj = np.random.default_rng(seed).standard_normal(out.shape) if out.size > 1 else None

    def scalar() -> float:
        with no_grad():
            o = fn(*inputs).data
        return float(o.sum() if proj is None else (o * proj).sum())

    for t in targets:
        if t.grad is not None:
            t.grad[...] = 0  # in place: a packed parameter's grad is a view of the flat gradient
    out = fn(*inputs)
    out.backward(None if proj is None else proj.astype(out.dtype))
    analytic = [np.zeros_like(t.data) if t.grad is None else np.array(t.grad) for t in targets]
    numerical = [numerical_gradient(scalar, t.data, eps=eps) for t in targets]
    max_abs = max_rel = 0.0
    ok = True
    for a, n in zip(analytic, numerical):
        diff = np.abs(a - n)
        denom = np.maximum(np.maximum(np.abs(a), np.abs(n)), 1e-300)
        rel = np.where(diff == 0, 0.0, diff / denom)
        max_abs = max(max_abs, float(diff.max(initial=0)))
        max_rel = max(max_rel, float(rel.max(initial=0)))
        ok &= bool(np.all(diff <= atol + rtol * np.abs(n)))
    return GradcheckResult(ok, max_abs, max_rel, analytic, numerical)
