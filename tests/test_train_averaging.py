"""Averaging of θ: EMA with bias correction and the Polyak mean against hand-computed averages of the
recorded θ's; ``applied`` swaps the average in and restores θ exactly; validation sees the average."""
import numpy as np

from descend import pack
import pytest
from _trainutil import Recorder, blobs, mlp, one_numba_thread  # noqa: F401 (fixture)

from descend.optim import Adam
from descend.train import Averaging, evaluate, fit

pytestmark = pytest.mark.usefixtures("one_numba_thread")

X, Y = blobs(96)


def _train(average, steps=30):
    rec, model = Recorder(), mlp()
    fit(model, X, Y, optimizer=Adam(lr=0.05), steps=steps, batch_size=16, callbacks=[rec], average=average)
    return model, np.array(rec.steps, dtype=np.float64)


def test_ema_with_bias_correction_equals_the_hand_computed_average():
    beta = 0.9
    avg = Averaging(kind="ema", beta=beta, start=0)
    _, thetas = _train(avg)
    v = np.zeros(thetas.shape[1])
    for t, theta in enumerate(thetas, start=1):
        v = beta * v + (1 - beta) * theta
    expected = v / (1 - beta ** len(thetas))
    assert avg.count == len(thetas) == 30
    np.testing.assert_allclose(avg.value(), expected, rtol=1e-5, atol=1e-6)  # float32 accumulation
    assert avg.value().dtype == np.float32
    # bias correction matters here: without it the average would be far off
    assert np.abs(v - expected).max() > 10 * np.abs(avg.value() - expected).max()


def test_polyak_is_the_mean_from_start_on():
    avg = Averaging(kind="polyak", start=10)
    _, thetas = _train(avg)
    assert avg.count == 20
    np.testing.assert_allclose(avg.value(), thetas[10:].mean(axis=0), rtol=1e-5, atol=1e-6)


def test_applied_swaps_in_the_average_and_restores_theta_exactly():
    avg = Averaging(kind="ema", beta=0.8)
    model, _ = _train(avg)
    params = pack(model)
    before = params.theta.copy()
    with avg.applied(params):
        assert np.array_equal(params.theta, avg.value())
        inside = evaluate(model, X, Y)
    assert np.array_equal(params.theta, before)
    assert inside != evaluate(model, X, Y)
    with pytest.raises(RuntimeError):  # restored even when the block raises
        with avg.applied(params):
            params.theta[:] = 0
            raise RuntimeError
    assert np.array_equal(params.theta, before)
    avg.apply(params)
    assert np.array_equal(params.theta, avg.value())


def test_validation_evaluates_the_average_when_asked():
    Xv, yv = X[:32], Y[:32]
    for evaluate_avg in (True, False):
        avg, rec, model = Averaging(kind="polyak", evaluate=evaluate_avg), Recorder(), mlp()
        h = fit(model, X, Y, optimizer=Adam(lr=0.05), epochs=1, batch_size=16, callbacks=[rec], average=avg,
                validation=(Xv, yv))
        params = pack(model)
        assert np.array_equal(params.theta, rec.steps[-1])  # θ itself is left as trained
        if evaluate_avg:
            with avg.applied(params):
                expected = evaluate(model, Xv, yv)["loss"]
        else:
            expected = evaluate(model, Xv, yv)["loss"]
        assert h.epochs[0]["val_loss"] == expected


def test_averaging_arguments_are_checked():
    with pytest.raises(ValueError, match=r"kind must be 'ema' or 'polyak', got 'mean'"):
        Averaging(kind="mean")
    with pytest.raises(ValueError, match=r"beta must be in \[0, 1\), got 1.0"):
        Averaging(beta=1.0)
    assert Averaging().value() is None
