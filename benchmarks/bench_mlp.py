"""Forward + backward of an MLP 784-512-256-10 (ReLU, softmax cross-entropy): descend vs PyTorch, one run.

Run: .venv/bin/python benchmarks/bench_mlp.py   Prints times, the ratio descend/PyTorch (< 1 means
descend is faster), achieved GFLOP/s and the machine's float32 matmul peak measured in the same run.
"""
from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).parent))
from _common import matmul_peak_gflops, peer_torch, threads, timeit  # noqa: E402

import descend  # noqa: E402
from descend import nn  # noqa: E402
from descend.nn import functional as F  # noqa: E402

SIZES = (784, 512, 256, 10)


def descend_step(batch: int):
    rng = np.random.default_rng(0)
    model = nn.Sequential(nn.Linear(784, 512, rng=rng), nn.ReLU(), nn.Linear(512, 256, rng=rng), nn.ReLU(),
                          nn.Linear(256, 10, rng=rng))
    params = nn.pack(model)
    x = rng.standard_normal((batch, 784), dtype=np.float32)
    y = rng.integers(0, 10, batch)

    def step():
        params.zero_grad()
        F.cross_entropy(model(x), y).backward()
    return step


def torch_step(batch: int, torch):
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Linear(784, 512), torch.nn.ReLU(), torch.nn.Linear(512, 256),
                                torch.nn.ReLU(), torch.nn.Linear(256, 10))
    x = torch.randn(batch, 784)
    y = torch.randint(0, 10, (batch,))

    def step():
        model.zero_grad(set_to_none=False)
        torch.nn.functional.cross_entropy(model(x), y).backward()
    return step


def main() -> None:
    torch = peer_torch()
    peak = matmul_peak_gflops()
    print(f"threads: {threads()}   float32 matmul peak (numpy BLAS, 2048²): {peak:.1f} GFLOP/s")
    print(f"{'batch':>6} {'descend ms':>11} {'torch ms':>9} {'ratio':>6} {'descend GFLOP/s':>16} {'torch GFLOP/s':>14}")
    for batch in (32, 128, 512):
        # forward 2·N·Σ(in·out); backward twice that (dX and dW), so 3× in all
        flops = 3 * 2 * batch * sum(a * b for a, b in zip(SIZES, SIZES[1:]))
        d = timeit(descend_step(batch), repeat=9, number=20)
        line = f"{batch:>6} {d * 1e3:>11.3f}"
        if torch is not None:
            t = timeit(torch_step(batch, torch), repeat=9, number=20)
            line += f" {t * 1e3:>9.3f} {d / t:>6.2f} {flops / d / 1e9:>16.1f} {flops / t / 1e9:>14.1f}"
        else:
            line += f" {'-':>9} {'-':>6} {flops / d / 1e9:>16.1f}"
        print(line)


if __name__ == "__main__":
    main()
