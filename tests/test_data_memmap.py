"""Memory-mapped .npy inputs: validated in chunks, never loaded or cast whole; batches gathered by rows."""
import tracemalloc

import numpy as np
import pytest

import descend.data.validate as validate
from descend.data import RowView, check_Xy, epoch_order, take, train_val_split

N, D = 200_000, 64  # 51.2 MB of float32: far larger than a batch's working set


@pytest.fixture(scope="module")
def big(tmp_path_factory):
    """A (200000, 64) float32 .npy file whose column 0 holds the row number (exact in float32)."""
    path = tmp_path_factory.mktemp("mm") / "X.npy"
    out = np.lib.format.open_memmap(path, mode="w+", dtype=np.float32, shape=(N, D))
    rng = np.random.default_rng(0)
    for start in range(0, N, 25_000):
        block = rng.standard_normal((25_000, D), dtype=np.float32)
        block[:, 0] = np.arange(start, start + 25_000)
        out[start:start + 25_000] = block
    out.flush()
    del out
    y = (np.arange(N) % 10).astype(np.int64)
    return path, y


def load(path):
    X = np.load(path, mmap_mode="r")
    assert isinstance(X, np.memmap)  # what np.load gives: an np.memmap whose .base is an mmap.mmap
    return X


def peak_bytes(fn):
    tracemalloc.start()
    try:
        fn()
        return tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


def test_check_Xy_returns_the_memmap_unchanged(big):
    path, y = big
    X = load(path)
    X_out, y_out = check_Xy(X, y, num_classes=10)
    assert X_out is X and isinstance(X_out, np.memmap)
    assert y_out.dtype == np.int64


def test_take_gathers_the_right_rows_in_order(big):
    path, _ = big
    X = load(path)
    idx = np.array([199_999, 5, 123_456, 5, 0, 77_777])
    batch = take(X, idx)
    assert isinstance(batch, np.ndarray) and not isinstance(batch, np.memmap)
    assert batch.dtype == np.float32 and batch.flags.c_contiguous and batch.flags.writeable
    np.testing.assert_array_equal(batch[:, 0], idx)
    np.testing.assert_array_equal(batch, np.asarray(X[idx]))
    part = take(X, slice(1000, 1010))
    assert not isinstance(part, np.memmap) and not np.shares_memory(part, X)
    np.testing.assert_array_equal(part[:, 0], np.arange(1000, 1010))


def test_validating_and_an_epoch_of_batches_never_allocate_the_file(big):
    path, y = big
    X = load(path)
    file_bytes = X.nbytes

    def epoch():
        X_chk, y_chk = check_Xy(X, y, num_classes=10)
        order = epoch_order(N, rng=np.random.default_rng(0))
        total = 0.0
        for start in range(0, N, 1024):
            batch = take(X_chk, order[start:start + 1024])
            total += float(batch[:, 0].sum(dtype=np.float64))
        assert total == N * (N - 1) / 2  # every row was read exactly once

    peak = peak_bytes(epoch)
    assert peak < file_bytes / 10, f"peak {peak / 1e6:.1f} MB for a {file_bytes / 1e6:.1f} MB file"
    # the measurement can fail: reading the file into memory is seen
    assert peak_bytes(lambda: np.array(X)) >= file_bytes


def test_split_of_a_memmap_reads_only_the_validation_rows(big):
    path, y = big
    X = load(path)
    out = {}
    peak = peak_bytes(lambda: out.update(parts=train_val_split(X, y, val_fraction=0.01, rng=np.random.default_rng(3),
                                                                  stratify=True)))
    X_tr, y_tr, X_val, y_val = out["parts"]
    # what it allocates is the 2000 validation rows plus O(N) int64 row indices (8 bytes per
    # sample, against 256 bytes per row of the file) — never the file
    assert peak < X.nbytes / 4, f"peak {peak / 1e6:.1f} MB"
    assert isinstance(X_tr, RowView) and X_tr.shape == (N - 2000, D) and len(y_tr) == N - 2000
    assert isinstance(X_val, np.ndarray) and X_val.shape == (2000, D) and X_val.dtype == np.float32
    np.testing.assert_array_equal(y_val, X_val[:, 0].astype(np.int64) % 10)
    assert np.bincount(y_val).tolist() == [200] * 10
    assert set(X_val[:, 0].astype(int)).isdisjoint(X_tr.index)
    # the view trains like an array: validated lazily, gathered by take, rows paired with y_tr
    assert check_Xy(X_tr, y_tr)[0] is X_tr
    idx = np.array([5, 0, 197_999])
    batch = take(X_tr, idx)
    np.testing.assert_array_equal(batch[:, 0].astype(np.int64), X_tr.index[idx])
    np.testing.assert_array_equal(batch[:, 0].astype(np.int64) % 10, y_tr[idx])
    np.testing.assert_array_equal(X_tr[10:12], np.asarray(X[X_tr.index[10:12]]))


@pytest.fixture
def small_chunks(monkeypatch):
    monkeypatch.setattr(validate, "CHUNK_BYTES", 64 << 10)  # many chunks in a small file


def test_float64_memmap_is_not_cast_whole(tmp_path, small_chunks):
    path = tmp_path / "x64.npy"
    np.save(path, np.arange(40_000 * 8, dtype=np.float64).reshape(40_000, 8) / 7)
    X = np.load(path, mmap_mode="r")
    X_out, _ = check_Xy(X)
    assert X_out is X and X_out.dtype == np.float64
    batch = take(X, [39_999, 3])
    assert batch.dtype == np.float32
    np.testing.assert_array_equal(batch, X[[39_999, 3]].astype(np.float32))


def test_nonfinite_found_across_chunks(tmp_path, small_chunks):
    A = np.zeros((30_000, 8), dtype=np.float32)
    A[21_345, 6] = np.nan
    A[29_000, 1] = -np.inf
    path = tmp_path / "bad.npy"
    np.save(path, A)
    X = np.load(path, mmap_mode="r")
    with pytest.raises(ValueError, match=r"X has 2 NaN/inf value\(s\), first X\[21345, 6\] = nan"):
        check_Xy(X)
    with pytest.raises(ValueError, match=r"X_big has 2 NaN/inf value\(s\), first X_big\[21345, 6\]"):
        check_Xy(X, name="X_big")
    with pytest.raises(ValueError, match=r"first X\[20345, 6\]"):
        check_Xy(X[1000:])  # a view of a memmap is still read in chunks


def test_float64_memmap_overflowing_float32(tmp_path, small_chunks):
    A = np.zeros((20_000, 4))
    A[15_000, 3] = -1e200
    path = tmp_path / "big.npy"
    np.save(path, A)
    with pytest.raises(ValueError, match=r"1 value\(s\) too large for float32.*X\[15000, 3\] = -1e\+200"):
        check_Xy(np.load(path, mmap_mode="r"))
