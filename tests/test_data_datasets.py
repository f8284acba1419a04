"""Embedded datasets: shapes, dtypes, classes, stratified seeded splits, no downloads, fast import."""
import subprocess
import sys

import numpy as np
import pytest

from descend.data import (Dataset, load_breast_cancer, load_digits, load_iris, load_mnist1d, load_wine,
                          make_spiral)


def check(ds, *, name, n, features, classes):
    assert isinstance(ds, Dataset) and ds.name == name
    assert len(ds.X_train) + len(ds.X_test) == n
    assert ds.X_train.dtype == ds.X_test.dtype == np.float32
    assert ds.y_train.dtype == ds.y_test.dtype == np.int64
    assert ds.X_train.shape[1:] == ds.X_test.shape[1:] == ds.input_shape
    assert int(np.prod(ds.input_shape)) == features
    assert ds.num_classes == classes
    assert set(np.unique(ds.y_train)) == set(range(classes)) == set(np.unique(ds.y_test))
    assert np.isfinite(ds.X_train).all() and np.isfinite(ds.X_test).all()
    assert not ds.X_train.flags.writeable  # a Dataset is shared; nobody may write it


def same(a, b):
    for f in ("X_train", "y_train", "X_test", "y_test"):
        np.testing.assert_array_equal(getattr(a, f), getattr(b, f))


def test_digits():
    ds = load_digits()
    check(ds, name="digits", n=1797, features=64, classes=10)
    assert ds.input_shape == (64,) and len(ds.X_test) == round(0.2 * 1797)
    # stratified: every class's share of the test set is within one sample of its share overall
    y_all = np.concatenate([ds.y_train, ds.y_test])
    expected = np.bincount(y_all) * len(ds.y_test) / len(y_all)
    assert np.all(np.abs(np.bincount(ds.y_test) - expected) < 1)
    # the split only rearranges scikit-learn's rows
    sk = pytest.importorskip("sklearn.datasets").load_digits()
    X_all = np.concatenate([ds.X_train, ds.X_test]).astype(np.float64)
    assert sorted(map(bytes, X_all)) == sorted(map(bytes, sk.data))


def test_digits_as_images_and_seeds():
    flat, img = load_digits(seed=3), load_digits(images=True, seed=3)
    assert img.input_shape == (1, 8, 8) and img.X_train.shape[1:] == (1, 8, 8)
    np.testing.assert_array_equal(img.X_train.reshape(len(img.X_train), -1), flat.X_train)
    same(load_digits(seed=3), flat)
    assert not np.array_equal(load_digits(seed=4).y_train, flat.y_train)
    assert len(load_digits(test_fraction=0.5).X_test) == round(0.5 * 1797)


@pytest.mark.parametrize("loader,name,n,features,classes", [
    (load_iris, "iris", 150, 4, 3), (load_wine, "wine", 178, 13, 3), (load_breast_cancer, "breast_cancer", 569, 30, 2)])
def test_other_bundled_sets(loader, name, n, features, classes):
    ds = loader()
    check(ds, name=name, n=n, features=features, classes=classes)
    same(loader(seed=0), ds)


def test_bad_test_fraction():
    with pytest.raises(ValueError, match="test_fraction must be strictly between 0 and 1, got 1.0"):
        load_iris(test_fraction=1.0)
    with pytest.raises(ValueError, match="seed must be an integer"):
        load_iris(seed=1.5)


def test_mnist1d_generated_locally_and_deterministic(monkeypatch):
    import mnist1d.data

    def no_download(*a, **k):
        raise AssertionError("load_mnist1d must not call mnist1d's download path")

    monkeypatch.setattr(mnist1d.data, "get_dataset", no_download)
    monkeypatch.setattr(mnist1d.data.requests, "get", no_download)
    np.random.seed(123)
    global_before = np.random.get_state()[1].copy()
    ds = load_mnist1d(num_samples=500, seed=1)
    np.testing.assert_array_equal(np.random.get_state()[1], global_before)  # the caller's global RNG is untouched
    check(ds, name="mnist1d", n=500, features=40, classes=10)
    assert ds.input_shape == (40,) and len(ds.X_train) == 400
    same(load_mnist1d(num_samples=500, seed=1), ds)
    assert not np.array_equal(load_mnist1d(num_samples=500, seed=2).X_train, ds.X_train)
    img = load_mnist1d(num_samples=500, seed=1, images=True)
    assert img.input_shape == (1, 40) and img.X_test.shape == (100, 1, 40)
    np.testing.assert_array_equal(img.X_train[:, 0], ds.X_train)
    with pytest.raises(ValueError, match="num_samples must be an integer ≥ 10"):
        load_mnist1d(num_samples=5)


def test_spiral():
    ds = make_spiral(rng=np.random.default_rng(0))
    check(ds, name="spiral", n=300, features=2, classes=3)
    assert ds.input_shape == (2,) and np.bincount(ds.y_test).tolist() == [20, 20, 20]
    assert np.abs(ds.X_train).max() <= 1.0  # r ≤ 1
    same(make_spiral(rng=np.random.default_rng(0)), ds)
    big = make_spiral(50, 5, noise=0.0, rng=np.random.default_rng(1))
    check(big, name="spiral", n=250, features=2, classes=5)


