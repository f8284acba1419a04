"""CNN training steps (forward + backward + SGD-momentum update): descend vs PyTorch side by side in one run.

Run: .venv/bin/python benchmarks/bench_cnn.py   (add --alone for descend only, in a process without PyTorch)

1. 28×28×1 CNN, batch 64: conv3×3(1→32, pad 1)+ReLU → maxpool2 → conv3×3(32→64, pad 1)+ReLU → maxpool2
   → flatten → linear(64·7·7 → 10), softmax cross-entropy, SGD lr 0.01 momentum 0.9.
   Bar (issue 5): descend ≤ 2× PyTorch's time per step, goal parity.
2. MNIST-1D CNN, batch 100, length 40: Conv1d 1→25 k5 s2 p1, 25→25 k3 s2 p1, 25→25 k3 s2 p1, each + ReLU,
   flatten, linear 125 → 10. Bar: descend's steps/s ≥ PyTorch's.
   (40 + 2·1 − 5)/2 + 1 = 19.5 and (10 + 2·1 − 3)/2 + 1 = 5.5 are not whole numbers, so this network (as
   PyTorch and the MNIST-1D paper define it) needs allow_floor=True in descend; PyTorch floors silently.

The update is the same in both: v = 0.9·v + g; θ −= 0.01·v (PyTorch's SGD momentum form), in place on
float32. Prints times, the ratio descend/PyTorch (< 1 means descend is faster), the achieved GFLOP/s
of the convolutions and the machine's float32 matmul peak measured in the same run.
"""
from __future__ import annotations

import statistics
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).parent))
from _common import matmul_peak_gflops, peer_torch, threads  # noqa: E402

from descend import nn  # noqa: E402
from descend.nn import functional as F  # noqa: E402


def descend_model(kind: str, rng):
    if kind == "28x28":
        return nn.Sequential(
            nn.Conv2d(1, 32, 3, padding=1, rng=rng), nn.ReLU(), nn.MaxPool2d(2),
            nn.Conv2d(32, 64, 3, padding=1, rng=rng), nn.ReLU(), nn.MaxPool2d(2),
            nn.Flatten(), nn.Linear(64 * 7 * 7, 10, rng=rng))
    return nn.Sequential(
        nn.Conv1d(1, 25, 5, stride=2, padding=1, allow_floor=True, rng=rng), nn.ReLU(),
        nn.Conv1d(25, 25, 3, stride=2, padding=1, rng=rng), nn.ReLU(),
        nn.Conv1d(25, 25, 3, stride=2, padding=1, allow_floor=True, rng=rng), nn.ReLU(),
        nn.Flatten(), nn.Linear(125, 10, rng=rng))


def torch_model(kind: str, torch):
    tnn = torch.nn
    if kind == "28x28":
        return tnn.Sequential(
            tnn.Conv2d(1, 32, 3, padding=1), tnn.ReLU(), tnn.MaxPool2d(2),
            tnn.Conv2d(32, 64, 3, padding=1), tnn.ReLU(), tnn.MaxPool2d(2),
            tnn.Flatten(), tnn.Linear(64 * 7 * 7, 10))
    return tnn.Sequential(
        tnn.Conv1d(1, 25, 5, stride=2, padding=1), tnn.ReLU(), tnn.Conv1d(25, 25, 3, stride=2, padding=1), tnn.ReLU(),
        tnn.Conv1d(25, 25, 3, stride=2, padding=1), tnn.ReLU(), tnn.Flatten(), tnn.Linear(125, 10))


def shapes(kind: str):
    return ((64, 1, 28, 28), 64) if kind == "28x28" else ((100, 1, 40), 100)


def descend_step(kind: str):
    rng = np.random.default_rng(0)
    model = descend_model(kind, rng)
    params = nn.pack(model)
    v = np.zeros_like(params.theta)
    theta, grad = params.theta, params.grad
    xshape, n = shapes(kind)
    x = rng.standard_normal(xshape, dtype=np.float32)
    y = rng.integers(0, 10, n)

    def step(v=v, theta=theta, grad=grad):
        params.zero_grad()
        F.cross_entropy(model(x), y).backward()
        v *= 0.9
        v += grad
        theta -= 0.01 * v
    return step


