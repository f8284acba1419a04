"""check_Xy and num_classes: every bad input raises with the value and the fix; inputs are never written."""
import numpy as np
import pytest

from descend.data import check_Xy, num_classes


def frozen(a):
    a = np.array(a)
    a.setflags(write=False)
    return a


@pytest.fixture
def Xy():
    rng = np.random.default_rng(0)
    return rng.standard_normal((20, 3)), rng.integers(0, 4, size=20)


# ---------------------------------------------------------------------------------- X errors

def test_1d_X_names_the_reshape_fix():
    with pytest.raises(ValueError, match=r"1-D array of shape \(5,\).*X\.reshape\(-1, 1\)"):
        check_Xy(np.arange(5.0))


def test_scalar_X():
    with pytest.raises(ValueError, match="scalar"):
        check_Xy(np.float64(3.0))


def test_zero_samples():
    with pytest.raises(ValueError, match=r"0 samples \(shape \(0, 4\)\)"):
        check_Xy(np.zeros((0, 4)))


def test_zero_features():
    with pytest.raises(ValueError, match=r"0 features \(shape \(6, 0\)\)"):
        check_Xy(np.zeros((6, 0)))
    with pytest.raises(ValueError, match=r"0 features \(shape \(6, 3, 0\)\)"):
        check_Xy(np.zeros((6, 3, 0)))


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_nonfinite_X_counts_and_locates(bad):
    X = np.ones((10, 4))
    X[3, 2] = bad
    X[7, 0] = bad
    with pytest.raises(ValueError, match=rf"X has 2 NaN/inf value\(s\), first X\[3, 2\] = -?{'nan' if bad != bad else 'inf'}.*keep = np\.isfinite"):
        check_Xy(X)


def test_nonfinite_in_image_shaped_X_gives_full_index():
    X = np.zeros((4, 1, 3, 3), dtype=np.float32)
    X[2, 0, 1, 2] = np.nan
    with pytest.raises(ValueError, match=r"1 NaN/inf value\(s\), first X\[2, 0, 1, 2\]"):
        check_Xy(X)


def test_float64_beyond_float32_range():
    X = np.ones((3, 2))
    X[1, 1] = 1e300
    with pytest.raises(ValueError, match=r"1 value\(s\) too large for float32.*X\[1, 1\] = 1e\+300.*rescale"):
        check_Xy(X)


def test_name_is_used_for_X_and_derived_for_y():
    X = np.ones((3, 2))
    X[0, 0] = np.nan
    with pytest.raises(ValueError, match=r"X_val\[0, 0\]"):
        check_Xy(X, name="X_val")
    with pytest.raises(ValueError, match=r"X_val has 3 samples but y_val has 2"):
        check_Xy(np.ones((3, 2)), np.zeros(2, int), name="X_val")


def test_non_numeric_X():
    with pytest.raises(TypeError, match="must hold numbers, got dtype <U1"):
        check_Xy(np.array([["a", "b"]]))
    with pytest.raises(TypeError, match="complex"):
        check_Xy(np.ones((2, 2), dtype=complex))


# ---------------------------------------------------------------------------------- y errors

def test_length_mismatch_names_both_lengths():
    with pytest.raises(ValueError, match="X has 5 samples but y has 4"):
        check_Xy(np.ones((5, 2)), np.zeros(4, int))


def test_nonfinite_y():
    y = np.array([0.0, 1.0, np.nan, 2.0, np.inf])
    with pytest.raises(ValueError, match=r"y has 2 NaN/inf value\(s\), first y\[2\] = nan"):
        check_Xy(np.ones((5, 2)), y)
    with pytest.raises(ValueError, match=r"y has 2 NaN/inf"):
        check_Xy(np.ones((5, 2)), y, task="regression")


def test_fractional_labels():
    with pytest.raises(ValueError, match=r"must be integers, but 2 are not, first y\[1\] = 0\.5.*task='regression'"):
        check_Xy(np.ones((4, 2)), np.array([0.0, 0.5, 1.0, 2.25]))


def test_integer_valued_float_labels_accepted():
    _, y = check_Xy(np.ones((3, 2)), np.array([0.0, 2.0, 1.0]))
    assert y.dtype == np.int64 and y.tolist() == [0, 2, 1]


def test_negative_labels():
    with pytest.raises(ValueError, match=r"≥ 0.*1 are negative, first y\[2\] = -1.*np\.unique"):
        check_Xy(np.ones((4, 2)), np.array([0, 1, -1, 2]))


def test_labels_beyond_num_classes():
    with pytest.raises(ValueError, match=r"< num_classes=3, but 2 are not, first y\[1\] = 3; pass num_classes=5"):
        check_Xy(np.ones((4, 2)), np.array([0, 3, 1, 4]), num_classes=3)
    _, y = check_Xy(np.ones((4, 2)), np.array([0, 3, 1, 4]), num_classes=5)
    assert y.max() == 4


