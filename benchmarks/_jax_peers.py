"""JAX peers of bench_train.py, written the fast way: one jitted training step, and one jitted epoch (lax.scan).

Same work as descend's ``fit``: an MLP with ReLU, mean softmax cross-entropy, Adam (Optax, lr 1e-3, b1 0.9,
b2 0.999, eps 1e-8: descend's and PyTorch's defaults), float32, the same initial weights as descend's model
(He normal, zero biases, taken from it), a new permutation each epoch, a short last batch when the batch size
does not divide n. Compile time is excluded: each compiled function is built and run once before the clock
starts (``warm``). The clock stops after ``block_until_ready`` on the last result.
"""
from __future__ import annotations

import time

import numpy as np


def load():
    """The jax module with 64-bit types off (float32 everywhere), or None when JAX or Optax is not installed."""
    try:
        import jax
        import optax  # noqa: F401
    except ImportError:
        return None
    jax.config.update("jax_enable_x64", False)
    return jax


class Peer:
    """Compiled training functions of one network (``sizes``) for JAX: ``step`` (params, opt_state, x, y) →
    (params, opt_state, loss), and ``epoch`` (params, opt_state, X, y, seed) → (params, opt_state, losses)
    with the epoch's permutation drawn and its batches gathered on the device, the full batches in a
    ``lax.scan`` and a short last batch after it."""

    def __init__(self, jax, sizes, bs: int):
        import jax.numpy as jnp
        import optax

        self.jax, self.jnp, self.bs = jax, jnp, bs
        self.opt = optax.adam(1e-3, b1=0.9, b2=0.999, eps=1e-8)
        opt = self.opt

        def loss_fn(params, x, y):
            h = x
            for w, b in params[:-1]:
                h = jax.nn.relu(h @ w + b)
            w, b = params[-1]
            return optax.softmax_cross_entropy_with_integer_labels(h @ w + b, y).mean()

        def step(params, state, x, y):
            loss, grads = jax.value_and_grad(loss_fn)(params, x, y)
            updates, state = opt.update(grads, state, params)
            return optax.apply_updates(params, updates), state, loss

        def epoch(params, state, X, y, seed):
            n = X.shape[0]
            perm = jax.random.permutation(jax.random.fold_in(jax.random.key(0), seed), n)
            full = n // bs

            def body(carry, idx):
                p, s, loss = step(*carry, X[idx], y[idx])
                return (p, s), loss

            (params, state), losses = jax.lax.scan(body, (params, state), perm[:full * bs].reshape(full, bs))
            if n % bs:
                idx = perm[full * bs:]
                params, state, last = step(params, state, X[idx], y[idx])
                losses = jnp.concatenate([losses, last[None]])
            return params, state, losses

        self.step = jax.jit(step, donate_argnums=(0, 1))
        self.epoch = jax.jit(epoch, donate_argnums=(0, 1))
        self.sizes = tuple(sizes)

    def init(self, weights):
        """Device parameters and Adam state from descend's initial [(W (out, in), b)] (W transposed to x·W)."""
        params = [(self.jnp.asarray(np.ascontiguousarray(w.T)), self.jnp.asarray(b)) for w, b in weights]
        return params, self.opt.init(params)

    def warm(self, weights, X, y):
        """Compile (and run once) every function a timed run calls, for these shapes: the step at the full
        and at the short last batch, the epoch on the whole data."""
        n, bs = len(X), self.bs
        p, s = self.init(weights)
        for m in {bs, n % bs} - {0}:
            p, s, loss = self.step(p, s, X[:m], y[:m])
        p, s, losses = self.epoch(p, s, self.jnp.asarray(X), self.jnp.asarray(y), 0)
        self.jax.block_until_ready(losses)

    def run_steps(self, weights, X, y, steps=None, seed=0):
        """(seconds, per-step losses) of one epoch — or ``steps`` steps over repeated epochs — with the
        permutation drawn and each batch gathered on the host (as the other peers do), one jitted call per
        step. The losses stay on the device until the clock stops, as JAX's asynchronous dispatch wants."""
        params, state = self.init(weights)
        rng = np.random.default_rng(seed)
        n, bs, step = len(X), self.bs, self.step
        losses = []
        t = time.perf_counter()
        while True:
            perm = rng.permutation(n)
            for i in range(0, n, bs):
                idx = perm[i:i + bs]
                params, state, loss = step(params, state, X[idx], y[idx])
                losses.append(loss)
                if steps and len(losses) == steps:
                    break
            if not steps or len(losses) == steps:
                break
        self.jax.block_until_ready((params, losses))
        return time.perf_counter() - t, np.array(losses)

    def run_scan(self, weights, Xd, yd, steps=None):
        """(seconds, per-step losses) of one epoch — or ``steps`` steps as whole epochs — with X and y
        already on the device (``Xd``, ``yd``), one jitted call per epoch."""
        params, state = self.init(weights)
        per_epoch = -(-Xd.shape[0] // self.bs)
        if steps and steps % per_epoch:
            raise ValueError(f"run_scan runs whole epochs: steps={steps} is not a multiple of {per_epoch}")
        epochs = steps // per_epoch if steps else 1
        out = []
        t = time.perf_counter()
        for e in range(epochs):
            params, state, losses = self.epoch(params, state, Xd, yd, e)
            out.append(losses)
        self.jax.block_until_ready((params, out))
        return time.perf_counter() - t, np.concatenate([np.asarray(o) for o in out])[:steps]


def matmul_peak_gflops(jax, n: int = 2048, rounds: int = 7) -> float:
    """Best float32 GFLOP/s of one jitted n×n product on JAX's CPU backend (XLA's own matmul, not OpenBLAS)."""
    import jax.numpy as jnp

    rng = np.random.default_rng(0)
    a = jnp.asarray(rng.standard_normal((n, n), dtype=np.float32))
    b = jnp.asarray(rng.standard_normal((n, n), dtype=np.float32))
    mm = jax.jit(jnp.matmul)
    mm(a, b).block_until_ready()
    best = float("inf")
    for _ in range(rounds):
        t = time.perf_counter()
        mm(a, b).block_until_ready()
        best = min(best, time.perf_counter() - t)
    return 2 * n ** 3 / best / 1e9
