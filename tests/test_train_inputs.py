"""Bad input through ``fit`` (QUALITY.md): a clear error naming the value and the fix, before any state
changes; inputs are never mutated; read-only and non-contiguous inputs are accepted."""
import warnings

import numpy as np
import pytest
from _trainutil import blobs, mlp, one_numba_thread  # noqa: F401 (fixture)

from descend import nn
from descend.optim import LBFGS, SGD, Adam
from descend.optim.schedules import Cosine
from descend.train import EarlyStopping, fit

pytestmark = pytest.mark.usefixtures("one_numba_thread")

X, Y = blobs(60)


def _fit(X=X, y=Y, model=None, optimizer=None, **kw):
    kw.setdefault("epochs", 1)
    return fit(model or mlp(), X, y, optimizer=optimizer or Adam(), **kw)


def _with(a, index, value):
    a = a.astype(np.float64 if a.dtype.kind == "f" else a.dtype).copy()
    a[index] = value
    return a


@pytest.mark.parametrize("kwargs, error, match", [
    (dict(X=_with(X, (3, 1), np.nan)), ValueError, r"X has 1 NaN/inf value\(s\), first X\[3, 1\] = nan; drop those"),
    (dict(X=_with(X, (5, 0), np.inf)), ValueError, r"X has 1 NaN/inf value\(s\), first X\[5, 0\] = inf"),
    (dict(y=_with(Y.astype(float), 4, np.nan)), ValueError, r"y has 1 NaN/inf value\(s\), first y\[4\] = nan"),
    (dict(X=X[:0], y=Y[:0]), ValueError, r"X has 0 samples \(shape \(0, 5\)\)"),
    (dict(X=X[:, :0]), ValueError, r"X has 0 features \(shape \(60, 0\)\)"),
    (dict(X=X[:, 0]), ValueError, r"X must have at least 2 dimensions .* got a 1-D array of shape \(60,\); .*reshape"),
    (dict(y=Y[:-1]), ValueError, r"X has 60 samples but y has 59; they must match"),
    (dict(y=_with(Y, 7, -1)), ValueError, r"class labels y must be ≥ 0 .* first y\[7\] = -1"),
    (dict(y=Y + 0.5), ValueError, r"class labels y must be integers, but 60 are not, first y\[0\] = .*\.5"),
    (dict(y=np.c_[Y, Y]), ValueError, r"class labels y must be 1-D with shape \(60,\), got shape \(60, 2\)"),
    (dict(batch_size=0), ValueError, r"batch_size must be ≥ 1 \(or None for the whole set\), got 0"),
    (dict(batch_size=-3), ValueError, r"batch_size must be ≥ 1 .* got -3"),
    (dict(batch_size=2.5), ValueError, r"batch_size must be a positive integer or None .* got 2.5"),
    (dict(epochs=None), ValueError, r"fit needs a limit: pass epochs=\.\.\., steps=\.\.\. or a stopping rule"),
    (dict(epochs=0), ValueError, r"MaxEpochs: epochs must be a positive integer, got 0"),
    (dict(steps=-1), ValueError, r"MaxSteps: steps must be a positive integer, got -1"),
    (dict(stopping=[EarlyStopping(monitor="val_loss")]), ValueError,
     r"EarlyStopping monitors 'val_loss' but no validation=\(X_val, y_val\) was given"),
    (dict(schedule_unit="batch"), ValueError, r"schedule_unit must be 'epoch' or 'step', got 'batch'"),
    (dict(l2=-0.1), ValueError, r"l2 \(λ\) must be ≥ 0, got -0.1"),
    (dict(validation=(X[:10], Y[:9])), ValueError, r"X_val has 10 samples but y_val has 9"),
    (dict(validation=(_with(X[:10], (2, 2), np.nan), Y[:10])), ValueError,
     r"X_val has 1 NaN/inf value\(s\), first X_val\[2, 2\]"),
])
def test_bad_input_raises_naming_it(kwargs, error, match):
    with pytest.raises(error, match=match):
        _fit(**kwargs)


@pytest.mark.parametrize("make, match", [
    (lambda: Adam(lr=0), r"lr must be > 0, got 0.0"),
    (lambda: Adam(lr=-1e-3), r"lr must be > 0, got -0.001"),
    (lambda: SGD(lr=0.1, momentum=1.0), r"momentum must be in \[0, 1\), got 1.0"),
    (lambda: Adam(b1=1.2), r"b1 must be in \[0, 1\)"),
    (lambda: Adam(eps=-1), r"eps must be >= 0"),
])
def test_invalid_hyperparameters_refused_before_fit(make, match):
    with pytest.raises(ValueError, match=match):
        _fit(optimizer=make())


def _theta(model):
    return np.concatenate([p.data.ravel() for p in model.parameters()])


