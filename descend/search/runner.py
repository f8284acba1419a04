"""The coordinator: plans each stage, submits its trials to an executor, writes every finished trial to the store.

Any ``concurrent.futures.Executor`` runs trials (``make_executor`` gives a local process pool, a Dask
``LocalCluster`` or a running Dask scheduler's). Trials are keyed by (stage, index) and their seeds
come from the search seed, so the executor, the worker count and the finishing order never change
an answer; the next stage is planned only when the whole stage has finished.
"""
from __future__ import annotations

import collections
import contextlib
import os
import sys
import threading
from pathlib import Path
from concurrent.futures import FIRST_COMPLETED, BrokenExecutor, Executor, Future, ProcessPoolExecutor, wait

from ..common.blas import at_most
from .space import SpaceError
from .spec import SearchSpec, preflight
from .store import DB_NAME, FINISHED, Store
from .strategy import check_edges, trial_seed
from .trial import SLOT, forget_data, pin_threads, run_trial

__all__ = ["run_search", "make_executor", "DASK_TIMEOUT"]

DASK_TIMEOUT = 10  # seconds to wait for a Dask scheduler to answer

# what the local pool's server imports once for every worker: the trial, the training loop, Numba's compiler
PRELOAD = ["descend.search.preload"]


@contextlib.contextmanager
def make_executor(kind: str = "local", workers: int = 1):
    """An executor for ``kind`` — "local" (``workers`` slots, each pinned to cores/workers BLAS threads: one in
    this process, the others a process pool), "dask" (a ``dask.distributed.LocalCluster`` of ``workers`` single-threaded processes) or
    "tcp://host:port" (a running Dask scheduler) — closed on exit. Yields (executor, threads per trial)."""
    threads = max(1, (os.cpu_count() or 1) // workers)
    if kind == "local":
        with _LocalPool(workers, threads) as pool:
            yield pool, None
        return
    from dask.distributed import Client, LocalCluster
    if kind == "dask":
        with LocalCluster(n_workers=workers, threads_per_worker=1, processes=True, dashboard_address=None) as cluster, \
                Client(cluster) as client:
            yield client.get_executor(pure=False), threads
        return
    try:
        client = Client(kind, timeout=DASK_TIMEOUT)
    except (OSError, TimeoutError) as e:
        raise SpaceError(f"no Dask scheduler answers at {kind} within {DASK_TIMEOUT} s ({type(e).__name__}); "
                         "start one with `dask scheduler` and `dask worker ADDRESS`, or check the address") from None
    with client:
        yield client.get_executor(pure=False), 1


def _settle(fut: Future, ok: bool, value) -> None:
    fut.set_result(value) if ok else fut.set_exception(value)


class _LocalPool(Executor):
    """``workers`` trial slots on this machine, each pinned to ``threads`` BLAS threads: one runs trials in this
    process (in a thread), the others in a process pool. The slot here trains from the first moment, while the
    pool's processes start (its server imports Numba and the trial's code, as long as many small trials take).

    Submitted trials wait in one queue and start on whichever slot is free — the slot here, or the pool once it
    has answered (its first process is up; a trial handed to it may wait there for a later process to boot) —
    so a search of a few small trials is never slower than on one worker. A trial's result does not depend on
    where it ran (its seed and thread count are its own), so the table is the same as with any other executor.
    One worker is the slot here alone (no start-up, no pickling)."""

    def __init__(self, workers: int, threads: int):
        import multiprocessing
        from concurrent.futures import ThreadPoolExecutor
        # forkserver: workers fork from a clean server process (never from this one, whose BLAS/Numba threads
        # may be live) that imported the trial's code once, so a worker starts without re-importing it
        ctx = multiprocessing.get_context("forkserver")
        ctx.set_forkserver_preload(PRELOAD)
        self._pool = (ProcessPoolExecutor(workers - 1, mp_context=ctx, initializer=pin_threads, initargs=(threads,))
                      if workers > 1 else None)  # first: what follows cannot fail and leave it behind
        self._blas = at_most(threads, "blas")  # this process's BLAS, restored at the end
        self._here = ThreadPoolExecutor(1, initializer=self._init_here, initargs=(threads,))
        self._lock = threading.Lock()
        self._queue: collections.deque = collections.deque()  # (future, fn, args, kwargs) not started yet
        self._here_busy, self._pool_idle, self._pool_running, self._closed = False, 0, 0, False
        self._stop = threading.Event()  # set when the search ends on an error or Ctrl-C: the trial here stops too
        if self._pool is not None:  # in the background: starting the first process waits for the server's imports
            threading.Thread(target=self._start_pool, args=(workers - 1,), name="descend-pool-start",
                             daemon=True).start()

    def _init_here(self, threads: int) -> None:
        pin_threads(threads, libraries=False)  # Numba's count is this thread's; BLAS is limited above
        SLOT.stop = self._stop

    def _start_pool(self, processes: int) -> None:
        """Start the pool's processes; each that answers is an idle slot. A pool that cannot start is handed the
        next trial all the same, which then fails with its error (the coordinator stops the search)."""
        try:
            for _ in range(processes):
                self._pool.submit(os.getpid).add_done_callback(self._pool_freed)
        except BaseException:
            self._pool_freed(None)

    def submit(self, fn, /, *args, **kwargs):
        fut = Future()
        with self._lock:
            if self._closed:
                raise RuntimeError("cannot submit a trial after the local pool was shut down")
            self._queue.append((fut, fn, args, kwargs))
        self._dispatch()
        return fut

    def _dispatch(self) -> None:
        """Start queued trials on the free slots: here first, then the pool's idle processes."""
        starts = []
        with self._lock:
            while self._queue and not self._closed and (not self._here_busy or self._pool_idle):
                fut, fn, args, kwargs = self._queue.popleft()
                if not fut.set_running_or_notify_cancel():
                    continue  # cancelled while it waited
                here = not self._here_busy
                if here:
                    self._here_busy = True
                else:
                    self._pool_idle -= 1
                    self._pool_running += 1
                starts.append((here, fut, fn, args, kwargs))
        for here, fut, fn, args, kwargs in starts:
            try:
                if here:
                    self._here.submit(self._run_here, fut, fn, args, kwargs)
                else:
                    self._pool.submit(fn, *args, **kwargs).add_done_callback(
                        lambda done, fut=fut: self._pool_done(fut, done))
            except BaseException as e:  # a pool that cannot take work (broken, or shut down meanwhile)
                with self._lock:
                    if here:
                        self._here_busy = False
                    else:
                        self._pool_running -= 1
                # as broken, whatever the cause: the coordinator stops and --resume re-runs the trial
                fut.set_exception(e if isinstance(e, BrokenExecutor) else BrokenExecutor(f"{type(e).__name__}: {e}"))

    def _run_here(self, fut, fn, args, kwargs) -> None:
        try:
            outcome = (True, fn(*args, **kwargs))
        except BaseException as e:  # the coordinator sees it as it would a pool's trial error
            outcome = (False, e)
        with self._lock:  # free before the result is out: the coordinator's next trial finds the slot free
            self._here_busy = False
        _settle(fut, *outcome)
        self._dispatch()

    def _pool_done(self, fut, done) -> None:
        try:
            outcome = (True, done.result())
        except BaseException as e:  # e.g. BrokenProcessPool: the coordinator stops the search
            outcome = (False, e)
        with self._lock:  # free before the result is out, as the slot here
            self._pool_running -= 1
            self._pool_idle += 1
        _settle(fut, *outcome)
        self._dispatch()

    def _pool_freed(self, _done) -> None:
        with self._lock:
            self._pool_idle += 1
        self._dispatch()

    def __exit__(self, kind, value, tb):
        if kind is not None:  # the search failed or was interrupted: the trial here stops, queued ones never start
            self._stop.set()
        self.shutdown(wait=True, cancel_futures=kind is not None)
        return False

    def shutdown(self, wait: bool = True, *, cancel_futures: bool = False) -> None:
        with self._lock:
            self._closed = True
            waiting = [item[0] for item in self._queue]
            self._queue.clear()
            started = self._pool_idle + self._pool_running > 0  # a process answered: trials may have run there
        for fut in waiting:  # never started
            fut.cancel()
        try:
            if self._pool is not None and not started:
                # still starting, so no trial in it: it finishes starting and shuts down on its own, and a search of
                # a few small trials never waits for processes it did not need (in a thread: while the pool starts
                # its first process, its shutdown waits for the server's imports). A started pool is shut down here:
                # closing it in a thread could race the interpreter's exit (concurrent.futures' exit hook)
                threading.Thread(target=self._pool.shutdown, kwargs={"wait": True, "cancel_futures": True},
                                 name="descend-pool-close", daemon=True).start()
            elif self._pool is not None:
                self._pool.shutdown(wait, cancel_futures=cancel_futures)
            self._here.shutdown(wait)  # a trial handed here always runs: its future is settled, the stop event ends it
        finally:
            forget_data()  # the data set the slot here loaded stays only while the search runs
            self._blas.restore_original_limits()


class _Progress:
    """The live line: stage, trials done / running / diverged / failed, best score so far."""

    def __init__(self, spec: SearchSpec, total: int, enabled: bool):
        self.spec, self.total, self.enabled = spec, total, enabled

    def show(self, store: Store, stage: int) -> None:
        if not self.enabled:
            return
        c = store.counts()
        best = store.db.execute(f"SELECT {'MAX' if self.spec.maximize else 'MIN'}(score) FROM trials").fetchone()[0]
        done = c["done"] + c["diverged"] + c["failed"]
        line = (f"stage {stage + 1}/{len(self.spec.strategy.stages)} · trials {done}/{self.total} done · "
                f"{c['running']} running · {c['diverged']} diverged · {c['failed']} failed · best {self.spec.metric} "
                + ("—" if best is None else f"{best:.4f}"))
        print("\r" + line.ljust(100), end="", file=sys.stderr, flush=True)

    def end(self):
        if self.enabled:
            print(file=sys.stderr, flush=True)


def run_search(base_cfg: dict, spec: SearchSpec, folder, *, executor: Executor | None = None,
               resume: bool = False, progress: bool = False) -> dict:
    """Run (or with ``resume`` continue) the search ``spec`` over ``base_cfg`` in ``folder``; return
    {"trials": every row, "edges": [[Edge, ...] per stage], "spaces": [Space per stage]}.

    ``executor``: any ``concurrent.futures.Executor`` (not shut down here); None builds one from
    ``spec.executor`` and ``spec.workers``. ``spec.workers`` trials are kept in flight either way. Bad input is refused before anything is written.
    """
    preflight(base_cfg, spec.space)
    folder = Path(folder)
    if resume:
        store = Store(folder, create=False)
        if store.get_meta("fingerprint") != spec.fingerprint(base_cfg):
            store.close()
            raise SpaceError(f"the store in {folder} was made by a different search (space, strategy, seed, metric "
                             "or training config differ); resume it with its own config, or start a new --out")
        store.reset_running()
    else:
        if (folder / DB_NAME).exists():
            raise SpaceError(f"{folder} already holds a search; continue it with --resume {folder} or choose another --out")
        store = Store(folder)
        store.set_meta({"fingerprint": spec.fingerprint(base_cfg)})
    try:
        if executor is not None:
            return _stages(store, base_cfg, spec, executor, None, progress, spec.workers)
        with make_executor(spec.executor, spec.workers) as (ex, threads):
            return _stages(store, base_cfg, spec, ex, threads, progress, spec.workers)
    finally:
        store.close()


def _stages(store: Store, base_cfg, spec: SearchSpec, executor, threads, progress, window) -> dict:
    strategy, space = spec.strategy, spec.space
    spaces, all_edges = [], []
    planned = 0
    for s, stage in enumerate(strategy.stages):
        previous = [(r["params"], r["score"]) for r in store.trials(s - 1)] if s else []
        if s:
            space = strategy.next_space(space, previous, maximize=spec.maximize)
        spaces.append(space)
        if not store.trials(s):
            history = [(r["params"], r["score"]) for r in store.trials() if r["stage"] < s]
            plan = strategy.plan(space, s, spec.seed, history, maximize=spec.maximize, previous=previous)
            store.add_stage(s, plan, [trial_seed(spec.seed, s, i) for i in range(len(plan))], stage.epochs)
        rows = store.trials(s)
        planned += len(rows)
        bar = _Progress(spec, planned + sum(st.trials or 0 for st in strategy.stages[s + 1:]), progress)
        _run_stage(store, base_cfg, spec, executor, threads, [r for r in rows if r["status"] not in FINISHED],
                   bar, s, window)
        bar.end()
        all_edges.append(check_edges(space, store.trials(s), maximize=spec.maximize))
    return {"trials": store.trials(), "edges": all_edges, "spaces": spaces}


def _run_stage(store, base_cfg, spec, executor, threads, todo, bar, stage, window) -> None:
    """Keep ``window`` trials in flight; write each as it finishes (one transaction each)."""
    todo = list(todo)
    running: dict = {}
    try:
        while todo or running:
            while todo and len(running) < max(window, 1):
                row = todo.pop(0)
                fut = executor.submit(run_trial, base_cfg, row["params"], seed=row["seed"], epochs=row["epochs"],
                                      metric=spec.metric, threads=threads)
                running[fut] = row["id"]
                store.mark_running([row["id"]])
            bar.show(store, stage)
            finished, _ = wait(list(running), return_when=FIRST_COMPLETED)
            for fut in finished:
                trial_id = running.pop(fut)
                try:
                    result = fut.result()
                except BrokenExecutor as e:  # the pool is gone: its trials stay running, --resume re-runs them
                    raise RuntimeError(f"the worker pool broke ({e}); continue with --resume") from None
                except Exception as e:  # the worker running this trial died (e.g. Dask's KilledWorker)
                    result = {"status": "failed", "score": None, "val_loss": None, "val_accuracy": None,
                              "steps": None, "diverged_step": None, "stop_reason": None,
                              "error": f"worker lost: {type(e).__name__}: {e}", "curve": [], "seconds": None}
                store.finish(trial_id, result)
            bar.show(store, stage)
    finally:
        for fut in running:
            fut.cancel()