@pytest.mark.parametrize("bad", [0, -2, 2.5, True])
def test_bad_num_classes(bad):
    with pytest.raises(ValueError, match="num_classes must be a positive integer"):
        check_Xy(np.ones((2, 2)), np.zeros(2, int), num_classes=bad)


def test_labels_must_be_1d():
    with pytest.raises(ValueError, match=r"shape \(4, 1\).*y\.ravel\(\)"):
        check_Xy(np.ones((4, 2)), np.zeros((4, 1), int))
    with pytest.raises(ValueError, match=r"one-hot.*argmax"):
        check_Xy(np.ones((4, 2)), np.eye(4))


def test_string_labels():
    with pytest.raises(TypeError, match=r"dtype <U3.*np\.asarray"):
        check_Xy(np.ones((2, 2)), np.array(["cat", "dog"]))


def test_regression_targets():
    X = np.ones((4, 2))
    _, y = check_Xy(X, np.arange(4), task="regression")
    assert y.dtype == np.float32 and y.shape == (4,)
    _, y = check_Xy(X, np.ones((4, 3)), task="regression")
    assert y.dtype == np.float32 and y.shape == (4, 3)
    with pytest.raises(ValueError, match=r"\(N,\) or \(N, k\), got \(4, 1, 1\)"):
        check_Xy(X, np.ones((4, 1, 1)), task="regression")
    with pytest.raises(ValueError, match="only applies to task='classification'"):
        check_Xy(X, np.ones(4), task="regression", num_classes=3)


def test_unknown_task():
    with pytest.raises(ValueError, match="task must be 'classification' or 'regression', got 'clasification'"):
        check_Xy(np.ones((2, 2)), task="clasification")


# ---------------------------------------------------------------------------------- outputs, no mutation

def test_casts_once_and_never_mutates(Xy):
    X, y = Xy
    X_in, y_in = frozen(X), frozen(y)
    X_out, y_out = check_Xy(X_in, y_in)
    assert X_out.dtype == np.float32 and y_out.dtype == np.int64
    np.testing.assert_array_equal(X_out, X.astype(np.float32))
    np.testing.assert_array_equal(X_in, X)
    np.testing.assert_array_equal(y_in, y)


def test_float32_passes_through_without_copy():
    X = np.random.default_rng(1).standard_normal((8, 3)).astype(np.float32)
    y = np.arange(8, dtype=np.int64) % 2
    X_out, y_out = check_Xy(X, y)
    assert X_out is X and np.shares_memory(X_out, X)
    assert np.shares_memory(y_out, y)


def test_read_only_and_non_contiguous_inputs():
    base = np.random.default_rng(2).standard_normal((30, 10)).astype(np.float32)
    before = base.copy()
    base.setflags(write=False)
    X = base[::3, ::2]  # non-contiguous, read-only view
    y = frozen(np.arange(30) % 3)[::3]
    X_out, y_out = check_Xy(X, y, num_classes=3)
    assert X_out.shape == (10, 5) and X_out.dtype == np.float32
    np.testing.assert_array_equal(X_out, before[::3, ::2])
    np.testing.assert_array_equal(y_out, np.arange(0, 30, 3) % 3)
    np.testing.assert_array_equal(base, before)


def test_lists_and_integer_and_bool_X():
    X, y = check_Xy([[1, 2], [3, 4]], [0, 1])
    assert X.dtype == np.float32 and y.dtype == np.int64
    X, _ = check_Xy(np.array([[True, False]]))
    assert X.tolist() == [[1.0, 0.0]]


def test_y_none():
    X, y = check_Xy(np.ones((2, 2)))
    assert y is None


def test_num_classes():
    assert num_classes(np.array([0, 3, 1])) == 4
    assert num_classes([2.0, 0.0]) == 3
    with pytest.raises(ValueError, match="empty"):
        num_classes(np.array([], int))
    with pytest.raises(ValueError, match="≥ 0"):
        num_classes(np.array([-1, 2]))


def test_dtype_float64_end_to_end():
    X64 = np.random.default_rng(0).standard_normal((5, 3))
    Xc, _ = check_Xy(X64, None, dtype=np.float64)
    assert Xc is X64  # already float64: no copy
    X32, _ = check_Xy(X64, None)  # the default stays float32
    assert X32.dtype == np.float32
    Xc, yc = check_Xy(X64.astype(np.float32), np.arange(5.0), task="regression", dtype=np.float64)
    assert Xc.dtype == np.float64 and yc.dtype == np.float64
    _, yc = check_Xy(X64, np.array([0, 1, 2, 1, 0]), dtype=np.float64)
    assert yc.dtype == np.int64  # labels stay integers
    big = X64.copy()
    big[2, 1] = 1e300  # beyond float32, fine for a float64 model
    assert check_Xy(big, None, dtype=np.float64)[0][2, 1] == 1e300
    with pytest.raises(ValueError, match="too large for float32"):
        check_Xy(big, None)
    with pytest.raises(ValueError, match="float32 or float64"):
        check_Xy(X64, None, dtype=np.int64)
