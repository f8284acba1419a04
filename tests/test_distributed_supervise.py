"""A rank's supervisor (descend/train/supervise.py), without MPI: a rank killed by a signal is named by its number,
an exit code passes through unchanged, a rank is supervised once, and nothing forks outside an MPI launch."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PRELUDE = "import os, signal, sys; from descend.train.supervise import supervise; supervise(); "


def run(code: str, **env) -> subprocess.CompletedProcess:
    """``python -c PRELUDE + code`` with ``env``; its ``pid`` attribute is the launched (supervising) process's."""
    e = {k: v for k, v in os.environ.items() if k not in ("PMI_RANK", "OMPI_COMM_WORLD_RANK", "PMIX_RANK",
                                                        "SLURM_PROCID", "DESCEND_RANK_SUPERVISOR")}
    e.update(env, PYTHONPATH=str(ROOT))
    with subprocess.Popen([sys.executable, "-c", PRELUDE + code], env=e, stdout=subprocess.PIPE,
                          stderr=subprocess.PIPE, text=True) as proc:
        out, err = proc.communicate(timeout=60)
    res = subprocess.CompletedProcess(proc.args, proc.returncode, out, err)
    res.pid = proc.pid
    return res


def test_a_rank_killed_by_a_signal_is_named_by_its_rank_and_pid():
    res = run("print(os.getpid(), os.getppid(), flush=True); os.kill(os.getpid(), signal.SIGKILL)", PMI_RANK="3")
    child, parent = map(int, res.stdout.split())
    assert res.returncode == -signal.SIGKILL  # the supervisor dies of the same signal: mpiexec sees the failure
    assert f"descend: rank 3 (PID {child} on " in res.stderr and "killed by signal 9 (SIGKILL)" in res.stderr
    assert parent == res.pid != child and "--resume" in res.stderr  # the rank ran in a child of the launched process


def test_the_rank_runs_in_a_child_and_its_exit_code_passes_through():
    res = run("print(os.getpid(), os.getppid(), os.environ['DESCEND_RANK_SUPERVISOR'], flush=True); "
              "supervise(); print(os.getpid(), flush=True); sys.exit(7)", OMPI_COMM_WORLD_RANK="0")
    pid, parent, mark, again = map(int, res.stdout.split())
    assert res.returncode == 7 and res.stderr == ""
    assert parent == mark == res.pid != pid  # the launched process supervises; the rank runs in its child
    assert again == pid  # the second supervise() returned at once in the same process: forked once


def test_outside_an_mpi_launch_nothing_forks():
    res = run("print(os.environ.get('DESCEND_RANK_SUPERVISOR')); os.kill(os.getpid(), signal.SIGTERM)")
    assert res.stdout.split() == ["None"] and res.returncode == -signal.SIGTERM and res.stderr == ""


def test_a_terminating_signal_to_the_supervisor_reaches_the_rank():
    # Hydra signals the whole process group; a SIGTERM sent to the supervisor's PID alone must still end the rank
    res = run("os.kill(os.getppid(), signal.SIGTERM); signal.pause()", PMI_RANK="1")
    assert res.returncode == -signal.SIGTERM
    assert "descend: rank 1 (PID " in res.stderr and "(SIGTERM)" in res.stderr
