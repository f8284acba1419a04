"""One epoch of MLP training (784-512-256-10, 60,000 synthetic samples, Adam): descend vs PyTorch vs scikit-learn.

Run: .venv/bin/python benchmarks/bench_train.py
Also the MNIST-1D-sized tiny network (40-100-100-10, batch 100) in steps per second. Every
framework does the same work in the same process: shuffle, mini-batches, forward, backward,
Adam update. Ratios < 1 mean descend is faster. descend runs with its defaults (divergence
guard on, history recorded, no progress bar). Before and after the table it prints the machine's
limits as QUALITY.md asks (float32 matmul peak, copy bandwidth) and the time of one epoch's matrix
products alone, the floor every framework on this BLAS shares: this VM's speed drifts between runs,
and these lines show in which state a run found it. The core-to-core round trip says where the host
placed the two vCPUs (``_common.core_round_trip_ns``): ~300 ns, apparently on one die; ~600 ns,
apparently on two, where every framework is slower.
"""
from __future__ import annotations

import math
import statistics
import sys
import time
import warnings
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).parent))
from _common import copy_bandwidth_gbs, core_round_trip_ns, matmul_peak_gflops, peer_torch, threads  # noqa: E402

import descend  # noqa: E402
from descend import nn, optim  # noqa: E402
from descend.train import fit  # noqa: E402


def data(n, d, c, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n, d), dtype=np.float32)
    y = rng.integers(0, c, n)
    return X, y


def mlp(sizes, seed=0):
    rng = np.random.default_rng(seed)
    layers = []
    for a, b in zip(sizes, sizes[1:]):
        layers += [nn.Linear(a, b, rng=rng), nn.ReLU()]
    return nn.Sequential(*layers[:-1])


def descend_epoch(X, y, sizes, bs, steps=None, **kw):
    model = mlp(sizes)
    t = time.perf_counter()
    fit(model, X, y, optimizer=optim.Adam(lr=1e-3), batch_size=bs, epochs=None if steps else 1, steps=steps, **kw)
    return time.perf_counter() - t


def guard_costs(X, y, sizes, bs, repeat=7) -> None:
    """What the divergence guard costs an epoch: θ kept every SNAPSHOT_EVERY steps (the default) and every
    step, against no guard (``divergence=None``); interleaved rounds, medians of the per-round ratios."""
    from descend.train import guard

    default = guard.SNAPSHOT_EVERY

    def every(k):
        def run():
            guard.SNAPSHOT_EVERY = k
            try:
                return descend_epoch(X, y, sizes, bs)
            finally:
                guard.SNAPSHOT_EVERY = default
        return run

    times = interleaved({"none": lambda: descend_epoch(X, y, sizes, bs, divergence=None),
                         "default": every(default), "every": every(1)}, repeat)
    print(f"divergence guard, batch {bs}: epoch with the last good θ kept every {default} steps "
          f"{paired_median(times['default'], times['none']):.3f}× and every step "
          f"{paired_median(times['every'], times['none']):.3f}× the epoch without a guard "
          f"(best {min(times['none']):.3f} / {min(times['default']):.3f} / {min(times['every']):.3f} s)")


def torch_epoch(torch, X, y, sizes, bs, fused, steps=None):
    torch.manual_seed(0)
    layers = []
    for a, b in zip(sizes, sizes[1:]):
        layers += [torch.nn.Linear(a, b), torch.nn.ReLU()]
    model = torch.nn.Sequential(*layers[:-1])
    opt = torch.optim.Adam(model.parameters(), lr=1e-3, fused=fused)
    Xt, yt = torch.from_numpy(X), torch.from_numpy(y)
    t = time.perf_counter()
    done = 0
    while True:
        perm = torch.randperm(len(Xt))
        for i in range(0, len(Xt), bs):
            idx = perm[i:i + bs]
            opt.zero_grad()
            loss = torch.nn.functional.cross_entropy(model(Xt[idx]), yt[idx])
            loss.backward()
            opt.step()
            loss.item()  # descend records every step's loss; so does this loop
            done += 1
            if steps and done == steps:
                return time.perf_counter() - t
        if not steps:
            return time.perf_counter() - t


def sklearn_epoch(X, y, sizes, bs):
    from sklearn.exceptions import ConvergenceWarning
    from sklearn.neural_network import MLPClassifier
    # alpha=0: no L2 penalty, the objective the other loops minimize (scikit-learn computes the penalty
    # term either way, so this changes no work: 1.61-1.83 s against 1.69-1.75 s with its default 1e-4)
    clf = MLPClassifier(hidden_layer_sizes=sizes[1:-1], solver="adam", batch_size=bs, max_iter=1,
                        learning_rate_init=1e-3, random_state=0, alpha=0.0)
    t = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        clf.fit(X, y)
    return time.perf_counter() - t


