"""Data-parallel training over MPI: N ranks equal one process, faults end the job, bad input is refused.

Every test launches ``mpiexec`` (the mpich wheel's) as a subprocess of this single-process pytest, with a
timeout; the one-process reference runs in-process through the same worker code (tests/_mpi_worker.py).
"""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import mpi4py  # noqa: F401 (the [mpi] extra must be installed: a missing one fails loudly)
import numpy as np
import pytest

import _mpi_worker as W
from descend.train.checkpoint import load_checkpoint

ROOT = Path(__file__).resolve().parents[1]
MPIEXEC = str(Path(sys.executable).parent / "mpiexec")
TIMEOUT = 120


def _env(**extra):
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(ROOT), str(ROOT / "tests")]), MPIEXEC_TIMEOUT=str(TIMEOUT),
               OMP_NUM_THREADS="1", NUMBA_NUM_THREADS="1")
    env.update(extra)
    return env


def mpirun(n: int, specs: list, out: Path, *, timeout=TIMEOUT, **env) -> subprocess.CompletedProcess:
    """``mpiexec -n n python _mpi_worker.py SPECS OUT``, never waiting longer than ``timeout`` seconds."""
    cmd = [MPIEXEC, "-n", str(n), sys.executable, str(ROOT / "tests" / "_mpi_worker.py"), json.dumps(specs), str(out)]
    return subprocess.run(cmd, env=_env(**env), capture_output=True, text=True, timeout=timeout)


def load(out: Path, i: int):
    z = np.load(f"{out}-{i}.npz")
    return z, json.loads(Path(f"{out}-{i}.json").read_text())


def assert_same_run(out, i, spec, rtol):
    """θ, every optimizer and BatchNorm buffer and the history of run ``i`` equal the one-process run."""
    theta, state, buffers, record = W.train(spec)
    z, rec = load(out, i)
    np.testing.assert_allclose(z["theta"], theta, rtol=rtol, atol=rtol * np.abs(theta).max())
    assert z["theta"].dtype == theta.dtype
    for k, v in state.items():
        np.testing.assert_allclose(z[f"opt_{k}"], v, rtol=rtol, atol=rtol * np.abs(v).max(), err_msg=k)
    for k, v in buffers.items():
        np.testing.assert_allclose(z[f"buf_{k}"], v, rtol=rtol, atol=rtol * np.abs(v).max(), err_msg=k)
    assert rec["steps"] == record["steps"] == spec.get("steps", 50)
    assert rec["released"] is True  # fit gave the gradient's MPI memory back
    assert len(set(rec["reductions"])) == 1 and rec["reductions"][0] >= rec["steps"]  # the same collectives
    np.testing.assert_allclose(rec["step_loss"], record["step_loss"], rtol=rtol)
    assert len(rec["epochs"]) == len(record["epochs"]) > 0
    for a, b in zip(rec["epochs"], record["epochs"]):
        assert a.keys() == b.keys()
        np.testing.assert_allclose([a[k] for k in sorted(a)], [b[k] for k in sorted(b)], rtol=rtol, err_msg=str(a))


# n = 50, global batch 11: batches of 11, 11, 11, 11, 6 — uneven shards (4/4/3, last 2/2/2) with 3 ranks
SPECS64 = [{"optimizer": "adam", "bn": True}, {"optimizer": "sgd", "l2": 0.5}, {"optimizer": "sgd", "bn": True},
           {"optimizer": "lbfgs", "batch": None, "steps": 6, "l2": 0.1}]  # the closure all-reduces every call
# L-BFGS's direction H·g multiplies the last bits' rounding by the curvature's condition number: 1e-8 for it
RTOL = {"lbfgs": 1e-8}


