"""One epoch of MLP training (784-512-256-10, 60,000 synthetic samples, Adam) and the MNIST-1D-sized tiny
network (40-100-100-10, batch 100, in steps per second): descend against every CPU peer in one run.

Run: .venv/bin/python benchmarks/bench_train.py [--quick]   (``make bench`` runs it with the ``bench`` extra)

Peers: PyTorch (its Adam, and fused Adam), JAX + Optax (``jax.jit`` of one whole step called per step with the
batch gathered on the host, and ``lax.scan`` over the epoch's steps inside one jitted call with the data on
the device: ``_jax_peers.py``), scikit-learn's MLPClassifier. Every peer does the same work in the same
process: shuffle, mini-batches (a short last one), forward, backward, Adam (lr 1e-3, PyTorch's defaults),
float32. descend runs ``fit`` with its defaults (divergence guard on, history recorded, no progress bar).
Compile time is excluded (each JAX function is compiled and run once first). Samples are interleaved —
each round runs every peer once, starting at a different one each round — so drift in this shared
machine's speed hits all alike; the table shows medians, the ratios are medians of the per-round ratios.
The labels come from a random linear teacher, so one epoch visibly lowers the loss: the loss table after
the times checks that every peer trains the same network.

Around the table it prints the machine's limits as QUALITY.md asks (float32 matmul peak of NumPy's BLAS and
of JAX's XLA, copy bandwidth) and the time of one epoch's matrix products alone, the floor every framework
on this BLAS shares: this VM's speed drifts between runs, and these lines show in which state a run found
it. The core-to-core round trip says where the host placed the two vCPUs (``_common.core_round_trip_ns``):
~300 ns, apparently on one die; ~600 ns, apparently on two, where every framework is slower. Last come
the fraction of the matmul peak descend reaches at batch 512 and issue 19's bar as PASS/FAIL lines.
"""
from __future__ import annotations

import argparse
import math
import statistics
import sys
import time
import warnings
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).parent))
import _jax_peers  # noqa: E402
from _common import copy_bandwidth_gbs, core_round_trip_ns, matmul_peak_gflops, peer_torch, threads  # noqa: E402

from descend import nn, optim  # noqa: E402
from descend.train import fit  # noqa: E402

MLP = (784, 512, 256, 10)
TINY = (40, 100, 100, 10)
PEERS = ("torch", "fused", "jax step", "jax scan", "sklearn")  # the table's columns after descend


def data(n, d, c, seed=0):
    """float32 X with labels from a random linear teacher (argmax of X·T): learnable, so losses mean something."""
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n, d), dtype=np.float32)
    y = np.argmax(X @ rng.standard_normal((d, c), dtype=np.float32), axis=1)
    return X, y


def mlp(sizes, seed=0):
    rng = np.random.default_rng(seed)
    layers = []
    for a, b in zip(sizes, sizes[1:]):
        layers += [nn.Linear(a, b, rng=rng), nn.ReLU()]
    return nn.Sequential(*layers[:-1])


def initial_weights(sizes):
    """descend's initial [(W, b)] of ``mlp(sizes)``, which the JAX peers start from."""
    return [(np.array(m.weight.data), np.array(m.bias.data)) for m in mlp(sizes) if isinstance(m, nn.Linear)]


def descend_epoch(X, y, sizes, bs, steps=None, **kw):
    """(seconds, per-step losses) of one epoch, or of ``steps`` steps."""
    model = mlp(sizes)
    t = time.perf_counter()
    h = fit(model, X, y, optimizer=optim.Adam(lr=1e-3), batch_size=bs, epochs=None if steps else 1, steps=steps, **kw)
    return time.perf_counter() - t, np.array(h.step_loss)


def guard_costs(X, y, sizes, bs, repeat=3) -> None:
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
    times = {k: [t for t, _ in v] for k, v in times.items()}
    print(f"divergence guard, batch {bs}: epoch with the last good θ kept every {default} steps "
          f"{paired_median(times['default'], times['none']):.3f}× and every step "
          f"{paired_median(times['every'], times['none']):.3f}× the epoch without a guard "
          f"(best {min(times['none']):.3f} / {min(times['default']):.3f} / {min(times['every']):.3f} s)")