def products_floor(sizes, n, bs, rounds=3) -> float:
    """Seconds of one epoch's matrix products alone (forward, weight and input gradients, no input
    gradient for the first layer), best of ``rounds``: what any framework on this BLAS spends at least."""
    rng = np.random.default_rng(0)
    ws = [rng.standard_normal((o, i), dtype=np.float32) for i, o in zip(sizes, sizes[1:])]
    x = rng.standard_normal((bs, sizes[0]), dtype=np.float32)
    best = math.inf
    for _ in range(rounds):
        t = time.perf_counter()
        for start in range(0, n, bs):
            h = [x[:min(bs, n - start)]]
            for w in ws:
                h.append(h[-1] @ w.T)
            g = h.pop()
            for k in range(len(ws) - 1, -1, -1):
                _ = g.T @ h[k]
                if k:
                    g = g @ ws[k]
        best = min(best, time.perf_counter() - t)
    return best


def machine_line(sizes, n, bs) -> str:
    trip = core_round_trip_ns()
    trip = "n/a" if trip is None else f"{trip:.0f} ns"
    return (f"machine now: float32 matmul {matmul_peak_gflops():.0f} GFLOP/s (2048²), "
            f"copy {copy_bandwidth_gbs():.0f} GB/s, core-to-core round trip {trip}; "
            f"one epoch's matrix products alone at batch {bs}, row-major as plain NumPy code computes them: "
            f"{products_floor(sizes, n, bs):.3f} s")


def interleaved(fns: dict, repeat: int) -> dict:
    """Each function's times over ``repeat`` rounds, running them in turn within each round, so that
    drift in this shared machine's speed hits every framework alike."""
    times = {k: [] for k in fns}
    for _ in range(repeat):
        for k, fn in fns.items():
            times[k].append(fn())
    return times


def paired_median(ours: list, theirs: list) -> float:
    """The median over rounds of ours/theirs measured in the same round: robust to the machine's speed
    drifting between rounds, which the ratio of the two best times is not (each may come from a
    different, luckier round)."""
    return statistics.median(a / b for a, b in zip(ours, theirs))


def main() -> None:
    torch = peer_torch()
    sizes = (784, 512, 256, 10)
    X, y = data(60_000, 784, 10)
    descend_epoch(X[:2000], y[:2000], sizes, 128)  # warm up (Numba kernels load from cache)
    print(f"threads: {threads()}  — one epoch, 60,000 samples, MLP 784-512-256-10, Adam; best of 7 (batch 128) "
          "and 3 (batch 32) interleaved rounds")
    print(machine_line(sizes, len(X), 128))
    print(f"{'batch':>6} {'descend s':>10} {'torch s':>8} {'torch fused s':>14} {'sklearn s':>10} "
          f"{'/torch':>7} {'/fused':>7} {'/sklearn':>9}")
    nan = float("nan")
    for bs in (128, 32):
        fns = {"descend": lambda: descend_epoch(X, y, sizes, bs), "sklearn": lambda: sklearn_epoch(X, y, sizes, bs)}
        if torch:
            fns["torch"] = lambda: torch_epoch(torch, X, y, sizes, bs, False)
            fns["fused"] = lambda: torch_epoch(torch, X, y, sizes, bs, True)
        times = interleaved(fns, 7 if bs == 128 else 3)
        r = {k: min(v) for k, v in times.items()}
        d, s, t, f = r["descend"], r["sklearn"], r.get("torch", nan), r.get("fused", nan)
        print(f"{bs:>6} {d:>10.3f} {t:>8.3f} {f:>14.3f} {s:>10.3f} {d / t:>7.3f} {d / f:>7.3f} {d / s:>9.3f}")
        med = {k: paired_median(times["descend"], v) if v else nan for k, v in
               (("torch", times.get("torch")), ("fused", times.get("fused")), ("sklearn", times["sklearn"]))}
        print(f"{'':>6} {'median of the per-round ratios':>45} {med['torch']:>7.3f} {med['fused']:>7.3f} "
              f"{med['sklearn']:>9.3f}")

    guard_costs(X, y, sizes, 128)
    print(machine_line(sizes, len(X), 128).replace("machine now", "machine after"))

    tiny = (40, 100, 100, 10)
    Xs, ys = data(4000, 40, 10)
    steps = 2000
    descend_epoch(Xs, ys, tiny, 100, steps=50)
    fns = {"descend": lambda: descend_epoch(Xs, ys, tiny, 100, steps=steps)}
    if torch:
        fns["torch"] = lambda: torch_epoch(torch, Xs, ys, tiny, 100, False, steps=steps)
        fns["fused"] = lambda: torch_epoch(torch, Xs, ys, tiny, 100, True, steps=steps)
    r = {k: min(v) for k, v in interleaved(fns, 5).items()}
    d = r["descend"]
    print(f"\ntiny network 40-100-100-10, batch 100, {steps} Adam steps, best of 5 interleaved rounds")
    line = f"descend {steps / d:,.0f} steps/s"
    if torch:
        t, f = r["torch"], r["fused"]
        line += f"   torch {steps / t:,.0f} steps/s (fused {steps / f:,.0f})   speed-up ×{t / d:.2f} (vs fused ×{f / d:.2f})"
    print(line)


if __name__ == "__main__":
    main()