def test_labels_out_of_range_refused_before_any_step():
    y = Y.copy()
    y[-1] = 3  # the model has 3 outputs: labels must be 0..2; the bad one is in the last batch
    model, opt = mlp(), Adam()
    theta0 = _theta(model)
    with pytest.raises(ValueError, match=r"class labels y must be < 3 \(the model's outputs\).* first y\[59\] = 3"):
        fit(model, X, y, optimizer=opt, epochs=1, batch_size=8, shuffle=False)
    assert opt.t == 0 and not opt.state  # no step was taken
    assert np.array_equal(_theta(model), theta0)


def test_validation_labels_out_of_range_refused_before_any_step():
    opt = Adam()
    with pytest.raises(ValueError, match=r"class labels y_val must be < 3 .* first y_val\[0\] = 3"):
        fit(mlp(), X, Y, optimizer=opt, epochs=1, validation=(X[:10], np.full(10, 3)))
    assert opt.t == 0


def test_mse_target_shape_mismatch_is_refused():
    model = nn.Sequential(nn.Linear(5, 2, rng=np.random.default_rng(0)))
    target = np.zeros((60, 3), np.float32)
    with pytest.raises(ValueError, match=r"mse: target shape \(\d+, 3\) differs from output shape \(\d+, 2\)"):
        fit(model, X, target, optimizer=Adam(), loss=nn.mse, epochs=1)
    with pytest.raises(ValueError, match=r"mse: target shape \(\d+,\) differs from output shape \(\d+, 2\)"):
        fit(model, X, target[:, 0], optimizer=Adam(), loss=nn.mse, epochs=1)
    h = fit(model, X, target[:, :2], optimizer=Adam(), loss=nn.mse, epochs=1)  # matching shapes train
    assert h.steps == 2 and "train_accuracy" not in h.epochs[0]


def test_batch_size_larger_than_n_is_clipped_with_a_warning():
    with pytest.warns(UserWarning, match=r"batch_size=500 is larger than the 60 samples; using batch_size=60"):
        h = _fit(batch_size=500, epochs=2)
    assert h.steps == 2


def test_lbfgs_with_mini_batches_is_refused_and_full_batch_works():
    with pytest.raises(ValueError, match=r"LBFGS needs the full batch \(batch_size=None\), got batch_size=16"):
        _fit(optimizer=LBFGS(), batch_size=16)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no dropout: no warning
        h = _fit(optimizer=LBFGS(max_iter=5), batch_size=None, epochs=3)
    assert h.steps == 3 and h.step_loss[-1] < h.step_loss[0]
    with pytest.warns(UserWarning, match=r"LBFGS assumes a deterministic objective, but layers \['2'\]"):
        _fit(model=mlp(dropout=0.3), optimizer=LBFGS(max_iter=2), batch_size=None, epochs=1)


def test_inputs_are_not_mutated_and_read_only_noncontiguous_inputs_work():
    Xb = np.asfortranarray(np.repeat(X.astype(np.float64), 2, axis=1))[:, ::2]  # non-contiguous float64 view
    assert not Xb.flags.c_contiguous
    Xs = np.repeat(X, 2, axis=0)[::2]  # a strided float32 view
    assert not Xs.flags.c_contiguous
    Xr = X.copy()
    Xr.setflags(write=False)
    yr = Y.copy()
    yr.setflags(write=False)
    Xv, yv = X[:20].copy(), Y[:20].copy()
    for data in (Xb, Xs, Xr):
        copies = [a.copy() for a in (data, yr, Xv, yv)]
        h = fit(mlp(), data, yr, optimizer=Adam(), epochs=2, batch_size=16, validation=(Xv, yv))
        assert h.steps == 8 and np.isfinite(h.step_loss).all()
        for a, c in zip((data, yr, Xv, yv), copies):
            assert np.array_equal(a, c) and a.dtype == c.dtype
    # the same numbers in another layout train identically
    h1 = fit(mlp(), Xs, Y, optimizer=Adam(), epochs=1, batch_size=16)
    h2 = fit(mlp(), np.ascontiguousarray(Xs), Y, optimizer=Adam(), epochs=1, batch_size=16)
    assert h1.step_loss == h2.step_loss


def test_memory_mapped_input_is_accepted(tmp_path):
    np.save(tmp_path / "X.npy", X)
    Xm = np.load(tmp_path / "X.npy", mmap_mode="r")
    h = fit(mlp(), Xm, Y, optimizer=Adam(), epochs=1, batch_size=16)
    h2 = fit(mlp(), X, Y, optimizer=Adam(), epochs=1, batch_size=16)
    assert h.step_loss == h2.step_loss


def test_a_schedule_counts_its_own_clock():
    """A schedule with ``unit="step"`` gets the step clock without being told twice."""
    sched = Cosine(lr=0.1, total=10)
    h = fit(mlp(), X, Y, optimizer=SGD(lr=0.1), schedule=sched, steps=10, batch_size=16)
    assert h.step_lr == [sched(t) for t in range(10)]
    with pytest.raises(ValueError, match=r"schedule counts 'step'.*schedule_unit='epoch'"):
        fit(mlp(), X, Y, optimizer=SGD(lr=0.1), schedule=sched, schedule_unit="epoch", steps=10)