@pytest.mark.parametrize("ranks", [2, 3])
def test_ranks_equal_one_process_float64(tmp_path, ranks):
    specs = SPECS64 + [{"optimizer": "adam", "dtype": "float32", "bn": True}, {"optimizer": "adam", "bn": True,
                                                                              "sync": False},
                       {"optimizer": "sgd", "bn": True, "shared_memory": False}]  # the plain Allreduce path
    res = mpirun(ranks, specs, tmp_path / "r")
    assert res.returncode == 0, res.stderr
    for i, spec in enumerate(SPECS64):
        assert_same_run(tmp_path / "r", i, spec, rtol=RTOL.get(spec["optimizer"], 1e-10))
        assert load(tmp_path / "r", i)[1]["still_synced"] is False
    assert_same_run(tmp_path / "r", 4, specs[4], rtol=1e-5)
    assert_same_run(tmp_path / "r", 6, specs[6], rtol=1e-10)
    assert load(tmp_path / "r", 0)[1]["node_sizes"] == [ranks] * ranks  # one node: the shared-memory sum
    # negative control: per-rank BatchNorm statistics are not the one-process statistics
    theta, *_ = W.train(specs[5])
    z, _ = load(tmp_path / "r", 5)
    assert np.abs(z["theta"] - theta).max() > 1e-3 * np.abs(theta).max()


def test_ranks_on_two_nodes_equal_one_process(tmp_path):
    # MPICH's cliques split this machine into two "nodes", {0, 2} and {1}: each sums in its shared memory, the
    # node leaders Allreduce between them
    specs = [{"optimizer": "adam", "bn": True}, {"optimizer": "sgd", "l2": 0.5, "dtype": "float32"}]
    res = mpirun(3, specs, tmp_path / "r", MPIR_CVAR_NUM_CLIQUES="2")
    assert res.returncode == 0, res.stderr
    assert load(tmp_path / "r", 0)[1]["node_sizes"] == [2, 1, 2]
    assert_same_run(tmp_path / "r", 0, specs[0], rtol=1e-10)
    assert_same_run(tmp_path / "r", 1, specs[1], rtol=1e-5)


def test_resume_with_fewer_ranks_equals_uninterrupted_run(tmp_path):
    ck = tmp_path / "ck.safetensors"
    res = mpirun(2, [{"optimizer": "adam", "bn": True, "steps": 23, "checkpoint": str(ck)}], tmp_path / "r")
    assert res.returncode == 0, res.stderr
    resumed = W.train({"optimizer": "adam", "bn": True, "steps": 50, "resume": str(ck)})
    straight = W.train({"optimizer": "adam", "bn": True, "steps": 50})
    for a, b in zip(resumed[:3], straight[:3]):
        for x, y in (zip(a.values(), b.values()) if isinstance(a, dict) else [(a, b)]):
            np.testing.assert_allclose(x, y, rtol=1e-10, atol=1e-10 * np.abs(y).max())
    np.testing.assert_allclose(resumed[3]["step_loss"], straight[3]["step_loss"], rtol=1e-10)


def test_exception_on_one_rank_aborts_the_job(tmp_path):
    res = mpirun(3, [{"fail_rank": 1}], tmp_path / "r", timeout=60)  # a hang would raise TimeoutExpired
    assert res.returncode != 0
    assert "descend: rank 1 failed (RuntimeError: injected failure on rank 1); aborting all ranks" in res.stderr


def test_drift_between_ranks_is_caught_by_the_checksum(tmp_path):
    res = mpirun(2, [{"check_every": 5, "on_rank": {"1": {"perturb_at": 7}}}], tmp_path / "r", timeout=60)
    assert res.returncode != 0
    assert "θ drifted between ranks at evaluation 10: ranks [1] differ from rank 0" in res.stderr


def test_ranks_started_with_different_runs_are_refused(tmp_path):
    res = mpirun(2, [{"on_rank": {"1": {"seed": 5}}}], tmp_path / "r", timeout=60)
    assert res.returncode != 0
    assert "ranks [1] were started with a different run" in res.stderr


def test_more_ranks_than_examples_in_a_batch_is_refused(tmp_path):
    res = mpirun(3, [{"batch": 12}], tmp_path / "r", timeout=60)  # the last batch of 50 holds 2
    assert res.returncode != 0
    assert "3 ranks need at least 3 examples in every batch, but a batch holds 2" in res.stderr


