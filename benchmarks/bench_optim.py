"""One optimizer step on a 10M-element float32 θ: descend's fused Numba kernels vs torch.optim, side by side.

Run: .venv/bin/python benchmarks/bench_optim.py [n]
Prints the memory-traffic floor (bytes each step must move / copy bandwidth measured here with a large
np.copyto), each time as best and median of several repetitions after warm-up, and the ratios.
Also times Adam with first and second moments full of denormal numbers (dead units), where the kernel
flushes them to zero.
"""
import statistics
import sys
import time

from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).parent))
from _common import peer_torch  # noqa: E402

from descend.optim import SGD, Adam, RMSprop  # noqa: E402
from descend.optim import _kernels  # noqa: E402

REPS = 15


def timeit(fn, reps=REPS, warmup=3, setup=None):
    for _ in range(warmup):
        if setup:
            setup()
        fn()
    times = []
    for _ in range(reps):
        if setup:
            setup()
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return min(times), statistics.median(times)


def main(n=10_000_000):
    import numba

    threads = numba.get_num_threads()
    torch = peer_torch(threads)
    rng = np.random.default_rng(0)
    theta0 = rng.standard_normal(n).astype(np.float32)
    grad = (rng.standard_normal(n) * 0.01).astype(np.float32)

    src, dst = np.ones(n, np.float32), np.empty(n, np.float32)
    best_copy, _ = timeit(lambda: np.copyto(dst, src), reps=20)
    bw = 2 * 4 * n / best_copy  # bytes read + written per second
    print(f"n = {n:,} float32, numba threads = {threads} ({numba.threading_layer() if threads else ''}), "
          f"torch threads = {torch.get_num_threads() if torch else '-'}")
    print(f"copy bandwidth (np.copyto, best of 20): {bw / 1e9:.2f} GB/s")
    print(f"{'step':34s} {'best ms':>8s} {'median ms':>10s} {'/ floor':>8s}")

    results = {}

    def report(name, best, med, floor):
        results[name] = best
        print(f"{name:34s} {best * 1e3:8.2f} {med * 1e3:10.2f} {best / floor:8.2f}")

    cases = [  # name, descend optimizer, torch factory, bytes per element
        ("Adam", lambda: Adam(lr=1e-3), lambda p: torch.optim.Adam([p], lr=1e-3), 28),
        ("SGD momentum", lambda: SGD(lr=1e-3, momentum=0.9), lambda p: torch.optim.SGD([p], lr=1e-3, momentum=0.9), 20),
        ("RMSprop", lambda: RMSprop(lr=1e-3), lambda p: torch.optim.RMSprop([p], lr=1e-3), 20),
    ]
    for name, make, make_torch, bytes_per in cases:
        floor = bytes_per * n / bw
        print(f"-- {name}: floor {floor * 1e3:.2f} ms ({bytes_per} bytes/element at the copy bandwidth)")
        theta = theta0.copy()
        opt = make()
        report(f"descend {name}", *timeit(lambda: opt.step(theta, lambda: (0.0, grad))), floor)
        if torch is None:
            continue
        variants = [("default", {})]
        if name == "Adam":
            variants.append(("fused=True", {"fused": True}))
        for label, kw in variants:
            p = torch.nn.Parameter(torch.from_numpy(theta0.copy()))
            p.grad = torch.from_numpy(grad.copy())
            topt = make_torch(p) if not kw else torch.optim.Adam([p], lr=1e-3, **kw)
            with torch.no_grad():
                report(f"torch {name} ({label})", *timeit(topt.step), floor)

    # denormal moments: a dead unit's m and v decay geometrically; once below float32's tiny (1.2e-38)
    # every multiply on them takes a slow path unless flushed
    print("-- Adam with m and v full of denormals, g = 0 (dead units); state reset before every step")
    theta = theta0.copy()
    zero = np.zeros(n, np.float32)
    opt = Adam(lr=1e-3)
    opt.step(theta, lambda: (0.0, zero))
    denorm = np.float32(3e-39)

    def fill():
        opt.state["m"].fill(denorm)
        opt.state["v"].fill(denorm)

    floor = 28 * n / bw
    report("descend Adam, denormal m, v", *timeit(lambda: opt.step(theta, lambda: (0.0, zero)), setup=fill), floor)
    assert not opt.state["m"].any() and not opt.state["v"].any(), "denormal moments were not flushed to zero"
    opt.step(theta, lambda: (0.0, zero))
    report("descend Adam, after the flush", *timeit(lambda: opt.step(theta, lambda: (0.0, zero))), floor)
    if torch is not None:
        p = torch.nn.Parameter(torch.from_numpy(theta0.copy()))
        p.grad = torch.zeros(n)
        topt = torch.optim.Adam([p], lr=1e-3, fused=True)
        topt.step()
        st = topt.state[p]

        def tfill():
            st["exp_avg"].fill_(float(denorm))
            st["exp_avg_sq"].fill_(float(denorm))

        with torch.no_grad():
            report("torch Adam fused, denormal m, v", *timeit(topt.step, setup=tfill), floor)
            report("torch Adam fused, steady denormal", *timeit(topt.step), floor)

    print("-- ratios (best times)")
    adam_floor = 28 * n / bw
    print(f"descend Adam / floor           = {results['descend Adam'] / adam_floor:.2f}   (bar <= 2)")
    if torch is not None:
        print(f"descend Adam / torch fused     = {results['descend Adam'] / results['torch Adam (fused=True)']:.2f}   (bar <= 1.2)")
        print(f"descend Adam / torch default   = {results['descend Adam'] / results['torch Adam (default)']:.2f}")
        print(f"descend SGD momentum / torch   = {results['descend SGD momentum'] / results['torch SGD momentum (default)']:.2f}")
        print(f"descend RMSprop / torch        = {results['descend RMSprop'] / results['torch RMSprop (default)']:.2f}")
    print(f"(kernels run in parallel above {_kernels.PARALLEL_MIN:,} elements)")


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 10_000_000)
