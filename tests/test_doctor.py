"""descend doctor: names each planted fault correctly and stays quiet on the healthy default config."""
import json

import numpy as np
import pytest

from descend import config
from descend import data as D
from descend.cli import main
from descend.diagnose.doctor import FAULTS, doctor


def _dead_relu_model():
    model = config.build_model(config.DEFAULT_CONFIG, 64, 10, np.random.default_rng(0))
    for layer in list(model)[:-1]:
        if type(layer).__name__ == "Linear":
            layer.bias.data[...] = -10.0  # pre-activations far below 0 for every input: every ReLU is dead
    return model


def _shuffled_digits():
    ds = D.load_digits()
    y = np.random.default_rng(1).permutation(ds.y_train)
    return D.Dataset("digits-shuffled", ds.X_train, y, ds.X_test, ds.y_test, ds.num_classes, ds.input_shape)


def test_healthy_default_config_raises_no_alarm(tmp_path):
    report = doctor({}, tmp_path)
    assert report.faults == [], report.render()
    assert all(f.ok for f in report.findings), report.render()
    # no wall-clock bound (the machine is shared; speed lives in benchmarks/): the time is reported as measured
    written = json.loads((tmp_path / "report.json").read_text())
    assert written["seconds"] == round(report.seconds, 3) > 0
    for name in ("report.txt", "report.json", "activations_init.png", "activations_trained.png", "lr_range.png",
                 "update_ratios.png", "loss.png", "accuracy.png"):
        assert (tmp_path / name).stat().st_size > 0, name
    assert json.loads((tmp_path / "report.json").read_text())["faults"] == []
    assert "healthy" in (tmp_path / "report.txt").read_text()


@pytest.mark.parametrize("name, cfg, kwargs, fault", [
    ("init std=1, relu", {"model": {"init": "normal"}}, {}, "init_too_large"),
    ("init std=1, tanh", {"model": {"init": "normal", "activation": "tanh"}}, {}, "init_too_large"),
    ("lr 100x too high", {"optimizer": {"lr": 0.1}}, {}, "lr_too_high"),
    ("lr 100x too low", {"optimizer": {"lr": 1e-5}}, {}, "lr_too_low"),
    ("labels shuffled", {}, {"data": "shuffled"}, "labels_mismatch"),
    ("dead relus", {}, {"model": "dead"}, "dead_relu"),
])
def test_planted_fault_is_named(tmp_path, name, cfg, kwargs, fault):
    if kwargs.get("data") == "shuffled":
        kwargs = {"data": _shuffled_digits()}
    if kwargs.get("model") == "dead":
        kwargs = {"model": _dead_relu_model()}
    report = doctor(cfg, tmp_path, **kwargs)
    assert report.faults == [fault], f"{name}:\n{report.render()}"
    assert FAULTS[fault][0] in report.render()


def test_cli_subcommand(tmp_path, capsys):
    assert main(["doctor", "--lr", "1e-5", "--epochs", "4", "--out", str(tmp_path)]) == 1
    out = capsys.readouterr().out
    assert "learning rate too low" in out and str(tmp_path) in out
    assert main(["doctor", "--optimizer", "nope", "--out", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("descend: error: ") and "optimizer.name" in err
