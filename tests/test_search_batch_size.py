"""The batch-size finder: the lecture rule below 2,000 examples, measured powers of two above, and "auto"."""
import tomllib

import numpy as np
import pytest

from descend import cli
from descend.config import ConfigError, resolve
from descend.data import make_spiral
from descend.jobs import run
from descend.search import SearchSpec, Space, SpaceError, random, run_search, LogUniform
from descend.search.batch_size import FULL_BATCH_LIMIT, find_batch_size, lecture_rule


def test_up_to_2000_examples_the_rule_is_the_full_batch_without_measuring():
    report = find_batch_size(resolve({"data": {"dataset": "iris"}}), time_budget=1e-9)
    assert report.recommended == "full" and report.rows == [] and report.m <= FULL_BATCH_LIMIT
    assert "full batch" in lecture_rule(2000) and "power of two" in lecture_rule(2001)


def test_above_2000_examples_each_power_of_two_is_measured_and_the_best_val_loss_chosen():
    cfg = resolve({"data": {"dataset": "spiral"}, "model": {"hidden": [8]}})
    big = make_spiral(1000, 3, rng=np.random.default_rng(0))  # 2,400 training examples: above the rule's 2,000
    report = find_batch_size(cfg, data=big, time_budget=0.05, candidates=(16, 64, 256))
    assert report.m > FULL_BATCH_LIMIT
    assert [r["batch_size"] for r in report.rows] == [16, 64, 256]
    assert all(r["steps"] >= 1 and r["examples_per_s"] > 0 for r in report.rows)
    best = min(report.rows, key=lambda r: (r["val_loss"], -r["examples_per_s"]))
    assert report.recommended == best["batch_size"]
    text = report.render()
    assert "rule: m = " in text and "← recommended" in text
    # a memory budget leaves out the sizes that do not fit, and refuses when none does
    small = find_batch_size(cfg, data=big, time_budget=0.02, candidates=(16, 4096), memory_budget_mb=0.5)
    assert [r["batch_size"] for r in small.rows] == [16]
    with pytest.raises(ValueError, match="raise the memory budget"):
        find_batch_size(cfg, data=big, time_budget=0.02, candidates=(4096,), memory_budget_mb=0.01)


def test_batch_size_auto_in_a_training_config(tmp_path):
    cfg = resolve({"data": {"dataset": "iris"}, "model": {"hidden": [8]}, "train": {"batch_size": "auto", "epochs": 1}})
    run(cfg, tmp_path / "run", progress=False)
    saved = tomllib.loads((tmp_path / "run" / "config.toml").read_text())
    assert saved["train"]["batch_size"] == "full"  # iris: 102 training examples ≤ 2,000
    with pytest.raises(ConfigError, match="batch_size"):
        resolve({"train": {"batch_size": "automatic"}})
    with pytest.raises(SpaceError, match="auto"):  # a search refuses a timing-dependent choice
        run_search(cfg, SearchSpec(Space({"optimizer.lr": LogUniform(1e-3, 1e-1)}), random(2)), tmp_path / "s")


def test_cli_batch_size_prints_the_rule_and_the_recommendation(capsys):
    assert cli.main(["batch-size", "--dataset", "wine"]) == 0
    out = capsys.readouterr().out
    assert "rule: m = " in out and "recommended: batch_size = 'full'" in out
