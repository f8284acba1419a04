"""The 2-D test functions of the optimizer pictures: value, gradient, Hessian, known minima, a domain and a start."""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable

import numpy as np

__all__ = ["Function2D", "ROSENBROCK", "BEALE", "HIMMELBLAU", "SADDLE", "BOOTH", "quadratic"]


@dataclass(frozen=True)
class Function2D:
    """A function f(x, y) of two variables, as the optimizer pictures use it.

    ``formula(x, y)`` is written with ``+ - * **`` only, so it works on floats, on NumPy arrays (a
    contour grid) and on descend Tensors (the autodiff checks the hand-written gradient with it).
    ``gradient(x, y) -> (∂f/∂x, ∂f/∂y)`` and ``hessian(x, y) -> ((fxx, fxy), (fxy, fyy))`` are written
    out by hand; ``hessian`` is None for a function whose second derivatives are not given (Newton is
    then refused by ``descend compare``).

    ``minima``: the global minimizers (several for Himmelblau, none for the saddle); ``f_min`` = f*,
    None when f is unbounded below. ``domain`` = ((x_lo, x_hi), (y_lo, y_hi)): where starts are
    accepted and the plots look; ``start``: the usual starting point of the pictures.
    """

    name: str
    formula: Callable
    gradient_xy: Callable
    hessian_xy: Callable | None
    minima: tuple
    f_min: float | None
    domain: tuple
    start: tuple
    latex: str = ""

    def value(self, theta) -> float:
        """f(θ) for θ = (x, y), as a Python float."""
        x, y = (float(v) for v in theta)
        return float(self.formula(x, y))

    def gradient(self, theta) -> np.ndarray:
        """∇f(θ), float64 of shape (2,)."""
        x, y = (float(v) for v in theta)
        return np.array(self.gradient_xy(x, y), dtype=np.float64)

    def hessian(self, theta) -> np.ndarray:
        """∇²f(θ), float64 of shape (2, 2); ValueError when the function has no Hessian."""
        if self.hessian_xy is None:
            raise ValueError(f"the function {self.name!r} has no Hessian")
        x, y = (float(v) for v in theta)
        return np.array(self.hessian_xy(x, y), dtype=np.float64)

    def closure(self, theta: np.ndarray):
        """The optimizers' closure on the flat θ (shape (2,)): ``() -> (f(θ), ∇f(θ))``, grad in θ's dtype."""
        def evaluate():
            return self.value(theta), self.gradient(theta).astype(theta.dtype, copy=False)
        return evaluate

    def contains(self, theta) -> bool:
        (x_lo, x_hi), (y_lo, y_hi) = self.domain
        x, y = (float(v) for v in theta)
        return x_lo <= x <= x_hi and y_lo <= y <= y_hi

    def nearest_minimum(self, theta):
        """The known minimizer closest to θ (None when there is none)."""
        if not self.minima:
            return None
        p = np.asarray(theta, dtype=np.float64)
        return min(self.minima, key=lambda m: float(np.hypot(*(p - np.asarray(m)))))

    def distance(self, theta) -> float | None:
        """Euclidean distance from θ to the nearest known minimizer (None when there is none)."""
        m = self.nearest_minimum(theta)
        return None if m is None else float(np.hypot(*(np.asarray(theta, dtype=np.float64) - np.asarray(m))))


# ------------------------------------------------------------------------------------------------ Rosenbrock
ROSENBROCK = Function2D(
    name="rosenbrock",
    formula=lambda x, y: (1 - x) ** 2 + 100 * (y - x * x) ** 2,
    gradient_xy=lambda x, y: (-2 * (1 - x) - 400 * x * (y - x * x), 200 * (y - x * x)),
    hessian_xy=lambda x, y: ((2 - 400 * (y - x * x) + 800 * x * x, -400 * x), (-400 * x, 200.0)),
    minima=((1.0, 1.0),), f_min=0.0, domain=((-2.0, 2.0), (-1.0, 3.0)), start=(-1.2, 1.0),
    latex=r"$(1-x)^2 + 100\,(y-x^2)^2$")


# ------------------------------------------------------------------------------------------------ Beale
def _beale_terms(x, y):
    return 1.5 - x + x * y, 2.25 - x + x * y ** 2, 2.625 - x + x * y ** 3


def _beale_gradient(x, y):
    t = _beale_terms(x, y)
    gx = sum(2 * t[i] * (y ** (i + 1) - 1) for i in range(3))
    gy = sum(2 * t[i] * (i + 1) * x * y ** i for i in range(3))
    return gx, gy


