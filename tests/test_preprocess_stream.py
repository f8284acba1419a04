"""Preprocessing statistics stream over row chunks: exact on many chunks, and a memory-mapped X is never loaded whole."""
import tracemalloc

import numpy as np
import pytest

from descend import nn, optim
from descend.data import PCA, Standardize, ZCAWhiten
from descend.data import moments as P
from descend.train import fit


@pytest.fixture
def tiny_chunks(monkeypatch):
    monkeypatch.setattr(P, "CHUNK_BYTES", 8 * 6 * 7)  # 7 rows of 6 float64 features per chunk


def test_chunked_moments_equal_one_pass_statistics(tiny_chunks):
    rng = np.random.default_rng(0)
    X = (rng.standard_normal((100, 6)) * [1, 10, 100, 1e3, 0.1, 5] + 1e4).astype(np.float32)  # far from 0
    A = X.astype(np.float64)
    m = P.moments(X, full=True)
    assert m.n == 100
    np.testing.assert_allclose(m.mean, A.mean(axis=0), rtol=1e-13)
    np.testing.assert_allclose(m.var, A.var(axis=0), rtol=1e-10)
    np.testing.assert_allclose(m.cov, np.cov(A, rowvar=False, bias=True), rtol=1e-9, atol=1e-9)
    d = P.moments(X, full=False)
    np.testing.assert_allclose(d.var, A.var(axis=0), rtol=1e-10)
    whitened = ZCAWhiten(eps=0).fit_transform(X)
    np.testing.assert_allclose(np.cov(whitened.astype(np.float64), rowvar=False, bias=True), np.eye(6), atol=2e-3)


def test_fingerprint_does_not_depend_on_chunking(monkeypatch):
    X = np.random.default_rng(1).standard_normal((50, 4)).astype(np.float32)
    whole = P.fingerprint(X)
    monkeypatch.setattr(P, "CHUNK_BYTES", 16)
    assert P.fingerprint(X) == whole and P.fingerprint(X[:-1]) != whole


def test_nan_in_a_later_chunk_is_refused(tiny_chunks):
    X = np.ones((50, 6), np.float32)
    X[45, 2] = np.nan
    with pytest.raises(ValueError, match="NaN/inf"):
        Standardize().fit(X)


@pytest.mark.parametrize("step", [Standardize, lambda: PCA(n_components=8)], ids=["standardize", "pca"])
def test_fit_on_a_memmap_allocates_a_small_fraction_of_the_file(tmp_path, monkeypatch, step):
    monkeypatch.setattr(P, "CHUNK_BYTES", 2 << 20)
    rng = np.random.default_rng(0)
    path = tmp_path / "big.npy"
    X = np.lib.format.open_memmap(path, mode="w+", dtype=np.float32, shape=(200_000, 32))  # 25.6 MB
    for i in range(0, len(X), 50_000):
        X[i:i + 50_000] = rng.standard_normal((50_000, 32), dtype=np.float32) * 3 + 1
    X.flush()
    del X
    Xm = np.load(path, mmap_mode="r")
    tracemalloc.start()
    fitted = step().fit(Xm)
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    assert peak < Xm.nbytes / 4, f"fit allocated {peak / 1e6:.1f} MB for a {Xm.nbytes / 1e6:.1f} MB file"
    assert fitted.fitted_on(Xm)
    np.testing.assert_allclose(fitted.mean, 1, atol=0.02)


def test_training_on_a_memmap_with_preprocessing(tmp_path):
    rng = np.random.default_rng(0)
    X = (rng.standard_normal((3000, 8)) * 20 + 500).astype(np.float32)
    y = (X[:, 0] > 500).astype(np.int64)
    np.save(tmp_path / "X.npy", X)
    Xm = np.load(tmp_path / "X.npy", mmap_mode="r")
    model = nn.Sequential(nn.Linear(8, 16, rng=rng), nn.ReLU(), nn.Linear(16, 2, rng=rng))
    h = fit(model, Xm, y, optimizer=optim.Adam(lr=1e-2), epochs=3, batch_size=64, preprocess=Standardize())
    assert h.epochs[-1]["train_accuracy"] > 0.95
    assert isinstance(Xm, np.memmap) and not Xm.flags.writeable  # the caller's array is untouched