def test_killed_rank_stops_the_others_and_the_checkpoint_loads(tmp_path):
    ck, pid = tmp_path / "ck.safetensors", tmp_path / "pid"
    spec = {"steps": 10**6, "batch": 4, "n": 400, "checkpoint": str(ck), "checkpoint_every": 20, "pidfile": str(pid)}
    cmd = [MPIEXEC, "-n", "2", sys.executable, str(ROOT / "tests" / "_mpi_worker.py"), json.dumps([spec]),
           str(tmp_path / "r")]
    proc = subprocess.Popen(cmd, env=_env(), stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        deadline = time.monotonic() + 60
        while not (ck.is_file() and pid.is_file()) and time.monotonic() < deadline:
            time.sleep(0.1)
        assert ck.is_file(), "no checkpoint within 60 s"
        time.sleep(0.3)  # mid-epoch, between checkpoints
        processes = json.loads(pid.read_text())  # (host, pid) by rank, gathered by Distributed
        assert len(processes) == 2 and processes[0][1] != processes[1][1]
        victim = processes[1][1]
        os.kill(victim, signal.SIGKILL)
        err, _ = proc.communicate(timeout=30)  # the others stop within 30 s, or TimeoutExpired fails the test
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode != 0
    # the rank's supervisor names it by its rank number (and its PID, as in ranks.json); mpiexec's own report follows
    assert f"descend: rank 1 (PID {victim} on " in err and "killed by signal 9 (SIGKILL)" in err, err
    assert err.index("descend: rank 1") < err.index("BAD TERMINATION"), err
    arrays, meta = load_checkpoint(ck)
    assert meta and arrays
    step = meta["clock"]["step"]
    assert step > 0 and step % 20 == 0  # the last checkpoint written before the kill
    resumed = W.train(dict(spec, steps=step + 2, checkpoint=None, checkpoint_every=None, resume=str(ck)))
    assert resumed[3]["steps"] == step + 2  # training continues from it (one process)


def test_distributed_outside_mpiexec_names_the_command(tmp_path):
    env = {k: v for k, v in _env().items() if k not in ("PMI_RANK", "PMI_SIZE", "OMPI_COMM_WORLD_SIZE",
                                                         "PMIX_RANK", "MPI_LOCALNRANKS")}
    res = subprocess.run([sys.executable, "-m", "descend.cli", "train", "--distributed", "--epochs", "1",
                          "--out", str(tmp_path / "run")], env=env, capture_output=True, text=True, timeout=60)
    assert res.returncode == 2
    assert "mpiexec -n 2 descend train --distributed" in res.stderr
    assert "Traceback" not in res.stderr


def test_cli_distributed_run_has_one_writer(tmp_path):
    out = tmp_path / "run"
    job = ["--dataset", "iris", "--hidden", "8", "--epochs", "2", "--quiet"]
    cmd = [MPIEXEC, "-n", "2", sys.executable, "-m", "descend.cli", "train", "--distributed", *job, "--out", str(out)]
    res = subprocess.run(cmd, env=_env(), capture_output=True, text=True, timeout=TIMEOUT)
    assert res.returncode == 0, res.stderr
    final = json.loads((out / "metrics.json").read_text())
    assert final["ranks"] == 2 and final["epochs"] == 2
    ranks = json.loads((out / "ranks.json").read_text())
    assert [r["rank"] for r in ranks] == [0, 1] and len({r["pid"] for r in ranks}) == 2
    assert res.stdout.count("test accuracy") == 1  # rank 0 alone reports
    lines = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    assert [r.get("epoch") for r in lines] == [1, 2, None]  # one writer: no line twice
    # the same job in one process: the same steps, the same metrics (float32)
    one = tmp_path / "one"
    res = subprocess.run([sys.executable, "-m", "descend.cli", "train", *job, "--out", str(one)],
                         env=_env(), capture_output=True, text=True, timeout=TIMEOUT)
    assert res.returncode == 0, res.stderr
    ref = [json.loads(line) for line in (one / "metrics.jsonl").read_text().splitlines()]
    for a, b in zip(lines[:2], ref[:2]):
        assert a["step"] == b["step"]
        for k in ("train_loss", "train_accuracy", "val_loss", "val_accuracy"):
            assert a[k] == pytest.approx(b[k], rel=1e-4), k


def test_blas_threads_are_pinned_per_rank(tmp_path):
    code = "import os, descend; print(os.environ['OMP_NUM_THREADS'], os.environ['OPENBLAS_NUM_THREADS'])"
    env = {k: v for k, v in _env().items() if k not in ("OMP_NUM_THREADS", "NUMBA_NUM_THREADS")}
    res = subprocess.run([MPIEXEC, "-n", "2", sys.executable, "-c", code], env=env, capture_output=True, text=True,
                         timeout=60)
    assert res.returncode == 0, res.stderr
    from descend.threads import pin_threads_per_rank
    want = pin_threads_per_rank({"MPI_LOCALNRANKS": "2"})  # the rule itself is pinned by test_thread_count_rule
    assert res.stdout.split() == [str(want)] * 4


def test_thread_count_rule(monkeypatch):
    from descend.threads import pin_threads_per_rank
    # (cores this process may use, cores of the machine, ranks on the host) → threads per rank: a share of the
    # machine, or all of a binding that already gives this rank fewer cores than the machine has
    for allowed, machine, local, want in ((8, 8, 2, 4), (8, 8, 3, 2), (2, 8, 2, 2), (1, 1, 2, 1), (2, 2, 4, 1)):
        monkeypatch.setattr(os, "sched_getaffinity", lambda _pid, a=allowed: set(range(a)))
        monkeypatch.setattr(os, "cpu_count", lambda c=machine: c)
        env = {"MPI_LOCALNRANKS": str(local)}
        assert pin_threads_per_rank(env) == want and env["OPENBLAS_NUM_THREADS"] == str(want), (allowed, local)
    env = {"MPI_LOCALNRANKS": "2", "OMP_NUM_THREADS": "7"}
    pin_threads_per_rank(env)
    assert env["OMP_NUM_THREADS"] == "7"  # the user's choice stays
    assert pin_threads_per_rank({}) is None  # not under MPI: nothing set


def test_without_mpi4py_the_error_names_the_install(monkeypatch):
    from descend.train.distributed import Distributed
    monkeypatch.setitem(sys.modules, "mpi4py", None)  # as if the [mpi] extra were not installed
    with pytest.raises(RuntimeError, match=r"pip install 'descend\[mpi\]', then run mpiexec -n 2 descend train"):
        Distributed()


def test_shards_split_evenly_in_order_never_padded():
    from descend.train.distributed import Distributed
    slices = [slice(0, 11), slice(11, 22), slice(22, 25)]
    parts = []
    for rank in range(3):
        d = Distributed.__new__(Distributed)  # the split alone: no communicator needed
        d.rank, d.size = rank, 3
        parts.append(d.shard(slices))
    for b, s in enumerate(slices):  # the ranks' parts tile the batch in order, sizes differ by ≤ 1
        got = [parts[r][b] for r in range(3)]
        assert got[0].start == s.start and got[-1].stop == s.stop
        assert all(a.stop == c.start for a, c in zip(got, got[1:]))
        sizes = [g.stop - g.start for g in got]
        assert max(sizes) - min(sizes) <= 1 and sum(sizes) == s.stop - s.start
    assert [p[0] for p in parts] == [slice(0, 4), slice(4, 8), slice(8, 11)]


def test_cli_ranks_with_different_configs_are_refused(tmp_path):
    def rank(lr):
        return ["-n", "1", sys.executable, "-m", "descend.cli", "train", "--distributed", "--dataset", "iris",
                "--epochs", "1", "--quiet", "--lr", lr, "--out", str(tmp_path / "run")]
    res = subprocess.run([MPIEXEC, *rank("0.01"), ":", *rank("0.02")], env=_env(), capture_output=True, text=True,
                         timeout=TIMEOUT)
    assert res.returncode == 2, res.stderr
    assert "descend: error: ranks [1] were started with a different config than rank 0" in res.stderr
    assert "Traceback" not in res.stderr
    assert not (tmp_path / "run").exists()  # refused before anything was written


def test_cli_more_ranks_than_examples_per_batch_is_a_config_error(tmp_path):
    cmd = [MPIEXEC, "-n", "3", sys.executable, "-m", "descend.cli", "train", "--distributed", "--dataset", "iris",
           "--epochs", "1", "--batch-size", "2", "--quiet", "--out", str(tmp_path / "run")]
    res = subprocess.run(cmd, env=_env(), capture_output=True, text=True, timeout=TIMEOUT)
    assert res.returncode == 2, res.stderr
    assert "descend: error: 3 ranks need at least 3 examples in every batch, but a batch holds" in res.stderr
    assert "train.batch_size = 2" in res.stderr and "Traceback" not in res.stderr


def test_a_bad_divergence_factor_is_refused_before_the_mpi_set_up():
    from descend import nn, optim
    from descend.train import fit

    class Recorder:  # stands for Distributed: its prepare makes the MPI window that only release frees
        prepared = False

        def prepare(self, *a, **k):
            Recorder.prepared = True
            raise AssertionError("prepare must not run for a run refused at set-up")

    model = nn.Sequential(nn.Linear(3, 2, rng=np.random.default_rng(0)))
    X, y = np.zeros((8, 3), np.float32), np.zeros(8, np.int64)
    with pytest.raises(ValueError, match="factor must be > 1"):
        fit(model, X, y, optimizer=optim.SGD(lr=0.1), epochs=1, divergence=0.5,
            distributed=Recorder())
    assert not Recorder.prepared


def test_ctrl_c_under_distributed_stops_at_once_and_releases_as_a_failure():
    """Ranks would see a deferred Ctrl-C at different steps and their next collectives would not match, so
    under ``distributed`` Ctrl-C interrupts at once and the release runs no collective (failed=True)."""
    from descend import nn, optim
    from descend.train import Objective, fit
    from descend.train.evaluate import evaluate

    released = []

    class OneRank:  # stands for Distributed on one rank: the plain objective, a recorded release
        def prepare(self, state, slices, sig, *, loss, kind, l2, l2_kinds):
            return slices, evaluate, Objective(state.model, state.params, loss, l2=l2, m=sig["n"], l2_kinds=l2_kinds)

        def release(self, model, failed):
            released.append(failed)

    class CtrlC:  # the user presses Ctrl-C during step 3
        def on_step_end(self, state):
            if state.step == 3:
                os.kill(os.getpid(), signal.SIGINT)
                time.sleep(0.5)  # the signal is handled here, within this step

    model = nn.Sequential(nn.Linear(3, 2, rng=np.random.default_rng(0)))
    X, y = np.random.default_rng(1).standard_normal((64, 3)).astype(np.float32), np.zeros(64, np.int64)
    history = fit(model, X, y, optimizer=optim.SGD(lr=0.1), epochs=5, batch_size=8, distributed=OneRank(),
                  callbacks=[CtrlC()])
    assert history.stop_reason == "interrupted by the user at step 3" and history.steps == 3
    assert released == [True]


def test_a_distributed_objective_hands_the_gradient_back_to_the_array_it_found():
    """The all-reduce's memory is the gradient during the run; at the end the values go back into the array the
    caller's ``pack`` returned, so a ``Params`` made before ``fit`` is still the model's afterwards."""
    from descend import nn, pack
    from descend.nn import functional as F
    from descend.train import Objective
    from descend.train.distributed import DistributedObjective
    from descend.train.reduction import MessageSum

    class Comm:  # one rank: the sum of one vector is itself
        @staticmethod
        def Allreduce(*args, **kwargs):
            pass

    class MPI:
        IN_PLACE = SUM = None

    class OneRank:
        check_every = 0

        def summer(self, length, dtype):
            return MessageSum(Comm(), MPI, length, dtype)

        def sum_vector(self, summer):
            return summer.sum()

    make = lambda: nn.Sequential(nn.Linear(3, 4, rng=np.random.default_rng(0)), nn.ReLU(),  # noqa: E731
                                 nn.Linear(4, 2, rng=np.random.default_rng(1)))
    model, reference = make(), make()
    params, ref = pack(model), pack(reference)
    original = params.grad
    x, y = np.random.default_rng(2).standard_normal((8, 3)).astype(np.float32), np.arange(8) % 2
    objective = DistributedObjective(model, params, F.cross_entropy, distributed=OneRank())
    assert not np.shares_memory(params.grad, original)  # the all-reduce's vector during the run
    objective.batch(x, y)
    objective()
    objective.close()
    plain = Objective(reference, ref)
    plain.batch(x, y)
    plain()
    assert params.grad is original and pack(model).grad is original
    np.testing.assert_array_equal(original, ref.grad)  # the run's gradient, in the array the caller holds
    params.zero_grad()
    assert all(p.grad.base is original for p in model.parameters())
