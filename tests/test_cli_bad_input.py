"""Bad input at the command line, in TOML, in data files, in run folders and checkpoints: one table, every row
one line ``descend: error: ...`` naming the problem, the documented exit status, no traceback, and nothing left
behind or changed (the working folder's files are byte-identical afterwards; only a .lock's PID may change)."""
import hashlib
import shutil
from pathlib import Path

import numpy as np
import pytest
from _trainutil import one_numba_thread  # noqa: F401 (fixture)

from descend.cli import main

pytestmark = pytest.mark.usefixtures("one_numba_thread")

IRIS = ["--dataset", "iris", "--quiet"]


@pytest.fixture(scope="module")
def finished_run(tmp_path_factory):
    """A small finished run to resume, copied into each test that needs one."""
    out = tmp_path_factory.mktemp("finished") / "run"
    assert main(["train", *IRIS, "--epochs", "1", "--hidden", "8", "--out", str(out)]) == 0
    return out


def _csv(name, text):
    return lambda d: (d / name).write_text(text)


def _file(name, data=b""):
    return lambda d: (d / name).write_bytes(data)


def _npz(name, **arrays):
    return lambda d: np.savez(d / name, **arrays)


def _npy(name, array):
    return lambda d: np.save(d / name, array)


def _toml(text):
    return lambda d: (d / "job.toml").write_text(text)


def _run(edit=None):
    """Copy the finished run into the working folder as ``run``, then apply ``edit(run_folder)``."""
    def setup(d, finished):
        shutil.copytree(finished, d / "run")
        if edit is not None:
            edit(d / "run")
    setup.needs_run = True
    return setup


def _flip_checkpoint(folder):
    path = folder / "checkpoint.safetensors"
    raw = bytearray(path.read_bytes())
    raw[-100] ^= 0x04
    path.write_bytes(bytes(raw))


def _other_architecture(folder):
    cfg = (folder / "config.toml").read_text().replace("hidden = [\n    8,\n]", "hidden = [\n    16,\n]")
    assert "16" in cfg
    (folder / "config.toml").write_text(cfg)


GOOD_CSV = "a,b,label\n" + "".join(f"{i % 3 + 0.5},{i % 5},{i % 2}\n" for i in range(40))

