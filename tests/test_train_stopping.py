"""Stopping rules: pure functions of a hand-made History, and each one firing in ``fit`` with its reason."""
import math
import re
import time
import warnings

import numpy as np

from descend import pack
import pytest
from _trainutil import Recorder, blobs, last_good as _last_good, mlp, one_numba_thread  # noqa: F401 (fixture)

from descend.optim import SGD, Adam, NAdam
from descend.train import (AnyOf, Divergence, EarlyStopping, History, MaxEpochs, MaxSteps, SmallLossChange,
                           SmallParamChange, TimeLimit, fit)

pytestmark = pytest.mark.usefixtures("one_numba_thread")


def hist(*, losses=(), epochs=(), param_change=(), elapsed=0.0) -> History:
    return History(step_loss=list(losses), step_lr=[0.1] * len(losses), param_change=list(param_change),
                   epochs=[dict(e) for e in epochs], elapsed=elapsed)


# ----------------------------------------------------------------------------------- pure rules


def test_max_steps_and_max_epochs_pure():
    assert MaxSteps(3)(hist(losses=[1, 1])) is None
    assert MaxSteps(3)(hist(losses=[1, 1, 1])) == "reached the maximum of 3 steps"
    assert MaxEpochs(2)(hist(epochs=[{"epoch": 1}])) is None
    assert MaxEpochs(2)(hist(epochs=[{"epoch": 1}, {"epoch": 2}])) == "reached the maximum of 2 epochs"


def test_small_param_change_pure():
    rule = SmallParamChange(1e-3)
    assert rule(hist(losses=[1.0])) is None  # nothing measured yet
    assert rule(hist(losses=[1, 1], param_change=[1e-5, 1e-2])) is None  # only the last step counts
    reason = rule(hist(losses=[1, 1, 1], param_change=[1e-2, 5e-4, 2e-4]))
    assert reason.startswith("parameter change ‖Δθ‖ = 0.0002 fell below tol = 0.001 at step 3")


def test_small_loss_change_pure_with_patience():
    e = lambda *ls: [{"epoch": i + 1, "train_loss": v} for i, v in enumerate(ls)]  # noqa: E731
    assert SmallLossChange(0.01)(hist(epochs=e(1.0))) is None
    assert SmallLossChange(0.01)(hist(epochs=e(1.0, 0.5))) is None
    assert "less than tol = 0.01 for 1 epoch(s) (0.5 → 0.495) at epoch 3" in SmallLossChange(0.01)(
        hist(epochs=e(1.0, 0.5, 0.495)))
    rule = SmallLossChange(0.01, patience=2)
    assert rule(hist(epochs=e(1.0, 0.5, 0.495))) is None  # only one small change so far
    assert rule(hist(epochs=e(1.0, 0.995, 0.5, 0.495))) is None  # not in a row
    assert rule(hist(epochs=e(1.0, 0.5, 0.495, 0.49))).endswith("at epoch 4")


def test_early_stopping_pure_patience_min_delta_and_modes():
    vl = lambda *vs: [{"epoch": i + 1, "val_loss": v} for i, v in enumerate(vs)]  # noqa: E731
    rule = EarlyStopping(patience=2)
    assert rule(hist()) is None
    assert rule(hist(epochs=vl(1.0, 0.9, 0.95))) is None
    assert rule(hist(epochs=vl(1.0, 0.9, 0.95, 0.91))) == \
        "early stopping: val_loss did not improve for 2 epochs (best 0.9 at epoch 2)"
    assert rule.best_epoch(hist(epochs=vl(1.0, 0.9, 0.95, 0.91))) == 1
    # min_delta: 0.95 and 0.92 improve on the best (1.0) by less than 0.1, so epoch 1 stays best
    strict = EarlyStopping(patience=2, min_delta=0.1)
    assert strict.best_epoch(hist(epochs=vl(1.0, 0.95, 0.92))) == 0
    assert strict(hist(epochs=vl(1.0, 0.95, 0.92))).endswith("(best 1 at epoch 1)")
    assert EarlyStopping(patience=2)(hist(epochs=vl(1.0, 0.95, 0.92))) is None
    assert strict.best_epoch(hist(epochs=vl(1.0, 0.95, 0.85))) == 2  # 0.15 better than the best
    # accuracies are maximized ("auto" from the name), NaN epochs are skipped
    acc = EarlyStopping(monitor="val_accuracy", patience=1)
    assert acc.maximize and not EarlyStopping().maximize
    va = [{"val_accuracy": v} for v in (0.5, 0.7, math.nan, 0.6)]
    assert acc.best_epoch(hist(epochs=va)) == 1
    assert acc(hist(epochs=va)) == "early stopping: val_accuracy did not improve for 1 epochs (best 0.7 at epoch 2)"
    assert EarlyStopping(monitor="train_loss", mode="max", patience=1).best_epoch(
        hist(epochs=[{"train_loss": 1.0}, {"train_loss": 2.0}])) == 1


