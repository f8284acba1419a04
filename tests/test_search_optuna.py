"""The Optuna bridge: TPE plans through the same stages, deterministic from the search seed, on our spaces."""
import math
from concurrent.futures import ThreadPoolExecutor

import optuna  # noqa: F401 — the extra must be installed for this module to run
import pytest

from descend.config import resolve
from descend.search import (Choice, LogUniform, PowersOfTwo, SearchSpec, Space, SpaceError, optimize, optuna_tpe,
                            random, run_search, spec_from_toml)


def bowl(p, **_):
    return -((math.log10(p["optimizer.lr"]) + 2.5) ** 2 + (math.log10(p["train.l2"]) + 3) ** 2)


def test_tpe_finds_the_top_of_a_known_objective_and_is_deterministic():
    space = Space({"optimizer.lr": LogUniform(1e-6, 1.0), "train.l2": LogUniform(1e-6, 1.0)})
    strategy = optuna_tpe(40, batch=8)
    assert [s.trials for s in strategy.stages] == [8] * 5
    a = optimize(bowl, space, strategy, seed=0)
    b = optimize(bowl, space, strategy, seed=0)
    assert [t["params"] for t in a.trials] == [t["params"] for t in b.trials]
    best = a.best()["params"]
    assert abs(math.log10(best["optimizer.lr"]) + 2.5) < 0.6 and abs(math.log10(best["train.l2"]) + 3) < 0.6
    # TPE at equal budget does at least as well as random search here
    rnd = optimize(bowl, space, random(40), seed=0)
    assert a.best()["score"] >= rnd.best()["score"]


def test_tpe_maps_choices_and_powers_of_two_back_to_their_values():
    space = Space({"model.hidden": Choice([[8], [16, 8]]), "train.batch_size": PowersOfTwo(16, 64)})
    result = optimize(lambda p, **_: float(p["train.batch_size"]), space, optuna_tpe(6, batch=3), seed=1)
    assert all(t["params"]["model.hidden"] in ([8], [16, 8]) for t in result.trials)
    assert all(t["params"]["train.batch_size"] in (16, 32, 64) for t in result.trials)


def test_optuna_tpe_from_a_search_table_runs_real_trials(tmp_path):
    spec = spec_from_toml({"strategy": "optuna-tpe", "trials": 3, "batch": 2, "epochs": 1,
                           "space": {"optimizer.lr": {"log_uniform": [1e-3, 1e-1]}}})
    assert [s.trials for s in spec.strategy.stages] == [2, 1]
    base = resolve({"data": {"dataset": "iris"}, "model": {"hidden": [8]}, "train": {"patience": 0}})
    with ThreadPoolExecutor(2) as ex:
        trials = run_search(base, spec, tmp_path / "s", executor=ex)["trials"]
    assert [(t["stage"], t["idx"]) for t in trials] == [(0, 0), (0, 1), (1, 0)]
    assert all(t["status"] == "done" for t in trials)
    with pytest.raises(SpaceError, match="batch"):
        optuna_tpe(10, batch=0)
    with pytest.raises(SpaceError, match="zero trials"):
        optuna_tpe(0)
