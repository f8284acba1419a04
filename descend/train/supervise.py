"""A rank under a thin supervisor process, so that a rank killed by a signal is named by its rank number.

MPICH's process manager (Hydra) kills every other rank the moment one dies — with SIGKILL, so they cannot
say anything — and names only the dead process's PID. Under ``supervise()`` the process mpiexec started
stays a small parent: it forks the rank before MPI starts and waits for it; when the rank
is killed by a signal it writes one line naming the rank, its PID, host and the signal, then dies of the
same signal, so mpiexec stops the others as before and exits non-zero. The rank dies with its supervisor
(``PR_SET_PDEATHSIG``), so the process manager's clean-up still reaches it. Linux only; elsewhere, or
without a rank number in the environment, nothing changes.
"""
from __future__ import annotations

import ctypes
import os
import signal
import socket
import sys

__all__ = ["supervise", "rank_from_environment"]

_MARK = "DESCEND_RANK_SUPERVISOR"  # set in the rank: the supervisor's PID (one supervisor per rank)
_RANK_VARS = ("PMI_RANK", "OMPI_COMM_WORLD_RANK", "PMIX_RANK", "SLURM_PROCID")
# Hydra signals a rank's whole process group (the rank too): the supervisor ignores Ctrl-C (a second one would
# interrupt the rank at once) and passes on the signals that end a process, in case one reaches it alone
_FORWARD = ("SIGTERM", "SIGHUP", "SIGQUIT")
_PR_SET_PDEATHSIG = 1


def rank_from_environment(environ=os.environ) -> str | None:
    """This process's rank as its MPI process manager set it, or None."""
    return next((environ[v] for v in _RANK_VARS if environ.get(v, "").isdigit()), None)


def supervise(environ=os.environ) -> None:
    """Fork: return in the child, which goes on as the rank; the parent waits for it and exits as it did."""
    rank = rank_from_environment(environ)
    if rank is None or _MARK in environ or not sys.platform.startswith("linux"):
        return
    try:
        prctl = ctypes.CDLL(None, use_errno=True).prctl
    except (OSError, AttributeError):
        return
    sys.stdout.flush()
    sys.stderr.flush()
    supervisor = os.getpid()
    forwarded = {getattr(signal, name) for name in _FORWARD}
    # held back until the supervisor's handlers are in place: a signal right after the fork is forwarded too
    held = signal.pthread_sigmask(signal.SIG_BLOCK, forwarded)
    child = os.fork()
    if child == 0:
        signal.pthread_sigmask(signal.SIG_SETMASK, held)
        environ[_MARK] = str(supervisor)
        prctl(_PR_SET_PDEATHSIG, int(signal.SIGKILL), 0, 0, 0)
        if os.getppid() != supervisor:  # the supervisor died before the line above took effect
            os._exit(1)
        return
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    for sig in forwarded:
        signal.signal(sig, lambda sig, frame: os.kill(child, sig))
    signal.pthread_sigmask(signal.SIG_SETMASK, held)
    _, status = os.waitpid(child, 0)  # retried across the forwarded signals (PEP 475)
    for sig in forwarded:  # the rank is reaped: a signal now has no one to go to (its PID may be reused)
        signal.signal(sig, signal.SIG_IGN)
    if os.WIFSIGNALED(status):
        sig = os.WTERMSIG(status)
        try:
            what = signal.Signals(sig).name
        except ValueError:  # a real-time signal has no name
            what = f"signal {sig}"
        os.write(2, (f"descend: rank {rank} (PID {child} on {socket.gethostname()}) died, killed by signal {sig} "
                     f"({what}); mpiexec stops the other ranks; the last checkpoint is intact: continue with "
                     "--resume\n").encode())
        try:
            signal.signal(sig, signal.SIG_DFL)
        except (OSError, ValueError):  # SIGKILL's action is fixed
            pass
        os.kill(os.getpid(), sig)
        os._exit(128 + sig)  # a signal that does not end a process
    os._exit(os.waitstatus_to_exitcode(status))
