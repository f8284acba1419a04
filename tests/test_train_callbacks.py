"""Callbacks: the progress bar, reduce-LR-on-plateau, the metrics log (JSONL and CSV), and the callback
contract (hooks called in order with the loop's state; ``state.stop`` ends the run)."""
import csv
import io
import json

import pytest
from _trainutil import blobs, mlp, one_numba_thread  # noqa: F401 (fixture)

from descend.optim import Adam
from descend.train import History, MetricsLog, ProgressBar, ReduceLROnPlateau, fit

pytestmark = pytest.mark.usefixtures("one_numba_thread")

X, Y = blobs(64)


def test_progress_bar_shows_steps_loss_and_closes():
    out = io.StringIO()
    bar = ProgressBar(enabled=True, file=out, interval=0.0)
    fit(mlp(), X, Y, optimizer=Adam(), epochs=2, batch_size=16, callbacks=[bar])
    text = out.getvalue()
    assert "8/8" in text and "loss=" in text and "ewa=" in text and "lr=0.001" in text and "acc=" in text
    assert bar.bar is None  # closed
    quiet = io.StringIO()
    fit(mlp(), X, Y, optimizer=Adam(), epochs=1, batch_size=16, callbacks=[ProgressBar(enabled=False, file=quiet)])
    assert quiet.getvalue() == ""


class _State:
    def __init__(self):
        self.history, self.lr_scale = History(), 1.0


def test_reduce_lr_on_plateau_scales_after_patience_epochs():
    cb, state = ReduceLROnPlateau(monitor="val_loss", factor=0.5, patience=2, min_scale=0.2), _State()
    scales = []
    for v in (1.0, 0.9, 0.95, 0.92, 0.91, 0.97, 0.99, 0.98, 0.99, 0.99, 0.99):
        state.history.epochs.append({"val_loss": v})
        cb.on_epoch_end(state)
        scales.append(state.lr_scale)
    assert scales == [1, 1, 1, 0.5, 0.5, 0.25, 0.25, 0.2, 0.2, 0.2, 0.2]
    acc, state = ReduceLROnPlateau(monitor="val_accuracy", factor=0.1, patience=1), _State()
    for v in (0.5, 0.6, 0.55):
        state.history.epochs.append({"val_accuracy": v})
        acc.on_epoch_end(state)
    assert state.lr_scale == pytest.approx(0.1)  # accuracies are maximized
    with pytest.raises(ValueError, match=r"ReduceLROnPlateau monitors 'val_loss', not among the recorded metrics"):
        fit(mlp(), X, Y, optimizer=Adam(), epochs=1, callbacks=[ReduceLROnPlateau()])
    with pytest.raises(ValueError, match=r"factor must be in \(0, 1\), got 1"):
        ReduceLROnPlateau(factor=1)


def test_plateau_scale_reaches_the_optimizer():
    h = fit(mlp(), X, Y, optimizer=Adam(lr=0.01), epochs=6, batch_size=16, validation=(X[:16], Y[:16]),
            callbacks=[ReduceLROnPlateau(monitor="train_accuracy", factor=0.5, patience=1, min_delta=1.0)])
    # epoch 1 sets the best; from epoch 2 on nothing improves by min_delta, so each epoch halves the next one's lr
    assert [e["lr"] for e in h.epochs] == [0.01, 0.01, 0.005, 0.0025, 0.00125, 0.000625]
    assert h.step_lr[:8] == [0.01] * 8 and h.step_lr[8:12] == [0.005] * 4


def test_metrics_log_jsonl_and_csv(tmp_path):
    fit(mlp(), X, Y, optimizer=Adam(), epochs=2, batch_size=16, callbacks=[MetricsLog(tmp_path / "m.jsonl")])
    lines = [json.loads(line) for line in (tmp_path / "m.jsonl").read_text().splitlines()]
    assert [r.get("epoch") for r in lines] == [1, 2, None] and lines[-1]["steps"] == 8
    for _ in range(2):  # a second run (e.g. a resume) appends rows under the one header
        fit(mlp(), X, Y, optimizer=Adam(), epochs=2, batch_size=16, callbacks=[MetricsLog(tmp_path / "m.csv")])
    rows = list(csv.DictReader((tmp_path / "m.csv").open()))
    assert [r["epoch"] for r in rows] == ["1", "2", "1", "2"] and float(rows[0]["train_loss"]) > 0


def test_hooks_run_in_order_and_a_callback_can_stop_the_run():
    calls = []

    class Spy:
        def on_fit_start(self, state):
            calls.append(("start", state.step, state.total_steps, state.batches_per_epoch))

        def on_step_end(self, state):
            calls.append(("step", state.step, state.epoch, state.batch))

        def on_epoch_end(self, state):
            calls.append(("epoch", state.step, state.epoch))
            state.stop = state.epoch == 2

        def on_fit_end(self, state):
            calls.append(("end", state.history.stop_reason))

    h = fit(mlp(), X, Y, optimizer=Adam(), epochs=5, batch_size=16, callbacks=[Spy()])
    assert calls[0] == ("start", 0, 20, 4)
    assert calls[1:5] == [("step", 1, 0, 1), ("step", 2, 0, 2), ("step", 3, 0, 3), ("step", 4, 0, 4)]
    assert calls[5] == ("epoch", 4, 1) and calls[10] == ("epoch", 8, 2)
    assert calls[-1] == ("end", "stopped by a callback") and h.stop_reason == "stopped by a callback"


def test_a_callback_stopping_mid_epoch_ends_the_run_after_that_step():
    class StopAtSix:
        def on_step_end(self, state):
            state.stop = state.step == 6

    h = fit(mlp(), X, Y, optimizer=Adam(), epochs=5, batch_size=16, callbacks=[StopAtSix()])
    assert h.steps == 6 and h.stop_reason == "stopped by a callback"  # 4 steps an epoch: inside the second