def torch_epoch(torch, X, y, sizes, bs, fused, steps=None):
    """(seconds, per-step losses) of one epoch, or of ``steps`` steps."""
    torch.manual_seed(0)
    layers = []
    for a, b in zip(sizes, sizes[1:]):
        layers += [torch.nn.Linear(a, b), torch.nn.ReLU()]
    model = torch.nn.Sequential(*layers[:-1])
    opt = torch.optim.Adam(model.parameters(), lr=1e-3, fused=fused)
    Xt, yt = torch.from_numpy(X), torch.from_numpy(y)
    losses = []
    t = time.perf_counter()
    while True:
        perm = torch.randperm(len(Xt))
        for i in range(0, len(Xt), bs):
            idx = perm[i:i + bs]
            opt.zero_grad()
            loss = torch.nn.functional.cross_entropy(model(Xt[idx]), yt[idx])
            loss.backward()
            opt.step()
            losses.append(loss.item())  # descend records every step's loss; so does this loop
            if steps and len(losses) == steps:
                return time.perf_counter() - t, np.array(losses)
        if not steps:
            return time.perf_counter() - t, np.array(losses)


def sklearn_epoch(X, y, sizes, bs, epochs=1):
    """(seconds, [the mean training loss of each epoch]) of ``epochs`` epochs of MLPClassifier's Adam."""
    from sklearn.exceptions import ConvergenceWarning
    from sklearn.neural_network import MLPClassifier
    # alpha=0: no L2 penalty, the objective the other loops minimize (scikit-learn computes the penalty
    # term either way, so this changes no work: 1.61-1.83 s against 1.69-1.75 s with its default 1e-4);
    # n_iter_no_change past the last epoch: every epoch runs, none is stopped early
    clf = MLPClassifier(hidden_layer_sizes=sizes[1:-1], solver="adam", batch_size=bs, max_iter=epochs,
                        learning_rate_init=1e-3, random_state=0, alpha=0.0, n_iter_no_change=epochs + 1)
    t = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        clf.fit(X, y)
    return time.perf_counter() - t, np.array(clf.loss_curve_)


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


def machine_line(sizes, n, bs, jax) -> tuple[str, float]:
    """A line on the machine's state now, and NumPy's float32 matmul peak in it (GFLOP/s, best of 7)."""
    trip = core_round_trip_ns()
    trip = "n/a" if trip is None else f"{trip:.0f} ns"
    peak = matmul_peak_gflops(best=True)
    xla = f", JAX (XLA) {_jax_peers.matmul_peak_gflops(jax):.0f}" if jax else ""
    return (f"float32 matmul 2048², best of 7: NumPy {peak:.0f} GFLOP/s{xla}; copy {copy_bandwidth_gbs():.0f} GB/s; "
            f"core-to-core round trip {trip}; one epoch's matrix products alone at batch {bs}, row-major as "
            f"plain NumPy code computes them: {products_floor(sizes, n, bs):.3f} s"), peak


def interleaved(fns: dict, repeat: int) -> dict:
    """Each function's results over ``repeat`` rounds, running them in turn within each round, each round
    starting one function later, so that drift in this shared machine's speed — and whatever one framework
    leaves behind for the next (spinning threads, a cold cache) — hits every framework alike."""
    out = {k: [] for k in fns}
    names = list(fns)
    for r in range(repeat):
        for k in names[r % len(names):] + names[:r % len(names)]:
            out[k].append(fns[k]())
    return out


def paired_median(ours: list, theirs: list) -> float:
    """The median over rounds of ours/theirs measured in the same round: robust to the machine's speed
    drifting between rounds, which the ratio of the two best times is not (each may come from a
    different, luckier round)."""
    return statistics.median(a / b for a, b in zip(ours, theirs))