def test_early_stopping_names_a_missing_metric():
    with pytest.raises(ValueError, match=r"monitors 'val_loss'.*recorded: \['epoch', 'train_loss'\]"):
        EarlyStopping()(hist(epochs=[{"epoch": 1, "train_loss": 1.0}]))


def test_divergence_pure():
    rule = Divergence()
    assert rule(hist()) is None
    assert rule(hist(losses=[2.0, 5.9])) is None
    assert rule(hist(losses=[2.0, 6.1])) == \
        "loss exceeded 3 × initial loss (2 → 6.1) at step 2: diverged (learning rate too high?)"
    assert rule(hist(losses=[2.0, math.nan])) == "loss became nan at step 2: diverged (learning rate too high?)"
    assert rule(hist(losses=[2.0, math.inf])).startswith("loss became inf at step 2")
    assert Divergence(10)(hist(losses=[2.0, 19.0])) is None
    assert rule(hist(losses=[0.0, 1.0])) is None  # a zero initial loss gives no ratio


def test_time_limit_and_any_of_pure():
    assert TimeLimit(1.0)(hist(losses=[1] * 4, elapsed=0.5)) is None
    assert TimeLimit(1.0)(hist(losses=[1] * 4, elapsed=1.5)) == "time limit of 1 s reached after 4 steps"
    rule = AnyOf(MaxSteps(10), TimeLimit(1.0))
    assert rule(hist(losses=[1] * 3)) is None
    assert rule(hist(losses=[1] * 3, elapsed=2.0)).startswith("time limit")
    assert AnyOf(MaxSteps(2), TimeLimit(1.0))(hist(losses=[1] * 3, elapsed=2.0)).startswith("reached")


def test_rules_are_pure():
    h = hist(losses=[2.0, 1.0, 0.9], epochs=[{"val_loss": 1.0, "train_loss": 1.0}] * 4, param_change=[1, 1, 0])
    before = h.to_dict()
    rules = [MaxSteps(3), MaxEpochs(3), SmallParamChange(0.5), SmallLossChange(0.1), EarlyStopping(patience=2),
             Divergence(), TimeLimit(1.0)]
    first = [r(h) for r in rules]
    assert [r(h) for r in rules] == first
    assert h.to_dict() == before
    with pytest.raises(Exception):
        rules[0].steps = 5  # frozen


@pytest.mark.parametrize("make, match", [
    (lambda: MaxSteps(0), r"MaxSteps: steps must be a positive integer, got 0"),
    (lambda: MaxEpochs(1.5), r"MaxEpochs: epochs must be a positive integer, got 1.5"),
    (lambda: SmallParamChange(0), r"SmallParamChange: tol must be > 0"),
    (lambda: SmallLossChange(1e-3, patience=0), r"patience must be a positive integer"),
    (lambda: EarlyStopping(mode="down"), r"mode must be 'auto', 'min' or 'max', got 'down'"),
    (lambda: EarlyStopping(min_delta=-1), r"min_delta must be ≥ 0"),
    (lambda: Divergence(1.0), r"Divergence: factor must be > 1"),
    (lambda: TimeLimit(-1), r"TimeLimit: seconds must be > 0"),
])
def test_rule_arguments_are_checked(make, match):
    with pytest.raises(ValueError, match=match):
        make()


