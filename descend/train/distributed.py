"""Data-parallel training over MPI: the batch split across ranks, one all-reduce of the flat gradient, one writer.

Every rank holds the same θ (broadcast from rank 0 at the start), draws the same epoch permutation from
the run's seed and takes its contiguous shard of each global batch (split as evenly as possible, never
padded). ``DistributedObjective`` backpropagates the shard's *summed* loss and sums one vector
[flat grad, loss sum, example count, correct] over the ranks with one all-reduce (``reduction.py``: the
gradient lives in an MPI shared-memory window and the ranks of a node add it in place; ``Allreduce``
between nodes); dividing by the global count gives the mean of one process on the whole batch, uneven
shards included. The optimizer step is then the same on every rank. mpi4py is imported here only, and
only when a ``Distributed`` is made.
"""
from __future__ import annotations

import functools
import hashlib
import json
import os
import sys
import time
import traceback
import zlib

import numpy as np

from .. import data as D
from ..nn import BatchNorm1d
from .evaluate import _correct, predict
from .objective import Objective
from .reduction import MessageSum, SharedSum
from .supervise import supervise

__all__ = ["Distributed", "DistributedObjective", "launched_by_mpiexec", "MPI_HINT"]

MPI_HINT = "mpiexec -n 2 descend train --distributed ..."
# variables a process manager sets in every rank it starts (MPICH/Hydra, Open MPI, PMIx, Slurm's PMI)
_LAUNCH_VARS = ("PMI_RANK", "PMI_SIZE", "OMPI_COMM_WORLD_SIZE", "PMIX_RANK", "MPI_LOCALNRANKS")


def launched_by_mpiexec() -> bool:
    """Whether this process was started by an MPI process manager (mpiexec / mpirun / srun)."""
    return any(v in os.environ for v in _LAUNCH_VARS)


