"""Search benchmark: coordinator overhead, 2-worker speed-up, and quality of coarse-to-fine vs random vs Optuna TPE.

    python benchmarks/bench_search.py [--trials 20,100] [--repeats 3] [--seeds 5] [--grid 8] [--skip-speed]
                                      [--skip-quality] [--datasets digits,mnist1d] [--metrics val_accuracy,val_loss]

1. Overhead: wall time of a 20-trial random search with 1 worker divided by the sum of its trials' own
   times (target ≤ 1.1).
2. Speed-up: trials per minute with 2 workers / with 1 worker (target ≥ 1.7 on 2 cores), for each
   search length of ``--trials``. Each search runs in a fresh process, as ``descend search`` does, so
   each pays its own start-up; every process that trains pays a one-off warm-up (importing Numba, its
   compiler's first use, loading the cached kernels: benchmarks/NOTES.md), which 2 workers pay side by
   side, so a search only seconds long is start-up bound and the 100-trial search is the one whose
   ratio is a rate. 1- and 2-worker runs alternate, ``--repeats`` pairs, for three trial sizes of the
   digits MLP: ``descend train``'s defaults (hidden [128, 64], batch 32, up to 60 epochs with early
   stopping, patience 8: what a user's trial is unless they shorten it), the fine stage of
   ``examples/search.toml`` (hidden [64], 10 epochs) and the earlier benchmark's (hidden [32], 2
   epochs), the last two a few hundredths of a second a trial.
   Also the 1-worker search with BLAS and Numba pinned to one thread, as each of the 2 workers is, as a
   second baseline, and the 2-worker search on a pool whose workers had already started.
3. Quality at equal budget (lr and l2 log-uniform, 48 trial-epochs per search): the best validation
   score of coarse-to-fine (8 trials of 1 epoch, then 4 of 4, then 2 of 12), random (12 of 4 epochs) and
   TPE (12 of 4), mean over ``--seeds`` search seeds, and the normalized
   score (best − optimum) / (random's median − optimum) (random = 1, optimum = 0), the optimum from a
   dense ``--grid`` × ``--grid`` grid over the same ranges; on the digits MLP (the issue's; its 216
   validation examples make one example 0.46 points) and on MNIST-1D (600 validation examples, a
   harder set), each scored by validation accuracy and by validation loss (continuous, so it separates
   strategies a few examples cannot). Also coarse-to-fine without narrowing (``shrink=1``: the same
   short-then-long schedule over the whole space), to tell what the narrowing adds.
"""
from __future__ import annotations

import argparse
import json
import math
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from descend.config import prepare_data, resolve
from descend.search import (Choice, LogUniform, SearchSpec, Space, coarse_to_fine, optuna_tpe, random, run_search)

SPACE = Space({"optimizer.lr": LogUniform(1e-4, 1.0), "train.l2": LogUniform(1e-5, 10.0)})
# trial sizes: a config's [model] and [train] tables, and the epochs of the search's stage (None: the config's)
SIZES = {"defaults": ({}, {}, None),  # hidden [128, 64], batch 32, up to 60 epochs, patience 8
         "example": ({"hidden": [64]}, {"patience": 0, "batch_size": 64}, 10),
         "earlier": ({"hidden": [32]}, {"patience": 0, "batch_size": 64}, 2)}


def child(mode: str, size: str, trials: int) -> dict:
    """One search in this (fresh) process: ``mode`` is w1, w1pinned, w2 or w2warm. Returns its wall time,
    the sum of its trials' own times and its scores."""
    import warnings
    warnings.simplefilter("ignore")
    model, train, epochs = SIZES[size]
    base = resolve({"model": model, "train": train})
    spec = SearchSpec(SPACE, random(trials, epochs=epochs), seed=0, workers=1 if mode.startswith("w1") else 2)
    folder = Path(tempfile.mkdtemp(prefix="bench_search-")) / "s"
    executor = None
    if mode == "w1pinned":  # one slot in this process, BLAS and Numba on one thread, as each of 2 workers is
        from concurrent.futures import ThreadPoolExecutor
        from descend.search.trial import pin_threads
        executor = ThreadPoolExecutor(1, initializer=pin_threads, initargs=(1,))  # this process's BLAS, its Numba
    if mode == "w2warm":  # the same search on a pool whose workers have started and run one trial each
        from descend.search import make_executor, run_trial
        ctx = make_executor("local", 2)
        executor, _ = ctx.__enter__()
        [f.result() for f in [executor.submit(run_trial, base, {}, seed=0, epochs=1) for _ in range(2)]]
    t0 = time.perf_counter()
    rows = run_search(base, spec, folder, executor=executor)["trials"]
    wall = time.perf_counter() - t0
    if mode == "w2warm":
        ctx.__exit__(None, None, None)
    return {"wall": wall, "sum": sum(t["seconds"] for t in rows), "scores": [t["score"] for t in rows]}


