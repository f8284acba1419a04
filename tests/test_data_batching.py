"""Batch sizes, epoch orders, batch slices and take()."""
import warnings

import numpy as np
import pytest

from descend.data import batch_slices, epoch_order, resolve_batch_size, take


# ---------------------------------------------------------------------------------- resolve_batch_size

def test_none_is_batch_gradient_descent():
    assert resolve_batch_size(1000, None) == 1000


def test_one_is_stochastic_and_k_is_mini_batch():
    assert resolve_batch_size(1000, 1) == 1
    assert resolve_batch_size(1000, 32) == 32
    assert resolve_batch_size(1000, np.int64(64)) == 64
    assert resolve_batch_size(1000, 1000) == 1000


def test_larger_than_n_is_clipped_with_a_warning_naming_both():
    with pytest.warns(UserWarning, match=r"batch_size=500 is larger than the 100 samples; using batch_size=100"):
        assert resolve_batch_size(100, 500) == 100


def test_no_warning_when_it_fits():
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        resolve_batch_size(100, 100)
        resolve_batch_size(100, None)


@pytest.mark.parametrize("bad", [0, -1])
def test_non_positive_batch_size(bad):
    with pytest.raises(ValueError, match=rf"batch_size must be ≥ 1 \(or None for the whole set\), got {bad}"):
        resolve_batch_size(10, bad)


@pytest.mark.parametrize("bad", [2.5, 32.0, "32", True])
def test_non_integer_batch_size(bad):
    with pytest.raises(ValueError, match="batch_size must be a positive integer or None"):
        resolve_batch_size(10, bad)


# ---------------------------------------------------------------------------------- epoch_order

def test_same_seed_same_order_and_a_new_order_each_epoch():
    a, b = np.random.default_rng(7), np.random.default_rng(7)
    first = epoch_order(50, rng=a)
    np.testing.assert_array_equal(first, epoch_order(50, rng=b))
    assert sorted(first.tolist()) == list(range(50))
    second = epoch_order(50, rng=a)
    assert not np.array_equal(first, second)  # reshuffled every epoch
    np.testing.assert_array_equal(second, epoch_order(50, rng=b))


def test_order_is_rng_permutation():
    np.testing.assert_array_equal(epoch_order(20, rng=np.random.default_rng(3)),
                                  np.random.default_rng(3).permutation(20))


def test_no_shuffle_is_identity_and_draws_nothing():
    rng = np.random.default_rng(0)
    state = rng.bit_generator.state
    np.testing.assert_array_equal(epoch_order(5, rng=rng, shuffle=False), np.arange(5))
    assert rng.bit_generator.state == state


def test_epoch_order_needs_a_generator():
    with pytest.raises(TypeError, match="explicit rng"):
        epoch_order(5, rng=np.random.RandomState(0))


# ---------------------------------------------------------------------------------- batch_slices

