"""The 2-D test functions: hand-written gradients against central differences and descend's autodiff, Hessians
against differences of the gradient, the minima (∇f = 0, f = f*), domains and the quadratic's condition number."""
import numpy as np
import pytest

from descend import Tensor
from descend.optim.testfunctions import BEALE, BOOTH, HIMMELBLAU, ROSENBROCK, SADDLE, Function2D, quadratic

FUNCTIONS = {f.name: f for f in (ROSENBROCK, BEALE, HIMMELBLAU, SADDLE, BOOTH, quadratic(condition=25.0))}


def points(f, n=6):
    """n points spread over the function's domain (a fixed generator: the same points every run)."""
    (x_lo, x_hi), (y_lo, y_hi) = f.domain
    rng = np.random.default_rng(3)
    return np.column_stack([rng.uniform(x_lo, x_hi, n), rng.uniform(y_lo, y_hi, n)])


@pytest.mark.parametrize("name", sorted(FUNCTIONS))
def test_gradient_matches_central_differences(name):
    f = FUNCTIONS[name]
    for p in points(f):
        h = 1e-6 * max(1.0, float(np.abs(p).max()))
        num = [(f.value(p + h * e) - f.value(p - h * e)) / (2 * h) for e in np.eye(2)]
        np.testing.assert_allclose(f.gradient(p), num, rtol=1e-6, atol=1e-5 * max(1.0, abs(f.value(p))) ** 0.5)


@pytest.mark.parametrize("name", sorted(FUNCTIONS))
def test_gradient_matches_autodiff(name):
    f = FUNCTIONS[name]
    for p in points(f):
        a, b = Tensor(np.float64(p[0]), requires_grad=True), Tensor(np.float64(p[1]), requires_grad=True)
        out = f.formula(a, b)
        out.backward()
        assert out.item() == pytest.approx(f.value(p), rel=1e-13, abs=1e-13)
        np.testing.assert_allclose(f.gradient(p), [float(a.grad), float(b.grad)], rtol=1e-12, atol=1e-10)


@pytest.mark.parametrize("name", sorted(FUNCTIONS))
def test_hessian_matches_differences_of_the_gradient(name):
    f = FUNCTIONS[name]
    for p in points(f):
        h = 1e-5 * max(1.0, float(np.abs(p).max()))
        num = np.column_stack([(f.gradient(p + h * e) - f.gradient(p - h * e)) / (2 * h) for e in np.eye(2)])
        hess = f.hessian(p)
        np.testing.assert_allclose(hess, hess.T, rtol=0, atol=0)
        np.testing.assert_allclose(hess, num, rtol=1e-6, atol=1e-5)


@pytest.mark.parametrize("name", sorted(FUNCTIONS))
def test_minima_are_stationary_points_with_the_known_value(name):
    f = FUNCTIONS[name]
    for m in f.minima:
        assert f.value(m) == pytest.approx(f.f_min, abs=1e-20)
        np.testing.assert_allclose(f.gradient(m), 0.0, atol=1e-12)
        assert np.all(np.linalg.eigvalsh(f.hessian(m)) > 0)  # a strict local minimum
        assert f.contains(m) and f.distance(m) == 0.0
    assert f.contains(f.start)
    assert f.value(f.start) > (f.f_min if f.f_min is not None else -np.inf)


def test_himmelblau_has_four_minima_and_the_saddle_none():
    assert len(HIMMELBLAU.minima) == 4
    assert HIMMELBLAU.nearest_minimum((-3.0, -3.0)) == HIMMELBLAU.minima[2]
    assert SADDLE.minima == () and SADDLE.f_min is None and SADDLE.distance((1.0, 1.0)) is None
    assert np.linalg.eigvalsh(SADDLE.hessian((0.0, 0.0))).tolist() == [-2.0, 2.0]  # indefinite: a saddle


def test_quadratic_condition_number_and_bad_values():
    for k in (1.0, 10.0, 1e4):
        ev = np.linalg.eigvalsh(quadratic(condition=k).hessian((0.3, -0.2)))
        assert ev.max() / ev.min() == pytest.approx(k, rel=1e-14)
    for bad in (0.5, -1, float("nan"), float("inf"), "10", True):
        with pytest.raises(ValueError, match="condition must be a finite number >= 1"):
            quadratic(condition=bad)


def test_closure_keeps_thetas_dtype_and_no_hessian_is_an_error():
    theta = np.array([0.5, -0.5], dtype=np.float32)
    loss, grad = ROSENBROCK.closure(theta)()
    assert isinstance(loss, float) and grad.dtype == np.float32
    np.testing.assert_allclose(grad, ROSENBROCK.gradient(theta), rtol=1e-6)
    f = Function2D(name="noh", formula=lambda x, y: x * x + y * y, gradient_xy=lambda x, y: (2 * x, 2 * y),
                   hessian_xy=None, minima=((0.0, 0.0),), f_min=0.0, domain=((-1, 1), (-1, 1)), start=(0.5, 0.5))
    with pytest.raises(ValueError, match="'noh' has no Hessian"):
        f.hessian((0.0, 0.0))


def test_contour_grid_evaluation_is_elementwise():
    xs, ys = np.meshgrid(np.linspace(-2, 2, 5), np.linspace(-1, 3, 4))
    grid = ROSENBROCK.formula(xs, ys)
    assert grid.shape == (4, 5)
    assert grid[2, 3] == ROSENBROCK.value((xs[2, 3], ys[2, 3]))
