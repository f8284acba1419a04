"""train_val_split: explicit rng, sizes, stratification, errors."""
import numpy as np
import pytest

from descend.data import train_val_split


@pytest.fixture
def Xy():
    rng = np.random.default_rng(0)
    y = np.repeat(np.arange(3), [600, 300, 100])
    X = np.column_stack([np.arange(1000.0), rng.standard_normal(1000)]).astype(np.float32)
    return X, y


def test_sizes_and_disjoint_cover(Xy):
    X, y = Xy
    X_tr, y_tr, X_val, y_val = train_val_split(X, y, val_fraction=0.25, rng=np.random.default_rng(1))
    assert len(X_val) == len(y_val) == 250 and len(X_tr) == len(y_tr) == 750
    ids = np.concatenate([X_tr[:, 0], X_val[:, 0]]).astype(int)
    assert sorted(ids.tolist()) == list(range(1000))
    np.testing.assert_array_equal(y[X_tr[:, 0].astype(int)], y_tr)  # rows stay paired with labels
    np.testing.assert_array_equal(y[X_val[:, 0].astype(int)], y_val)


def test_same_seed_same_split_and_inputs_untouched(Xy):
    X, y = Xy
    X0, y0 = X.copy(), y.copy()
    X.setflags(write=False)
    a = train_val_split(X, y, rng=np.random.default_rng(5))
    b = train_val_split(X, y, rng=np.random.default_rng(5))
    for u, v in zip(a, b):
        np.testing.assert_array_equal(u, v)
    np.testing.assert_array_equal(X, X0)
    np.testing.assert_array_equal(y, y0)


def test_stratified_keeps_class_proportions_exactly(Xy):
    X, y = Xy
    X_tr, y_tr, X_val, y_val = train_val_split(X, y, val_fraction=0.2, rng=np.random.default_rng(2), stratify=True)
    assert np.bincount(y_val).tolist() == [120, 60, 20]
    assert np.bincount(y_tr).tolist() == [480, 240, 80]
    assert not np.all(np.diff(y_val) >= 0)  # shuffled, not grouped by class


def test_stratified_rounding_sums_to_the_total():
    y = np.array([0] * 7 + [1] * 7 + [2] * 7)
    X = np.arange(21.0).reshape(-1, 1)
    _, y_tr, _, y_val = train_val_split(X, y, val_fraction=0.5, rng=np.random.default_rng(0), stratify=True)
    assert len(y_val) == round(0.5 * 21) == 10
    assert sorted(np.bincount(y_val, minlength=3).tolist()) == [3, 3, 4]


def test_unstratified_proportions_drift_but_stratified_do_not():
    y = np.repeat([0, 1], [950, 50])
    X = np.zeros((1000, 1))
    drifts = []
    for seed in range(20):
        _, _, _, y_val = train_val_split(X, y, val_fraction=0.1, rng=np.random.default_rng(seed))
        drifts.append(abs(int((y_val == 1).sum()) - 5))
        _, _, _, y_val = train_val_split(X, y, val_fraction=0.1, rng=np.random.default_rng(seed), stratify=True)
        assert int((y_val == 1).sum()) == 5
    assert max(drifts) > 0


@pytest.mark.parametrize("bad", [0, 0.0, 1, 1.0, -0.1, 1.5, "0.1", None])
def test_val_fraction_out_of_range(Xy, bad):
    X, y = Xy
    with pytest.raises(ValueError, match="val_fraction must be a number strictly between 0 and 1"):
        train_val_split(X, y, val_fraction=bad, rng=np.random.default_rng(0))


def test_empty_side_raises():
    X, y = np.zeros((5, 1)), np.zeros(5, int)
    with pytest.raises(ValueError, match="leaves the validation part empty"):
        train_val_split(X, y, val_fraction=0.05, rng=np.random.default_rng(0))
    with pytest.raises(ValueError, match="leaves the training part empty"):
        train_val_split(X, y, val_fraction=0.95, rng=np.random.default_rng(0))


def test_needs_generator_and_matching_lengths():
    with pytest.raises(TypeError, match="explicit rng"):
        train_val_split(np.zeros((5, 1)), np.zeros(5), rng=0)
    with pytest.raises(ValueError, match="X has 5 samples but y has 4"):
        train_val_split(np.zeros((5, 1)), np.zeros(4), rng=np.random.default_rng(0))
    with pytest.raises(ValueError, match="stratify=True needs the labels y"):
        train_val_split(np.zeros((5, 1)), None, rng=np.random.default_rng(0), stratify=True)


def test_y_none():
    X_tr, y_tr, X_val, y_val = train_val_split(np.zeros((10, 2)), None, rng=np.random.default_rng(0))
    assert y_tr is None and y_val is None and len(X_tr) == 9 and len(X_val) == 1
