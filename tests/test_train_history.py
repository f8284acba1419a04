"""History round trips (JSON, with NaN/inf), checkpoints of runs that went NaN, and an interrupted run
(Ctrl-C) that resumes as if it had never stopped."""
import json
import math
import warnings

import numpy as np

from descend import pack
import pytest
from _trainutil import blobs, mlp, one_numba_thread  # noqa: F401 (fixture)

from descend.optim import SGD, Adam
from descend.train import History, fit, load_checkpoint

pytestmark = pytest.mark.usefixtures("one_numba_thread")

X, Y = blobs(100)


def test_history_round_trips_through_strict_json_with_nonfinite_values():
    h = History(step_loss=[1.0, math.nan, math.inf], step_lr=[0.1, 0.1, 0.05], param_change=[0.5, math.nan, 1.0],
                epochs=[{"epoch": 1, "step": 3, "train_loss": math.nan, "val_loss": -math.inf, "val_accuracy": 0.5}],
                stop_reason="x", best={"epoch": 1, "val_loss": 0.5}, elapsed=1.5)
    text = json.dumps(h.to_dict(), allow_nan=False)
    back = History.from_dict(json.loads(text))
    assert back.step_loss[0] == 1.0 and math.isnan(back.step_loss[1]) and back.step_loss[2] == math.inf
    assert back.step_lr == h.step_lr and back.param_change[0] == 0.5 and math.isnan(back.param_change[1])
    e = back.epochs[0]
    assert math.isnan(e["train_loss"]) and e["val_loss"] == -math.inf and e["val_accuracy"] == 0.5
    assert (back.stop_reason, back.best, back.elapsed) == ("x", {"epoch": 1, "val_loss": 0.5}, 1.5)
    assert back.steps == 3 and back.initial_loss == 1.0 and back.last("val_accuracy") == 0.5


def test_a_run_that_went_nan_without_divergence_still_checkpoints(tmp_path):
    path = tmp_path / "c.safetensors"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        h = fit(mlp(), X, Y, optimizer=SGD(lr=1e30), epochs=2, batch_size=16, divergence=None, checkpoint=path)
    assert h.stop_reason == "reached the maximum of 2 epochs" and math.isnan(h.epochs[-1]["train_loss"])
    _, meta = load_checkpoint(path)
    back = History.from_dict(meta["history"])
    assert math.isnan(back.epochs[-1]["train_loss"]) and back.steps == h.steps


def test_an_interrupted_run_resumes_as_if_never_stopped(tmp_path):
    class CtrlC:
        def on_step_end(self, state):
            if state.step == 11:
                raise KeyboardInterrupt

    def run(callbacks=(), **kw):
        model = mlp(dropout=0.3)
        h = fit(model, X, Y, optimizer=Adam(lr=0.01), steps=30, batch_size=16, callbacks=list(callbacks),
                validation=(X[:20], Y[:20]), seed=3, **kw)
        return pack(model).theta.copy(), h

    straight, hs = run()
    path = tmp_path / "c.safetensors"
    _, hi = run([CtrlC()], checkpoint=path)
    assert hi.stop_reason == "interrupted by the user at step 11" and hi.steps == 11
    theta, hr = run(resume=path)
    assert np.array_equal(theta, straight)
    assert hr.step_loss == hs.step_loss and hr.epochs == hs.epochs and hr.stop_reason == hs.stop_reason