class Distributed:
    """An MPI communicator with the few collectives data-parallel ``fit`` needs.

    - ``comm``: an mpi4py communicator (default ``MPI.COMM_WORLD``).
    - ``check_every``: every this many objective evaluations the ranks compare a CRC32 of θ and stop
      with an error naming the ranks that drifted (0 turns it off).
    - ``sync_batchnorm``: BatchNorm layers use the global batch's statistics (one extra reduction of
      per-channel sums forward and one backward); False keeps per-rank statistics.
    - ``abort_on_error``: an uncaught exception on any rank calls ``MPI.COMM_WORLD.Abort`` so the other
      ranks do not wait forever in their next collective (as ``python -m mpi4py`` does).
    - ``shared_memory``: the gradient's all-reduce adds the vectors of a node's ranks where they lie, in an
      MPI-3 shared-memory window (``Allreduce`` between nodes); False: one ``Allreduce`` of every rank's
      private vector (the same sums on 2 ranks; more copies through MPI's buffers on one node).
    """

    def __init__(self, comm=None, *, check_every: int = 100, sync_batchnorm: bool = True,
                 abort_on_error: bool = True, shared_memory: bool = True):
        try:
            from mpi4py import MPI
        except ImportError as e:
            raise RuntimeError(f"distributed training needs mpi4py and an MPI ({e}); install them with "
                               f"pip install 'descend[mpi]', then run {MPI_HINT}") from None
        if check_every < 0:
            raise ValueError(f"check_every must be ≥ 0 (0 = never), got {check_every}")
        self.MPI = MPI
        self.comm = comm if comm is not None else MPI.COMM_WORLD
        self.rank, self.size = self.comm.Get_rank(), self.comm.Get_size()
        self.check_every, self.sync_batchnorm = int(check_every), bool(sync_batchnorm)
        self.shared_memory, self.objective, self.released = bool(shared_memory), None, None
        # (host, pid) of every rank: the process manager names a dead process by its PID, this maps it to a rank
        self.processes = [tuple(p) for p in self.comm.allgather((MPI.Get_processor_name(), os.getpid()))]
        if abort_on_error and self.size > 1:
            install_abort_hook(MPI)

    @classmethod
    def from_launch(cls, **kwargs) -> "Distributed":
        """The world communicator of a job started by ``mpiexec``; a clear error outside one. Before MPI starts,
        this process becomes the rank's supervisor (``supervise.py``): a rank killed by a signal is then named
        by its rank number, not only by the PID mpiexec reports."""
        if not launched_by_mpiexec():
            raise RuntimeError(f"--distributed needs several processes started by MPI; run it as {MPI_HINT} "
                               "(mpiexec comes with pip install 'descend[mpi]')")
        supervise()
        return cls(**kwargs)

    @property
    def writer(self) -> bool:
        """Whether this rank writes files (rank 0 alone: run folder, checkpoints, metrics, progress)."""
        return self.rank == 0

    def sum(self, buf: np.ndarray) -> np.ndarray:
        """``buf`` summed over the ranks, in place (one ``Allreduce``)."""
        self.comm.Allreduce(self.MPI.IN_PLACE, buf, op=self.MPI.SUM)
        return buf

    def summer(self, length: int, dtype):
        """The all-reduce of one vector of ``length`` per rank, made once per run: ``.views(...)`` pieces of
        its vector to write, ``.sum()`` the total (``SharedSum``, or ``MessageSum`` without shared memory)."""
        kind = SharedSum if self.shared_memory else MessageSum
        return kind(self.comm, self.MPI, length, dtype)

    def sum_vector(self, summer) -> np.ndarray:
        """``summer.sum()``: the all-reduce of the gradient vector (one per objective evaluation)."""
        return summer.sum()

    def broadcast(self, *arrays: np.ndarray) -> None:
        """Rank 0's values of ``arrays`` on every rank, in place."""
        for a in arrays:
            self.comm.Bcast(a, root=0)

    def agree(self, what: str, value) -> None:
        """Stop on every rank if ``value`` (JSON-serializable) is not the same on all ranks."""
        digest = hashlib.sha256(json.dumps(value, sort_keys=True, default=str).encode()).hexdigest()[:16]
        digests = self.comm.allgather(digest)
        odd = [r for r, d in enumerate(digests) if d != digests[0]]
        if odd:
            raise ValueError(f"ranks {odd} were started with a different {what} than rank 0 ({digest} here); "
                             "start every rank with the same command, config and data")

    def check_theta(self, theta: np.ndarray, step: int) -> None:
        """Stop on every rank with a clear error if θ differs between ranks (a CRC32 of its bytes)."""
        crcs = self.comm.allgather(zlib.crc32(np.ascontiguousarray(theta).view(np.uint8)))
        odd = [r for r, c in enumerate(crcs) if c != crcs[0]]
        if odd:
            raise RuntimeError(f"θ drifted between ranks at evaluation {step}: ranks {odd} differ from rank 0 "
                               "(a rank's data, seed or optimizer differs, or its memory was changed)")

    def shard(self, slices: list[slice]) -> list[slice]:
        """This rank's contiguous part of each global batch: sizes differ by at most one, none empty."""
        smallest = min((s.stop - s.start for s in slices), default=0)
        if smallest < self.size:
            raise ValueError(f"{self.size} ranks need at least {self.size} examples in every batch, but a batch "
                             f"holds {smallest}; use a larger batch_size, drop_last=True or fewer ranks")
        out = []
        for s in slices:
            base, extra = divmod(s.stop - s.start, self.size)
            start = s.start + self.rank * base + min(self.rank, extra)
            out.append(slice(start, start + base + (self.rank < extra)))
        return out

    def attach(self, model, on: bool = True) -> None:
        """Set every BatchNorm layer's synchronization (the global batch's statistics), or clear it (``on=False``:
        ``fit`` does so when it ends, so the model never keeps a collective once the run is over)."""
        for _, m in model.named_modules():
            if isinstance(m, BatchNorm1d):
                m.sync = self.sum if on and self.sync_batchnorm and self.size > 1 else None

    def prepare(self, state, slices: list[slice], signature: dict, *, loss, kind, l2, l2_kinds):
        """``fit``'s set-up on this rank: check the ranks run the same job, θ and buffers from rank 0,
        this rank's shards, synchronized BatchNorm, only rank 0 saving; (shards, evaluate, objective)."""
        self.agree("run (config, data size, batch size, model, seed or checkpoint)", signature)
        shards = self.shard(slices)
        params = state.params
        self.broadcast(params.theta, *params.buffers().values())
        self.attach(state.model)
        if not self.writer:
            state.save = lambda path=None: None
        objective = DistributedObjective(state.model, params, loss, distributed=self, kind=kind, l2=l2,
                                         m=signature["n"], l2_kinds=l2_kinds)
        self.objective = objective
        return shards, functools.partial(self.evaluate, kind=kind), objective

    def release(self, model, failed: bool = False) -> None:
        """What ``fit`` lent the model for the run, taken back when it ends: BatchNorm's synchronization, and
        the gradient's place in MPI's shared memory (moved back into the process's own memory)."""
        self.attach(model, on=False)
        if self.objective is not None:
            self.released = self.objective.close(failed)  # False: the memory is kept (see SharedSum.free)
            self.objective = None

    def evaluate(self, model, X, y, *, loss, kind) -> dict:
        """Mean loss (and accuracy) on (X, y), each rank evaluating its contiguous shard; reduced over ranks."""
        part = self.shard([slice(0, len(X))])[0] if len(X) >= self.size else slice(0, len(X) * (self.rank == 0))
        buf = np.zeros(3)
        if part.stop > part.start:
            Xs = D.take(X, part, dtype=X.dtype)
            ys = np.asarray(y[part])
            out = predict(model, Xs)
            if kind == "sign":
                ys = ys.reshape(out.shape)
            buf[:] = float(loss(out, ys).data) * len(out), len(out), _correct(kind, out, ys) if kind else 0
        self.sum(buf)
        result = {"loss": float(buf[0] / buf[1])}
        if kind:
            result["accuracy"] = float(buf[2] / buf[1])
        return result


