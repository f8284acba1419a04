"""What a search worker keeps between trials (the prepared data set) and the executors' processes: a Dask
LocalCluster of worker processes gives the same trial table as the local run."""
import contextlib
import os
import threading
import time

import numpy as np

import pytest

from descend.config import prepare_data, resolve
from descend.search.trial import forget_data, trial_data


@pytest.fixture(autouse=True)
def _no_data_sets_kept():
    """Each test starts and ends with this process's cache of prepared data sets empty."""
    forget_data()
    yield
    forget_data()


def test_trial_data_is_prepared_once_per_process_and_never_shared_writable():
    cfg = resolve({"data": {"dataset": "iris", "standardize": True}})
    first, again = trial_data(cfg), trial_data(cfg)
    fresh = prepare_data(cfg)
    for a, b, c in zip(first[:6], again[:6], fresh[:6]):
        assert a is b  # the same arrays: loaded and split once
        np.testing.assert_array_equal(a, c)  # and what prepare_data gives
        assert not a.flags.writeable
    assert first[6] == fresh[6]
    assert first[7] is not again[7] and type(first[7]) is type(fresh[7])  # fit fits it: a fresh one each trial
    other = trial_data(resolve({"data": {"dataset": "iris", "val_fraction": 0.5}}))
    assert len(other[2]) != len(first[2])  # another [data] table is another entry


def test_trial_data_reloads_a_data_file_that_changed(tmp_path):
    path = tmp_path / "d.csv"
    rows = lambda n: "x1,x2,y\n" + "".join(f"{i},{i % 3},{i % 2}\n" for i in range(n))
    path.write_text(rows(40))
    cfg = resolve({"data": {"file": str(path), "target": "y"}})
    X, *_ = trial_data(cfg)
    path.write_text(rows(60))  # a different size: the key sees it even within the file system's time resolution
    X2, *_ = trial_data(cfg)
    assert len(X2) > len(X)


def test_executor_dask_runs_trials_in_worker_processes_and_gives_the_local_table(tmp_path, monkeypatch):
    from descend.search import LogUniform, SearchSpec, Space, coarse_to_fine, run_search, runner
    from descend.search.store import RESULT_COLUMNS

    pids, make = [], runner.make_executor

    @contextlib.contextmanager
    def spy(kind, workers):  # the executor the search builds: where does it run work?
        with make(kind, workers) as (ex, threads):
            pids.append({ex.submit(os.getpid).result() for _ in range(4)})
            yield ex, threads

    base = resolve({"data": {"dataset": "iris"}, "model": {"hidden": [8]},
                    "train": {"epochs": 2, "patience": 0, "batch_size": 16}})
    space = Space({"optimizer.lr": LogUniform(1e-3, 20.0), "train.l2": LogUniform(1e-5, 1e-1)})
    strategy = coarse_to_fine([(4, 2), (2, 2)])
    local = run_search(base, SearchSpec(space, strategy, seed=3), tmp_path / "local")["trials"]
    # `--executor dask`: a LocalCluster of 2 single-threaded worker processes, started and closed by the search
    monkeypatch.setattr(runner, "make_executor", spy)
    dask = run_search(base, SearchSpec(space, strategy, seed=3, workers=2, executor="dask"), tmp_path / "dask")["trials"]
    assert [[t[c] for c in RESULT_COLUMNS] for t in local] == [[t[c] for c in RESULT_COLUMNS] for t in dask]
    assert len(dask) == 6 and any(t["status"] == "done" for t in dask)
    assert len(pids) == 1 and os.getpid() not in pids[0]  # worker processes, not this one


def test_a_search_run_in_this_process_lets_go_of_its_data_set(tmp_path, monkeypatch):
    from descend.search import LogUniform, SearchSpec, Space, random, run_search
    from descend.search import trial
    from descend.search.trial import _DATA

    held = []
    real = trial.trial_data
    monkeypatch.setattr(trial, "trial_data", lambda cfg: held.append(len(_DATA)) or real(cfg))
    base = resolve({"data": {"dataset": "iris"}, "model": {"hidden": [4]}, "train": {"epochs": 1, "patience": 0}})
    trials = run_search(base, SearchSpec(Space({"optimizer.lr": LogUniform(1e-3, 1e-1)}), random(2)),
                        tmp_path / "s")["trials"]
    assert any(t["status"] == "done" for t in trials) and held == [0, 1]  # loaded once, then kept for trial 2
    assert _DATA == {}


def _pid_after(seconds):
    import time
    time.sleep(seconds)
    return os.getpid()


