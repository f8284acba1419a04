"""Search strategies — grid, random(n), coarse_to_fine(stages), optuna_tpe(n) — and the edge check run after every stage.

A strategy is a list of stages; each stage's whole plan (parameters and seeds) is drawn before any
of its trials runs, from ``SeedSequence([search seed, stage])``, so a plan never depends on which
executor runs it or in which order trials finish. Coarse-to-fine (CS231n: a few epochs over wide
ranges, then longer runs over narrowed ranges) computes the next stage's ranges only from the
finished stage: every numeric range is narrowed in its coordinate (log space for log dimensions)
around the top-k trials, where the stage's best is re-run with the longer budget. After each stage,
a best value in the outer 10 % of its range is reported (``EdgeWarning``) — the optimum may lie
outside — unless that edge is a hard limit; with ``widen=True`` the next stage re-centres that
dimension on the best value with the old width instead.
"""
from __future__ import annotations

import math
import warnings
from dataclasses import dataclass, field

import numpy as np

from .space import Space, SpaceError

__all__ = ["Stage", "Strategy", "grid", "random", "coarse_to_fine", "optuna_tpe", "Edge", "EdgeWarning", "edges", "trial_seed",
           "optimize", "EDGE_FRACTION"]

EDGE_FRACTION = 0.1  # "the outer 10 % of a range"


class EdgeWarning(UserWarning):
    """The best value of a dimension lies at the edge of its range: the optimum may be outside it."""


@dataclass(frozen=True)
class Stage:
    """One stage: how many trials (None for a grid: the whole product) and the epochs each trial trains."""

    trials: int | None = None
    epochs: int | None = None

    def __post_init__(self):
        for name in ("trials", "epochs"):
            v = getattr(self, name)
            if v is not None and (not isinstance(v, int) or isinstance(v, bool) or v < 1):
                what = "zero trials: nothing would run" if name == "trials" and v == 0 else f"{name} = {v!r}"
                raise SpaceError(f"a search stage has {what}; give {name} ≥ 1")


@dataclass(frozen=True)
class Strategy:
    """``kind`` ("grid", "random", "coarse_to_fine"), its stages and the narrowing settings."""

    kind: str
    stages: tuple
    top_k: int = 3
    shrink: float = 0.5
    widen: bool = False

    def __post_init__(self):
        if not self.stages:
            raise SpaceError("a search needs at least one stage; e.g. stages = [{ trials = 20, epochs = 5 }]")
        if not (isinstance(self.top_k, int) and self.top_k >= 1):
            raise SpaceError(f"top_k = {self.top_k!r} must be an integer ≥ 1")
        if not 0 < self.shrink <= 1:
            raise SpaceError(f"shrink = {self.shrink!r} must be in (0, 1]: the fraction of a range a stage keeps")
        if self.kind != "grid" and any(s.trials is None for s in self.stages):
            raise SpaceError(f"every stage of a {self.kind} search needs a trial count ≥ 1")

    def plan(self, space: Space, stage: int, seed: int, history=(), *, maximize: bool = True,
             previous=()) -> list[dict]:
        """The parameters of every trial of ``stage``, drawn before any runs (``history``: the earlier stages'
        (params, score) pairs, which only the Optuna bridge reads; ``previous``: the stage before's, whose best
        coarse-to-fine re-runs)."""
        if self.kind == "grid":
            return space.grid()
        if self.kind == "optuna-tpe":
            from .optuna_bridge import plan_tpe
            return plan_tpe(space, stage, seed, self.stages[stage].trials, list(history), maximize=maximize)
        rng = np.random.default_rng(np.random.SeedSequence([seed, stage]))
        n = self.stages[stage].trials
        ranked = _ranked(list(previous), maximize) if self.kind == "coarse_to_fine" else []
        if not ranked:
            return space.sample(rng, n)
        # the stage before's best (inside the range narrowed around it) re-run with this stage's longer budget
        return [dict(ranked[0][0])] + space.sample(rng, n - 1)

    def next_space(self, space: Space, scored: list, *, maximize: bool) -> Space:
        """The space of the stage after the one whose (params, score) pairs are ``scored`` (None scores skipped)."""
        ranked = _ranked(scored, maximize)
        if not ranked or self.kind == "optuna-tpe":  # TPE models the whole space itself
            return space  # nothing finished with a score: nothing to narrow around
        top = [p for p, _ in ranked[:self.top_k]]
        flagged = {(e.key, e.side) for e in edges(space, ranked[0][0])} if self.widen else set()
        changes = {}
        for key, dim in space.numeric().items():
            a, b = dim.bounds
            width = b - a
            hard_lo, hard_hi = dim.hard_bounds()
            best = dim.coord(ranked[0][0][key])
            if (key, "low") in flagged or (key, "high") in flagged:
                lo, hi = best - width / 2, best + width / 2  # re-centre on the best with the old width
                lo, hi = max(lo, hard_lo), min(hi, hard_hi)
            else:
                coords = [dim.coord(p[key]) for p in top]
                lo, hi = min(coords), max(coords)
                w = max(hi - lo, self.shrink * width)
                mid = (lo + hi) / 2
                lo, hi = mid - w / 2, mid + w / 2
                shift = max(0.0, a - lo) - max(0.0, hi - b)  # slide the window back inside [a, b]
                lo, hi = max(a, lo + shift), min(b, hi + shift)
            changes[key] = dim.with_bounds(lo, hi)
        return space.with_dims(changes)


def grid(*, epochs: int | None = None) -> Strategy:
    """Every combination of the (discrete) dimensions' values, in one stage."""
    return Strategy("grid", (Stage(None, epochs),))


