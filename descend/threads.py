"""BLAS / OpenMP / Numba threads per MPI rank, set before NumPy loads (``import descend`` calls it first).

N ranks on one host each starting a BLAS pool of all cores would oversubscribe the machine N times; a rank
started by an MPI process manager gets cores / local ranks threads (at least 1) — or, when the MPI binds it
to fewer cores, as many as it may use. Variables the user set are left alone.
"""
from __future__ import annotations

import os

__all__ = ["pin_threads_per_rank", "THREAD_VARS"]

THREAD_VARS = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "NUMBA_NUM_THREADS")
# how many ranks share this host: MPICH/Hydra, Open MPI, Slurm; else the job's size
_LOCAL_SIZE = ("MPI_LOCALNRANKS", "OMPI_COMM_WORLD_LOCAL_SIZE", "SLURM_NTASKS_PER_NODE", "PMI_SIZE",
               "OMPI_COMM_WORLD_SIZE")


def pin_threads_per_rank(environ=os.environ) -> int | None:
    """Set the thread variables for a rank started by MPI; return the count set, or None (not under MPI)."""
    local = next((environ[v] for v in _LOCAL_SIZE if environ.get(v, "").isdigit()), None)
    if local is None or int(local) < 1:
        return None
    machine = os.cpu_count() or 1
    try:
        cores = len(os.sched_getaffinity(0))
    except AttributeError:  # no affinity API (macOS)
        cores = machine
    # bound by the MPI (fewer cores than the machine's): those cores are this rank's own share
    threads = cores if cores < machine else max(1, cores // int(local))
    for v in THREAD_VARS:
        environ.setdefault(v, str(threads))
    return threads
