"""Search spaces and strategies: grid = the product, log-uniform draws (KS test), coarse-to-fine narrowing and edges."""
import itertools
import math
import warnings

import numpy as np
import pytest
from scipy import stats

from descend.search import (Choice, EdgeWarning, IntUniform, LogUniform, PowersOfTwo, Space, SpaceError, Uniform,
                            coarse_to_fine, edges, grid, optimize, random, space_from_toml, trial_seed)


def test_grid_enumerates_exactly_the_product():
    space = Space({"optimizer.name": Choice(["sgd", "adam", "rmsprop"]), "train.batch_size": PowersOfTwo(16, 64),
                   "train.epochs": IntUniform(1, 2)})
    points = grid().plan(space, 0, seed=0)
    expected = list(itertools.product(["sgd", "adam", "rmsprop"], [16, 32, 64], [1, 2]))
    got = [(p["optimizer.name"], p["train.batch_size"], p["train.epochs"]) for p in points]
    assert sorted(got) == sorted(expected) and len(got) == len(set(got)) == 18


def test_log_uniform_is_uniform_in_log_space():
    draws = np.array(LogUniform(1e-6, 10.0).sample(np.random.default_rng(0), 10_000))
    assert draws.min() >= 1e-6 and draws.max() <= 10.0
    assert stats.kstest(np.log10(draws), "uniform", args=(-6, 7)).pvalue > 0.01
    # the same test does fail for draws that are uniform in value rather than in log
    assert stats.kstest(np.log10(np.random.default_rng(0).uniform(1e-6, 10, 10_000)), "uniform",
                        args=(-6, 7)).pvalue < 1e-10


def test_other_dimensions_draw_their_own_values():
    rng = np.random.default_rng(1)
    assert set(PowersOfTwo(16, 128).sample(rng, 400)) == {16, 32, 64, 128}
    assert set(IntUniform(2, 4).sample(rng, 300)) == {2, 3, 4}
    u = np.array(Uniform(0.1, 0.5).sample(rng, 5000))
    assert stats.kstest(u, "uniform", args=(0.1, 0.4)).pvalue > 0.01
    assert set(map(tuple, Choice([[32], [64, 32]]).sample(rng, 100))) == {(32,), (64, 32)}


def test_trial_seeds_come_from_seed_sequence_and_plans_are_fixed_by_the_seed():
    assert trial_seed(7, 1, 3) == int(np.random.SeedSequence([7, 1, 3]).generate_state(1)[0])
    assert len({trial_seed(0, s, i) for s in range(3) for i in range(50)}) == 150
    space = Space({"optimizer.lr": LogUniform(1e-4, 1.0)})
    strategy = random(5)
    assert strategy.plan(space, 0, seed=3) == strategy.plan(space, 0, seed=3) != strategy.plan(space, 0, seed=4)


def _bowl(opt_lr, opt_l2):
    """A known objective to maximize: a bowl in log10 space with its top at (opt_lr, opt_l2)."""
    def f(p, **_):
        return -((math.log10(p["optimizer.lr"]) - math.log10(opt_lr)) ** 2
                 + (math.log10(p["train.l2"]) - math.log10(opt_l2)) ** 2)
    return f


def test_coarse_to_fine_narrows_around_the_optimum_of_a_known_objective():
    space = Space({"optimizer.lr": LogUniform(1e-6, 1.0), "train.l2": LogUniform(1e-6, 1.0)})
    strategy = coarse_to_fine([(30, 1), (20, 2), (20, 4)], top_k=3)
    with warnings.catch_warnings():
        warnings.simplefilter("error", EdgeWarning)  # the optimum is inside: no edge warning
        result = optimize(_bowl(3e-3, 1e-4), space, strategy, seed=0)
    widths = [[math.log10(d.high / d.low) for d in s.dims.values()] for s in result.spaces]
    assert widths[0] == [6.0, 6.0]
    for before, after in zip(widths, widths[1:]):
        assert all(a < b for a, b in zip(after, before))  # every range narrower than the stage before
    last = result.spaces[-1].dims
    assert last["optimizer.lr"].low < 3e-3 < last["optimizer.lr"].high
    assert last["train.l2"].low < 1e-4 < last["train.l2"].high
    best = result.best()
    assert abs(math.log10(best["params"]["optimizer.lr"]) - math.log10(3e-3)) < 0.3
    stage_best = [max(t["score"] for t in result.trials if t["stage"] == s) for s in range(3)]
    assert stage_best[2] >= stage_best[0]


