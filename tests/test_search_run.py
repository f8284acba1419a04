"""Search trials as fit runs: divergence and failure recorded, the SQLite store, resume after SIGKILL,
the same trial table on 1 worker, 2 workers and a Dask cluster, and the ``descend search`` command."""
import os
import signal
import sqlite3
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pytest
import tomli_w
from dask.distributed import LocalCluster
from threadpoolctl import threadpool_limits

from descend import cli
from descend.config import load_config, resolve
from descend.search import (Choice, LogUniform, SearchSpec, Space, SpaceError, Store, coarse_to_fine, random,
                            run_search, run_trial, trial_seed)
from descend.search import runner
from descend.search.store import RESULT_COLUMNS

ROOT = Path(__file__).resolve().parent.parent
BASE = resolve({"data": {"dataset": "iris"}, "model": {"hidden": [8]},
                "train": {"epochs": 2, "patience": 0, "batch_size": 16}})
SPACE = Space({"optimizer.lr": LogUniform(1e-3, 20.0), "train.l2": LogUniform(1e-5, 1e-1)})


def table(trials):
    return [tuple(t[c] for c in RESULT_COLUMNS) for t in trials]


def test_a_trial_with_lr_10_is_recorded_as_diverged_within_a_few_steps():
    r = run_trial(BASE, {"optimizer.lr": 10.0, "optimizer.name": "sgd"}, seed=1)
    assert r["status"] == "diverged" and r["score"] is None
    assert 1 <= r["diverged_step"] <= 5 and "diverged" in r["stop_reason"]
    ok = run_trial(BASE, {"optimizer.lr": 1e-2}, seed=1)
    assert ok["status"] == "done" and 0 < ok["score"] <= 1 and len(ok["curve"]) == 2
    assert ok["score"] == ok["curve"][-1]["val_accuracy"]  # the validation split's, not the test split's


def test_a_failed_trial_is_recorded_and_the_search_goes_on(tmp_path):
    space = Space({"optimizer.lr": LogUniform(1e-3, 1e-1), "model.activation": Choice(["relu", "no_such_act"])})
    spec = SearchSpec(space, random(6), seed=1)  # seed 1 draws both activations
    with ThreadPoolExecutor(1) as ex:
        trials = run_search(BASE, spec, tmp_path / "s", executor=ex)["trials"]
    failed = [t for t in trials if t["status"] == "failed"]
    done = [t for t in trials if t["status"] == "done"]
    assert failed and done and len(failed) + len(done) == 6
    assert all(t["params"]["model.activation"] == "no_such_act" and "no_such_act" in t["error"] for t in failed)


def test_the_store_has_one_row_per_trial_in_wal_mode(tmp_path):
    spec = SearchSpec(SPACE, coarse_to_fine([(4, 1), (3, 2)]), seed=5)
    with ThreadPoolExecutor(2) as ex:
        result = run_search(BASE, spec, tmp_path, executor=ex)
    db = sqlite3.connect(tmp_path / "search.sqlite")
    assert db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    rows = db.execute("SELECT stage, idx, seed, epochs, status FROM trials ORDER BY id").fetchall()
    assert [(s, i) for s, i, *_ in rows] == [(0, i) for i in range(4)] + [(1, i) for i in range(3)]
    assert all(seed == trial_seed(5, s, i) for s, i, seed, *_ in rows)
    assert [e for *_, e, _ in rows] == [1] * 4 + [2] * 3
    assert {st for *_, st in rows} <= {"done", "diverged"}
    # stage 2 is drawn from the narrowed space, inside stage 1's ranges
    lr2 = result["spaces"][1].dims["optimizer.lr"]
    assert 1e-3 <= lr2.low < lr2.high <= 20.0 and np.log(lr2.high / lr2.low) < np.log(20.0 / 1e-3)  # narrowed
    assert all(lr2.low <= t["params"]["optimizer.lr"] <= lr2.high for t in result["trials"] if t["stage"] == 1)