# (id, setup of the working folder, arguments, exit status, a piece of the message)
CASES = [
    # flags argparse reads
    ("hidden-not-numbers", None, ["train", "--hidden", "abc"], 2, "argument --hidden: 'abc' is not a list of positive integers; write e.g. --hidden 128,64"),
    ("hidden-zero", None, ["train", "--hidden", "64,0"], 2, "'64,0' is not a list of positive integers"),
    ("conv-not-numbers", None, ["train", "--conv", "x"], 2, "argument --conv: 'x' is not a list"),
    ("batch-size-word", None, ["train", "--batch-size", "half"], 2, "'half' is not a batch size; write a positive integer, or full"),
    ("epochs-float", None, ["train", "--epochs", "1.5"], 2, "argument --epochs: invalid int value: '1.5'"),
    ("lr-word", None, ["train", "--lr", "fast"], 2, "argument --lr: invalid float value: 'fast'"),
    ("unknown-flag", None, ["train", "--epoch", "3"], 2, "unrecognized arguments: --epoch 3"),
    ("unknown-command", None, ["fit"], 2, "argument command: invalid choice: 'fit'"),
    ("average-choice", None, ["train", "--average", "swa"], 2, "argument --average: invalid choice: 'swa'"),
    ("schedule-param-syntax", None, ["train", "--schedule", "step:step_size"], 2, "'step_size' is not key=value"),
    # values the config refuses
    ("optimizer-name", None, ["train", "--optimizer", "adamax"], 2, "optimizer.name = 'adamax' is not known; choose one of"),
    ("activation-name", None, ["train", "--activation", "swish"], 2, "model.activation = 'swish' is not known"),
    ("init-name", None, ["train", "--init", "orthogonal"], 2, "model.init = 'orthogonal' is not known"),
    ("dataset-name", None, ["train", "--dataset", "cifar"], 2, "data.dataset = 'cifar' is not known"),
    ("lr-negative", None, ["train", "--lr", "-1"], 2, "[optimizer]"),
    ("batch-size-zero", None, ["train", "--batch-size", "0"], 2, "train.batch_size = 0 is invalid: it must be a positive integer"),
    ("epochs-zero", None, ["train", "--epochs", "0"], 2, "train.epochs = 0 is invalid"),
    ("dropout-one", None, ["train", "--dropout", "1.5"], 2, "model.dropout = 1.5 is invalid: it must be a drop probability"),
    ("l2-negative", None, ["train", "--l2", "-0.1"], 2, "train.l2 = -0.1 is invalid"),
    ("patience-negative", None, ["train", "--patience", "-1"], 2, "train.patience = -1 is invalid"),
    ("schedule-name", None, ["train", *IRIS, "--schedule", "triangle"], 2, "schedule.name = 'triangle' is not known"),
    ("schedule-missing-param", None, ["train", *IRIS, "--schedule", "step:gamma=0.5"], 2, "[schedule]"),
    ("conv-on-a-table", None, ["train", *IRIS, "--conv", "8"], 2, "model.conv needs image-shaped samples"),
    # TOML
    ("toml-unknown-key", _toml("[train]\nepochz = 3\n"), ["train", "--config", "job.toml"], 2, "unknown config key 'train.epochz'"),
    ("toml-unknown-table", _toml("[trian]\nepochs = 3\n"), ["train", "--config", "job.toml"], 2, "unknown config key 'trian'"),
    ("toml-malformed", _toml("[train\n"), ["train", "--config", "job.toml"], 2, "is not valid TOML"),
    ("toml-missing", None, ["train", "--config", "nowhere.toml"], 2, "config file nowhere.toml does not exist"),
    ("toml-not-a-table", _toml("train = 3\n"), ["train", "--config", "job.toml"], 2, "config key 'train' must be a table"),
    ("toml-foreign-hyperparameter", _toml("[optimizer]\nname = \"adam\"\nmomentum = 0.9\n"), ["train", "--config", "job.toml"], 2, "momentum"),
    ("toml-hidden-string", _toml("[model]\nhidden = \"wide\"\n"), ["train", "--config", "job.toml"], 2, "model.hidden = 'wide' is invalid"),
    ("toml-average", _toml("[train]\naverage = \"swa\"\n"), ["train", "--config", "job.toml"], 2, "train.average = 'swa' is invalid"),
    # data files
    ("data-missing", None, ["train", "--data", "none.csv", "--target", "y"], 2, "data file none.csv does not exist"),
    ("data-suffix", _file("d.txt", b"1,2\n"), ["train", "--data", "d.txt"], 2, "has the suffix '.txt' (descend reads .npz, .npy, .csv)"),
    ("csv-no-target", _csv("d.csv", GOOD_CSV), ["train", "--data", "d.csv"], 2, "needs --target (which column holds the labels"),
    ("csv-unknown-target", _csv("d.csv", GOOD_CSV), ["train", "--data", "d.csv", "--target", "y"], 2, "has no column 'y' (the columns are ['a', 'b', 'label'])"),
    ("csv-text-feature", _csv("d.csv", "a,b,label\n1,x,0\n2,y,1\n"), ["train", "--data", "d.csv", "--target", "label"], 2, "column 'b' is not numeric"),
    ("csv-float-labels", _csv("d.csv", "a,y\n1,0.5\n2,1.5\n3,0.5\n"), ["train", "--data", "d.csv", "--target", "y"], 2, "label 0.5 is not a class"),
    ("csv-ragged", _csv("d.csv", "a,b,y\n1,2,0\n1,1\n"), ["train", "--data", "d.csv", "--target", "y"], 2, "line 3 has 2 fields but the header has 3"),
    ("csv-nan", _csv("d.csv", "a,y\n1,0\nnan,1\n3,0\n"), ["train", "--data", "d.csv", "--target", "y"], 2, "NaN/inf values (first at row 1, column 0)"),
    ("csv-header-only", _csv("d.csv", "a,y\n"), ["train", "--data", "d.csv", "--target", "y"], 2, "has no data rows"),
    ("csv-one-class", _csv("d.csv", "a,y\n1,3\n2,3\n"), ["train", "--data", "d.csv", "--target", "y"], 2, "only one class ([3])"),
    ("npz-without-y", _npz("d.npz", X=np.ones((4, 2))), ["train", "--data", "d.npz"], 2, "lacks the array(s) ['y']"),
    ("npz-length-mismatch", _npz("d.npz", X=np.ones((4, 2)), y=np.arange(3)), ["train", "--data", "d.npz"], 2, "X has 4 rows but y has 3"),
    ("npy-one-dimensional", _npy("d.npy", np.arange(5.0)), ["train", "--data", "d.npy", "--target", "0"], 2, "holds an array of shape (5,)"),
    ("npy-not-npy", _file("d.npy", b"not numpy"), ["train", "--data", "d.npy", "--target", "0"], 2, "is not a readable .npy"),
    ("test-other-columns", lambda d: (_csv("d.csv", GOOD_CSV)(d), _csv("t.csv", "a,label\n1,0\n")(d)),
     ["train", "--data", "d.csv", "--target", "label", "--test", "t.csv"], 2, "test file t.csv has 1 features but d.csv has 2"),
    ("test-unseen-label", lambda d: (_csv("d.csv", GOOD_CSV)(d), _csv("t.csv", "a,b,label\n1,2,7\n")(d)),
     ["train", "--data", "d.csv", "--target", "label", "--test", "t.csv"], 2, "label 7 does not occur in the training data"),
    # run folders, resuming and checkpoints
    ("out-holds-a-run", _run(), ["train", *IRIS, "--out", "run"], 2, "run folder run already holds a run"),
    ("out-is-a-file", _file("run"), ["train", *IRIS, "--out", "run"], 2, "run folder run is a file"),
    ("out-under-a-file", _file("f"), ["train", *IRIS, "--out", "f/run"], 2, "cannot write the run folder f/run"),
    ("overwrite-without-out", None, ["train", *IRIS, "--overwrite"], 2, "--overwrite needs --out"),
    ("resume-missing", None, ["train", "--resume", "gone"], 2, "cannot resume gone (no such folder)"),
    ("resume-empty-folder", lambda d: (d / "empty").mkdir(), ["train", "--resume", "empty"], 2, "cannot resume empty (it holds no config.toml"),
    ("resume-with-config", _run(), ["train", "--resume", "run", "--config", "x.toml"], 2, "cannot be combined with --config/--out/--overwrite"),
    ("resume-other-seed", _run(), ["train", "--resume", "run", "--seed", "5"], 2, "cannot resume with train.seed = 5 where the run has 0"),
    ("resume-other-architecture-flag", _run(), ["train", "--resume", "run", "--hidden", "32"], 2, "model.hidden = [32] where the run has [8]"),
    ("resume-other-dataset", _run(), ["train", "--resume", "run", "--dataset", "wine"], 2, "data.dataset = 'wine' where the run has 'iris'"),
    ("resume-damaged-checkpoint", _run(_flip_checkpoint), ["train", "--resume", "run", "--epochs", "3"], 2, "checkpoint.safetensors is damaged"),
    ("resume-other-architecture", _run(_other_architecture), ["train", "--resume", "run", "--epochs", "3"], 2, "does not fit this model"),
    # doctor
    ("doctor-optimizer", None, ["doctor", "--optimizer", "nope"], 2, "optimizer.name = 'nope' is not known"),
    ("doctor-hidden", None, ["doctor", "--hidden", "a,b"], 2, "argument --hidden: 'a,b' is not a list"),
]