def install_abort_hook(MPI) -> None:
    """An uncaught exception prints its traceback, then aborts every rank (never a hang in a collective)."""
    previous = sys.excepthook
    if getattr(previous, "aborts_mpi", False):
        return

    def hook(kind, value, tb):
        try:
            rank = MPI.COMM_WORLD.Get_rank()
            # the reason first, in one write: another rank's Abort may kill this one before its traceback is out
            sys.stderr.write(f"descend: rank {rank} failed ({kind.__name__}: {value}); aborting all ranks\n")
            sys.stderr.flush()
            traceback.print_exception(kind, value, tb)
            sys.stderr.flush()
        finally:
            if kind is KeyboardInterrupt:
                previous(kind, value, tb)
            # the process manager forwards this rank's stderr through a pipe; Abort tears that down, and a busy
            # machine once lost the whole message (a full test run): give the forwarding a moment first
            time.sleep(1.0)
            MPI.COMM_WORLD.Abort(1)

    hook.aborts_mpi = True
    sys.excepthook = hook


class DistributedObjective(Objective):
    """``objective() -> (J, grad)`` of the global batch: each rank evaluates its shard, one all-reduce.

    grad = (Σ_ranks ∇Σ_shard ℓ)/n and J = (Σ_ranks Σ_shard ℓ)/n + (λ/2m)·Σ‖W‖², n the global batch's
    size: the same mean as one process on the whole batch. The L2 term is added once, after the
    reduction (it is the same on every rank). ``kind`` ("argmax"/"sign"/None) adds the correct count to
    the reduced buffer, for the running accuracy.
    """

    def __init__(self, model, params, loss, *, distributed: Distributed, kind=None, **kwargs):
        super().__init__(model, params, loss, **kwargs)
        self.distributed, self.kind = distributed, kind
        p = len(params.theta)
        # the gradient lives in the all-reduce's vector: backward writes where the other ranks read it
        self.summer = distributed.summer(p + 3, params.theta.dtype)
        grad, self.tail = self.summer.views(p, 3)
        self.own_grad = params.grad  # handed back at close: every holder of the packed gradient keeps a live array
        params.use_grad(grad)
        self.calls, self.count, self.correct = 0, 0, 0

    def __call__(self):
        grad, tail, p = self.params.grad, self.tail, len(self.params.theta)
        n = len(self.x)
        tail[:] = self.data_loss(scale=float(n)), n, _correct(self.kind, self.output, self.y) if self.kind else 0
        total = self.distributed.sum_vector(self.summer)
        self.count, self.correct = int(total[p + 1]), int(total[p + 2])
        loss = float(total[p]) / self.count
        np.multiply(total[:p], 1.0 / self.count, out=grad)
        self.calls += 1
        every = self.distributed.check_every
        if every and self.calls % every == 0:
            self.distributed.check_theta(self.params.theta, self.calls)
        return self.add_penalty(loss), grad

    def close(self, failed: bool = False) -> bool:
        """The gradient back in the array it was in before (its values copied), the all-reduce's memory released
        (at ``fit``'s end; kept when the run ``failed``)."""
        self.params.use_grad(self.own_grad)
        self.tail = None
        self.release()  # the execution plan's arrays over the old gradient
        return self.summer.free(failed)

    def tally(self, kind: str) -> tuple[int, int]:
        return self.count, self.correct