# ----------------------------------------------------------------------------------- rules in fit


X, Y = blobs(120)  # batch 16 → 8 batches per epoch


def test_max_steps_fires_mid_epoch():
    h = fit(mlp(), X, Y, optimizer=Adam(), steps=13, batch_size=16)
    assert h.steps == 13 and len(h.epochs) == 1
    assert h.stop_reason == "reached the maximum of 13 steps"


def test_max_epochs_fires():
    h = fit(mlp(), X, Y, optimizer=Adam(), epochs=2, batch_size=16)
    assert h.steps == 16 and [e["epoch"] for e in h.epochs] == [1, 2]
    assert h.stop_reason == "reached the maximum of 2 epochs"


def test_small_param_change_fires_with_a_tiny_lr_and_measures_the_step():
    rec = Recorder()
    h = fit(mlp(), X, Y, optimizer=SGD(lr=1e-7), stopping=[SmallParamChange(1e-5)], steps=100, batch_size=16,
            callbacks=[rec])
    assert h.steps == 1 and h.stop_reason.startswith("parameter change ‖Δθ‖ = ")
    assert h.stop_reason.endswith("fell below tol = 1e-05 at step 1")
    actual = float(np.linalg.norm(rec.steps[0] - rec.initial))
    assert 0 < h.param_change[0] < 1e-5
    assert h.param_change[0] == pytest.approx(actual, rel=1e-6)


def test_small_param_change_measures_without_divergence_too():
    rec = Recorder()
    h = fit(mlp(), X, Y, optimizer=Adam(lr=1e-2), stopping=[SmallParamChange(1e-9)], steps=3, batch_size=16,
            callbacks=[rec], divergence=None)
    expected = [np.linalg.norm(b - a) for a, b in zip([rec.initial] + rec.steps, rec.steps)]
    assert h.param_change == pytest.approx(expected, rel=1e-6)


def test_small_loss_change_fires():
    h = fit(mlp(), X, Y, optimizer=SGD(lr=1e-9), stopping=[SmallLossChange(1e-4)], batch_size=None, shuffle=False)
    assert len(h.epochs) == 2
    assert h.stop_reason.startswith("training loss changed by less than tol = 0.0001 for 1 epoch(s)")
    assert h.stop_reason.endswith("at epoch 2")


def _noisy(n, seed):
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n, 5)).astype(np.float32)
    return X, rng.integers(0, 3, n)


def test_early_stopping_restores_the_best_epochs_theta():
    Xtr, ytr = _noisy(64, 1)
    Xv, yv = _noisy(64, 2)  # labels unrelated to the training set: val_loss rises as the net memorizes
    rec = Recorder()
    rule = EarlyStopping(monitor="val_loss", patience=3, min_delta=1e-3)
    h = fit(mlp((5, 64, 3)), Xtr, ytr, optimizer=Adam(lr=0.02), validation=(Xv, yv), stopping=[rule],
            epochs=100, batch_size=16, callbacks=[rec])
    val = h.metric("val_loss")
    # the best epoch, computed independently: an improvement must exceed min_delta
    best, best_i = math.inf, None
    for i, v in enumerate(val):
        if v < best - 1e-3:
            best, best_i = v, i
    assert len(h.epochs) == best_i + 1 + 3 < 100  # stopped `patience` epochs after the best
    assert h.stop_reason.startswith(f"early stopping: val_loss did not improve for 3 epochs (best {best:.4g} "
                                    f"at epoch {best_i + 1})")
    assert h.stop_reason.endswith(f"; restored θ of the best epoch ({best_i + 1})")
    assert h.best == {"epoch": best_i + 1, "val_loss": val[best_i]}
    assert not np.array_equal(rec.epochs[-1], rec.epochs[best_i])