def _beale_hessian(x, y):
    # f = Σ tᵢ² with tᵢ = cᵢ − x + x·yⁱ (i = 1, 2, 3): ∂²f = 2Σ(∂tᵢ ∂tᵢᵀ + tᵢ ∂²tᵢ)
    t = _beale_terms(x, y)
    hxx = hxy = hyy = 0.0
    for i in (1, 2, 3):
        tx, ty = y ** i - 1, i * x * y ** (i - 1)
        txy, tyy = i * y ** (i - 1), i * (i - 1) * x * y ** (i - 2) if i > 1 else 0.0
        hxx += 2 * tx * tx
        hxy += 2 * (tx * ty + t[i - 1] * txy)
        hyy += 2 * (ty * ty + t[i - 1] * tyy)
    return (hxx, hxy), (hxy, hyy)


BEALE = Function2D(
    name="beale",
    formula=lambda x, y: sum(t ** 2 for t in _beale_terms(x, y)),
    gradient_xy=_beale_gradient, hessian_xy=_beale_hessian,
    minima=((3.0, 0.5),), f_min=0.0, domain=((-4.5, 4.5), (-4.5, 4.5)), start=(1.0, 1.0),
    latex=r"$(1.5-x+xy)^2 + (2.25-x+xy^2)^2 + (2.625-x+xy^3)^2$")


# ------------------------------------------------------------------------------------------------ Himmelblau
HIMMELBLAU = Function2D(
    name="himmelblau",
    formula=lambda x, y: (x * x + y - 11) ** 2 + (x + y * y - 7) ** 2,
    gradient_xy=lambda x, y: (4 * x * (x * x + y - 11) + 2 * (x + y * y - 7),
                              2 * (x * x + y - 11) + 4 * y * (x + y * y - 7)),
    hessian_xy=lambda x, y: ((12 * x * x + 4 * y - 42, 4 * x + 4 * y), (4 * x + 4 * y, 12 * y * y + 4 * x - 26)),
    # the four roots of ∇f = 0 with f = 0, to double precision (refined by Newton's method; the test checks ∇f)
    minima=((3.0, 2.0), (-2.805118086952745, 3.131312518250573), (-3.779310253377747, -3.283185991286170),
            (3.584428340330492, -1.848126526964404)),
    f_min=0.0, domain=((-5.0, 5.0), (-5.0, 5.0)), start=(0.0, 0.0),
    latex=r"$(x^2+y-11)^2 + (x+y^2-7)^2$")


# ------------------------------------------------------------------------------------------------ saddle
SADDLE = Function2D(
    name="saddle",
    formula=lambda x, y: x * x - y * y,
    gradient_xy=lambda x, y: (2 * x, -2 * y),
    hessian_xy=lambda x, y: ((2.0, 0.0), (0.0, -2.0)),
    minima=(), f_min=None, domain=((-2.0, 2.0), (-2.0, 2.0)), start=(1.5, 1e-3),
    latex=r"$x^2 - y^2$ (a saddle at the origin, unbounded below)")


# ------------------------------------------------------------------------------------------------ Booth
BOOTH = Function2D(
    name="booth",
    formula=lambda x, y: (x + 2 * y - 7) ** 2 + (2 * x + y - 5) ** 2,
    gradient_xy=lambda x, y: (2 * (x + 2 * y - 7) + 4 * (2 * x + y - 5), 4 * (x + 2 * y - 7) + 2 * (2 * x + y - 5)),
    hessian_xy=lambda x, y: ((10.0, 8.0), (8.0, 10.0)),
    minima=((1.0, 3.0),), f_min=0.0, domain=((-10.0, 10.0), (-10.0, 10.0)), start=(-4.0, 6.0),
    latex=r"$(x+2y-7)^2 + (2x+y-5)^2$")


# ------------------------------------------------------------------------------------------------ quadratic
def quadratic(*, condition: float = 10.0) -> Function2D:
    """The ill-conditioned quadratic f = ½(x² + κ·y²), κ = ``condition`` ≥ 1 (the Hessian's condition number):
    the long narrow valley where SGD zig-zags and momentum helps (CS231n, "Parameter updates")."""
    if isinstance(condition, bool) or not isinstance(condition, (int, float)) or not math.isfinite(condition) \
            or condition < 1:
        raise ValueError(f"condition must be a finite number >= 1 (the Hessian's condition number), got {condition!r}")
    k = float(condition)
    return Function2D(
        name="quadratic",
        formula=lambda x, y: 0.5 * (x * x + k * y * y),
        gradient_xy=lambda x, y: (x, k * y),
        hessian_xy=lambda x, y: ((1.0, 0.0), (0.0, k)),
        minima=((0.0, 0.0),), f_min=0.0, domain=((-10.0, 10.0), (-5.0, 5.0)), start=(-9.0, 3.0),
        latex=rf"$\frac{{1}}{{2}}(x^2 + {k:g}\,y^2)$ (condition number {k:g})")
