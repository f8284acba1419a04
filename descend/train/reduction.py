"""The sum over MPI ranks of one vector per rank: in a shared-memory window on each node, Allreduce between nodes.

``SharedSum`` is data parallelism's one all-reduce. The vector each rank sums (its flat gradient and three
counters) lives in an MPI-3 shared-memory window (``MPI.Win.Allocate_shared`` on the node's communicator,
``Split_type(COMM_TYPE_SHARED)``), so the ranks of a node add each other's vectors where they lie: local rank
r adds chunk r of every local vector, in rank order, into the node's total (read |v|, write |v|/L per rank,
no message copies); between nodes the node leaders ``Allreduce`` the totals; every rank then reads the same
total. ``MessageSum`` is the plain in-place ``Allreduce`` of a private vector (``Distributed(shared_memory=False)``).
Both hand out their memory as arrays that own their views (``views``), so it can be a model's flat gradient.
"""
from __future__ import annotations

import weakref

import numpy as np

__all__ = ["SharedSum", "MessageSum"]


class MessageSum:
    """``sum()``: ``vector`` summed over the ranks of ``comm`` in place, by one ``Allreduce``."""

    def __init__(self, comm, MPI, length: int, dtype):
        self.comm, self.MPI, self.dtype = comm, MPI, np.dtype(dtype)
        self._raw = bytearray(length * self.dtype.itemsize)
        self.vector = np.frombuffer(self._raw, self.dtype)

    def views(self, *lengths: int) -> list[np.ndarray]:
        """Consecutive pieces of ``vector``, each an array of its own (its views have it as their base)."""
        return _pieces(self._raw, self.dtype, lengths)

    def sum(self) -> np.ndarray:
        self.comm.Allreduce(self.MPI.IN_PLACE, self.vector, op=self.MPI.SUM)
        return self.vector

    def free(self, failed: bool = False) -> bool:
        """Nothing to release (the memory is Python's)."""
        return True


class SharedSum:
    """``sum() -> total``: Σ over the ranks of ``comm`` of each rank's ``vector``, through node-shared memory.

    Write this rank's values into ``vector`` (or arrays from ``views``), then call ``sum()`` on every rank;
    the returned total is shared by the node's ranks: read it, do not write it; it stays valid until the next
    ``sum()``, which also may not begin before every rank has finished reading (the first barrier sees to it).
    The sum of each element is taken in rank order on each node, so every rank gets the same bits.
    """

    def __init__(self, comm, MPI, length: int, dtype):
        self.MPI, self.dtype, self.length = MPI, np.dtype(dtype), int(length)
        self.node = comm.Split_type(MPI.COMM_TYPE_SHARED, key=comm.Get_rank())
        local, self.local_size = self.node.Get_rank(), self.node.Get_size()
        leaders = comm.Split(0 if local == 0 else MPI.UNDEFINED, key=comm.Get_rank())  # one rank per node
        self._comms = [c for c in (self.node, leaders) if c != MPI.COMM_NULL]
        self.nodes = comm.allreduce(int(local == 0))
        self.leaders = leaders if self.nodes > 1 and local == 0 else None
        item = self.dtype.itemsize
        info = MPI.Info.Create()
        info.Set("alloc_shared_noncontig", "true")  # each rank's part page-aligned, near its own core
        # local rank 0 holds the node's total after its own vector
        self.win = MPI.Win.Allocate_shared(self.length * item * (2 if local == 0 else 1), item, info, comm=self.node)
        info.Free()
        self.win.Lock_all(MPI.MODE_NOCHECK)  # the passive epoch in which Sync + Barrier order the loads and stores
        self._mine = self.win.Shared_query(local)[0]
        self._every = [np.frombuffer(self.win.Shared_query(r)[0], self.dtype, count=self.length)
                       for r in range(self.local_size)]
        self.vector = self._every[local]
        self.total = np.frombuffer(self.win.Shared_query(0)[0], self.dtype, count=self.length, offset=self.length * item)
        self.chunk = slice(self.length * local // self.local_size, self.length * (local + 1) // self.local_size)
        self._handed: list[np.ndarray] = []

    def views(self, *lengths: int) -> list[np.ndarray]:
        """Consecutive pieces of ``vector``, each an array of its own (its views have it as their base)."""
        pieces = _pieces(self._mine, self.dtype, lengths)
        self._handed += pieces
        return pieces

    def _fence(self) -> None:
        self.win.Sync()
        self.node.Barrier()
        self.win.Sync()

    def sum(self) -> np.ndarray:
        self._fence()  # every local vector written, every reader of the last total done
        every, out = self._every, self.total[self.chunk]
        if self.local_size == 1:
            if self.nodes > 1:
                self.leaders.Allreduce(self.vector, self.total, op=self.MPI.SUM)
            else:
                np.copyto(self.total, self.vector)
            return self.total
        np.add(every[0][self.chunk], every[1][self.chunk], out=out)
        for v in every[2:]:
            np.add(out, v[self.chunk], out=out)
        if self.nodes > 1:  # the leaders sum the node totals
            self._fence()
            if self.leaders is not None:
                self.leaders.Allreduce(self.MPI.IN_PLACE, self.total, op=self.MPI.SUM)
        self._fence()
        return self.total

    def free(self, failed: bool = False) -> bool:
        """Release the window (collective over the node); whether it was. Kept — a leak, not a crash — while an
        array over it is still referenced elsewhere (``views``' pieces included), or after a ``failed`` run
        (the other ranks may be inside a collective, where ``Win.Free`` would wait for them forever)."""
        if self.win is None or failed:
            return False
        refs = [weakref.ref(a) for a in (*self._every, self.total, *self._handed)]
        self.vector = self.total = self._mine = None
        self._every, self._handed = [], []
        # an array still alive is referred to elsewhere (a view keeps its base alive); the node decides together
        busy = self.node.allreduce(any(r() is not None for r in refs), op=self.MPI.LOR)
        if not busy:
            self.win.Unlock_all()
            self.win.Free()
        self.win = None
        for c in self._comms:
            c.Free()
        self._comms = []
        return not busy


def _pieces(raw, dtype, lengths) -> list[np.ndarray]:
    out, offset = [], 0
    for n in lengths:
        out.append(np.frombuffer(raw, dtype, count=n, offset=offset * dtype.itemsize))
        offset += n
    return out