def test_early_stopping_theta_is_the_best_epochs_exactly():
    Xtr, ytr = _noisy(64, 1)
    Xv, yv = _noisy(64, 2)
    rec = Recorder()
    model = mlp((5, 64, 3))
    h = fit(model, Xtr, ytr, optimizer=Adam(lr=0.02), validation=(Xv, yv),
            stopping=[EarlyStopping(patience=2)], epochs=100, batch_size=16, callbacks=[rec])
    best_i = int(np.argmin(h.metric("val_loss")))
    assert best_i < len(h.epochs) - 1
    assert np.array_equal(pack(model).theta, rec.epochs[best_i])
    # without restore_best the last θ stays
    rec2, model2 = Recorder(), mlp((5, 64, 3))
    h2 = fit(model2, Xtr, ytr, optimizer=Adam(lr=0.02), validation=(Xv, yv),
             stopping=[EarlyStopping(patience=2, restore_best=False)], epochs=100, batch_size=16, callbacks=[rec2])
    assert h2.steps == h.steps and "restored" not in h2.stop_reason
    assert np.array_equal(pack(model2).theta, rec2.epochs[-1])


def test_early_stopping_on_a_training_metric_needs_no_validation():
    h = fit(mlp(), X, Y, optimizer=SGD(lr=1e-9), stopping=[EarlyStopping(monitor="train_loss", patience=1,
                                                                         min_delta=1.0)], batch_size=None)
    assert len(h.epochs) == 2 and h.stop_reason.startswith("early stopping: train_loss did not improve for 1 epochs")


@pytest.mark.parametrize("every", [1, 3, 10])
@pytest.mark.parametrize("high, reason", [(1e3, r"loss exceeded 3 × initial loss \(.* → .*\) at step 8: diverged"),
                                          (1e30, r"loss became nan at step 8: diverged")])
def test_divergence_keeps_the_last_good_theta(monkeypatch, high, reason, every):
    from descend.train import guard
    monkeypatch.setattr(guard, "SNAPSHOT_EVERY", every)
    rec, model = Recorder(), mlp()
    lr = lambda step: high if step == 6 else 0.05  # noqa: E731  (step 7 jumps; its result's loss is bad)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # overflow in the forward pass of the huge θ
        h = fit(model, X, Y, optimizer=SGD(lr=0.05), schedule=lr, schedule_unit="step", epochs=5, batch_size=16,
                callbacks=[rec])
    assert h.steps == 8
    assert h.stop_reason is not None and re.match(reason, h.stop_reason)
    # θ after step 6 is the last whose loss (measured by step 7) was good; θ after step 7 gave the bad loss
    assert math.isfinite(h.step_loss[6]) and h.step_loss[6] <= 3 * h.step_loss[0]
    assert len(rec.steps) == 7  # the diverged step 8 reaches no callback
    theta = pack(model).theta
    assert np.isfinite(theta).all() and np.array_equal(theta, _last_good(rec, 8, every))
    if every == 1:
        assert np.array_equal(theta, rec.steps[5])  # the θ just before the bad one


def test_divergence_theta_in_the_model(tmp_path):
    from descend.train import SNAPSHOT_EVERY
    rec = Recorder()
    model = mlp()
    lr = lambda step: 1e30 if step == 6 else 0.05  # noqa: E731
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        h = fit(model, X, Y, optimizer=SGD(lr=0.05), schedule=lr, schedule_unit="step", epochs=5, batch_size=16,
                callbacks=[rec], checkpoint=tmp_path / "c.safetensors")
    theta = pack(model).theta
    assert np.isfinite(theta).all()
    assert np.array_equal(theta, _last_good(rec, h.steps, SNAPSHOT_EVERY))
    from descend.train import load_checkpoint
    arrays, meta = load_checkpoint(tmp_path / "c.safetensors")  # the kept θ is what was saved
    assert np.array_equal(arrays["theta"], theta) and meta["history"]["step_loss"][-1] == "nan"


def test_divergence_from_the_first_steps_keeps_the_initial_theta():
    rec = Recorder()
    model = mlp()
    h = fit(model, X, Y, optimizer=SGD(lr=50.0), epochs=3, batch_size=16, callbacks=[rec])
    assert h.steps == 2 and "exceeded 3 × initial loss" in h.stop_reason
    assert np.array_equal(pack(model).theta, rec.initial)


