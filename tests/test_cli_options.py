"""Everything ``fit`` has, from the command line: the user's own data files, schedules (cosine's total defaulting
to the run's length), early stopping, L2, dropout, θ averaging; and resuming a finished run to a larger limit."""
import json
import math
import tomllib

import numpy as np
import pytest
from _trainutil import one_numba_thread  # noqa: F401 (fixture)

from descend.cli import main
from descend.train import load_checkpoint

pytestmark = pytest.mark.usefixtures("one_numba_thread")
IRIS = ["--dataset", "iris", "--quiet", "--hidden", "8"]


def _blobs(n, seed):
    """Three well separated classes in 2-D, named by strings: a classifier reaches ~100 %."""
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 3, n)
    X = rng.normal(0, 0.3, (n, 2)) + np.array([[0, 0], [3, 0], [0, 3]])[y]
    return X, y


def _final(out):
    return json.loads((out / "metrics.json").read_text())


def _config(out):
    return tomllib.loads((out / "config.toml").read_text())


def test_csv_with_a_named_target_and_a_test_file(tmp_path):
    names = np.array(["cat", "dog", "emu"])
    for name, n, seed in (("train.csv", 240, 0), ("test.csv", 60, 1)):
        X, y = _blobs(n, seed)
        rows = "".join(f"{a:.4f},{names[c]},{b:.4f}\n" for (a, b), c in zip(X, y))
        (tmp_path / name).write_text("x1,species,x2\n" + rows)
    out = tmp_path / "run"
    assert main(["train", "--data", str(tmp_path / "train.csv"), "--target", "species", "--test",
                 str(tmp_path / "test.csv"), "--epochs", "15", "--patience", "0", "--quiet", "--out", str(out)]) == 0
    final = _final(out)
    assert final["test_accuracy"] > 0.95 and final["dataset"] == "train"
    cfg = _config(out)
    assert cfg["data"]["file"].endswith("train.csv") and cfg["data"]["target"] == "species"
    arrays, _ = load_checkpoint(out / "checkpoint.safetensors")
    assert arrays["theta"].size == (2 * 128 + 128) + (128 * 64 + 64) + (64 * 3 + 3)  # 2 features in, 3 classes out


@pytest.mark.parametrize("kind", ["npz", "npy"])
def test_npz_and_npy_files(tmp_path, kind):
    X, y = _blobs(300, 2)
    if kind == "npz":
        np.savez(tmp_path / "d.npz", X=X, y=y + 5)  # labels 5, 6, 7 become classes 0, 1, 2
        args = ["--data", str(tmp_path / "d.npz")]
    else:
        np.save(tmp_path / "d.npy", np.column_stack([y, X]))
        args = ["--data", str(tmp_path / "d.npy"), "--target", "0"]
    out = tmp_path / "run"
    assert main(["train", *args, "--epochs", "10", "--patience", "0", "--quiet", "--out", str(out)]) == 0
    final = _final(out)
    assert final["test_accuracy"] > 0.95
    metrics = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    assert metrics[-2]["epoch"] == 10


def test_cosine_total_defaults_to_the_run_length_in_steps(tmp_path):
    out = tmp_path / "run"
    assert main(["train", *IRIS, "--epochs", "3", "--batch-size", "16", "--patience", "0", "--schedule", "cosine",
                 "--lr", "0.01", "--out", str(out)]) == 0
    steps = _final(out)["steps"]
    assert _config(out)["schedule"] == {"name": "cosine", "total": steps}
    _, meta = load_checkpoint(out / "checkpoint.safetensors")
    expected = [0.01 * (1 + math.cos(math.pi * t / steps)) / 2 for t in range(steps)]
    np.testing.assert_allclose(meta["history"]["step_lr"], expected, rtol=1e-12, atol=1e-15)


def test_schedule_parameters_from_the_flag(tmp_path):
    out = tmp_path / "run"
    assert main(["train", *IRIS, "--epochs", "4", "--patience", "0", "--lr", "0.02", "--schedule",
                 "step:step_size=2,gamma=0.5,unit=\"epoch\"", "--out", str(out)]) == 0
    _, meta = load_checkpoint(out / "checkpoint.safetensors")
    per_epoch = {e["epoch"]: e["lr"] for e in meta["history"]["epochs"]}
    assert per_epoch == {1: 0.02, 2: 0.01, 3: 0.01, 4: 0.005}  # StepDecay: lr·γ^⌊epoch/step_size⌋, epochs from 1