def test_same_trial_table_on_1_worker_2_workers_and_a_dask_cluster(tmp_path):
    spec = SearchSpec(SPACE, coarse_to_fine([(4, 2), (2, 2)]), seed=3, workers=1)
    one = run_search(BASE, spec, tmp_path / "w1")["trials"]
    two = run_search(BASE, SearchSpec(SPACE, spec.strategy, seed=3, workers=2), tmp_path / "w2")["trials"]
    # a running Dask scheduler reached by its tcp:// address, as `--executor tcp://host:port` does; the trials
    # pin BLAS in this process (an in-process worker), so the limits are put back afterwards
    with threadpool_limits(limits=os.cpu_count()), \
            LocalCluster(n_workers=1, threads_per_worker=1, processes=False, protocol="tcp", host="127.0.0.1",
                         dashboard_address=None) as cluster:
        address = cluster.scheduler_address
        assert address.startswith("tcp://127.0.0.1:")
        dask = run_search(BASE, SearchSpec(SPACE, spec.strategy, seed=3, executor=address),
                          tmp_path / "dask")["trials"]
    assert table(one) == table(two) == table(dask)
    assert len(one) == 6 and any(t["status"] == "done" for t in one)


def test_a_dask_address_that_does_not_answer_is_a_clear_error(tmp_path, monkeypatch):
    monkeypatch.setattr(runner, "DASK_TIMEOUT", 2)
    spec = SearchSpec(SPACE, random(2), executor="tcp://127.0.0.1:9")
    with pytest.raises(SpaceError, match="no Dask scheduler answers at tcp://127.0.0.1:9"):
        run_search(BASE, spec, tmp_path / "s")  # within DASK_TIMEOUT: the error is the timeout's


def _search_toml(path, trials=14, epochs=3):
    cfg = {"data": {"dataset": "iris"}, "model": {"hidden": [16]}, "train": {"patience": 0, "batch_size": 8},
           "search": {"strategy": "random", "trials": trials, "epochs": epochs, "seed": 2, "workers": 1,
                      "space": {"optimizer.lr": {"log_uniform": [1e-3, 1e-1]},
                                "train.l2": {"log_uniform": [1e-5, 1e-2]}}}}
    path.write_text(tomli_w.dumps(cfg))
    return path


def _finished(db_path):
    try:
        db = sqlite3.connect(f"file:{db_path}?mode=ro", uri=True, timeout=5)
        rows = db.execute("SELECT idx, finished FROM trials WHERE status IN ('done', 'diverged', 'failed')").fetchall()
        db.close()
        return dict(rows)
    except sqlite3.Error:
        return {}