def test_time_limit_fires():
    class Slow:
        def on_step_end(self, state):
            time.sleep(0.01)

    h = fit(mlp(), X, Y, optimizer=Adam(), stopping=[TimeLimit(0.1)], epochs=1000, batch_size=16, callbacks=[Slow()])
    assert h.stop_reason == f"time limit of 0.1 s reached after {h.steps} steps"
    assert h.elapsed >= 0.1 and 1 <= h.steps <= 11  # each step sleeps 0.01 s


def test_any_of_in_fit():
    h = fit(mlp(), X, Y, optimizer=Adam(), stopping=[AnyOf(MaxSteps(5), MaxEpochs(100))], batch_size=16)
    assert h.steps == 5 and h.stop_reason == "reached the maximum of 5 steps"
    h = fit(mlp(), X, Y, optimizer=Adam(), stopping=[AnyOf(MaxSteps(500), AnyOf(MaxEpochs(1)))], batch_size=16)
    assert h.steps == 8 and h.stop_reason == "reached the maximum of 1 epochs"


def test_time_limit_alone_is_a_limit():
    h = fit(mlp(), X, Y, optimizer=Adam(), stopping=[TimeLimit(0.05)], batch_size=16)
    assert h.stop_reason.startswith("time limit of 0.05 s")


# ------------------------------------------------------- the last good θ against an independent re-run


def _noisy_model():
    from descend import nn
    layers = [nn.Linear(6, 24, rng=np.random.default_rng(1)), nn.BatchNorm1d(24), nn.ReLU(),
              nn.Dropout(0.3, rng=np.random.default_rng(2)), nn.Linear(24, 3, rng=np.random.default_rng(3))]
    return nn.Sequential(*layers)


def _noisy_run(spike_at, steps=None, *, optimizer=Adam, path=None):
    """A run with dropout, batch norm, augmentation and L2 (13 batches an epoch); a learning-rate spike at step
    ``spike_at`` makes it diverge two steps later. ``steps`` caps it instead (no spike)."""
    r = np.random.default_rng(0)
    X = r.standard_normal((200, 6)).astype(np.float32)
    y = (X[:, 0] + X[:, 1] > 0).astype(int) + (X[:, 2] > 1)
    model = _noisy_model()
    lr = lambda step: 1e4 if step == spike_at else 0.01  # noqa: E731
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # overflow in the forward pass of the huge θ
        h = fit(model, X, y, optimizer=optimizer(lr=0.01), schedule=lr, schedule_unit="step", epochs=6,
                steps=steps, batch_size=16, l2=1e-3, seed=4, checkpoint=path,
                augment=lambda xb, g: xb + 0.1 * g.standard_normal(xb.shape, dtype=np.float32))
    return model, h


@pytest.mark.parametrize("optimizer", [Adam, NAdam])
@pytest.mark.parametrize("spike_at", [0, 3, 12, 25])
def test_divergence_puts_back_theta_and_buffers_of_a_run_stopped_at_the_snapshot(tmp_path, spike_at, optimizer):
    """θ and the batch-norm buffers after a divergence equal those of the same run (same batches, dropout masks,
    augmentation) simply stopped at the last good snapshot's step — and the checkpoint holds them as good.θ."""
    from descend.train import SNAPSHOT_EVERY, load_checkpoint
    model, h = _noisy_run(spike_at, optimizer=optimizer, path=tmp_path / "c.safetensors")
    diverged_at = spike_at + 2
    assert h.steps == diverged_at and h.stop_reason.endswith("diverged (learning rate too high?)")
    good = SNAPSHOT_EVERY * ((diverged_at - 2) // SNAPSHOT_EVERY)
    reference = _noisy_run(None, steps=good, optimizer=optimizer)[0] if good else _noisy_model()  # as built
    theta = pack(model).theta
    assert np.isfinite(theta).all() and np.array_equal(theta, pack(reference).theta)
    ref_buffers = dict(reference.named_buffers())
    assert all(np.array_equal(v, ref_buffers[k]) for k, v in model.named_buffers())
    arrays, meta = load_checkpoint(tmp_path / "c.safetensors")
    assert np.array_equal(arrays["good.theta"], theta) and meta["clock"]["good_step"] == good
