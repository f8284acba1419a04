"""Where one training step's time goes: batch gathering, the objective (forward + backward), of which the
matrix products alone, and the optimizer's update — for the tiny MNIST-1D net and the 784-512-256-10 MLP.

Run: .venv/bin/python benchmarks/profile_step.py

Each part is timed on its own with the shapes of the step (the best of 15 rounds, the parts taking turns): "products" runs the step's matrix products (forward x·Wᵀ, backward Gᵀ·x and G·W) on
preallocated arrays, as BLAS alone would; "rest of the objective" is what the objective costs beyond
them — the Numba kernels (bias + ReLU, cross-entropy), the autograd graph, allocation and Python — the
per-step overhead issue 19 is about. The numbers go to benchmarks/NOTES.md.
"""
from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).parent))
from _common import threads  # noqa: E402
from bench_train import mlp  # noqa: E402  (the same network as the epoch benchmark)

from descend import data as D  # noqa: E402
from descend import pack  # noqa: E402
from descend.common.blas import threads_for  # noqa: E402
from descend.nn.plan import largest_product  # noqa: E402
from descend.optim import Adam  # noqa: E402
from descend.train import Objective  # noqa: E402


def best(fns: dict, *, number: int, repeat: int = 15) -> dict:
    """Seconds per call of each function: the best of ``repeat`` rounds of ``number`` calls, the functions
    taking turns within a round so that drift in this shared machine's speed hits all of them alike."""
    import time
    for fn in fns.values():  # warm-up (kernels load, scratch arrays settle)
        for _ in range(3):
            fn()
    out = {k: float("inf") for k in fns}
    for _ in range(repeat):
        for k, fn in fns.items():
            t = time.perf_counter()
            for _ in range(number):
                fn()
            out[k] = min(out[k], (time.perf_counter() - t) / number)
    return out


def products(sizes, bs, dtype=np.float32):
    """A function running the step's matrix products on preallocated arrays of ``dtype``."""
    rng = np.random.default_rng(1)
    xs = [rng.standard_normal((bs, a), dtype=dtype) for a in sizes[:-1]]
    ws = [rng.standard_normal((b, a), dtype=dtype) for a, b in zip(sizes, sizes[1:])]
    gs = [rng.standard_normal((bs, b), dtype=dtype) for b in sizes[1:]]
    ys = [np.empty((bs, b), dtype) for b in sizes[1:]]
    dws = [np.empty_like(w) for w in ws]
    dxs = [np.empty_like(x) for x in xs]

    def run():
        for i, (x, w, g) in enumerate(zip(xs, ws, gs)):
            np.matmul(x, w.T, out=ys[i])
            np.matmul(g.T, x, out=dws[i])
            if i:  # the first layer's input needs no gradient
                np.matmul(g, w, out=dxs[i])
    return run


def profile(name, sizes, bs, n=60_000, dtype=np.float32, l2=0.0):
    rng = np.random.default_rng(0)
    X = rng.standard_normal((n, sizes[0]), dtype=dtype)
    y = rng.integers(0, sizes[-1], n)
    model = mlp(sizes)
    params = pack(model, dtype=dtype)
    objective = Objective(model, params, l2=l2, m=n)  # through the execution plan (descend.nn.plan)
    graph = Objective(model, params, l2=l2, m=n, plan=False)  # the autograd graph, the reference path
    opt = Adam(lr=1e-3)
    order = rng.permutation(n)
    k = [0]

    def batch():
        k[0] = (k[0] + bs) % (n - bs)
        return order[k[0]:k[0] + bs]

    def step():
        idx = batch()
        objective.batch(D.take(X, idx, dtype, recycle=True), y[idx])  # as fit gathers its batches
        opt.step(params.theta, objective, lr=1e-3)

    def gather():
        D.take(X, batch(), dtype, recycle=True)

    idx = batch()
    objective.batch(D.take(X, idx, dtype), y[idx])
    graph.batch(objective.x, objective.y)
    grad = params.grad

    def update():
        opt.step(params.theta, lambda: (0.0, grad), lr=0.0)  # lr 0: the same passes over θ, m, v; θ unchanged

    number = 50 if bs <= 128 else 10
    with threads_for(largest_product(model, bs)):  # the BLAS threads fit uses for this network
        t = best({"step": step, "gather": gather, "objective": objective, "graph": graph,
                  "products": products(sizes, bs, dtype), "update": update}, number=number)
    rest = t["objective"] - t["products"]
    other = t["step"] - t["gather"] - t["objective"] - t["update"]
    us = {k: v * 1e6 for k, v in t.items()}
    print(f"{name:<24} {us['step']:>8.0f} {us['gather']:>8.0f} {us['objective']:>10.0f} {us['graph']:>8.0f} "
          f"{us['products']:>9.0f} {rest * 1e6:>9.0f} ({rest / t['step']:>4.0%}) {us['update']:>8.0f} "
          f"{other * 1e6:>8.0f}")


def main():
    print(f"threads: {threads()}; µs per step, each part timed alone (best of 15 interleaved rounds)")
    print(f"{'workload':<24} {'step':>8} {'gather':>8} {'objective':>10} {'(graph)':>8} {'products':>9} "
          f"{'rest of objective':>16} {'update':>8} {'loop':>8}")
    profile("tiny 40-100-100-10 b100", (40, 100, 100, 10), 100, n=4000)
    profile("MLP 784-512-256-10 b32", (784, 512, 256, 10), 32)
    profile("MLP 784-512-256-10 b128", (784, 512, 256, 10), 128)
    # bench_sklearn's large set: both libraries' defaults (float64), scikit-learn's batch 200 and alpha 1e-4
    profile("784-100-10 b200 f64 L2", (784, 100, 10), 200, dtype=np.float64, l2=1e-4)
    print("objective: through the execution plan; (graph): the same objective on the autograd graph")
    print("loop = step − gather − objective − update (what the parts timed alone do not account for)")


if __name__ == "__main__":
    main()