def test_spiral_matches_the_cs231n_formula():
    # noise=0 removes randomness from the points themselves: class j's points lie on
    # r·(sin t, cos t) with r = linspace(0, 1, n), t = linspace(4j, 4(j+1), n)
    n = 10
    ds = make_spiral(n, 2, noise=0.0, rng=np.random.default_rng(0))
    X = np.concatenate([ds.X_train, ds.X_test]).astype(np.float64)
    y = np.concatenate([ds.y_train, ds.y_test])
    for j in range(2):
        r, t = np.linspace(0, 1, n), np.linspace(4 * j, 4 * (j + 1), n)
        expected = np.c_[r * np.sin(t), r * np.cos(t)].astype(np.float32)
        got = X[y == j].astype(np.float32)
        assert sorted(map(tuple, got)) == sorted(map(tuple, expected))


def test_spiral_errors():
    with pytest.raises(TypeError, match="explicit rng"):
        make_spiral(rng=None)
    with pytest.raises(ValueError, match="classes must be an integer ≥ 2"):
        make_spiral(classes=1, rng=np.random.default_rng(0))
    with pytest.raises(ValueError, match="noise must be a number ≥ 0"):
        make_spiral(noise=-1, rng=np.random.default_rng(0))


def test_dataset_is_frozen():
    ds = make_spiral(rng=np.random.default_rng(0))
    with pytest.raises(AttributeError):
        ds.num_classes = 4
    assert "spiral" in repr(ds) and "240 train" in repr(ds)


def test_import_is_light():
    code = ("import sys, descend.data; "
            "print(sorted(m for m in ('sklearn', 'mnist1d', 'matplotlib', 'scipy') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


def test_mnist1d_default_is_the_published_recipe(monkeypatch):
    """The paper's published data (mnist1d_data.pkl) were made by make_dataset with the package's default
    arguments: 5000 samples, seed 42, 80/20 split. load_mnist1d() must use exactly those, offline."""
    import mnist1d.data

    def no_download(*a, **k):
        raise AssertionError("load_mnist1d must not call mnist1d's download path")

    monkeypatch.setattr(mnist1d.data, "get_dataset", no_download)
    monkeypatch.setattr(mnist1d.data.requests, "get", no_download)
    ds = load_mnist1d()
    assert ds.X_train.shape == (4000, 40) and ds.X_test.shape == (1000, 40)
    args = mnist1d.data.get_dataset_args()
    assert (args.num_samples, args.seed, args.train_split) == (5000, 42, 0.8)  # the recipe the paper's file used
    ref = mnist1d.data.make_dataset(args)
    np.testing.assert_array_equal(ds.X_train, ref["x"].astype(np.float32))
    np.testing.assert_array_equal(ds.y_test, ref["y_test"])


def test_spiral_without_a_split():
    ds = make_spiral(100, 3, rng=np.random.default_rng(0), test_fraction=0)
    assert ds.X_train.shape == (300, 2) and ds.X_train.dtype == np.float32 and ds.y_train.dtype == np.int64
    assert ds.X_test.shape == (0, 2) and ds.y_test.shape == (0,)
    assert np.bincount(ds.y_train).tolist() == [100, 100, 100]
    split = make_spiral(100, 3, rng=np.random.default_rng(0))  # the same points, then split
    X = np.concatenate([split.X_train, split.X_test])
    assert sorted(map(tuple, X)) == sorted(map(tuple, ds.X_train))
    assert not ds.X_train.flags.writeable
    with pytest.raises(ValueError, match="test_fraction must be strictly between 0 and 1, got 1.0; e.g. 0.2, or 0"):
        make_spiral(rng=np.random.default_rng(0), test_fraction=1.0)


@pytest.mark.parametrize("loader,sk_name", [(load_digits, "load_digits"), (load_iris, "load_iris"),
                                            (load_wine, "load_wine"), (load_breast_cancer, "load_breast_cancer")])
def test_bundled_files_read_as_scikit_learn_reads_them(loader, sk_name, monkeypatch):
    import descend.data.datasets as datasets
    import sklearn.datasets

    bunch = getattr(sklearn.datasets, sk_name)()
    found = []
    real = datasets._bundled_file
    monkeypatch.setattr(datasets, "_bundled_file", lambda filename: found.append(real(filename)) or found[-1])
    ds = loader(seed=5)
    assert found and all(path is not None for path in found)  # read from the file, not through scikit-learn
    assert ds.num_classes == len(bunch.target_names)
    # the same rows (features and label together) as scikit-learn's loader, only rearranged by the split
    ours = np.column_stack([np.concatenate([ds.X_train, ds.X_test]), np.concatenate([ds.y_train, ds.y_test])])
    theirs = np.column_stack([bunch.data.astype(np.float32), bunch.target])
    assert sorted(map(bytes, ours.astype(np.float64))) == sorted(map(bytes, theirs.astype(np.float64)))
    # another scikit-learn layout (no file where we look): its loader gives the same data set
    monkeypatch.setattr(datasets, "_bundled_file", lambda filename: None)
    same(loader(seed=5), ds)


def test_bundled_sets_do_not_import_scikit_learn():
    code = "import sys, descend.data as D; D.load_digits(); D.load_iris(); print('sklearn' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "False"
