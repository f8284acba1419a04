"""CNNs through the real training loop and the CLI (issue 5 end to end)."""
import json

import numpy as np

import descend
from descend import cli, nn, optim
from descend.data import Standardize, load_digits, train_val_split
from descend.train import EarlyStopping


def test_digits_cnn_through_fit_reaches_97_percent():
    ds = load_digits(images=True)
    rng = np.random.default_rng(0)
    X, y, Xv, yv = train_val_split(ds.X_train, ds.y_train, val_fraction=0.15, rng=rng, stratify=True)
    model = nn.Sequential(nn.Conv2d(1, 16, 3, padding=1, rng=rng), nn.ReLU(), nn.MaxPool2d(2),
                          nn.Conv2d(16, 32, 3, padding=1, rng=rng), nn.ReLU(), nn.MaxPool2d(2),
                          nn.Flatten(), nn.Linear(32 * 2 * 2, 10, rng=rng))
    descend.fit(model, X, y, optimizer=optim.Adam(lr=3e-3), epochs=30, batch_size=32, validation=(Xv, yv),
                preprocess=Standardize(), stopping=[EarlyStopping(patience=5)])
    assert descend.evaluate(model, ds.X_test, ds.y_test)["accuracy"] >= 0.97


def test_cli_trains_a_cnn_and_refuses_impossible_stacks(tmp_path, capsys):
    run = tmp_path / "cnn"
    assert cli.main(["train", "--quiet", "--conv", "8,16", "--hidden", "32", "--out", str(run)]) == 0
    config = (run / "config.toml").read_text()
    assert "conv = [\n    8,\n    16,\n]" in config or "conv = [8, 16]" in config
    assert json.loads((run / "metrics.json").read_text())["test_accuracy"] >= 0.95
    capsys.readouterr()
    assert cli.main(["train", "--quiet", "--conv", "8,8,8,8", "--out", str(tmp_path / "x")]) == 2
    assert "block 4 would halve a 1×1 map" in capsys.readouterr().err
    assert cli.main(["train", "--quiet", "--conv", "8", "--dataset", "iris", "--out", str(tmp_path / "y")]) == 2
    assert "needs image-shaped samples" in capsys.readouterr().err


def test_cli_stopping_rules_from_the_config(tmp_path):
    import tomli_w
    cases = {"time_limit": (0.05, "time limit of 0.05 s"), "min_loss_change": (10.0, "training loss changed by less"),
             "min_param_change": (1e6, "parameter change"), "steps": (7, "maximum of 7 steps")}
    for key, (value, reason) in cases.items():
        path = tmp_path / f"{key}.toml"
        path.write_text(tomli_w.dumps({"train": {key: value, "patience": 0}}))
        run = tmp_path / key
        assert cli.main(["train", "--quiet", "--config", str(path), "--out", str(run)]) == 0
        assert reason in json.loads((run / "metrics.json").read_text())["stop_reason"], key
