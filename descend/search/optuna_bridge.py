"""The Optuna bridge: ``strategy = "optuna-tpe"`` plans trials with an installed Optuna TPE sampler (an extra).

Optuna stays outside the core: it is imported here only. Each stage is a batch of ``batch`` trials;
before a stage, a fresh in-memory study is given every earlier finished trial (``add_trial``) and
asked for the batch, with a sampler seeded from ``SeedSequence([search seed, stage])`` — so, as with
our strategies, a stage's plan depends only on the seed and the earlier stages' results, never on
the executor. Diverged and failed trials are told as failed (TPE ignores them).
"""
from __future__ import annotations

import numpy as np

from .space import Choice, IntUniform, LogUniform, PowersOfTwo, SpaceError, Uniform

__all__ = ["plan_tpe"]


def _distributions(space):
    import optuna.distributions as od
    out = {}
    for key, d in space.dims.items():
        if isinstance(d, LogUniform):
            out[key] = od.FloatDistribution(d.low, d.high, log=True)
        elif isinstance(d, Uniform):
            out[key] = od.FloatDistribution(d.low, d.high)
        elif isinstance(d, IntUniform):
            out[key] = od.IntDistribution(d.low, d.high)
        elif isinstance(d, (PowersOfTwo, Choice)):  # by index: Optuna's categories must be scalars
            out[key] = od.CategoricalDistribution(list(range(len(d.grid()))))
    return out


def _to_optuna(space, params: dict) -> dict:
    return {k: (space.dims[k].grid().index(v) if isinstance(space.dims[k], (PowersOfTwo, Choice)) else v)
            for k, v in params.items()}


def _from_optuna(space, params: dict) -> dict:
    return {k: (space.dims[k].grid()[params[k]] if isinstance(space.dims[k], (PowersOfTwo, Choice)) else params[k])
            for k in space.dims}


def plan_tpe(space, stage: int, seed: int, n: int, history, *, maximize: bool) -> list[dict]:
    """``n`` points from a TPE sampler that has seen ``history`` ((params, score | None) pairs)."""
    try:
        import optuna
    except ImportError:
        raise SpaceError('strategy = "optuna-tpe" needs Optuna: pip install "descend[optuna]"') from None
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    dists = _distributions(space)
    sampler_seed = int(np.random.SeedSequence([seed, stage]).generate_state(1)[0])
    study = optuna.create_study(direction="maximize" if maximize else "minimize",
                                sampler=optuna.samplers.TPESampler(seed=sampler_seed))
    for params, score in history:
        ok = score is not None
        study.add_trial(optuna.trial.create_trial(
            params=_to_optuna(space, params), distributions=dists, value=score if ok else None,
            state=optuna.trial.TrialState.COMPLETE if ok else optuna.trial.TrialState.FAIL))
    plan = []
    for _ in range(n):
        trial = study.ask(dists)
        plan.append(_from_optuna(space, trial.params))
        study.tell(trial, state=optuna.trial.TrialState.FAIL)  # unknown yet: not a result the sampler may use
    return plan
