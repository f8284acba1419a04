"""Optimizers raced on a 2-D test function from one start, through their real ``step``: trajectories and outcomes."""
from __future__ import annotations

import copy
import math
import time
from dataclasses import dataclass, field

import numpy as np

from ..optim import Newton
from ..optim.testfunctions import Function2D

__all__ = ["Trajectory", "FunctionRace", "compare_on_function", "check_start", "needs_hessian"]


@dataclass
class Trajectory:
    """One optimizer's path: ``points[k]`` is θ after k steps (``points[0]`` the start), ``values[k]`` = f there,
    ``seconds[k]`` the wall time of the first k steps (the function's own evaluations included).

    ``outcome``: "reached" (f − f* < target first at step ``steps_to_target``), "not reached", "diverged"
    (the 3× rule or a non-finite f cut the path; ``reason`` says where) or "left the domain" (a function
    without a minimum, e.g. the saddle: the path left the box three times the plot's size).
    ``steps_to_target`` is kept when a path reached the target and was cut later.
    """

    name: str
    points: np.ndarray
    values: np.ndarray
    seconds: np.ndarray
    evaluations: int
    outcome: str
    reason: str = ""
    steps_to_target: int | None = None
    seconds_to_target: float | None = None
    final_distance: float | None = None

    @property
    def steps(self) -> int:
        return len(self.points) - 1


@dataclass
class FunctionRace:
    """The result of ``compare_on_function``: the function, the start, the target and one Trajectory per optimizer."""

    function: Function2D
    start: tuple
    target: float
    trajectories: list = field(default_factory=list)

    def gap(self, traj: Trajectory) -> np.ndarray:
        """f − f* along a trajectory (f itself when f* is unknown)."""
        f_min = self.function.f_min
        return traj.values - (0.0 if f_min is None else f_min)

    def table(self) -> str:
        """The printed table: steps and time to f − f* < target, final f − f*, distance to the nearest minimum."""
        head = f"{'optimizer':<12} {'steps to target':>16} {'time to target':>15} {'final f - f*':>13} " \
               f"{'distance to min':>16} {'evals':>6}  outcome"
        rows = [head, "-" * len(head)]
        for tr in self.trajectories:
            steps = "not reached" if tr.steps_to_target is None else str(tr.steps_to_target)
            secs = "—" if tr.seconds_to_target is None else f"{tr.seconds_to_target * 1e3:.2f} ms"
            final = self.gap(tr)[-1]
            dist = "—" if tr.final_distance is None else f"{tr.final_distance:.2e}"
            outcome = tr.outcome + (f" ({tr.reason})" if tr.reason else "")
            rows.append(f"{tr.name:<12} {steps:>16} {secs:>15} {final:>13.3e} {dist:>16} {tr.evaluations:>6}  {outcome}")
        return "\n".join(rows)


def needs_hessian(optimizer) -> bool:
    """True for the optimizers that need f to be twice differentiable (Newton measures the Hessian)."""
    return isinstance(optimizer, Newton)


def compare_on_function(function: Function2D, optimizers: dict, *, steps: int = 300, start=None,
                        target: float = 1e-6, divergence: float = 3.0) -> FunctionRace:
    """Run each optimizer of ``optimizers`` (name → a fresh descend optimizer) for ``steps`` calls of its
    ``step`` from the same ``start`` (default ``function.start``) on ``function``, in float64.

    Each ``step(theta, closure)`` is the call a network's training loop makes; second-order optimizers
    should be built with ``max_iter=1`` so that one step is one iteration. A path is cut when f is not
    finite or f − f* > ``divergence`` × (f(start) − f*) (the training loop's 3× rule): outcome
    "diverged". Raises ValueError for a start outside the function's domain, a Newton-type optimizer
    on a function without a Hessian, or bad settings — before anything runs.
    """
    if isinstance(steps, bool) or not isinstance(steps, int) or steps < 1:
        raise ValueError(f"steps must be a positive integer, got {steps!r}")
    if not (isinstance(target, (int, float)) and target > 0):
        raise ValueError(f"target must be a number > 0 (f − f* below it counts as reached), got {target!r}")
    if not (isinstance(divergence, (int, float)) and divergence > 1):
        raise ValueError(f"divergence must be a factor > 1 (the 3× rule), got {divergence!r}")
    if not optimizers:
        raise ValueError("optimizers is empty; pass at least one, e.g. {'sgd': SGD(lr=1e-3)}")
    start = check_start(function, function.start if start is None else start)
    for name, opt in optimizers.items():
        if needs_hessian(opt) and function.hessian_xy is None:
            raise ValueError(f"{name} needs the Hessian, but the function {function.name!r} has none; "
                             f"drop {name} or give the function second derivatives")
    race = FunctionRace(function=function, start=start, target=float(target))
    for name, opt in optimizers.items():
        race.trajectories.append(_run(function, name, opt, start, steps, float(target), float(divergence)))
    return race


