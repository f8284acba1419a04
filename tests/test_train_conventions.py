"""The lectures' conventions end to end through ``fit``: Ng's decay table by epoch number, and float64 runs
that match a float64 NumPy re-implementation of the same steps."""
import numpy as np
import pytest

from descend import nn, pack
from descend.optim import SGD
from descend.optim.schedules import InverseTimeDecay
from descend.train import evaluate, fit, predict


def _blobs(n=40, d=5, c=3, seed=0):
    r = np.random.default_rng(seed)
    X = r.standard_normal((n, d))  # float64 values no float32 can hold: a cast would show at ~1e-8
    y = r.integers(0, c, n)
    return X, y


def test_ng_inverse_time_table_through_fit():
    """Ng, "Improving Deep Neural Networks" wk 2: α = α₀/(1 + decay_rate·epoch_num), α₀ = 0.2, rate 1:
    epochs 1–4 train with 0.1, 0.0667, 0.05, 0.04 (the lecture's own numbers)."""
    X, y = _blobs()
    model = nn.Sequential(nn.Linear(5, 3, rng=np.random.default_rng(0)))
    h = fit(model, X, y, optimizer=SGD(lr=0.2), schedule=InverseTimeDecay(lr=0.2, decay_rate=1.0), epochs=4,
            batch_size=20)
    lecture = [0.1, 0.0667, 0.05, 0.04]
    np.testing.assert_allclose([e["lr"] for e in h.epochs], lecture, atol=5e-5)  # the slide rounds to 4 places
    np.testing.assert_allclose(h.step_lr, np.repeat([0.2 / (1 + k) for k in (1, 2, 3, 4)], 2), rtol=1e-12)


def test_epoch_origin_zero_counts_like_pytorch():
    X, y = _blobs()
    model = nn.Sequential(nn.Linear(5, 3, rng=np.random.default_rng(0)))
    h = fit(model, X, y, optimizer=SGD(lr=0.2), schedule=InverseTimeDecay(lr=0.2, decay_rate=1.0), epochs=3,
            batch_size=None, epoch_origin=0)
    np.testing.assert_allclose(h.step_lr, [0.2, 0.1, 0.2 / 3], rtol=1e-12)  # epoch 0 trains with α₀
    with pytest.raises(ValueError, match="epoch_origin must be 1"):
        fit(model, X, y, optimizer=SGD(lr=0.2), epochs=1, epoch_origin=2)


def _numpy_sgd(W1, b1, W2, b2, X, y, *, lr, l2, epochs, bs, seed):
    """The same mini-batch SGD on a 5-8-3 ReLU MLP with softmax cross-entropy and (λ/2m)·Σ‖W‖², in float64 NumPy."""
    rng, m = np.random.default_rng(seed), len(X)
    losses = []
    for _ in range(epochs):
        order = rng.permutation(m)
        for s in range(0, m, bs):
            idx = order[s:s + bs]
            xb, yb, n = X[idx], y[idx], len(idx)
            z1 = xb @ W1.T + b1
            h1 = np.maximum(z1, 0)
            z2 = h1 @ W2.T + b2
            p = np.exp(z2 - z2.max(1, keepdims=True))
            p /= p.sum(1, keepdims=True)
            losses.append(-np.mean(np.log(p[np.arange(n), yb])) + l2 / (2 * m) * ((W1 ** 2).sum() + (W2 ** 2).sum()))
            g2 = p.copy()
            g2[np.arange(n), yb] -= 1
            g2 /= n
            dW2, db2 = g2.T @ h1 + l2 / m * W2, g2.sum(0)
            g1 = (g2 @ W2) * (z1 > 0)
            dW1, db1 = g1.T @ xb + l2 / m * W1, g1.sum(0)
            W1, b1, W2, b2 = W1 - lr * dW1, b1 - lr * db1, W2 - lr * dW2, b2 - lr * db2
    return (W1, b1, W2, b2), losses


def test_float64_fit_matches_a_float64_numpy_reimplementation():
    X, y = _blobs()
    rng = np.random.default_rng(1)
    model = nn.Sequential(nn.Linear(5, 8, rng=rng), nn.ReLU(), nn.Linear(8, 3, rng=rng))
    params = pack(model, dtype=np.float64)
    start = [params.view(e.name).copy() for e in params.layout]  # W1, b1, W2, b2
    h = fit(model, X, y, optimizer=SGD(lr=0.1), epochs=3, batch_size=8, l2=0.05, seed=7, dtype=np.float64)
    assert params.theta.dtype == np.float64 and pack(model).theta is params.theta
    expected, losses = _numpy_sgd(*start, X, y, lr=0.1, l2=0.05, epochs=3, bs=8, seed=7)
    for e, want in zip(params.layout, expected):
        np.testing.assert_allclose(params.view(e.name), want, rtol=1e-12, atol=1e-14, err_msg=e.name)
    np.testing.assert_allclose(h.step_loss, losses, rtol=1e-12)
    # predict and evaluate keep float64 too
    out = predict(model, X)
    W1, b1, W2, b2 = expected
    assert out.dtype == np.float64
    np.testing.assert_allclose(out, np.maximum(X @ W1.T + b1, 0) @ W2.T + b2, rtol=1e-12, atol=1e-14)
    assert evaluate(model, X, y)["loss"] == pytest.approx(
        float(-np.mean(np.log(np.exp(out - out.max(1, keepdims=True))[np.arange(len(y)), y]
                              / np.exp(out - out.max(1, keepdims=True)).sum(1)))), rel=1e-12)


def test_float64_checkpoint_round_trip(tmp_path):
    X, y = _blobs()
    model = nn.Sequential(nn.Linear(5, 3, rng=np.random.default_rng(0)))
    fit(model, X, y, optimizer=SGD(lr=0.1), epochs=2, batch_size=8, dtype=np.float64,
        checkpoint=tmp_path / "c.safetensors")
    from descend.train import load_checkpoint, load_model
    arrays, meta = load_checkpoint(tmp_path / "c.safetensors")
    assert arrays["theta"].dtype == np.float64 and meta["layout"][0][2] == "float64"
    again = load_model(nn.Sequential(nn.Linear(5, 3, rng=np.random.default_rng(9))), tmp_path / "c.safetensors",
                       dtype=np.float64)
    assert np.array_equal(pack(again).theta, pack(model).theta)
