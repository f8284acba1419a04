"""Embedded datasets — nothing is ever downloaded: scikit-learn's bundled sets, MNIST-1D generated locally, spirals.

Each loader returns a ``Dataset`` with a fixed, seeded, stratified train/test split (MNIST-1D keeps
its package's own split). Features are returned as the source gives them (float32, not rescaled):
scaling is preprocessing, fitted on the training part. scikit-learn's bundled files are read without
importing scikit-learn, and mnist1d is imported inside its loader, so ``import descend.data`` stays fast.
"""
from __future__ import annotations

import importlib.util
import random
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..common.validate import integer, open_unit_interval
from .split import train_val_split

__all__ = ["Dataset", "load_digits", "load_iris", "load_wine", "load_breast_cancer", "load_mnist1d",
           "make_spiral"]


@dataclass(frozen=True, eq=False, repr=False)
class Dataset:
    """A classification data set split into train and test parts.

    X_train: (N_train, *input_shape) float32; y_train: (N_train,) int64 in 0..num_classes-1;
    X_test, y_test likewise. ``input_shape`` excludes the batch axis, e.g. (64,) for flattened
    digits or (1, 8, 8) for digits as 1-channel images.
    """

    name: str
    X_train: np.ndarray
    y_train: np.ndarray
    X_test: np.ndarray
    y_test: np.ndarray
    num_classes: int
    input_shape: tuple

    def __repr__(self) -> str:
        return (f"Dataset({self.name!r}: {len(self.X_train)} train / {len(self.X_test)} test samples, "
                f"input_shape={self.input_shape}, num_classes={self.num_classes})")


def _make(name: str, X, y, *, num_classes: int, test_fraction: float, rng: np.random.Generator) -> Dataset:
    X = np.ascontiguousarray(X, dtype=np.float32)
    y = np.asarray(y, dtype=np.int64)
    X_tr, y_tr, X_te, y_te = train_val_split(X, y, val_fraction=test_fraction, rng=rng, stratify=True)
    return _frozen(name, X_tr, y_tr, X_te, y_te, num_classes)


def _frozen(name, X_tr, y_tr, X_te, y_te, num_classes) -> Dataset:
    for a in (X_tr, y_tr, X_te, y_te):
        a.setflags(write=False)  # shared by everyone who holds the Dataset: nobody may write it
    return Dataset(name, X_tr, y_tr, X_te, y_te, int(num_classes), tuple(X_tr.shape[1:]))


def _check_test_fraction(test_fraction) -> float:
    return open_unit_interval("test_fraction", test_fraction, "; e.g. 0.2")


def _seed_rng(seed) -> np.random.Generator:
    return np.random.default_rng(integer("seed", seed))


def _bundled_file(filename: str):
    """The path of scikit-learn's bundled data file ``filename``, found without importing scikit-learn (whose
    import takes a second or more, most of a small search worker's start-up), or None if it is not there."""
    spec = importlib.util.find_spec("sklearn")
    if spec is None or not spec.submodule_search_locations:
        return None
    path = Path(list(spec.submodule_search_locations)[0]) / "datasets" / "data" / filename
    return path if path.is_file() else None


def _sklearn(loader_name: str, name: str, filename: str, *, test_fraction, seed) -> Dataset:
    test_fraction = _check_test_fraction(test_fraction)
    path = _bundled_file(filename)
    if path is None:  # another scikit-learn layout: ask its loader
        import sklearn.datasets
        bunch = getattr(sklearn.datasets, loader_name)()
        data, target, num_classes = bunch.data, bunch.target, len(bunch.target_names)
    else:
        # digits: rows of 64 pixels and the label; the others open with "n_samples,n_features,class names..."
        header = 0 if filename.endswith(".gz") else 1
        table = np.loadtxt(path, delimiter=",", skiprows=header, dtype=np.float64, ndmin=2)
        data, target = table[:, :-1], table[:, -1].astype(np.int64)
        num_classes = 10 if header == 0 else len(path.read_text().split("\n", 1)[0].split(",")) - 2
    return _make(name, data, target, num_classes=num_classes, test_fraction=test_fraction, rng=_seed_rng(seed))


def load_digits(*, images: bool = False, test_fraction: float = 0.2, seed: int = 0) -> Dataset:
    """scikit-learn's bundled handwritten digits (UCI): 1797 samples of 8×8 pixels, intensities 0–16, 10 classes.

    input_shape (64,), or (1, 8, 8) with ``images=True`` (N, C, H, W). Stratified split, seeded.
    """
    ds = _sklearn("load_digits", "digits", "digits.csv.gz", test_fraction=test_fraction, seed=seed)
    if not images:
        return ds
    as_images = [np.ascontiguousarray(a).reshape(len(a), 1, 8, 8) for a in (ds.X_train, ds.X_test)]
    return _frozen(ds.name, as_images[0], ds.y_train, as_images[1], ds.y_test, ds.num_classes)


def load_iris(*, test_fraction: float = 0.2, seed: int = 0) -> Dataset:
    """scikit-learn's bundled iris flowers: 150 samples, 4 features (cm), 3 classes. Stratified split, seeded."""
    return _sklearn("load_iris", "iris", "iris.csv", test_fraction=test_fraction, seed=seed)


