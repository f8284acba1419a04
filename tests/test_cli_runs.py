"""Run folders under concurrency, with real processes: default names never collide, a folder in use refuses a
second process naming the holder's PID, Ctrl-C exits 130 with the checkpoint saved, stale temp files are left
to the lock's holder; and the exit codes of a diverged run (3) and of L-BFGS from flags (0)."""
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

from descend.cli import main
from descend.jobs import RUN_FILES
from descend.train import load_checkpoint

ROOT = Path(__file__).parent.parent


def _descend(*args, cwd):
    env = {**os.environ, "PYTHONPATH": str(ROOT), "NUMBA_NUM_THREADS": "1"}
    return subprocess.Popen([sys.executable, "-m", "descend.cli", *args], cwd=cwd, env=env, text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)


def _wait_for(predicate, timeout=60.0):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if predicate():
            return True
        time.sleep(0.05)
    return False


def test_two_trainings_started_together_get_two_complete_folders(tmp_path):
    job = ["train", "--dataset", "iris", "--epochs", "2", "--hidden", "8", "--quiet"]
    procs = [_descend(*job, cwd=tmp_path) for _ in range(2)]
    results = [p.communicate(timeout=120) for p in procs]
    assert [p.returncode for p in procs] == [0, 0], results
    folders = sorted((tmp_path / "runs").iterdir())
    assert len(folders) == 2 and folders[0].name != folders[1].name
    for folder in folders:
        assert folder.name.startswith("iris-") and len(folder.name.rsplit("-", 1)[1]) == 6  # time + random suffix
        assert {f for f in RUN_FILES} <= {p.name for p in folder.iterdir()}
        assert json.loads((folder / "metrics.json").read_text())["epochs"] == 2
    printed = sorted(out.split("run folder: ")[1].split()[0] for out, _ in results)
    assert printed == [str(Path("runs") / f.name) for f in folders]


def test_a_folder_in_use_refuses_a_second_process_and_ctrl_c_saves_and_exits_130(tmp_path):
    out = tmp_path / "run"
    a = _descend("train", "--dataset", "iris", "--epochs", "100000", "--patience", "0", "--hidden", "8", "--quiet",
                 "--out", str(out), cwd=tmp_path)
    try:
        assert _wait_for(lambda: (out / "metrics.jsonl").is_file() and (out / "checkpoint.safetensors").is_file())
        assert (out / ".lock").read_text().strip() == str(a.pid)
        stale = out / "checkpoint.safetensors.planted.tmp"  # as if a save had been killed: the holder's to clean
        stale.write_bytes(b"partial")
        b = _descend("train", "--dataset", "iris", "--epochs", "1", "--quiet", "--out", str(out), "--overwrite",
                     cwd=tmp_path)
        b_out, b_err = b.communicate(timeout=120)
        assert b.returncode == 1, b_err
        assert b_err.strip() == (f"descend: error: run folder {out} is in use by process {a.pid} (it holds "
                                 f"{out / '.lock'}); wait for that run to finish, or choose another --out")
        assert stale.exists()  # the refused process touched nothing
        assert a.poll() is None  # the first run goes on
        a.send_signal(signal.SIGINT)
        a_out, a_err = a.communicate(timeout=60)
    finally:
        if a.poll() is None:
            a.kill()
    assert a.returncode == 130, a_err
    assert "interrupted" in a_err and f"--resume {out}" in a_err and "Traceback" not in a_err
    final = json.loads((out / "metrics.json").read_text())
    assert final["stop_reason"].startswith("interrupted by the user")
    _, meta = load_checkpoint(out / "checkpoint.safetensors")
    assert meta["clock"]["step"] == final["steps"] > 0  # the checkpoint holds the state at the interruption
    # the next holder of the lock (a resume) removes the stale temp file
    assert main(["train", "--resume", str(out), "--epochs", str(final["epochs"] + 1), "--quiet"]) == 0
    assert not stale.exists()


def test_a_diverged_run_exits_3_keeping_the_last_good_theta(tmp_path, capsys):
    out = tmp_path / "run"
    code = main(["train", "--dataset", "iris", "--optimizer", "sgd", "--lr", "50", "--patience", "0", "--quiet",
                 "--out", str(out)])
    err = capsys.readouterr().err
    assert code == 3, err
    assert err.startswith("descend: error: training diverged (") and err.count("\n") == 1
    arrays, _ = load_checkpoint(out / "checkpoint.safetensors")
    assert np.all(np.isfinite(arrays["theta"]))


def test_lbfgs_trains_with_the_full_batch_from_flags(tmp_path, capsys):
    out = tmp_path / "run"
    assert main(["train", "--dataset", "iris", "--optimizer", "lbfgs", "--lr", "1", "--batch-size", "full",
                 "--epochs", "15", "--patience", "0", "--quiet", "--out", str(out)]) == 0
    final = json.loads((out / "metrics.json").read_text())
    assert final["steps"] == 15 and final["test_accuracy"] > 0.85
    history = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    assert history[-2]["train_loss"] < 0.5 * history[0]["train_loss"]


def test_version(capsys):
    import descend
    assert main(["--version"]) == 0
    assert capsys.readouterr().out.strip() == f"descend {descend.__version__}"