def check_start(function: Function2D, start) -> tuple:
    """The start as a float pair inside the function's domain, or ValueError naming the domain."""
    try:
        x, y = (float(v) for v in start)
    except (TypeError, ValueError):
        raise ValueError(f"start must be two numbers x, y, got {start!r}") from None
    if not (math.isfinite(x) and math.isfinite(y)) or not function.contains((x, y)):
        (x_lo, x_hi), (y_lo, y_hi) = function.domain
        raise ValueError(f"start ({x:g}, {y:g}) is outside {function.name}'s domain [{x_lo:g}, {x_hi:g}] × "
                         f"[{y_lo:g}, {y_hi:g}]; pick a start inside it")
    return x, y


def _escaped(function: Function2D, theta) -> bool:
    (x_lo, x_hi), (y_lo, y_hi) = function.domain
    wx, wy = x_hi - x_lo, y_hi - y_lo
    return not (x_lo - wx <= theta[0] <= x_hi + wx and y_lo - wy <= theta[1] <= y_hi + wy)


def _run(function, name, opt, start, steps, target, divergence) -> Trajectory:
    theta = np.array(start, dtype=np.float64)
    f_min = function.f_min
    evals = [0]
    closure_f = function.closure(theta)

    def closure():
        evals[0] += 1
        return closure_f()

    # warm-up on a copy: the first call of a Numba kernel compiles (or loads) it, which is not the
    # optimizer's time; the copy leaves ``opt`` itself untouched
    scratch = theta.copy()
    copy.deepcopy(opt).step(scratch, function.closure(scratch))
    f0 = function.value(theta)
    limit = None if f_min is None else divergence * (f0 - f_min)
    points, values, seconds = [theta.copy()], [f0], [0.0]
    reached = 0 if f_min is not None and f0 - f_min < target else None
    outcome, reason, elapsed = "not reached", "", 0.0
    for k in range(1, steps + 1):
        t0 = time.perf_counter()
        opt.step(theta, closure)
        elapsed += time.perf_counter() - t0  # the optimizer's own work and its closure calls only
        f = function.value(theta)
        points.append(theta.copy())
        values.append(f)
        seconds.append(elapsed)
        if not math.isfinite(f) or not np.all(np.isfinite(theta)):
            outcome, reason = "diverged", f"f is {f} at step {k}"
            break
        if limit is not None and f - f_min > limit:
            outcome, reason = "diverged", f"f − f* = {f - f_min:.3g} > {divergence:g} × {f0 - f_min:.3g} at step {k}"
            break
        if f_min is None and _escaped(function, theta):
            outcome, reason = "left the domain", f"at step {k}"
            break
        if reached is None and f_min is not None and f - f_min < target:
            reached = k
    if reached is not None and outcome == "not reached":
        outcome = "reached"
    pts = np.array(points)
    return Trajectory(name=name, points=pts, values=np.array(values), seconds=np.array(seconds),
                      evaluations=evals[0], outcome=outcome, reason=reason,
                      steps_to_target=reached, seconds_to_target=None if reached is None else seconds[reached],
                      final_distance=function.distance(pts[-1]))
