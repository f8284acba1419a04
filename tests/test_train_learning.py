"""End-to-end learning (digits, the CS231n spiral) and determinism: same seed → bit-identical, other seed → not."""
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from _trainutil import mlp, one_numba_thread  # noqa: F401 (fixture)

import _resume_worker as W
from descend import nn, pack
from descend.data import load_digits, make_spiral
from descend.optim import Adam
from descend.train import evaluate, fit, predict

pytestmark = pytest.mark.usefixtures("one_numba_thread")


def _standardized(ds):
    mu, sd = ds.X_train.mean(axis=0), ds.X_train.std(axis=0)
    sd[sd == 0] = 1  # constant pixels
    return (ds.X_train - mu) / sd, (ds.X_test - mu) / sd  # train statistics applied to both


def test_digits_mlp_reaches_95_percent_test_accuracy():
    ds = load_digits()
    Xtr, Xte = _standardized(ds)
    rng = np.random.default_rng(0)
    model = nn.Sequential(nn.Linear(64, 128, rng=rng), nn.ReLU(), nn.Linear(128, 64, rng=rng), nn.ReLU(),
                          nn.Linear(64, 10, rng=rng))
    h = fit(model, Xtr, ds.y_train, optimizer=Adam(lr=1e-3), epochs=15, batch_size=32, seed=0)
    test = evaluate(model, Xte, ds.y_test)
    assert test["accuracy"] >= 0.95, test
    assert h.epochs[-1]["train_accuracy"] > 0.98
    assert h.epochs[-1]["train_loss"] < h.epochs[0]["train_loss"] / 3
    assert predict(model, Xte).shape == (len(Xte), 10)


def test_spiral_needs_the_hidden_layer():
    ds = make_spiral(100, 3, rng=np.random.default_rng(0))
    X, y = ds.X_train, ds.y_train
    net = mlp((2, 100, 3), seed=0)
    fit(net, X, y, optimizer=Adam(lr=1e-2), epochs=200, batch_size=None, seed=0)
    assert evaluate(net, X, y)["accuracy"] >= 0.90
    linear = mlp((2, 3), seed=0)
    fit(linear, X, y, optimizer=Adam(lr=1e-2), epochs=200, batch_size=None, seed=0)
    assert evaluate(linear, X, y)["accuracy"] < 0.65  # the CS231n softmax classifier gets ~50 %


def _run(seed, dropout=0.2):
    ds = make_spiral(50, 3, rng=np.random.default_rng(0))
    model = mlp((2, 32, 32, 3), seed=1, dropout=dropout)
    h = fit(model, ds.X_train, ds.y_train, optimizer=Adam(lr=1e-2), epochs=4, batch_size=16, seed=seed,
            validation=(ds.X_test, ds.y_test))
    return pack(model).theta.copy(), h


def test_same_seed_is_bit_identical_and_another_seed_differs():
    t1, h1 = _run(seed=7)
    t2, h2 = _run(seed=7)
    assert np.array_equal(t1, t2)
    assert h1.step_loss == h2.step_loss and h1.epochs == h2.epochs
    t3, h3 = _run(seed=8)
    assert not np.array_equal(t1, t3) and h1.step_loss != h3.step_loss


def test_same_seed_is_bit_identical_across_processes(tmp_path):
    cfg = dict(optimizer="adam", lr=0.03, dropout=0.2, steps=30)
    here = W.run(cfg, steps=30)
    code = ("import sys, json, _resume_worker as W; cfg = json.loads(sys.argv[1]); "
            "W.save_result(W.run(cfg, steps=cfg['steps']), sys.argv[2])")
    out = tmp_path / "other"
    proc = subprocess.run([sys.executable, "-c", code, json.dumps(cfg), str(out)], capture_output=True, text=True,
                          cwd=Path(__file__).parent, timeout=120, env=W.subprocess_env())
    assert proc.returncode == 0, proc.stderr
    there = W.load_result(out)
    assert np.array_equal(here["arrays"]["theta"], there["arrays"]["theta"])
    assert here["meta"]["history"]["step_loss"] == there["meta"]["history"]["step_loss"]