def epoch_peers(torch, jax, X, y, bs) -> dict:
    """name → a function returning (seconds, losses) of one epoch of the MLP at batch ``bs``, each peer present."""
    fns = {"descend": lambda: descend_epoch(X, y, MLP, bs)}
    if torch:
        fns["torch"] = lambda: torch_epoch(torch, X, y, MLP, bs, False)
        fns["fused"] = lambda: torch_epoch(torch, X, y, MLP, bs, True)
    if jax:
        fns.update(jax_peers(jax, X, y, MLP, bs))
    fns["sklearn"] = lambda: sklearn_epoch(X, y, MLP, bs)
    return fns


def tiny_peers(torch, jax, X, y, steps) -> dict:
    """name → a function returning (seconds, losses) of ``steps`` steps of the tiny net at batch 100."""
    fns = {"descend": lambda: descend_epoch(X, y, TINY, 100, steps=steps)}
    if torch:
        fns["torch"] = lambda: torch_epoch(torch, X, y, TINY, 100, False, steps=steps)
        fns["fused"] = lambda: torch_epoch(torch, X, y, TINY, 100, True, steps=steps)
    if jax:
        fns.update(jax_peers(jax, X, y, TINY, 100, steps=steps))
    fns["sklearn"] = lambda: sklearn_epoch(X, y, TINY, 100, epochs=steps * 100 // len(X))
    return fns


def jax_peers(jax, X, y, sizes, bs, steps=None) -> dict:
    """The two JAX peers, compiled for these shapes before anything is timed."""
    peer, w = _jax_peers.Peer(jax, sizes, bs), initial_weights(sizes)
    y32 = y.astype(np.int32)  # JAX's default integer (64-bit types are off)
    Xd, yd = jax.numpy.asarray(X), jax.numpy.asarray(y32)
    peer.warm(w, X, y32)
    return {"jax step": lambda: peer.run_steps(w, X, y32, steps=steps),
            "jax scan": lambda: peer.run_scan(w, Xd, yd, steps=steps)}


def loss_summary(results: dict, last: int) -> str:
    """Each peer's mean loss over its last ``last`` recorded values (steps; scikit-learn's per-epoch means)."""
    parts = []
    for k, runs in results.items():
        losses = runs[0][1]
        parts.append(f"{k} {float(np.mean(losses[-(1 if k == 'sklearn' else last):])):.4f}")
    return ", ".join(parts)


def report_row(label: str, times: dict, per: float | None = None) -> dict:
    """Print one workload's row (median times, or steps/s when ``per`` steps) and its ratios; return the
    paired-median ratios descend/peer (time ratios: below 1, descend is faster)."""
    med = {k: statistics.median(v) for k, v in times.items()}
    ratio = {k: paired_median(times["descend"], times[k]) for k in PEERS if k in times}
    fastest = min((k for k in PEERS if k in med), key=med.get, default=None)
    nan = float("nan")
    cell = (lambda k: f"{per / med[k]:,.0f}" if k in med else "—") if per else \
        (lambda k: f"{med[k]:.3f}" if k in med else "—")
    print(f"{label:<16} {cell('descend'):>8} " + " ".join(f"{cell(k):>9}" for k in PEERS) + f"  {fastest or '—':>9}")
    rcell = (lambda k: f"×{1 / ratio[k]:.2f}" if k in ratio else "—") if per else \
        (lambda k: f"{ratio[k]:.3f}" if k in ratio else "—")
    print(f"{'  descend/peer' if not per else '  speed-up':<16} {'':>8} " + " ".join(f"{rcell(k):>9}" for k in PEERS)
          + f"  {rcell(fastest) if fastest else '—':>9}")
    ratio["fastest"] = ratio.get(fastest, nan)
    return ratio


def epoch_flops(sizes, n) -> int:
    """Matrix-product FLOPs of one epoch: forward, weight gradient and input gradient of every layer (2·n·in·out
    each) except the first layer's input gradient, which descend does not compute (the data needs none)."""
    per = [a * b for a, b in zip(sizes, sizes[1:])]
    return 6 * n * sum(per) - 2 * n * per[0]


def bar(ratios: dict, fraction: float) -> None:
    """Issue 19's bar as PASS/FAIL lines (JAX missing fails the lines that need it)."""
    print("\nissue 19's bar (medians of the per-round ratios, this run):")

    def line(ok, text):
        print(f"{'PASS' if ok else 'FAIL'}  {text}")

    tiny = 1 / ratios["tiny"].get("jax scan", math.inf)
    line(tiny >= 1.2, f"tiny net: descend ≥ 1.2× JAX jit + scan's steps/s — ×{tiny:.2f}")
    for bs, limit in ((32, 0.9), (128, 0.85)):
        r = ratios[bs].get("jax scan", math.inf)
        line(r <= limit, f"MLP epoch, batch {bs}: descend ≤ {limit}× JAX jit + scan's time — {r:.3f}×")
    r512 = ratios[512]
    worst = max((v for k, v in r512.items() if k in PEERS), default=math.inf)
    complete = all(k in r512 for k in PEERS)
    line(worst < 1 and complete, f"MLP epoch, batch 512: descend the fastest of all — slowest ratio {worst:.3f}×"
         + ("" if complete else " (a peer is missing)"))
    line(fraction >= 0.75, f"MLP epoch, batch 512: ≥ 75 % of the float32 matmul peak — {100 * fraction:.0f} %")


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="a short run: fewer rounds and steps, no guard costs")
    quick = ap.parse_args(argv).quick
    torch, jax = peer_torch(), _jax_peers.load()
    rounds = {512: 2, 128: 2, 32: 1, "tiny": 2} if quick else {512: 5, 128: 5, 32: 3, "tiny": 5}
    X, y = data(60_000, 784, 10)
    descend_epoch(X[:2000], y[:2000], MLP, 128)  # warm up (Numba kernels load from cache)
    missing = [name for name, mod in (("PyTorch", torch), ("JAX + Optax", jax)) if mod is None]
    print(f"threads: {threads()}; one epoch of 60,000 samples, MLP 784-512-256-10, Adam; "
          f"rounds: {rounds}" + (f"; not installed: {', '.join(missing)}" if missing else ""))
    line, peak = machine_line(MLP, len(X), 128, jax)
    print("machine before:", line)
    print(f"\n{'seconds':<16} {'descend':>8} " + " ".join(f"{k:>9}" for k in PEERS) + f"  {'fastest':>9}")
    ratios, losses = {}, {}
    for bs in (512, 128, 32):
        results = interleaved(epoch_peers(torch, jax, X, y, bs), rounds[bs])
        ratios[bs] = report_row(f"epoch, batch {bs}", {k: [t for t, _ in v] for k, v in results.items()})
        losses[bs] = loss_summary(results, 60_000 // bs // 10)
        if bs == 512:
            d512 = statistics.median(t for t, _ in results["descend"])
    Xs, ys = data(4000, 40, 10)
    steps = 400 if quick else 2000
    descend_epoch(Xs, ys, TINY, 100, steps=50)
    results = interleaved(tiny_peers(torch, jax, Xs, ys, steps), rounds["tiny"])
    print(f"{'steps/s':<16}")
    ratios["tiny"] = report_row("tiny net, b100", {k: [t for t, _ in v] for k, v in results.items()}, per=steps)
    losses["tiny"] = loss_summary(results, 40)
    print("\nmean loss over the epoch's last tenth (scikit-learn: its epoch's mean; tiny net: the last epoch), "
          "first round:")
    for k, v in losses.items():
        print(f"  {'batch ' + str(k) if k != 'tiny' else 'tiny net':<9} {v}")
    if not quick:
        guard_costs(X, y, MLP, 128)
    line, peak_after = machine_line(MLP, len(X), 128, jax)
    print("machine after:", line)
    peak = max(peak, peak_after)
    flops = epoch_flops(MLP, len(X))
    fraction = flops / d512 / 1e9 / peak
    print(f"\nbatch 512: {flops / 1e9:.1f} GFLOP of matrix products per epoch (no input gradient for layer 1) in "
          f"descend's median {d512:.3f} s = {flops / d512 / 1e9:.0f} GFLOP/s, {100 * fraction:.0f} % of NumPy's "
          f"best {peak:.0f} GFLOP/s")
    bar(ratios, fraction)


if __name__ == "__main__":
    main()
