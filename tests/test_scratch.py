"""The pool of recycled conv/pool temporaries: an array is handed out again only when nothing else holds it."""
import numpy as np
import pytest

from descend import nn, pack
from descend.common import scratch as _scratch
from descend.train import fit

SHAPE = (64, 1024)  # 256 KiB of float32: pooled


@pytest.fixture(autouse=True)
def empty_pool():
    _scratch.clear()
    yield
    _scratch.clear()


def test_a_free_buffer_is_reused_and_a_held_one_is_not():
    a = _scratch.empty(SHAPE, np.float32)
    b = _scratch.empty(SHAPE, np.float32)
    assert a is not b and not np.shares_memory(a, b)  # a is still held here
    a_id = id(a)
    del a
    c = _scratch.empty(SHAPE, np.float32)
    assert id(c) == a_id  # nothing else held it: the same buffer again
    assert _scratch.empty(SHAPE, np.float64).dtype == np.float64  # another dtype, another buffer
    assert _scratch.empty((SHAPE[0] * 2, SHAPE[1] // 2), np.float32).shape == (128, 512)


def test_a_view_keeps_its_base_busy():
    a = _scratch.empty(SHAPE, np.float32)
    view = a.reshape(-1)[::2]
    del a
    b = _scratch.empty(SHAPE, np.float32)
    assert not np.shares_memory(b, view)


def test_small_and_huge_arrays_are_not_pooled(monkeypatch):
    small = _scratch.empty((10, 10), np.float32)
    del small
    assert _scratch._held[0] == 0
    monkeypatch.setattr(_scratch, "MAX_BYTES", 1 << 20)
    huge = _scratch.empty((1024, 1024), np.float32)  # 4 MiB > MAX_BYTES
    assert huge.shape == (1024, 1024) and _scratch._held[0] == 0


def test_the_pool_drops_least_recently_used_buffers_beyond_its_limit(monkeypatch):
    monkeypatch.setattr(_scratch, "MAX_BYTES", 3 * 256 * 1024)
    for rows in (64, 65, 66, 67):
        _scratch.empty((rows, 1024), np.float32)
    assert _scratch._held[0] <= _scratch.MAX_BYTES
    assert ((64, 1024), np.dtype(np.float32)) not in _scratch._pool


def _cnn_theta(monkeypatch, pooled: bool):
    if not pooled:
        monkeypatch.setattr(_scratch, "MIN_BYTES", 1 << 62)
    rng = np.random.default_rng(0)
    # two convolutions of the same shapes: their temporaries share a pool entry, and the first one's
    # must stay untouched while the second runs (backward still needs them)
    model = nn.Sequential(nn.Conv2d(1, 8, 3, padding=1, rng=rng), nn.ReLU(),
                          nn.Conv2d(8, 8, 3, padding=1, rng=rng), nn.Tanh(),
                          nn.Conv2d(8, 8, 3, padding=1, rng=rng), nn.ReLU(), nn.MaxPool2d(2),
                          nn.Flatten(), nn.Linear(8 * 8 * 8, 3, rng=rng))
    X = np.random.default_rng(1).standard_normal((96, 1, 16, 16)).astype(np.float32)
    y = np.arange(96) % 3
    from descend.optim import SGD
    fit(model, X, y, optimizer=SGD(lr=0.05, momentum=0.9), batch_size=32, epochs=2, seed=0)
    out = model(X[:40]).data.copy()
    return pack(model).theta.copy(), out, _scratch._held[0]


def test_cnn_training_gives_the_same_bits_with_and_without_the_pool(monkeypatch):
    theta_p, out_p, held = _cnn_theta(monkeypatch, pooled=True)
    assert held > 0  # the conv and pool temporaries did come from the pool
    _scratch.clear()
    theta_f, out_f, held_f = _cnn_theta(monkeypatch, pooled=False)
    assert held_f == 0
    assert np.array_equal(theta_p, theta_f) and np.array_equal(out_p, out_f)


def _mlp_theta(monkeypatch, pooled: bool):
    if not pooled:
        monkeypatch.setattr(_scratch, "MIN_BYTES", 1 << 62)
    rng = np.random.default_rng(0)
    # equal hidden shapes, and a batch whose (2048, 32) activations are large enough to be pooled
    model = nn.Sequential(nn.Linear(8, 32, rng=rng), nn.ReLU(), nn.Linear(32, 32, rng=rng), nn.Tanh(),
                          nn.Linear(32, 32, rng=rng), nn.ReLU(), nn.Linear(32, 3, rng=rng))
    X = np.random.default_rng(1).standard_normal((4096, 8)).astype(np.float32)
    y = np.arange(4096) % 3
    from descend.optim import Adam
    fit(model, X, y, optimizer=Adam(lr=0.01), batch_size=2048, epochs=3, seed=0)
    return pack(model).theta.copy(), _scratch._held[0]


def test_mlp_training_gives_the_same_bits_with_and_without_the_pool(monkeypatch):
    theta_p, held = _mlp_theta(monkeypatch, pooled=True)
    assert held > 0
    _scratch.clear()
    theta_f, held_f = _mlp_theta(monkeypatch, pooled=False)
    assert held_f == 0 and np.array_equal(theta_p, theta_f)