def run_child(mode, size, trials) -> dict:
    out = subprocess.run([sys.executable, __file__, "--child", json.dumps([mode, size, trials])],
                         capture_output=True, text=True, check=True, env={**os.environ, "PYTHONWARNINGS": "ignore"})
    return json.loads(out.stdout.strip().splitlines()[-1])


def load() -> str:
    return "load average " + ", ".join(f"{x:.2f}" for x in os.getloadavg())


def speed(args) -> None:
    for trials in (int(n) for n in str(args.trials).split(",")):
        print(f"speed ({trials}-trial random search of the digits MLP, each search in a fresh process; {load()})")
        for name in args.sizes.split(",") if args.sizes else SIZES:
            speed_of(name, trials, args.repeats)


def speed_of(name: str, trials: int, repeats: int) -> None:
    ratios, fair, overheads, same = [], [], [], True
    for r in range(repeats):
        one = run_child("w1", name, trials)
        pinned = run_child("w1pinned", name, trials)
        two = run_child("w2", name, trials)
        ratios.append(one["wall"] / two["wall"])
        fair.append(pinned["wall"] / two["wall"])
        overheads.append(one["wall"] / one["sum"])
        same &= one["scores"] == two["scores"] == pinned["scores"]
        print(f"  {name} run {r + 1}: 1 worker {one['wall']:.2f} s (trials {one['sum']:.2f} s), 1 worker with "
              f"BLAS pinned to 1 thread {pinned['wall']:.2f} s, 2 workers {two['wall']:.2f} s → {ratios[-1]:.2f}× "
              f"/ {fair[-1]:.2f}× (vs pinned); {load()}")
    warm = run_child("w2warm", name, trials)
    print(f"  {name}, {trials} trials: speed-up 2 vs 1 worker median {statistics.median(ratios):.2f}×, vs 1 worker "
          f"pinned to 1 thread {statistics.median(fair):.2f}× (target ≥ 1.7); overhead 1 worker median "
          f"{statistics.median(overheads):.3f} (target ≤ 1.1); same table: {same}; 2 workers already started "
          f"{warm['wall']:.2f} s (trials {warm['sum']:.2f} s); {load()}")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--trials", default="20,100", help="trials per search of the speed part, comma-separated")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--seeds", type=int, default=5)
    ap.add_argument("--grid", type=int, default=8)
    ap.add_argument("--skip-speed", action="store_true")
    ap.add_argument("--sizes", default="", help="trial sizes of the speed part (names in SIZES, comma-separated)")
    ap.add_argument("--skip-quality", action="store_true")
    ap.add_argument("--datasets", default="digits,mnist1d", help="data sets of the quality part, comma-separated")
    ap.add_argument("--metrics", default="val_accuracy,val_loss", help="what the quality part's searches optimize")
    ap.add_argument("--child", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        print(json.dumps(child(*json.loads(args.child))))
        return
    tmp = Path(tempfile.mkdtemp(prefix="bench_search-"))
    import warnings
    warnings.simplefilter("ignore")
    if not args.skip_speed:
        speed(args)
    if not args.skip_quality:
        from descend.search import make_executor
        with make_executor("local", 2) as (pool, _):  # one pool: its workers keep each data set loaded
            for dataset in args.datasets.split(","):
                for metric in args.metrics.split(","):
                    quality(args, dataset, metric, pool, tmp)


QUALITY = {"digits": [32], "mnist1d": [100, 100]}  # the data set's MLP (mnist1d: the paper's)


def quality(args, dataset: str, metric: str, pool, tmp: Path) -> None:
    """Best validation ``metric`` at equal budget (48 trial-epochs per search), ``--seeds`` search seeds each."""
    t0 = time.perf_counter()
    base = resolve({"data": {"dataset": dataset}, "model": {"hidden": QUALITY[dataset]},
                    "train": {"patience": 0, "batch_size": 64, "epochs": 4}})
    n_val = len(prepare_data(base)[3])
    pick = max if metric == "val_accuracy" else min

    def best_of(space, strategy, name, seed=0):
        spec = SearchSpec(space, strategy, seed=seed, workers=2, metric=metric)
        trials = run_search(base, spec, tmp / f"{dataset}-{metric}-{name}-{seed}", executor=pool)["trials"]
        return pick((t["score"] for t in trials if t["score"] is not None), default=math.nan)

    # "no narrowing": coarse-to-fine's schedule (short runs, then long ones) with its second stage drawn from
    # the whole space (shrink = 1): what the narrowing adds beyond giving the later trials more epochs
    # three stages, 8 + 16 + 24 trial-epochs: of six splits of the 48, the best on seeds 5–19 of both data sets
    # (never on the bar's seeds 0–4), benchmarks/NOTES.md
    stages = [(8, 1), (4, 4), (2, 12)]
    strategies = {"coarse_to_fine": coarse_to_fine(stages), "random": random(12, epochs=4),
                  "optuna_tpe": optuna_tpe(12, batch=4, epochs=4),
                  "c2f no narrowing": coarse_to_fine(stages, shrink=1.0)}
    grid = {"optimizer.lr": Choice(list(np.geomspace(1e-4, 1.0, args.grid))),
            "train.l2": Choice(list(np.geomspace(1e-5, 10.0, args.grid)))}
    from descend.search import grid as grid_strategy
    optimum = best_of(Space(grid), grid_strategy(epochs=4), "grid")
    best = {name: [best_of(SPACE, s, name, seed) for seed in range(args.seeds)] for name, s in strategies.items()}
    rnd_median = statistics.median(best["random"])
    found = pick(v for values in best.values() for v in values)
    print(f"quality: {dataset} MLP hidden {QUALITY[dataset]}, scored by {metric}; {n_val} validation examples "
          f"(one = {1 / n_val:.4f}); 48 trial-epochs per search, {args.seeds} seeds; dense-grid best {optimum:.4f} "
          f"from {args.grid}×{args.grid} trials of 4 epochs, best found by any search {found:.4f}; the optimum is "
          f"the better ({time.perf_counter() - t0:.0f} s):")
    optimum = pick(optimum, found)  # a search may beat a coarse grid: the optimum is the best value known
    for name, values in best.items():
        denom = rnd_median - optimum
        norm = [(v - optimum) / denom if denom else math.nan for v in values]
        print(f"  {name:17s} mean best {metric} {statistics.mean(values):.4f}  normalized "
              f"{statistics.mean(norm):.3f}  (per seed {', '.join(f'{v:.4f}' for v in values)})")
    mean = {k: statistics.mean(v) for k, v in best.items()}
    sign = 1 if metric == "val_accuracy" else -1  # positive: coarse-to-fine better
    diff = [sign * (a - b) for a, b in zip(best["coarse_to_fine"], best["random"])]
    se = statistics.stdev(diff) / math.sqrt(len(diff)) if len(diff) > 1 else math.nan
    print(f"  coarse_to_fine better than random by {sign * (mean['coarse_to_fine'] - mean['random']):+.4f} "
          f"(standard error of the mean difference over the seeds {se:.4f}), than TPE by "
          f"{sign * (mean['coarse_to_fine'] - mean['optuna_tpe']):+.4f}, than no narrowing by "
          f"{sign * (mean['coarse_to_fine'] - mean['c2f no narrowing']):+.4f}"
          + ("  (target: ≥ 0 vs random, ≥ −0.003 vs TPE)" if metric == "val_accuracy" else ""))



if __name__ == "__main__":
    main()