def _snapshot(root: Path) -> dict:
    return {str(p.relative_to(root)): (p.name == ".lock" or p.is_dir() or hashlib.sha256(p.read_bytes()).hexdigest())
            for p in sorted(root.rglob("*"))}


def test_the_table_is_large_and_its_ids_unique():
    assert len(CASES) >= 40 and len({c[0] for c in CASES}) == len(CASES)


@pytest.mark.parametrize("name, setup, args, code, message", CASES, ids=[c[0] for c in CASES])
def test_bad_input(name, setup, args, code, message, tmp_path, monkeypatch, capsys, request):
    monkeypatch.chdir(tmp_path)
    if setup is not None:
        if getattr(setup, "needs_run", False):
            setup(tmp_path, request.getfixturevalue("finished_run"))
        else:
            setup(tmp_path)
    before = _snapshot(tmp_path)
    got = main(args)
    captured = capsys.readouterr()
    lines = captured.err.splitlines()
    assert got == code, captured.err
    assert len(lines) == 1 and lines[0].startswith("descend: error: "), captured.err
    assert message in lines[0], lines[0]
    assert "Traceback" not in captured.err + captured.out
    assert _snapshot(tmp_path) == before  # nothing made, nothing changed (no runs/ folder, no half run)


def test_debug_shows_the_traceback(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(Exception, match="optimizer.name = 'adamax' is not known"):
        main(["train", "--optimizer", "adamax", "--debug"])
