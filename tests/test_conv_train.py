"""End to end: small CNNs learn — 8×8 digits to ≥ 97 % test accuracy, and a 1-D CNN beats an MLP on MNIST-1D.

The training loop is written inline (Adam on the flat θ) on purpose: these tests check the convolution
layers, not the optimizers or ``descend.fit``. BLAS runs on one thread here: the products are small, and
with pytest-xdist workers sharing the cores, OpenBLAS's spin-waiting threads made these tests 5× slower.
"""
import math

import numpy as np
import pytest
from threadpoolctl import threadpool_limits

from descend import nn
from descend.autodiff.tensor import no_grad


@threadpool_limits.wrap(limits=1, user_api="blas")
def train_adam(model, x, y, *, epochs, batch, lr, rng):
    """Kingma & Ba Adam (b1 0.9, b2 0.999, eps 1e-8) on the packed θ, minibatches reshuffled every epoch."""
    params = nn.pack(model)
    theta, grad = params.theta, params.grad
    m, v = np.zeros_like(theta), np.zeros_like(theta)
    t = 0
    for _ in range(epochs):
        order = rng.permutation(len(x))
        for start in range(0, len(x), batch):
            idx = order[start:start + batch]
            params.zero_grad()
            nn.cross_entropy(model(x[idx]), y[idx]).backward()
            t += 1
            m *= 0.9
            m += 0.1 * grad
            v *= 0.999
            v += 0.001 * grad * grad
            step = lr * math.sqrt(1 - 0.999 ** t) / (1 - 0.9 ** t)
            theta -= step * m / (np.sqrt(v) + 1e-8)
    return model


def accuracy(model, x, y):
    model.eval()
    with no_grad():
        pred = model(x).data.argmax(axis=1)
    model.train()
    return float((pred == y).mean())


def test_small_cnn_learns_digits():
    from sklearn.datasets import load_digits
    digits = load_digits()
    x = (digits.images / 16.0).astype(np.float32)[:, None]  # (1797, 1, 8, 8)
    y = digits.target
    rng = np.random.default_rng(0)
    order = rng.permutation(len(x))
    train, test = order[:1400], order[1400:]
    model = nn.Sequential(
        nn.Conv2d(1, 16, 3, padding=1, rng=rng), nn.ReLU(), nn.MaxPool2d(2),     # 16×4×4
        nn.Conv2d(16, 32, 3, padding=1, rng=rng), nn.BatchNorm2d(32), nn.ReLU(), nn.MaxPool2d(2),  # 32×2×2
        nn.Flatten(), nn.Linear(32 * 2 * 2, 10, rng=rng))
    train_adam(model, x[train], y[train], epochs=15, batch=32, lr=3e-3, rng=rng)
    acc = accuracy(model, x[test], y[test])
    print(f"digits test accuracy: {acc:.3f}")
    assert acc >= 0.97, acc


@pytest.fixture(scope="module")
def mnist1d():
    pytest.importorskip("mnist1d")
    from mnist1d.data import get_dataset_args, make_dataset
    data = make_dataset(get_dataset_args())  # generated locally from templates; no download
    mean, std = data["x"].mean(), data["x"].std()
    norm = lambda a: ((a - mean) / std).astype(np.float32)  # noqa: E731
    return norm(data["x"]), data["y"], norm(data["x_test"]), data["y_test"]


def test_cnn_beats_mlp_on_mnist1d(mnist1d):
    """The MNIST-1D CNN (Greydanus 2020): conv k5 s2 p1, k3 s2 p1, k3 s2 p1 → 125 features.

    (40 + 2·1 − 5)/2 + 1 = 19.5 and (10 + 2·1 − 3)/2 + 1 = 5.5 are not whole numbers: PyTorch floors
    them silently; here that is asked for explicitly with allow_floor=True on those two layers.
    """
    x, y, xt, yt = mnist1d
    budget = dict(epochs=30, batch=100, lr=3e-3)
    rng = np.random.default_rng(0)
    cnn = nn.Sequential(
        nn.Conv1d(1, 25, 5, stride=2, padding=1, allow_floor=True, rng=rng), nn.ReLU(),
        nn.Conv1d(25, 25, 3, stride=2, padding=1, rng=rng), nn.ReLU(),
        nn.Conv1d(25, 25, 3, stride=2, padding=1, allow_floor=True, rng=rng), nn.ReLU(),
        nn.Flatten(), nn.Linear(125, 10, rng=rng))
    mlp = nn.Sequential(nn.Linear(40, 100, rng=rng), nn.ReLU(), nn.Linear(100, 100, rng=rng), nn.ReLU(),
                        nn.Linear(100, 10, rng=rng))
    train_adam(cnn, x[:, None], y, rng=np.random.default_rng(1), **budget)
    train_adam(mlp, x, y, rng=np.random.default_rng(1), **budget)
    acc_cnn, acc_mlp = accuracy(cnn, xt[:, None], yt), accuracy(mlp, xt, yt)
    print(f"MNIST-1D test accuracy: CNN {acc_cnn:.3f}, MLP {acc_mlp:.3f}")
    assert acc_cnn >= acc_mlp + 0.15 and acc_cnn >= 0.85, (acc_cnn, acc_mlp)