def load_wine(*, test_fraction: float = 0.2, seed: int = 0) -> Dataset:
    """scikit-learn's bundled wine recognition set: 178 samples, 13 features of very different scales, 3 classes."""
    return _sklearn("load_wine", "wine", "wine_data.csv", test_fraction=test_fraction, seed=seed)


def load_breast_cancer(*, test_fraction: float = 0.2, seed: int = 0) -> Dataset:
    """scikit-learn's bundled breast cancer (Wisconsin diagnostic) set: 569 samples, 30 features, 2 classes."""
    return _sklearn("load_breast_cancer", "breast_cancer", "breast_cancer.csv", test_fraction=test_fraction,
                    seed=seed)


def load_mnist1d(*, images: bool = False, seed: int | None = None, num_samples: int | None = None) -> Dataset:
    """MNIST-1D (Greydanus & Kalnishkan, 2020), generated locally by the ``mnist1d`` package: 40 features, 10 classes.

    With the defaults (``seed=None``, ``num_samples=None``) this is the data set the paper published
    (``mnist1d_data.pkl``: 4000 train / 1000 test): the package's ``make_dataset`` with its own default
    arguments (``get_dataset_args()``: 5000 samples, seed 42, train_split 0.8), which is how that file
    was made. Nothing is downloaded: ``mnist1d.data.get_dataset``'s download path is never called.
    ``seed`` / ``num_samples`` generate another draw of the same distribution instead.
    input_shape (40,), or (1, 40) with ``images=True`` (N, C, W) for 1-D convolutions.
    The generator seeds NumPy's and Python's global RNGs; their states are restored afterwards,
    so the caller's global randomness is untouched (not thread-safe against other users of it).
    """
    if seed is not None:
        _seed_rng(seed)  # validates
    if num_samples is not None:
        if isinstance(num_samples, bool) or not isinstance(num_samples, (int, np.integer)) or num_samples < 10:
            raise ValueError(f"num_samples must be an integer ≥ 10 (at least one per class) or None for "
                             f"the package default 5000, got {num_samples!r}")
    from mnist1d.data import get_dataset_args, make_dataset  # lazily: pulls in matplotlib

    args = get_dataset_args()  # the published data set's arguments
    if seed is not None:
        args.seed = int(seed)
    if num_samples is not None:
        args.num_samples = int(num_samples)
    np_state, py_state = np.random.get_state(), random.getstate()
    try:
        d = make_dataset(args)
    finally:
        np.random.set_state(np_state)
        random.setstate(py_state)
    shape = (1, 40) if images else (40,)
    X_tr = np.ascontiguousarray(d["x"], dtype=np.float32).reshape((-1,) + shape)
    X_te = np.ascontiguousarray(d["x_test"], dtype=np.float32).reshape((-1,) + shape)
    return _frozen("mnist1d", X_tr, np.asarray(d["y"], dtype=np.int64), X_te,
                   np.asarray(d["y_test"], dtype=np.int64), 10)


def make_spiral(n_per_class: int = 100, classes: int = 3, *, noise: float = 0.2, rng: np.random.Generator,
                test_fraction: float = 0.2) -> Dataset:
    """The CS231n spiral: ``classes`` interleaved arms in 2-D, not linearly separable.

    For class j, with n = n_per_class: r = linspace(0, 1, n), t = linspace(4j, 4(j+1), n) + noise·N(0, 1),
    X = r·(sin t, cos t). (CS231n, "Putting it together: minimal neural network case study".)
    Split stratified with ``rng`` (the same Generator draws the noise, then the split).
    ``test_fraction=0``: no split — every sample is in ``X_train``/``y_train`` (class by class, as
    CS231n trains on all 300 points) and the test set is empty (shape (0, 2)); nothing is drawn for it.
    """
    if not isinstance(rng, np.random.Generator):
        raise TypeError(f"make_spiral needs an explicit rng=np.random.default_rng(seed), got {rng!r}")
    for what, v, low in (("n_per_class", n_per_class, 2), ("classes", classes, 2)):
        if isinstance(v, bool) or not isinstance(v, (int, np.integer)) or v < low:
            raise ValueError(f"{what} must be an integer ≥ {low}, got {v!r}")
    if not isinstance(noise, (int, float, np.floating)) or isinstance(noise, bool) or not noise >= 0:
        raise ValueError(f"noise must be a number ≥ 0, got {noise!r}")
    if not (isinstance(test_fraction, (int, float, np.floating)) and not isinstance(test_fraction, bool)
            and test_fraction == 0):
        test_fraction = open_unit_interval("test_fraction", test_fraction, "; e.g. 0.2, or 0 for no split")
    n = int(n_per_class)
    X = np.empty((n * classes, 2), dtype=np.float64)
    y = np.empty(n * classes, dtype=np.int64)
    r = np.linspace(0.0, 1.0, n)
    for j in range(classes):
        t = np.linspace(4.0 * j, 4.0 * (j + 1), n) + float(noise) * rng.standard_normal(n)
        X[j * n:(j + 1) * n] = np.c_[r * np.sin(t), r * np.cos(t)]
        y[j * n:(j + 1) * n] = j
    if test_fraction == 0:
        X = X.astype(np.float32)
        return _frozen("spiral", X, y, X[:0].copy(), y[:0].copy(), classes)
    return _make("spiral", X, y, num_classes=classes, test_fraction=test_fraction, rng=rng)