def test_coarse_to_fine_reruns_the_stage_befores_best_with_the_longer_budget():
    space = Space({"optimizer.lr": LogUniform(1e-6, 1.0), "train.l2": LogUniform(1e-6, 1.0)})
    result = optimize(_bowl(3e-3, 1e-4), space, coarse_to_fine([(12, 1), (5, 4), (3, 8)]), seed=0)
    stages = [[t for t in result.trials if t["stage"] == s] for s in range(3)]
    assert [len(s) for s in stages] == [12, 5, 3]
    for before, after in zip(stages, stages[1:]):
        assert after[0]["params"] == max(before, key=lambda t: t["score"])["params"]  # the incumbent, first
        assert all(t["params"] not in [b["params"] for b in before] for t in after[1:])  # the others: new draws

    # no scored trial before (all diverged): the whole stage is new draws
    nothing = optimize(lambda p, **_: None, space, coarse_to_fine([(3, 1), (3, 2)]), seed=0)
    assert all(t["params"] not in [f["params"] for f in nothing.trials[:3]] for t in nothing.trials[3:])


def test_edge_warning_names_the_dimension_and_the_direction():
    space = Space({"optimizer.lr": LogUniform(1e-4, 1.0), "train.l2": LogUniform(1e-6, 1.0)})
    with pytest.warns(EdgeWarning, match=r"optimizer\.lr: .* lowest 10% .*widen the range downward"):
        result = optimize(_bowl(1e-6, 1e-3), space, coarse_to_fine([(40, 1)]), seed=0)
    assert [(e.key, e.side) for e in result.edges[0]] == [("optimizer.lr", "low")]
    # the top edge the other way round
    found = edges(space, {"optimizer.lr": 0.9, "train.l2": 1e-3})
    assert [(e.key, e.side) for e in found] == [("optimizer.lr", "high")]


def test_a_hard_limit_is_not_an_edge_to_widen_past():
    space = Space({"model.dropout": Uniform(0.0, 0.5), "optimizer.momentum": Uniform(0.5, 0.99)})
    assert edges(space, {"model.dropout": 0.01, "optimizer.momentum": 0.7}) == []  # dropout's 0 is a limit
    # the momentum range does not reach its limit 1, so the top edge is reported
    assert [e.key for e in edges(space, {"model.dropout": 0.2, "optimizer.momentum": 0.985})] == ["optimizer.momentum"]
    nxt = coarse_to_fine([(1, 1), (1, 1)], widen=True).next_space(
        space, [({"model.dropout": 0.01, "optimizer.momentum": 0.985}, 1.0)], maximize=True)
    assert nxt.dims["model.dropout"].low >= 0.0
    assert nxt.dims["optimizer.momentum"].high <= 1.0


def test_widen_recentres_an_edge_dimension_beyond_its_old_range():
    space = Space({"optimizer.lr": LogUniform(1e-4, 1.0), "train.l2": LogUniform(1e-6, 1.0)})
    scored = [({"optimizer.lr": 1.2e-4, "train.l2": 1e-3}, 1.0), ({"optimizer.lr": 1e-2, "train.l2": 1e-2}, 0.5)]
    narrow = coarse_to_fine([(2, 1), (2, 1)]).next_space(space, scored, maximize=True)
    wide = coarse_to_fine([(2, 1), (2, 1)], widen=True).next_space(space, scored, maximize=True)
    assert narrow.dims["optimizer.lr"].low >= 1e-4                      # narrowing stays inside the old range
    assert wide.dims["optimizer.lr"].low == pytest.approx(1.2e-4 / 100)  # old width (4 decades) centred on best
    assert wide.dims["train.l2"] == narrow.dims["train.l2"]              # not at an edge: narrowed as usual


@pytest.mark.parametrize("make, message", [
    (lambda: LogUniform(0.0, 1.0), "log range needs low > 0"),
    (lambda: LogUniform(-1e-3, 1.0), "log range needs low > 0"),
    (lambda: Uniform(0.5, 0.1), "inverted"),
    (lambda: IntUniform(3, 3), "empty"),
    (lambda: PowersOfTwo(16, 100), "powers of two"),
    (lambda: Choice([]), "non-empty"),
    (lambda: Space({"optimizer.lr": LogUniform(1e-4, 1.0), "train.lr": LogUniform(1e-4, 1.0)}), "unknown config key"),
    (lambda: Space({"modle.hidden": Choice([[8]])}), "unknown config key"),
    (lambda: Space({"model.dropout": Uniform(0.0, 1.5)}), "hard limits"),
    (lambda: Space([("optimizer.lr", LogUniform(1e-4, 1.0)), ("optimizer.lr", LogUniform(1e-3, 1.0))]), "set twice"),
    (lambda: Space({}), "empty"),
    (lambda: Space({"optimizer.lr": LogUniform(1e-4, 1.0)}).grid(), "continuous"),
    (lambda: random(0), "zero trials"),
    (lambda: coarse_to_fine([(10, 2), (0, 5)]), "zero trials"),
    (lambda: coarse_to_fine([]), "at least one stage"),
    (lambda: space_from_toml({"optimizer.lr": {"log_uniform": [1e-4, 1.0]}, "optimizer": {"lr": {"uniform": [0.1, 1.0]}}}),
     "set twice"),
    (lambda: space_from_toml({"optimizer.lr": {"log_uniformm": [1e-4, 1.0]}}), "exactly one kind"),
])
def test_bad_spaces_are_refused_with_a_message(make, message):
    with pytest.raises(SpaceError, match=message):
        make()
