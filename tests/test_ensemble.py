"""Ensembles on digits: averaging members' probabilities is not worse than the mean member; θ averaging beside it."""
import numpy as np
import pytest

from descend import config, optim
from descend import data as D
from descend.data.preprocess import Standardize
from descend.train.ensemble import Ensemble, ensemble_report, softmax
from descend.train import predict


@pytest.fixture(scope="module")
def report():
    ds = D.load_digits()
    scaler = Standardize().fit(ds.X_train)
    X, Xt = scaler.transform(ds.X_train), scaler.transform(ds.X_test)
    make = lambda rng: config.build_model({**config.DEFAULT_CONFIG, "model": {**config.DEFAULT_CONFIG["model"], "hidden": [32]}},
                                       64, 10, rng)
    return ensemble_report(make, X, ds.y_train, Xt, ds.y_test, optimizer=lambda: optim.Adam(lr=1e-3), k=4,
                           epochs=6, batch_size=32), Xt, ds.y_test


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
    r, _, _ = report
    names = list(r.averaging)
    assert names[0] == "last θ" and any("EMA" in n for n in names) and any("Polyak" in n for n in names)
    assert r.averaging["last θ"]["accuracy"] == pytest.approx(r.members[0].test_accuracy)
    assert all(0.8 < v["accuracy"] <= 1 for v in r.averaging.values())
    text = r.render()
    assert "ensemble of 4" in text and "Polyak" in text and "EMA" in text


def test_softmax_and_errors():
    np.testing.assert_allclose(softmax(np.array([[1000.0, 1000.0]])), [[0.5, 0.5]])
    with pytest.raises(ValueError):
        Ensemble([])
