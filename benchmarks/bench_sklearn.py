"""descend.sklearn.MLPClassifier vs sklearn.neural_network.MLPClassifier side by side: fit time ratio and test accuracy.

Run: .venv/bin/python benchmarks/bench_sklearn.py [--seeds 5] [--large-n 60000] [--large-epochs 5]

Same hidden sizes (100,), solver Adam (lr 1e-3), batch size 200, the same number of epochs (max_iter,
tol=0 so neither stops early), L2 1e-4 and seeds, on standardized bundled sets (digits, wine, breast
cancer, iris; 70/30 split per seed) and a synthetic 60,000 × 784 set (10 Gaussian classes). Both
estimators compute in float64 by default; on the large set both are also timed in float32 (descend's
dtype="float32"; scikit-learn keeps float32 input in float32). Target (issue 15): ≤ 0.5× scikit-learn's
time on the large set, accuracy within noise on the small ones: the accuracy difference of the means is
printed with its standard error over the seeds (within noise: |Δ| ≤ 2 s.e.). The time ratio is
descend/sklearn (< 1: descend faster); the load average is printed beside the times.
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
        print(f"  {dtype}: sklearn {t2:.1f} s (acc {a2:.3f}); descend {t1:.1f} s (acc {a1:.3f}); ratio {t1 / t2:.2f}"
              f"   load {os.getloadavg()[0]:.1f}")


if __name__ == "__main__":
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--seeds", type=int, default=5)
    p.add_argument("--epochs", type=int, default=200)
    p.add_argument("--large-n", type=int, default=60000)
    p.add_argument("--large-epochs", type=int, default=5)
    a = p.parse_args()
    small(a.seeds, a.epochs)
    large(a.large_n, a.large_epochs)
