"""Ensembles on digits: averaging members' probabilities is not worse than the mean member; θ averaging beside it."""
import numpy as np
import pytest

from descend import config, optim
from descend import data as D
from descend.data.preprocess import Standardize
from descend.train.ensemble import Ensemble, ensemble_report, softmax
from descend.train import predict


class _Recorder:
    """Keeps a copy of θ after every step; a new run starts a new trajectory (step 1 comes again)."""

    def __init__(self):
        self.runs = []

    def on_step_end(self, state):
        if state.step == 1:
            self.runs.append([])
        self.runs[-1].append(state.params.theta.astype(np.float64))


RECORDER = _Recorder()


@pytest.fixture(scope="module")
def report():
    ds = D.load_digits()
    scaler = Standardize().fit(ds.X_train)
    X, Xt = scaler.transform(ds.X_train), scaler.transform(ds.X_test)
    make = lambda rng: config.build_model({**config.DEFAULT_CONFIG, "model": {**config.DEFAULT_CONFIG["model"], "hidden": [32]}},
                                       64, 10, rng)
    return ensemble_report(make, X, ds.y_train, Xt, ds.y_test, optimizer=lambda: optim.Adam(lr=1e-3), k=4,
                           epochs=6, batch_size=32, callbacks=[RECORDER]), Xt, ds.y_test


def test_ensemble_not_worse_than_its_mean_member(report):
    r, _, _ = report
    assert len(r.members) == 4
    assert len({m.test_loss for m in r.members}) == 4  # different seeds: different members
    assert r.ensemble_accuracy >= r.mean_member_accuracy
    assert r.ensemble_loss <= np.mean([m.test_loss for m in r.members])  # convexity of −log
    assert r.ensemble_accuracy > 0.9


def test_ensemble_probabilities_are_the_mean_of_members(report):
    r, Xt, yt = report
    p = np.mean([softmax(predict(m, Xt)) for m in r.ensemble.models], axis=0)
    np.testing.assert_allclose(r.ensemble.predict_proba(Xt), p)
    np.testing.assert_allclose(r.ensemble.predict_proba(Xt).sum(axis=1), 1, atol=1e-9)
    assert r.ensemble.evaluate(Xt, yt)["accuracy"] == pytest.approx(r.ensemble_accuracy)


def test_report_puts_parameter_averaging_beside_the_ensemble(report):
    r, Xt, yt = report
    names = list(r.averaging)
    assert names[0] == "last θ" and any("EMA" in n for n in names) and any("Polyak" in n for n in names)
    assert r.averaging["last θ"]["accuracy"] == pytest.approx(r.members[0].test_accuracy)
    # the averages re-computed from member 0's recorded trajectory by their formulas:
    # EMA v_t = β·v_{t−1} + (1−β)·θ_t shown as v_t/(1−βᵗ) (β = 0.99); Polyak the mean of θ_t over t > start
    thetas = np.array(RECORDER.runs[0])
    v = np.zeros(thetas.shape[1])
    for theta in thetas:
        v = 0.99 * v + 0.01 * theta
    ema = v / (1 - 0.99 ** len(thetas))
    per_epoch = int(np.ceil(len(D.load_digits().X_train) / 32))
    assert len(thetas) == 6 * per_epoch
    start = len(thetas) // 2  # the default: the second half of the run
    polyak = thetas[start:].mean(axis=0)
    from descend.nn import pack
    model = r.ensemble.models[0]
    params = pack(model)
    last = params.theta.copy()
    for name, avg in (("EMA θ (β=0.99)", ema), (f"Polyak θ (mean from step {start})", polyak)):
        params.theta[...] = avg
        got = r.averaging[name]
        scored = Ensemble([model]).evaluate(Xt, yt)
        assert got["loss"] == pytest.approx(scored["loss"], rel=1e-4), name
        assert abs(got["accuracy"] - scored["accuracy"]) <= 1 / len(yt) + 1e-12, name
        assert np.abs(avg - last).max() > 1e-3  # the average is not the last θ under another name
    params.theta[...] = last
    text = r.render()
    assert "ensemble of 4" in text and "Polyak" in text and "EMA" in text


def test_softmax_and_errors():
    np.testing.assert_allclose(softmax(np.array([[1000.0, 1000.0]])), [[0.5, 0.5]])
    with pytest.raises(ValueError):
        Ensemble([])
