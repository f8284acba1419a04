"""Data-parallel training over MPI on this machine: 2 ranks × 1 thread vs 1 process × 2 threads, all-reduce cost.

Run: .venv/bin/python benchmarks/bench_distributed.py [--quick]
1. Steps per second of the b256 784-512-256-10 MLP (Adam, float32, synthetic data) with one process and
   2 BLAS threads vs ``mpiexec -n 2`` with 1 thread each, the same global batch (target: ≥ 0.9×).
2. Time of the sum of θ over 2 ranks (0.5M, 5M, 50M float32) against a memcpy of θ (target: ≤ 2× a memcpy):
   MPI's Allreduce, the step's old path around it, and the shared-memory sum the step uses (SharedSum);
   its share of the MLP's step time; the copy bandwidth is printed beside it.
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


def _mlp_steps(mode: str, steps: int) -> dict:
    """Worker: seconds per step of the b256 MLP (after 5 warm-up steps), on this rank."""
    from descend import nn, optim
    from descend.train import fit
    from descend.train.distributed import Distributed

    dist = Distributed(shared_memory=mode == "mlp-dist") if mode != "mlp" else None
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
    """Worker: median seconds, per θ size, of a memcpy of θ and of the all-reduce paths (sum of a float32 vector
    over the ranks): MPI's in-place Allreduce; the step's old path (copy the gradient into a buffer, Allreduce,
    scale back into the gradient); SharedSum.sum() (the gradient in a shared window); SharedSum.sum() + scale."""
    from mpi4py import MPI

    from descend.train.reduction import SharedSum

    comm, out = MPI.COMM_WORLD, {}
    for p in sizes:
        grad, buf, other = np.ones(p, np.float32), np.ones(p, np.float32), np.empty(p, np.float32)
        shared = SharedSum(comm, MPI, p, np.float32)
        (vec,) = shared.views(p)
        vec[:] = 1

        def old_step():
            buf[:] = grad
            comm.Allreduce(MPI.IN_PLACE, buf, op=MPI.SUM)
            np.multiply(buf, 0.5, out=grad)

        def shared_step():
            np.multiply(shared.sum(), 0.5, out=vec)

        paths = {"memcpy": lambda: np.copyto(other, grad),
                 "allreduce": lambda: comm.Allreduce(MPI.IN_PLACE, buf, op=MPI.SUM),
                 "old step": old_step, "shared sum": shared.sum, "shared step": shared_step}
        reps = max(3, min(30, int(1e8 // (p * 4))))
        times = {k: [] for k in paths}
        for _ in range(reps + 1):
            for k, f in paths.items():
                comm.Barrier()
                t = time.perf_counter()
                f()
                times[k].append(time.perf_counter() - t)
        out[p] = {k: float(np.median(v[1:])) for k, v in times.items()}
        del vec, paths, shared_step
        shared.free()
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
    steps = 20 if quick else 60
    me = [sys.executable, str(HERE)]
    runs = {"one": (me, "mlp", 2), "one1": (me, "mlp", 1), "two": ([MPIEXEC, "-n", "2"] + me, "mlp-dist", 1),
            "two_msg": ([MPIEXEC, "-n", "2"] + me, "mlp-dist-msg", 1)}
    best, theta = {}, 0
    for _ in range(2):  # alternate the four, keep each one's faster round: other users' load comes and goes
        for k, (cmd, kind, threads) in runs.items():
            ranks = _run(cmd + ["--worker", kind, str(steps)], threads=threads)
            step_s, theta = max(r["step_s"] for r in ranks), ranks[0]["theta"]
            best[k] = min(best.get(k, step_s), step_s)
    one, one1 = {"step_s": best["one"], "theta": theta}, {"step_s": best["one1"], "theta": theta}
    two_s, two_msg_s = best["two"], best["two_msg"]
    print("machine is shared: numbers are indicative (run briefly)")
    print(f"b256 784-512-256-10 MLP, θ = {one['theta']:,} floats, Adam, float32")
    print(f"  1 process × 2 threads: {1 / one['step_s']:.1f} steps/s")
    print(f"  1 process × 1 thread : {1 / one1['step_s']:.1f} steps/s")
    print(f"  2 ranks   × 1 thread : {1 / two_s:.1f} steps/s   ratio {one['step_s'] / two_s:.2f} to 1 × 2 threads "
          f"(target ≥ 0.9), {one1['step_s'] / two_s:.2f} to 1 × 1 thread")
    print(f"  2 ranks, Allreduce   : {1 / two_msg_s:.1f} steps/s   ratio {one['step_s'] / two_msg_s:.2f} to 1 × 2 threads "
          "(Distributed(shared_memory=False))")
    sizes = SIZES[:2] if quick else SIZES
    ar = _run([MPIEXEC, "-n", "2"] + me + ["--worker", "allreduce", ",".join(map(str, sizes))], threads=1)
    bw = copy_bandwidth_gbs()
    print(f"Sum of a float32 vector over 2 ranks, ms (× a memcpy of θ); copy bandwidth {bw:.1f} GB/s (read + write)")
    print("  allreduce: MPI's in-place Allreduce; old step: copy grad in, Allreduce, scale back (the path before")
    print("  shared memory); shared sum: SharedSum.sum(), the gradient in an MPI-3 shared window; shared step: + scale")
    names = ("memcpy", "allreduce", "old step", "shared sum", "shared step")
    print(f"  {'θ floats':>12} " + " ".join(f"{k:>17}" for k in names) + f" {'shared step / MLP step':>23}")
    t_mlp_ar = None
    for p in sizes:
        t = {k: max(r["times"][str(p)][k] for r in ar) for k in names}
        cells = [f"{1e3 * t[k]:9.3f} ({t[k] / t['memcpy']:4.2f}×)" for k in names]
        print(f"  {p:>12,} " + " ".join(f"{c:>17}" for c in cells) + f" {t['shared step'] / two_s:>22.1%}")
        if p == SIZES[0]:
            t_mlp_ar = t["shared step"]
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
            res = _mlp_steps(kind, int(arg))
        if kind == "mlp":
            print(json.dumps(res))
        else:  # rank 0 prints every rank's line: the ranks' stdout would interleave
            from mpi4py import MPI
            everyone = MPI.COMM_WORLD.gather(res, root=0)
            for r in everyone or ():
                print(json.dumps(r))
    else:
        main("--quick" in sys.argv)