def test_sigkill_then_resume_keeps_finished_trials_and_runs_none_twice(tmp_path):
    config, out = _search_toml(tmp_path / "s.toml"), tmp_path / "search"
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    proc = subprocess.Popen([sys.executable, "-m", "descend.cli", "search", str(config), "--out", str(out), "--quiet"],
                            env=env, start_new_session=True, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 120
    while len(_finished(out / "search.sqlite")) < 3 and time.monotonic() < deadline and proc.poll() is None:
        time.sleep(0.02)
    os.killpg(proc.pid, signal.SIGKILL)  # the coordinator and its pool's workers
    proc.wait()
    before = _finished(out / "search.sqlite")
    assert 3 <= len(before) < 14, "the search should have been killed part-way"
    assert cli.main(["search", "--resume", str(out), "--quiet"]) == 0
    after = Store(out, lock=False, create=False).trials()
    assert len(after) == 14 and all(t["status"] in ("done", "diverged") for t in after)
    for t in after:  # finished trials kept as they were: not run again
        if t["idx"] in before:
            assert t["finished"] == before[t["idx"]]
    # and the resumed table equals an uninterrupted search's
    with ThreadPoolExecutor(1) as ex:
        from descend.search.command import _load
        base, spec, _ = _load(config)
        fresh = run_search(base, spec, tmp_path / "fresh", executor=ex)["trials"]
    assert table(after) == table(fresh)


def test_resume_refuses_a_store_from_a_different_search(tmp_path):
    with ThreadPoolExecutor(1) as ex:
        run_search(BASE, SearchSpec(SPACE, random(2), seed=0), tmp_path, executor=ex)
        other = Space({"optimizer.lr": LogUniform(1e-4, 1.0), "train.l2": LogUniform(1e-5, 1e-1)})
        with pytest.raises(SpaceError, match="different search"):
            run_search(BASE, SearchSpec(other, random(2), seed=0), tmp_path, executor=ex, resume=True)
        with pytest.raises(SpaceError, match="already holds a search"):
            run_search(BASE, SearchSpec(SPACE, random(2), seed=0), tmp_path, executor=ex)


def test_bad_input_is_refused_before_anything_is_written(tmp_path):
    with pytest.raises(SpaceError, match="optimizer.momentum"):  # Adam takes no momentum: refused by the optimizer
        run_search(BASE, SearchSpec(Space({"optimizer.momentum": LogUniform(0.5, 0.9)}), random(2)), tmp_path / "a")
    with pytest.raises(SpaceError, match="model.hidden"):
        run_search(BASE, SearchSpec(Space({"model.hidden": Choice([[8], [0]])}), random(2)), tmp_path / "b")
    assert not (tmp_path / "a").exists() and not (tmp_path / "b").exists()


def test_cli_search_writes_table_best_toml_and_plots_and_best_toml_trains(tmp_path, capsys):
    config = _search_toml(tmp_path / "s.toml", trials=4, epochs=2)
    out = tmp_path / "search"
    assert cli.main(["search", str(config), "--out", str(out), "--quiet", "--test"]) == 0
    printed = capsys.readouterr().out
    assert "val_accuracy" in printed and "best config" in printed
    assert "chosen configuration: test accuracy" in printed and (out / "best-run" / "metrics.json").is_file()
    for name in ("trials.txt", "best.toml", "score_vs_dims.png", "best_curves.png", "search.sqlite", "search.toml"):
        assert (out / name).is_file(), name
    trials = Store(out, lock=False, create=False).trials()
    best = max((t for t in trials if t["score"] is not None), key=lambda t: t["score"])
    cfg = resolve(load_config(out / "best.toml"))
    assert cfg["optimizer"]["lr"] == best["params"]["optimizer.lr"] and cfg["train"]["l2"] == best["params"]["train.l2"]
    assert cli.main(["train", "--config", str(out / "best.toml"), "--epochs", "1", "--out", str(tmp_path / "run"),
                     "--quiet"]) == 0
    assert cli.main(["search", "--status", str(out)]) == 0
    status = capsys.readouterr().out
    done = sum(t["status"] == "done" for t in trials)
    assert f"{done} done" in status


@pytest.mark.parametrize("search, message", [
    ({"strategy": "grid", "space": {"optimizer.lr": {"log_uniform": [1e-4, 1e-1]}}}, "continuous"),
    ({"strategy": "random", "trials": 0, "space": {"optimizer.lr": {"log_uniform": [1e-4, 1e-1]}}}, "zero trials"),
    ({"strategy": "random", "trials": 3, "space": {"optimizer.lr": {"log_uniform": [0, 1e-1]}}}, "low > 0"),
    ({"strategy": "random", "trials": 3, "space": {"train.l3": {"uniform": [0, 1]}}}, "unknown config key"),
    ({"strategy": "random", "trials": 3, "space": {"train.l2": {"uniform": [1, 0]}}}, "inverted"),
])
def test_cli_bad_search_tables_are_one_line_errors_with_exit_2(tmp_path, capsys, search, message):
    path = tmp_path / "bad.toml"
    path.write_text(tomli_w.dumps({"search": search}))
    assert cli.main(["search", str(path), "--out", str(tmp_path / "s")]) == 2
    err = capsys.readouterr().err
    assert err.startswith("descend: error:") and message in err and err.count("\n") == 1
    assert not (tmp_path / "s").exists()


def test_a_search_folder_in_use_is_refused_with_the_holders_pid(tmp_path):
    from descend.runfolder import FolderBusy
    first = Store(tmp_path)
    try:
        with pytest.raises(FolderBusy, match=f"in use by process {os.getpid()}"):
            Store(tmp_path)
    finally:
        first.close()
    Store(tmp_path).close()  # free again once the holder closed it


def test_the_example_search_file_is_a_valid_search():
    from descend.search.command import _load
    base, spec, _ = _load(ROOT / "examples" / "search.toml")
    assert spec.strategy.kind == "coarse_to_fine" and [s.epochs for s in spec.strategy.stages] == [3, 10]
    assert set(spec.space.dims) == {"optimizer.lr", "train.l2"} and all(d.log for d in spec.space.dims.values())
    assert base["data"]["dataset"] == "digits"
