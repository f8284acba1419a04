"""descend.sklearn.MLPClassifier vs sklearn.neural_network.MLPClassifier side by side: fit time ratio and test accuracy.

Run: .venv/bin/python benchmarks/bench_sklearn.py [--seeds 5] [--large-n 60000] [--large-epochs 5]

Same hidden sizes (100,), solver Adam (lr 1e-3), batch size 200, the same number of epochs (max_iter,
tol=0 so neither stops early), L2 1e-4 and seeds, on standardized bundled sets (digits, wine, breast
cancer, iris; 70/30 split per seed) and a synthetic 60,000 × 784 set (10 Gaussian classes). Both
estimators compute in float64 by default; on the large set both are also timed in float32 (descend's
dtype="float32"; scikit-learn keeps float32 input in float32). Target (issue 15): ≤ 0.5× scikit-learn's
time on the large set, accuracy within noise on the small ones: the accuracy difference of the means is
printed with its standard error over the seeds (within noise: |Δ| ≤ 2 s.e.). The time ratio is
descend/sklearn (< 1: descend faster); the load average is printed beside the times. Beside the large
set's ratio: the same epochs' matrix products alone, as a fraction of scikit-learn's time — the floor
under any trainer's ratio on this machine, since both libraries call the same BLAS for them.
"""
from __future__ import annotations

import argparse
import os
import time
import warnings

import numpy as np
from sklearn.datasets import load_breast_cancer, load_digits, load_iris, load_wine
from sklearn.exceptions import ConvergenceWarning
from sklearn.neural_network import MLPClassifier as SkMLP
from sklearn.preprocessing import StandardScaler

from descend.sklearn import MLPClassifier


def _timed(est, Xtr, ytr, Xte, yte):
    t = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        warnings.filterwarnings("ignore", message="Got `batch_size`")  # scikit-learn clipping 200 to n, as we do
        est.fit(Xtr, ytr)
    return time.perf_counter() - t, est.score(Xte, yte)


def _kw(seed, epochs):
    return dict(hidden_layer_sizes=(100,), batch_size=200, max_iter=epochs, tol=0.0, random_state=seed)


def small(seeds: int, epochs: int):
    print(f"bundled sets, {epochs} epochs, {seeds} seeds: accuracy mean ± std, fit time ratio descend/sklearn")
    for name, load in (("digits", load_digits), ("wine", load_wine), ("breast_cancer", load_breast_cancer),
                       ("iris", load_iris)):
        X, y = load(return_X_y=True)
        ours, theirs, ratios = [], [], []
        for seed in range(seeds):
            idx = np.random.default_rng(seed).permutation(len(X))
            cut = int(0.7 * len(X))
            sc = StandardScaler().fit(X[idx[:cut]])
            split = (sc.transform(X[idx[:cut]]), y[idx[:cut]], sc.transform(X[idx[cut:]]), y[idx[cut:]])
            t1, a1 = _timed(MLPClassifier(lr=1e-3, l2=1e-4, **_kw(seed, epochs)), *split)
            t2, a2 = _timed(SkMLP(learning_rate_init=1e-3, alpha=1e-4, **_kw(seed, epochs)), *split)
            ours.append(a1), theirs.append(a2), ratios.append(t1 / t2)
        delta = np.mean(ours) - np.mean(theirs)
        se = np.sqrt((np.var(ours, ddof=1) + np.var(theirs, ddof=1)) / seeds) if seeds > 1 else float("nan")
        verdict = "within noise" if abs(delta) <= 2 * se else "outside noise"
        print(f"  {name:>14}: descend {np.mean(ours):.3f} ± {np.std(ours):.3f}   sklearn {np.mean(theirs):.3f} ± "
              f"{np.std(theirs):.3f}   Δ {delta:+.3f} (s.e. {se:.3f}, {verdict})   time ratio median "
              f"{np.median(ratios):.2f} [{np.min(ratios):.2f}–{np.max(ratios):.2f}]   load {os.getloadavg()[0]:.1f}")


def large(n: int, epochs: int):
    rng = np.random.default_rng(0)
    centers = rng.standard_normal((10, 784))
    y = rng.integers(0, 10, n + 10000)
    X = centers[y] + 4.0 * rng.standard_normal((n + 10000, 784))
    print(f"synthetic {n} × 784, {epochs} epochs:")
    for dtype in ("float64", "float32"):
        split = tuple(a.astype(dtype) if a.dtype.kind == "f" else a for a in (X[:n], y[:n], X[n:], y[n:]))
        t1, a1 = _timed(MLPClassifier(lr=1e-3, l2=1e-4, dtype=dtype, **_kw(0, epochs)), *split)
        t2, a2 = _timed(SkMLP(learning_rate_init=1e-3, alpha=1e-4, **_kw(0, epochs)), *split)
        floor = products(split[0], epochs)
        print(f"  {dtype}: sklearn {t2:.2f} s (acc {a2:.3f}); descend {t1:.2f} s (acc {a1:.3f}); ratio {t1 / t2:.2f}; "
              f"the matrix products alone {floor:.2f} s ({floor / t2:.2f}× sklearn's time, the least any trainer "
              f"can take)   load {os.getloadavg()[0]:.1f}")


def products(X, epochs: int, hidden: int = 100, classes: int = 10, batch: int = 200) -> float:
    """Seconds the products of ``epochs`` epochs take by themselves: per batch X·W1, H·W2, the output error
    back through W2ᵀ, and both weight gradients — what every trainer of this network computes, with the same BLAS."""
    rng = np.random.default_rng(0)
    w1, w2 = rng.standard_normal((X.shape[1], hidden)).astype(X.dtype), rng.standard_normal((hidden, classes)).astype(X.dtype)
    xb = X[:batch].copy()
    h, d2 = np.empty((batch, hidden), X.dtype), rng.standard_normal((batch, classes)).astype(X.dtype)
    g1, g2, d1 = np.empty_like(w1), np.empty_like(w2), np.empty_like(h)
    t = time.perf_counter()
    for _ in range(epochs * (len(X) // batch)):
        np.matmul(xb, w1, out=h)
        np.matmul(h, w2, out=d2)
        np.matmul(d2, w2.T, out=d1)
        np.matmul(h.T, d2, out=g2)
        np.matmul(xb.T, d1, out=g1)
    return time.perf_counter() - t


if __name__ == "__main__":
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--seeds", type=int, default=5)
    p.add_argument("--epochs", type=int, default=200)
    p.add_argument("--large-n", type=int, default=60000)
    p.add_argument("--large-epochs", type=int, default=5)
    a = p.parse_args()
    small(a.seeds, a.epochs)
    large(a.large_n, a.large_epochs)