@pytest.mark.parametrize("n,b", [(10, 3), (10, 5), (10, 1), (10, 10), (7, 100), (1, 1)])
def test_every_index_exactly_once_per_epoch(n, b):
    order = epoch_order(n, rng=np.random.default_rng(n * b))
    slices = batch_slices(n, b)
    seen = np.concatenate([order[s] for s in slices])
    assert sorted(seen.tolist()) == list(range(n))
    assert all(s.stop - s.start == b for s in slices[:-1])
    assert len(slices) == -(-n // b)


def test_last_small_batch_kept_or_dropped():
    assert batch_slices(10, 4) == [slice(0, 4), slice(4, 8), slice(8, 10)]
    assert batch_slices(10, 4, drop_last=True) == [slice(0, 4), slice(4, 8)]
    assert batch_slices(8, 4, drop_last=True) == [slice(0, 4), slice(4, 8)]
    assert batch_slices(10, None) == [slice(0, 10)]


def test_drop_last_with_too_few_samples():
    with pytest.raises(ValueError, match=r"drop_last=True with batch_size=16 > 10 samples would leave no batch"):
        batch_slices(10, 16, drop_last=True)


def test_batch_slices_rejects_bad_sizes():
    with pytest.raises(ValueError, match=r"batch_size must be a positive integer \(≥ 1\), got 0"):
        batch_slices(10, 0)
    with pytest.raises(ValueError, match=r"batch_size must be a positive integer \(≥ 1\), got 2\.0"):
        batch_slices(10, 2.0)


# ---------------------------------------------------------------------------------- take

def test_take_gathers_rows_in_order_as_float32_without_touching_X():
    X = np.arange(40, dtype=np.float64).reshape(10, 4)
    X.setflags(write=False)
    idx = np.array([7, 2, 2, 9, 0])
    batch = take(X, idx)
    assert batch.dtype == np.float32 and batch.flags.c_contiguous
    np.testing.assert_array_equal(batch, X[idx].astype(np.float32))


def test_take_non_contiguous_and_images():
    X = np.random.default_rng(0).standard_normal((12, 3, 4, 4)).astype(np.float32)[::2, :, ::2]
    batch = take(X, [5, 1])
    assert batch.shape == (2, 3, 2, 4) and batch.flags.c_contiguous
    np.testing.assert_array_equal(batch, X[[5, 1]])


def test_take_slice_of_float32_is_a_read_only_view():
    X = np.ones((6, 2), dtype=np.float32)
    batch = take(X, slice(0, 6))
    assert np.shares_memory(batch, X) and not batch.flags.writeable
    assert X.flags.writeable
    with pytest.raises(ValueError):
        batch[0, 0] = 5.0


def test_take_slice_of_other_dtypes_casts():
    X = np.arange(12).reshape(6, 2)
    batch = take(X, slice(2, 5))
    assert batch.dtype == np.float32 and not np.shares_memory(batch, X)
    np.testing.assert_array_equal(batch, X[2:5])


def test_take_rejects_float_indices():
    with pytest.raises(TypeError, match="row indices must be integers"):
        take(np.ones((3, 2)), np.array([0.0, 1.0]))


# ---------------------------------------------------------------------------------- RowView

def test_row_view_behaves_like_the_rows_it_stands_for():
    from descend.data import RowView

    base = np.arange(60, dtype=np.float64).reshape(10, 2, 3)
    idx = np.array([8, 1, 4, 4, -1])
    view = RowView(base, idx)
    want = base[idx]
    idx[0] = 0  # the view keeps its own copy of the index
    assert len(view) == 5 and view.shape == (5, 2, 3) and view.dtype == np.float64 and view.ndim == 3
    np.testing.assert_array_equal(np.asarray(view), want)
    np.testing.assert_array_equal(view[1], want[1])
    np.testing.assert_array_equal(view[1:4], want[1:4])
    np.testing.assert_array_equal(view[[4, 0]], want[[4, 0]])
    np.testing.assert_array_equal(view[1:3, 0], want[1:3, 0])
    np.testing.assert_array_equal(view[2, 1, 2], want[2, 1, 2])
    np.testing.assert_array_equal(take(view, [3, 0]), want[[3, 0]].astype(np.float32))
    nested = RowView(view, [4, 0])
    assert nested.base is base
    np.testing.assert_array_equal(np.asarray(nested), want[[4, 0]])
    with pytest.raises(IndexError, match="out of range"):
        RowView(base, [10])


# ---------------------------------------------------------------------------------- dtype (the model's)

def test_take_float64_keeps_float64_and_casts_others():
    X64 = np.arange(24, dtype=np.float64).reshape(6, 4) + 0.1  # 0.1: not exactly representable in float32
    b = take(X64, np.array([4, 1]), dtype=np.float64)
    assert b.dtype == np.float64 and np.array_equal(b, X64[[4, 1]])  # exact: no trip through float32
    v = take(X64, slice(1, 3), dtype=np.float64)
    assert v.dtype == np.float64 and not v.flags.writeable and np.shares_memory(v, X64)  # view, as for float32
    b32 = take(X64, np.array([4, 1]))  # default float32: cast per batch, as before
    assert b32.dtype == np.float32 and np.array_equal(b32, X64[[4, 1]].astype(np.float32))
    Xi = np.arange(12, dtype=np.int16).reshape(3, 4)
    assert take(Xi, slice(0, 2), dtype=np.float64).dtype == np.float64
    X32 = X64.astype(np.float32)
    up = take(X32, slice(0, 6), dtype=np.float64)
    assert up.dtype == np.float64 and not np.shares_memory(up, X32)


def test_take_float64_from_a_memory_map(tmp_path):
    X = np.random.default_rng(0).standard_normal((50, 3))
    np.save(tmp_path / "X.npy", X)
    m = np.load(tmp_path / "X.npy", mmap_mode="r")
    idx = np.array([40, 2, 17])
    assert np.array_equal(take(m, idx, dtype=np.float64), X[idx])
    assert take(m, idx).dtype == np.float32


@pytest.mark.parametrize("bad, err", [(np.int32, ValueError), (np.float16, ValueError), ("nonsense", TypeError)])
def test_take_rejects_other_dtypes(bad, err):
    with pytest.raises(err, match="dtype"):
        take(np.zeros((3, 2)), slice(0, 2), dtype=bad)


def test_a_large_batch_is_gathered_into_a_recycled_array_with_takes_semantics():
    X = np.arange(600 * 784, dtype=np.float32).reshape(600, 784)  # 128 rows = 401 KB: the recycled path
    idx = np.array([5, -1, 0] + list(range(10, 135)))
    a = take(X, idx, recycle=True)
    np.testing.assert_array_equal(a, X[idx])  # negative indices count from the end, as X[idx] does
    a.flags.writeable = False  # a holder may lock it; the pool unlocks it when it hands it out again
    b = take(X, idx[::-1], recycle=True)
    assert not np.shares_memory(a, b)  # a is still held: b gets another array
    np.testing.assert_array_equal(a, X[idx])
    address = a.__array_interface__["data"][0]
    del a
    c = take(X, idx, recycle=True)  # a's array is free again: recycled, and written in full
    assert c.__array_interface__["data"][0] == address
    np.testing.assert_array_equal(c, X[idx])
    del c
    d = take(X, idx)  # without recycle: a new array, as ever — not the pool's, though its array is free
    assert d.__array_interface__["data"][0] != address
    e = take(X, idx, recycle=True)
    assert e.__array_interface__["data"][0] == address and not np.shares_memory(d, e)
    for bad in (600, -601):
        with pytest.raises(IndexError):
            take(X, np.concatenate([idx, [bad]]), recycle=True)