def random(n: int, *, epochs: int | None = None) -> Strategy:
    """``n`` points drawn independently (uniform in each dimension's coordinate), in one stage."""
    return Strategy("random", (Stage(n, epochs),))


def coarse_to_fine(stages, *, top_k: int = 3, shrink: float = 0.5, widen: bool = False) -> Strategy:
    """Random stages, each over the ranges narrowed around the previous stage's ``top_k`` trials.

    ``stages``: a list of ``Stage`` or of (trials, epochs) pairs; a range keeps at least ``shrink``
    of its width per stage (and always the span of the top-k), inside its previous range. Each stage
    after the first re-runs the best configuration of the stage before with its own (longer) budget as
    its first trial, beside trials − 1 new draws: the incumbent is always tried at the budget that decides.
    """
    stages = tuple(s if isinstance(s, Stage) else Stage(*s) for s in stages)
    return Strategy("coarse_to_fine", stages, top_k=top_k, shrink=shrink, widen=widen)


def optuna_tpe(trials: int, *, batch: int = 4, epochs: int | None = None) -> Strategy:
    """``trials`` points from Optuna's TPE sampler (the ``optuna`` extra), planned ``batch`` at a time."""
    if not (isinstance(batch, int) and batch >= 1):
        raise SpaceError(f"batch = {batch!r} must be an integer ≥ 1 (trials planned per TPE round)")
    Stage(trials, epochs)  # refuses zero trials
    sizes = [batch] * (trials // batch) + ([trials % batch] if trials % batch else [])
    return Strategy("optuna-tpe", tuple(Stage(n, epochs) for n in sizes))


def trial_seed(seed: int, stage: int, index: int) -> int:
    """The seed of trial ``index`` of ``stage``: from ``SeedSequence([search seed, stage, index])``."""
    return int(np.random.SeedSequence([seed, stage, index]).generate_state(1)[0])


@dataclass(frozen=True)
class Edge:
    """A dimension whose best value lies in the outer ``EDGE_FRACTION`` of its range, on ``side``."""

    key: str
    side: str  # "low" | "high"
    value: object
    dim: object

    def message(self) -> str:
        d = self.dim
        a, b = d.bounds
        past = d.value(a - (b - a) / 2) if self.side == "low" else d.value(b + (b - a) / 2)
        scale = " (log scale)" if d.log else ""
        direction = "downward" if self.side == "low" else "upward"
        bound = "low" if self.side == "low" else "high"
        return (f"{self.key}: the best value {self.value:.4g} lies in the {'lowest' if self.side == 'low' else 'highest'}"
                f" {EDGE_FRACTION:.0%} of its range [{d.low:g}, {d.high:g}]{scale}; the optimum may be outside — "
                f"widen the range {direction} (e.g. {bound} = {past:.4g}) or set widen = true")


def edges(space: Space, best: dict) -> list[Edge]:
    """The dimensions whose value in ``best`` lies in the outer 10 % of their range, hard limits excepted."""
    found = []
    for key, dim in space.numeric().items():
        a, b = dim.bounds
        hard_lo, hard_hi = dim.hard_bounds()
        frac = (dim.coord(best[key]) - a) / (b - a)
        if frac < EDGE_FRACTION and a > hard_lo + 1e-12 * max(1.0, abs(a)):
            found.append(Edge(key, "low", best[key], dim))
        elif frac > 1 - EDGE_FRACTION and b < hard_hi - 1e-12 * max(1.0, abs(b)):
            found.append(Edge(key, "high", best[key], dim))
    return found


def _ranked(scored, maximize: bool) -> list:
    ok = [(p, s) for p, s in scored if s is not None and math.isfinite(s)]
    return sorted(ok, key=lambda ps: -ps[1] if maximize else ps[1])  # stable: ties keep plan order


@dataclass
class Result:
    """What ``optimize`` did: every trial (stage, index, params, score), each stage's space, the edges."""

    trials: list = field(default_factory=list)
    spaces: list = field(default_factory=list)
    edges: list = field(default_factory=list)  # per stage: [Edge, ...]

    def best(self, *, maximize: bool = True) -> dict | None:
        ranked = _ranked([(t, t["score"]) for t in self.trials], maximize)
        return ranked[0][0] if ranked else None


def optimize(objective, space: Space, strategy: Strategy, *, seed: int = 0, maximize: bool = True) -> Result:
    """Run ``strategy`` in this process on any ``objective(params, *, seed, stage, epochs) -> score | None``.

    The coordinator of ``descend search`` does the same with trials on an executor and a store; this
    form serves synthetic objectives (tests, notebooks) and cheap functions.
    """
    result = Result()
    for s, stage in enumerate(strategy.stages):
        previous = [(t["params"], t["score"]) for t in result.trials if t["stage"] == s - 1]
        if s:
            space = strategy.next_space(space, previous, maximize=maximize)
        result.spaces.append(space)
        plan = strategy.plan(space, s, seed, [(t["params"], t["score"]) for t in result.trials], maximize=maximize,
                             previous=previous)
        rows = [{"stage": s, "index": i, "params": p,
                 "score": objective(p, seed=trial_seed(seed, s, i), stage=s, epochs=stage.epochs)}
                for i, p in enumerate(plan)]
        result.trials += rows
        found = check_edges(space, rows, maximize=maximize)
        result.edges.append(found)
    return result


def check_edges(space: Space, rows: list, *, maximize: bool) -> list[Edge]:
    """The edges of a finished stage's best trial, each also issued as an ``EdgeWarning``."""
    ranked = _ranked([(r["params"], r["score"]) for r in rows], maximize)
    found = edges(space, ranked[0][0]) if ranked else []
    for e in found:
        warnings.warn(e.message(), EdgeWarning, stacklevel=3)
    return found