def test_local_workers_train_here_at_once_and_in_the_pool_and_restore_this_process_blas():
    from threadpoolctl import threadpool_info
    from descend.search import make_executor

    before = [(i["internal_api"], i["num_threads"]) for i in threadpool_info() if i["user_api"] == "blas"]
    with make_executor("local", 2) as (ex, threads):
        assert threads is None  # the slots are pinned where they run, not per trial
        release = threading.Event()
        held = ex.submit(release.wait, 60)  # the slot here (a thread of this process: the event reaches it)
        pool_pid = ex.submit(_pid_after, 0.0).result(timeout=60)
        assert pool_pid != os.getpid()  # the slot is busy: the pool's process, once up
        release.set()
        assert held.result(timeout=60) is True
        inside = [i["num_threads"] for i in threadpool_info() if i["user_api"] == "blas"]
        assert inside and set(inside) == {max(1, (os.cpu_count() or 1) // 2)}
        for _ in range(3):  # a finished trial frees the slot here before its result is out
            assert ex.submit(_pid_after, 0.0).result(timeout=60) == os.getpid()
    assert [(i["internal_api"], i["num_threads"]) for i in threadpool_info() if i["user_api"] == "blas"] == before
    # a pool that ran trials is closed on the way out, not by a thread that could outlive the interpreter's exit
    with pytest.raises(ProcessLookupError):
        os.kill(pool_pid, 0)


def test_a_search_ending_on_an_error_stops_the_trial_running_in_its_own_process():
    from descend.search import make_executor, run_trial

    base = resolve({"data": {"dataset": "iris"}, "model": {"hidden": [8]},
                    "train": {"epochs": 2000, "patience": 0, "batch_size": 4}})
    with pytest.raises(KeyboardInterrupt):
        with make_executor("local", 1) as (ex, _):
            fut = ex.submit(run_trial, base, {}, seed=0)  # one worker: it starts at once, in this process
            raise KeyboardInterrupt  # Ctrl-C reaches the coordinator, never the trial's thread
    out = fut.result(timeout=120)
    assert out["stop_reason"] == "stopped by a callback"  # the slot's stop event, at its next step
    full = 2000 * -(-len(prepare_data(base)[0]) // 4)  # 2,000 epochs of batches of 4
    assert out["steps"] < full // 2


def test_a_queued_trial_takes_the_slot_here_rather_than_wait_for_a_pool_process_to_start(monkeypatch):
    from concurrent.futures import Future
    from descend.search import make_executor, runner

    calls = []

    class Booting:  # a process pool whose processes never come up
        def __init__(self, *a, **k):
            pass

        def submit(self, fn, *a, **k):
            calls.append(fn)
            return Future()  # never done

        def shutdown(self, *a, **k):
            pass

    monkeypatch.setattr(runner, "ProcessPoolExecutor", Booting)
    with make_executor("local", 2) as (ex, _):
        trials = [ex.submit(_pid_after, 0.01) for _ in range(4)]
        assert [t.result(timeout=30) for t in trials] == [os.getpid()] * 4  # each waited for the slot here
        for _ in range(3000):  # the pool is started in the background: wait until it has been asked
            if calls:
                break
            time.sleep(0.01)
        assert calls == [os.getpid]  # the pool got its start-up probe and no trial


def test_a_broken_pool_fails_the_trial_instead_of_losing_it(monkeypatch):
    from concurrent.futures import Future
    from concurrent.futures.process import BrokenProcessPool
    from descend.search import make_executor, runner

    class Broken:  # a pool whose process died at start-up: its probe fails, later submissions are refused
        def __init__(self, *a, **k):
            pass

        def submit(self, fn, *a, **k):
            if fn is os.getpid:
                f = Future()
                f.set_exception(BrokenProcessPool("a process died"))
                return f
            raise BrokenProcessPool("a process died")

        def shutdown(self, *a, **k):
            pass

    monkeypatch.setattr(runner, "ProcessPoolExecutor", Broken)
    release = threading.Event()
    with make_executor("local", 2) as (ex, _):
        held = ex.submit(release.wait, 60)  # the slot here is busy: the next trial goes to the pool
        with pytest.raises(BrokenProcessPool):
            ex.submit(_pid_after, 0.0).result(timeout=30)
        release.set()
        assert held.result(timeout=60) is True


def test_a_search_ending_on_an_error_cancels_the_trials_queued_in_the_pool(monkeypatch):
    from concurrent.futures import Future
    from descend.search import make_executor, runner

    closed = []

    class Up:  # a pool whose process has started: it answers its probe, and records how it is shut down
        def __init__(self, *a, **k):
            pass

        def submit(self, fn, *a, **k):
            f = Future()
            if fn is os.getpid:
                f.set_result(fn())
            return f

        def shutdown(self, wait=True, *, cancel_futures=False):
            closed.append(cancel_futures)

    monkeypatch.setattr(runner, "ProcessPoolExecutor", Up)
    for failing in (False, True):
        with contextlib.suppress(RuntimeError):
            with make_executor("local", 2) as (ex, _):
                for _ in range(3000):  # the pool is started in the background: wait until it has answered
                    if ex._pool_idle:
                        break
                    time.sleep(0.01)
                if failing:
                    raise RuntimeError("the search failed")
    assert closed == [False, True]  # a finished search lets the pool's trials end; a failed one cancels them


def test_the_local_pool_never_raises_a_blas_limit_the_user_set_lower():
    from threadpoolctl import threadpool_info, threadpool_limits
    from descend.search import make_executor

    def blas():
        return [i["num_threads"] for i in threadpool_info() if i["user_api"] == "blas"]

    with threadpool_limits(limits=1, user_api="blas"):  # as OPENBLAS_NUM_THREADS=1 would
        with make_executor("local", 1) as (ex, _):  # one worker: cores/1 threads at most
            assert ex.submit(blas).result(timeout=60) == blas() == [1] * len(blas())
        assert blas() == [1] * len(blas())
