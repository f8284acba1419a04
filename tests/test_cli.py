"""``descend train`` end to end, in-process on small runs: the run folder, real PNGs, parseable metrics,
``--resume`` continuing bit-identically, and config errors exiting with 2 and naming the key."""
import json
import re
import tomllib

import numpy as np
import pytest
from _trainutil import one_numba_thread  # noqa: F401 (fixture)

from descend.cli import main
from descend.train import load_checkpoint

pytestmark = pytest.mark.usefixtures("one_numba_thread")

PNG = b"\x89PNG\r\n\x1a\n"
SMALL = """
[data]
dataset = "iris"
[model]
hidden = [16]
[train]
epochs = {epochs}
batch_size = 16
patience = 0
"""


def _config(tmp_path, text, name="cfg.toml"):
    path = tmp_path / name
    path.write_text(text)
    return str(path)


def test_train_writes_a_complete_run_folder(tmp_path, capsys):
    out = tmp_path / "run"
    assert main(["train", "--epochs", "3", "--quiet", "--out", str(out), "--hidden", "32"]) == 0
    printed = capsys.readouterr().out
    assert "digits: test accuracy" in printed and "stopped: reached the maximum of 3 epochs" in printed
    names = {p.name for p in out.iterdir()}
    assert {"config.toml", "metrics.jsonl", "metrics.json", "checkpoint.safetensors", "loss.png", "accuracy.png",
            "lr.png"} <= names
    cfg = tomllib.loads((out / "config.toml").read_text())
    assert cfg["train"]["epochs"] == 3 and cfg["model"]["hidden"] == [32] and cfg["data"]["dataset"] == "digits"
    lines = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    assert [r["epoch"] for r in lines[:-1]] == [1, 2, 3] and "val_accuracy" in lines[0]
    assert lines[-1]["stop_reason"].startswith("reached the maximum of 3 epochs")
    final = json.loads((out / "metrics.json").read_text())
    assert 0.5 < final["test_accuracy"] <= 1 and final["stop_reason"].startswith("reached the maximum of 3 epochs")
    assert final["epochs"] == 3 and final["steps"] == lines[-2]["step"]
    import matplotlib.image as mpimg
    for name in ("loss.png", "accuracy.png", "lr.png"):
        raw = (out / name).read_bytes()
        assert raw[:8] == PNG, name
        image = mpimg.imread(out / name)
        assert image.ndim == 3 and image.shape[0] >= 200 and image.shape[1] >= 400, (name, image.shape)
        assert image[..., :3].std() > 0.01  # not a blank canvas
    arrays, meta = load_checkpoint(out / "checkpoint.safetensors")
    assert meta["config"]["train"]["epochs"] == 3 and arrays["theta"].dtype == np.float32


def test_resume_continues_a_run_bit_identically(tmp_path, capsys):
    straight, split = tmp_path / "straight", tmp_path / "split"
    assert main(["train", "--config", _config(tmp_path, SMALL.format(epochs=6)), "--quiet",
                 "--out", str(straight)]) == 0
    assert main(["train", "--config", _config(tmp_path, SMALL.format(epochs=3)), "--quiet", "--out", str(split)]) == 0
    first = json.loads((split / "metrics.json").read_text())
    assert first["epochs"] == 3
    # continue the interrupted run to the straight run's length
    cfg = (split / "config.toml").read_text().replace("epochs = 3", "epochs = 6")
    (split / "config.toml").write_text(cfg)
    assert main(["train", "--resume", str(split), "--quiet"]) == 0
    a, b = (json.loads((d / "metrics.json").read_text()) for d in (straight, split))
    assert b["epochs"] == 6 and b["steps"] == a["steps"]
    for key in ("test_accuracy", "test_loss", "val_accuracy", "train_accuracy", "stop_reason"):
        assert a[key] == b[key], key
    ta, tb = (load_checkpoint(d / "checkpoint.safetensors")[0]["theta"] for d in (straight, split))
    assert np.array_equal(ta, tb)
    epochs = [json.loads(line).get("epoch") for line in (split / "metrics.jsonl").read_text().splitlines()]
    assert [e for e in epochs if e] == [1, 2, 3, 4, 5, 6]
    # resuming a finished run trains no further
    assert main(["train", "--resume", str(split), "--quiet"]) == 0
    assert json.loads((split / "metrics.json").read_text())["steps"] == a["steps"]


@pytest.mark.parametrize("text, named", [
    ("[train]\nepochz = 3\n", r"unknown config key 'train.epochz'"),
    ("[trian]\nepochs = 3\n", r"unknown config key 'trian'"),
    ("[model]\nactivation = \"swish\"\n", r"model.activation = 'swish' is not known; choose one of"),
    ("[data]\ndataset = \"cifar\"\n", r"data.dataset = 'cifar' is not known"),
    ("[optimizer]\nname = \"adam\"\nmomentum = 0.9\n", r"\[optimizer\] .*momentum"),
    ("[optimizer]\nlr = -1.0\n", r"\[optimizer\] .*lr must be > 0"),
    ("[model]\nhidden = [0]\n", r"model.hidden = \[0\] is invalid: it must be a list of positive layer widths"),
    ("[schedule]\nname = \"cosine\"\ntotal = 0\n", r"\[schedule\] .*total"),
    ("train = 3\n", r"config key 'train' must be a table"),
    ("[train\n", r"is not valid TOML"),
])
def test_config_errors_exit_2_naming_the_key(tmp_path, capsys, text, named):
    code = main(["train", "--config", _config(tmp_path, text), "--quiet", "--out", str(tmp_path / "run")])
    err = capsys.readouterr().err
    assert code == 2, err
    assert re.search(named, err), err
    assert err.startswith("descend: error: ")


def test_a_schedule_from_the_config_is_applied(tmp_path):
    out = tmp_path / "run"
    text = SMALL.format(epochs=2) + "[schedule]\nname = \"cosine\"\ntotal = 10\nunit = \"step\"\n"
    assert main(["train", "--config", _config(tmp_path, text), "--quiet", "--out", str(out)]) == 0
    _, meta = load_checkpoint(out / "checkpoint.safetensors")
    lrs = meta["history"]["step_lr"]
    assert lrs[0] == 1e-3 and lrs[5] == pytest.approx(5e-4) and lrs[10:] == [0.0] * (len(lrs) - 10)


def test_resume_of_a_missing_run_is_an_error(tmp_path, capsys):
    assert main(["train", "--resume", str(tmp_path / "nothing"), "--quiet"]) == 2
    assert "cannot resume" in capsys.readouterr().err and not (tmp_path / "nothing").exists()


def test_example_job_lists_every_key_at_its_default():
    import tomllib
    from pathlib import Path

    from descend import config
    with open(Path(__file__).parent.parent / "examples" / "job.toml", "rb") as f:
        job = tomllib.load(f)
    assert config.resolve(job) == config.DEFAULT_CONFIG
    for section, values in config.DEFAULT_CONFIG.items():
        assert set(job[section]) == set(values), section


def test_every_command_takes_debug_and_then_raises_instead_of_one_line(tmp_path, capsys):
    args = ["predict", str(tmp_path / "none"), "--data", str(tmp_path / "x.npy")]
    assert main(args) == 2  # one line, exit 2
    assert capsys.readouterr().err.startswith("descend: error: no run folder or checkpoint")
    with pytest.raises(FileNotFoundError):
        main(args + ["--debug"])
    with pytest.raises(ValueError, match="unknown function 'nope'"):
        main(["compare", "--function", "nope", "--debug"])