def torch_step(kind: str, torch):
    torch.manual_seed(0)
    model = torch_model(kind, torch)
    opt = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
    xshape, n = shapes(kind)
    x = torch.randn(*xshape)
    y = torch.randint(0, 10, (n,))

    def step():
        opt.zero_grad(set_to_none=False)
        torch.nn.functional.cross_entropy(model(x), y).backward()
        opt.step()
    return step


def conv_flops(kind: str) -> float:
    """Multiply-adds ×2 of the convolutions' forward and both backward products (dW, dx; no dx for layer 1)."""
    if kind == "28x28":
        l1 = 2 * 64 * 28 * 28 * 32 * 9          # forward; backward dW the same, no dx (input needs no gradient)
        l2 = 2 * 64 * 14 * 14 * 64 * 32 * 9     # forward; backward dW and dx the same each
        return 2 * l1 + 3 * l2
    l1 = 2 * 100 * 19 * 25 * 5
    l2 = 2 * 100 * 10 * 25 * 25 * 3
    l3 = 2 * 100 * 5 * 25 * 25 * 3
    return 2 * l1 + 3 * (l2 + l3)


def interleaved(fns: dict, number: int, rounds: int, warmup: int = 3) -> dict:
    """Median seconds per step of each function over ``rounds`` rounds of ``number`` steps, the functions
    taking turns within each round, so that drift in this shared machine's speed hits both alike.
    Without the pause at each switch PyTorch measured 1.6-2× slower than run alone (its OpenMP
    workers and OpenBLAS's spinning against each other), which flattered descend."""
    for fn in fns.values():
        for _ in range(warmup):
            fn()
    times = {k: [] for k in fns}
    for _ in range(rounds):
        for k, fn in fns.items():
            fn()  # one untimed step after the switch, then a pause: the other framework's idle
            time.sleep(0.05)  # worker threads spin-wait for a while and would be billed to this one
            t = time.perf_counter()
            for _ in range(number):
                fn()
            times[k].append((time.perf_counter() - t) / number)
    return {k: statistics.median(v) for k, v in times.items()}


def main() -> None:
    # --alone: descend only, as a user's process runs it. PyTorch's and the peak measurement's large
    # allocations raise glibc's mmap threshold, after which descend's own fresh arrays stop costing
    # page faults — so side by side, descend's allocation costs are partly hidden.
    alone = "--alone" in sys.argv[1:]
    torch = None if alone else peer_torch()
    peak = float("nan") if alone else matmul_peak_gflops()
    print(f"threads: {threads()}   float32 matmul peak (numpy BLAS, 2048²): {peak:.1f} GFLOP/s"
          + ("   (--alone: descend only)" if alone else ""))
    for kind, number in (("28x28", 10), ("mnist1d", 100)):
        fns = {"descend": descend_step(kind)}
        if torch is not None:
            fns["torch"] = torch_step(kind, torch)
        r = interleaved(fns, number, rounds=9)
        d = r["descend"]
        flops = conv_flops(kind)
        title = ("28×28×1 CNN, batch 64 (train step)" if kind == "28x28"
                 else "MNIST-1D CNN, batch 100 (train step)")
        print(f"\n{title}  — median of 9 interleaved rounds of {number} steps each")
        print(f"  descend : {d * 1e3:8.3f} ms/step  {1 / d:8.1f} steps/s  conv {flops / d / 1e9:6.1f} GFLOP/s")
        if torch is not None:
            t = r["torch"]
            print(f"  PyTorch : {t * 1e3:8.3f} ms/step  {1 / t:8.1f} steps/s  conv {flops / t / 1e9:6.1f} GFLOP/s")
            print(f"  ratio descend/PyTorch time: {d / t:.2f}  (steps/s descend/PyTorch: {t / d:.2f})")

if __name__ == "__main__":
    main()
