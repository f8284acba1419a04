"""One BLAS thread or two for a training step's products: where the second thread starts to pay.

Run: .venv/bin/python benchmarks/bench_blas_threads.py

For MLP layer shapes at several batch sizes, times a layer's three products (forward x·Wᵀ, weight
gradient Gᵀ·x, input gradient G·W, on preallocated float32 arrays as the plan computes them) with one
BLAS thread and with all of them, interleaved (best of rounds). Prints m·n·k and the ratio two/one:
``descend.common.blas.SMALL_PRODUCT`` — below it ``fit`` runs on one thread — is chosen from this table
(benchmarks/NOTES.md).
"""
from __future__ import annotations

import time

import numpy as np
from threadpoolctl import threadpool_limits

from descend.common.blas import SMALL_PRODUCT


def products(bs, a, b, rng):
    x = rng.standard_normal((bs, a), dtype=np.float32)
    w = rng.standard_normal((b, a), dtype=np.float32)
    g = rng.standard_normal((bs, b), dtype=np.float32)
    y, dw, dx = np.empty((bs, b), np.float32), np.empty((b, a), np.float32), np.empty((bs, a), np.float32)

    def run():
        np.matmul(x, w.T, out=y)
        np.matmul(g.T, x, out=dw)
        np.matmul(g, w, out=dx)
    return run


def best_of(fn, seconds=0.05, rounds=9):
    fn()
    n = max(1, int(seconds / max(1e-6, _once(fn))))
    out = float("inf")
    for _ in range(rounds):
        t = time.perf_counter()
        for _ in range(n):
            fn()
        out = min(out, (time.perf_counter() - t) / n)
    return out


def _once(fn):
    t = time.perf_counter()
    fn()
    return time.perf_counter() - t


def main():
    rng = np.random.default_rng(0)
    print(f"load {open('/proc/loadavg').read().split()[0]}; SMALL_PRODUCT = {SMALL_PRODUCT:,} (m·n·k)")
    print(f"{'batch':>6} {'in':>5} {'out':>5} {'m·n·k':>12} {'1 thread µs':>12} {'2 threads µs':>13} {'2 / 1':>7}")
    shapes = [(40, 100), (100, 100), (64, 256), (256, 256), (784, 128), (512, 256), (784, 512)]
    for bs in (32, 100, 128, 256, 512):
        for a, b in shapes:
            fn = products(bs, a, b, rng)
            one, two = float("inf"), float("inf")
            for _ in range(3):  # alternate, so drift in the machine's speed hits both
                with threadpool_limits(limits=1, user_api="blas"):
                    one = min(one, best_of(fn))
                two = min(two, best_of(fn))
            mnk = bs * a * b
            mark = "  (one thread in fit)" if mnk < SMALL_PRODUCT else ""
            print(f"{bs:>6} {a:>5} {b:>5} {mnk:>12,} {one * 1e6:>12.1f} {two * 1e6:>13.1f} {two / one:>7.2f}{mark}")


if __name__ == "__main__":
    main()