def test_patience_l2_dropout_and_average_reach_fit(tmp_path):
    runs = {}
    for name, extra in (("plain", []), ("l2", ["--l2", "100"]), ("avg", ["--average", "ema"]),
                        ("dropout", ["--dropout", "0.5"])):
        out = tmp_path / name
        assert main(["train", *IRIS, "--epochs", "4", "--patience", "0", "--lr", "0.05", "--out", str(out), *extra]) == 0
        runs[name] = out
    arrays = {k: load_checkpoint(v / "checkpoint.safetensors") for k, v in runs.items()}
    assert _config(runs["l2"])["train"]["l2"] == 100.0
    norm = {k: float(np.linalg.norm(a[0]["theta"])) for k, a in arrays.items()}
    assert norm["l2"] < 0.95 * norm["plain"]  # weight decay shrank θ
    # averaging trains the same θ but evaluates the average: same steps, different test loss
    np.testing.assert_array_equal(arrays["avg"][0]["theta"], arrays["plain"][0]["theta"])
    assert _final(runs["avg"])["test_loss"] != _final(runs["plain"])["test_loss"]
    # the dropout layer (Linear, ReLU, Dropout, Linear: index 2) owns a generator, saved in the checkpoint
    assert "2.rng" in arrays["dropout"][1]["layer_rngs"] and "2.rng" not in arrays["plain"][1]["layer_rngs"]
    assert _config(runs["dropout"])["model"]["dropout"] == 0.5
    # early stopping with patience 1 on a long run ends it before the limit
    out = tmp_path / "patience"
    assert main(["train", *IRIS, "--epochs", "400", "--patience", "1", "--lr", "0.05", "--out", str(out)]) == 0
    assert _final(out)["stop_reason"].startswith("early stopping") and _final(out)["epochs"] < 400


def test_resuming_a_finished_run_to_a_larger_limit_continues_and_a_no_op_changes_nothing(tmp_path, capsys):
    out, straight = tmp_path / "run", tmp_path / "straight"
    assert main(["train", *IRIS, "--epochs", "5", "--patience", "0", "--out", str(straight)]) == 0
    assert main(["train", *IRIS, "--epochs", "2", "--patience", "0", "--out", str(out)]) == 0
    assert main(["train", "--resume", str(out), "--epochs", "5", "--quiet"]) == 0
    assert _final(out)["epochs"] == 5 and _final(out)["steps"] == _final(straight)["steps"]
    a, b = (load_checkpoint(d / "checkpoint.safetensors")[0]["theta"] for d in (out, straight))
    np.testing.assert_array_equal(a, b)
    assert _config(out)["train"]["epochs"] == 5
    before = {p.name: p.read_bytes() for p in out.iterdir() if p.suffix != ".png"}
    capsys.readouterr()
    assert main(["train", "--resume", str(out), "--quiet"]) == 0
    assert capsys.readouterr().out.startswith(f"nothing to do: {out} already met its limits")
    after = {p.name: p.read_bytes() for p in out.iterdir() if p.suffix != ".png"}
    assert after["metrics.jsonl"] == before["metrics.jsonl"]  # no second stop line
    assert after["checkpoint.safetensors"] == before["checkpoint.safetensors"]


def test_float_labels_through_fit_get_advice_fit_accepts():
    """The advice for real-valued labels is a regression loss, and following it trains (no task= argument in fit)."""
    from descend import nn, optim
    from descend.nn import functional as F
    from descend.train import fit
    rng = np.random.default_rng(0)
    X, y = rng.standard_normal((20, 3)), rng.standard_normal(20)
    model = nn.Sequential(nn.Linear(3, 1, rng=rng))
    with pytest.raises(ValueError, match=r"use a regression loss \(fit\(\.\.\., loss=F\.mse\)"):
        fit(model, X, y, optimizer=optim.SGD(lr=0.1), epochs=1)
    history = fit(model, X, y[:, None], optimizer=optim.SGD(lr=0.1), epochs=2, loss=F.mse)
    assert len(history.epochs) == 2
