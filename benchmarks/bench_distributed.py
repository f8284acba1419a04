"""Data-parallel training over MPI on this machine: 2 ranks × 1 thread vs 1 process × 2 threads, all-reduce cost.

Run: .venv/bin/python benchmarks/bench_distributed.py [--quick]
1. Steps per second of the b256 784-512-256-10 MLP (Adam, float32, synthetic data) with one process and
   2 BLAS threads vs ``mpiexec -n 2`` with 1 thread each, the same global batch (target: ≥ 0.9×).
2. Time of one in-place ``Allreduce(SUM)`` of θ (0.5M, 5M, 50M float32) on 2 ranks against a memcpy of θ
   (target: ≤ 2× a memcpy) and its share of the MLP's step time; the copy bandwidth is printed beside it.
3. The ring all-reduce cost model (docs/distributed.md) with this machine's measured compute rate:
   projected step time and scaling efficiency at 8 and 64 ranks on 10 and 100 Gb/s links.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).parent))
from _common import copy_bandwidth_gbs  # noqa: E402

HERE = Path(__file__).resolve()
MPIEXEC = str(Path(sys.executable).parent / "mpiexec")
SIZES = (500_000, 5_000_000, 50_000_000)


def _mlp_steps(distributed: bool, steps: int) -> dict:
    """Worker: seconds per step of the b256 MLP (after 5 warm-up steps), on this rank."""
    from descend import nn, optim
    from descend.train import fit
    from descend.train.distributed import Distributed

    dist = Distributed() if distributed else None
    rng = np.random.default_rng(0)
    X = rng.standard_normal((256 * (steps + 5), 784), dtype=np.float32)
    y = rng.integers(0, 10, len(X))
    model = nn.Sequential(nn.Linear(784, 512, rng=rng), nn.ReLU(), nn.Linear(512, 256, rng=rng), nn.ReLU(),
                          nn.Linear(256, 10, rng=rng))
    times = []

    class Clock:
        def on_step_end(self, state):
            times.append(time.perf_counter())

    fit(model, X, y, optimizer=optim.Adam(lr=1e-3), steps=steps + 5, batch_size=256, callbacks=[Clock()],
        distributed=dist, divergence=None)
    per_step = (times[-1] - times[4]) / (len(times) - 5)
    return {"step_s": per_step, "theta": int(nn.pack(model).theta.size), "rank": dist.rank if dist else 0}


def _allreduce(sizes) -> dict:
    """Worker: median seconds of an in-place float32 Allreduce and of a memcpy, per θ size."""
    from mpi4py import MPI

    comm, out = MPI.COMM_WORLD, {}
    for p in sizes:
        buf, other = np.ones(p, np.float32), np.empty(p, np.float32)
        reps = max(3, min(50, int(2e8 // (p * 4))))
        t_ar, t_cp = [], []
        for _ in range(reps + 1):
            comm.Barrier()
            t = time.perf_counter()
            comm.Allreduce(MPI.IN_PLACE, buf, op=MPI.SUM)
            t_ar.append(time.perf_counter() - t)
            t = time.perf_counter()
            np.copyto(other, buf)
            t_cp.append(time.perf_counter() - t)
        out[p] = (float(np.median(t_ar[1:])), float(np.median(t_cp[1:])))
    return {"rank": comm.Get_rank(), "times": out}


def _run(cmd, threads: int) -> list[dict]:
    env = dict(os.environ, OMP_NUM_THREADS=str(threads), OPENBLAS_NUM_THREADS=str(threads),
               MKL_NUM_THREADS=str(threads), NUMBA_NUM_THREADS=str(threads),
               PYTHONPATH=os.pathsep.join([str(HERE.parents[1]), os.environ.get("PYTHONPATH", "")]))
    res = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=900)
    if res.returncode != 0:
        raise SystemExit(f"worker failed: {' '.join(cmd)}\n{res.stderr}")
    return [json.loads(line) for line in res.stdout.splitlines() if line.startswith("{")]


def project(theta: int, compute_per_example: float, batch: int, ranks: int, gbps: float, latency: float):
    """Ring all-reduce model: (step seconds, efficiency, batch at which compute = communication)."""
    comm = 2 * (ranks - 1) / ranks * theta * 4 / (gbps * 1e9 / 8) + 2 * (ranks - 1) * latency
    compute = compute_per_example * batch / ranks
    step = compute + comm  # no overlap: descend reduces after the whole backward pass
    eff = compute_per_example * batch / (ranks * step)
    hide = ranks * comm / compute_per_example
    return step, eff, hide


def main(quick: bool) -> None:
    steps = 10 if quick else 30
    me = [sys.executable, str(HERE)]
    one = _run(me + ["--worker", "mlp", str(steps)], threads=2)[0]
    one1 = _run(me + ["--worker", "mlp", str(steps)], threads=1)[0]
    two = _run([MPIEXEC, "-n", "2"] + me + ["--worker", "mlp-dist", str(steps)], threads=1)
    two_s = max(r["step_s"] for r in two)
    print("machine is shared: numbers are indicative (run briefly)")
    print(f"b256 784-512-256-10 MLP, θ = {one['theta']:,} floats, Adam, float32")
    print(f"  1 process × 2 threads: {1 / one['step_s']:.1f} steps/s")
    print(f"  1 process × 1 thread : {1 / one1['step_s']:.1f} steps/s")
    print(f"  2 ranks   × 1 thread : {1 / two_s:.1f} steps/s   ratio {one['step_s'] / two_s:.2f} to 1 × 2 threads "
          f"(target ≥ 0.9), {one1['step_s'] / two_s:.2f} to 1 × 1 thread")
    sizes = SIZES[:2] if quick else SIZES
    ar = _run([MPIEXEC, "-n", "2"] + me + ["--worker", "allreduce", ",".join(map(str, sizes))], threads=1)
    bw = copy_bandwidth_gbs()
    print(f"Allreduce(SUM, in place) on 2 ranks; copy bandwidth {bw:.1f} GB/s (read + write)")
    print(f"  {'θ floats':>12} {'allreduce ms':>13} {'memcpy ms':>10} {'ratio':>6} {'share of MLP step':>18}")
    t_mlp_ar = None
    for p in sizes:
        t_ar = max(r["times"][str(p)][0] for r in ar)
        t_cp = max(r["times"][str(p)][1] for r in ar)
        print(f"  {p:>12,} {1e3 * t_ar:>13.3f} {1e3 * t_cp:>10.3f} {t_ar / t_cp:>6.2f} "
              f"{t_ar / (two_s + t_ar):>17.1%}")
        if p == SIZES[0]:
            t_mlp_ar = t_ar
    compute = min(one["step_s"], one1["step_s"]) / 256  # seconds per example, the faster single process
    print(f"cost model (docs/distributed.md): compute {1e6 * compute:.1f} µs/example measured here; "
          f"all-reduce of the MLP's θ measured {1e3 * t_mlp_ar:.3f} ms")
    print(f"  {'network':>10} {'batch':>5} {'ranks':>5} {'link':>8} {'step ms':>8} {'efficiency':>10} "
          f"{'hide at B ≥':>11}")
    for name, theta, batch, per_ex in (("MLP b128", one["theta"], 128, compute),
                                       ("10M", 10_000_000, 128, compute * 10_000_000 / one["theta"])):
        for ranks in (8, 64):
            for gbps, lat in ((10, 20e-6), (100, 5e-6)):
                step, eff, hide = project(theta, per_ex, batch, ranks, gbps, lat)
                print(f"  {name:>10} {batch:>5} {ranks:>5} {gbps:>5} Gb/s {1e3 * step:>8.2f} {eff:>10.1%} "
                      f"{hide:>11,.0f}")


if __name__ == "__main__":
    if len(sys.argv) > 2 and sys.argv[1] == "--worker":
        kind, arg = sys.argv[2], sys.argv[3]
        if kind == "allreduce":
            res = _allreduce([int(s) for s in arg.split(",")])
        else:
            res = _mlp_steps(kind == "mlp-dist", int(arg))
        if kind == "mlp":
            print(json.dumps(res))
        else:  # rank 0 prints every rank's line: the ranks' stdout would interleave
            from mpi4py import MPI
            everyone = MPI.COMM_WORLD.gather(res, root=0)
            for r in everyone or ():
                print(json.dumps(r))
    else:
        main("--quick" in sys.argv)
