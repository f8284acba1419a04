"""scikit-learn estimators on top of ``descend.fit``: ``MLPClassifier`` and ``MLPRegressor`` (imports scikit-learn).

They follow scikit-learn's conventions: every parameter has a simple default and is stored untouched
by ``__init__``; ``fit`` validates (``validate_data``), draws a fresh generator from ``random_state``
each time, computes in float64 by default and trains full-batch when the data are small
(``batch_size="auto"`` = min(200, n), scikit-learn's rule). ``sample_weight`` weighs each example's
loss, normalized by the batch's weight sum (the mean loss when all weights are 1). Fitted
attributes end in ``_``; clone and pickle round-trip (scikit-learn's convention, unlike descend's
pickle-free checkpoints).
"""
from __future__ import annotations

import numpy as np
from sklearn.base import BaseEstimator, ClassifierMixin, RegressorMixin
from sklearn.model_selection import train_test_split
from sklearn.utils.multiclass import check_classification_targets
from sklearn.utils.validation import _check_sample_weight, check_is_fitted, column_or_1d, validate_data

from . import nn
from .config import optimizers, schedules
from .nn import functional as F
from .train import EarlyStopping, fit, predict

__all__ = ["MLPClassifier", "MLPRegressor"]

# scikit-learn's activation names → the layer (None: no activation)
ACTIVATIONS = {"relu": nn.ReLU, "tanh": nn.Tanh, "logistic": nn.Sigmoid, "identity": None,
               "leaky_relu": nn.LeakyReLU, "elu": nn.ELU}


def _weighted_cross_entropy(out, yw):
    """Σ wᵢ·CE(outᵢ, labelᵢ) / Σ wᵢ over the batch; ``yw`` holds (label, weight) rows."""
    w = yw[:, 1]
    total = float(w.sum())
    per = F.cross_entropy(out, yw[:, 0].astype(np.int64), reduction="none")
    return (per * (w / total if total > 0 else w)).sum()


def _weighted_squared_error(out, yw):
    """Σ wᵢ·‖outᵢ − tᵢ‖² / (2·k·Σ wᵢ) (scikit-learn's squared loss, ½·mean, when all weights are 1)."""
    t, w = yw[:, :-1], yw[:, -1]
    total = float(w.sum())
    d = out - t
    return ((d * d).sum(axis=1) * (w / (2 * t.shape[1] * total) if total > 0 else w)).sum()


class _MLP(BaseEstimator):
    """What the classifier and the regressor share: the network, the optimizer and the training calls."""

    def __init__(self, hidden_layer_sizes=(100,), activation="relu", *, optimizer="adam", lr=1e-3,
                 optimizer_params=None, schedule="constant", batch_size="auto", max_iter=200, tol=1e-4,
                 n_iter_no_change=10, l2=1e-4, dropout=0.0, early_stopping=False, validation_fraction=0.1,
                 warm_start=False, random_state=None, dtype="float64"):
        self.hidden_layer_sizes = hidden_layer_sizes
        self.activation = activation
        self.optimizer = optimizer
        self.lr = lr
        self.optimizer_params = optimizer_params
        self.schedule = schedule
        self.batch_size = batch_size
        self.max_iter = max_iter
        self.tol = tol
        self.n_iter_no_change = n_iter_no_change
        self.l2 = l2
        self.dropout = dropout
        self.early_stopping = early_stopping
        self.validation_fraction = validation_fraction
        self.warm_start = warm_start
        self.random_state = random_state
        self.dtype = dtype

    # ---------------------------------------------------------------------------------- building
    def _check_params(self):
        if self.activation not in ACTIVATIONS:
            raise ValueError(f"activation={self.activation!r} is not known; choose one of {sorted(ACTIVATIONS)}")
        if self.optimizer not in optimizers():
            raise ValueError(f"optimizer={self.optimizer!r} is not known; choose one of {sorted(optimizers())}")
        if self.schedule not in schedules():
            raise ValueError(f"schedule={self.schedule!r} is not known; choose one of {sorted(schedules())}")
        sizes = self.hidden_layer_sizes
        sizes = (sizes,) if isinstance(sizes, (int, np.integer)) else tuple(sizes)
        if any(not isinstance(h, (int, np.integer)) or h < 1 for h in sizes):
            raise ValueError(f"hidden_layer_sizes must be positive integers, got {self.hidden_layer_sizes!r}")
        for name in ("max_iter", "n_iter_no_change"):
            v = getattr(self, name)
            if not isinstance(v, (int, np.integer)) or v < 1:
                raise ValueError(f"{name} must be a positive integer, got {v!r}")
        if self.batch_size != "auto" and (not isinstance(self.batch_size, (int, np.integer)) or self.batch_size < 1):
            raise ValueError(f"batch_size must be 'auto' or a positive integer, got {self.batch_size!r}")
        if not 0 < self.validation_fraction < 1:
            raise ValueError(f"validation_fraction must be in (0, 1), got {self.validation_fraction!r}")
        if self.tol < 0 or self.l2 < 0:
            raise ValueError(f"tol and l2 must be ≥ 0, got tol={self.tol!r}, l2={self.l2!r}")
        if np.dtype(self.dtype) not in (np.float32, np.float64):
            raise ValueError(f"dtype must be 'float32' or 'float64', got {self.dtype!r}")
        return sizes

    def _build(self, n_in: int, n_out: int, rng: np.random.Generator):
        sizes = self._check_params()
        act = ACTIVATIONS[self.activation]
        layers, width = [], n_in
        for h in sizes:
            layers.append(nn.Linear(width, h, rng=rng))
            if act is not None:
                layers.append(act())
            if self.dropout:
                layers.append(nn.Dropout(self.dropout, rng=rng))
            width = h
        layers.append(nn.Linear(width, n_out, rng=rng))
        self._model = nn.Sequential(*layers)
        try:
            self._optimizer = optimizers()[self.optimizer](lr=self.lr, **(self.optimizer_params or {}))
        except TypeError as e:
            raise ValueError(f"optimizer_params {self.optimizer_params!r} do not fit {self.optimizer!r}: {e}") from None
        self.n_iter_, self.loss_curve_, self.t_ = 0, [], 0

    def _rng(self):
        """A fresh generator for this fit: from ``random_state`` (int or Generator) or fresh entropy (None)."""
        rs = self.random_state
        if isinstance(rs, np.random.RandomState):  # scikit-learn's own generators: draw a seed from it
            return np.random.default_rng(rs.randint(2 ** 31))
        return np.random.default_rng(rs)

    def _train(self, X, yw, epochs: int, rng, *, incremental: bool):
        """Train on (X, packed targets) for up to ``epochs`` epochs; record n_iter_ and loss_curve_."""
        validation, stopping, loss = None, [], self._loss
        per_weight = None  # L2 as scikit-learn's (λ/2Σw)·Σ‖W‖²: fit's (λ/2m) is given λ·m/Σw
        if self._plain_loss is not None and np.all(yw[:, -1] == yw[0, -1]):
            # equal weights: the weighted mean is the plain mean, whose loss fit runs through its execution plan
            per_weight = 1.0 / float(yw[0, -1])  # m/Σw with Σw = m·w
            yw, loss = yw[:, 0].astype(np.intp), self._plain_loss
        if self.early_stopping and not incremental:
            stratify = (yw if yw.ndim == 1 else yw[:, 0]) if isinstance(self, ClassifierMixin) else None
            try:
                X, Xv, yw, yv = train_test_split(X, yw, test_size=self.validation_fraction, stratify=stratify,
                                                 random_state=int(rng.integers(2 ** 31)))
            except ValueError:  # a class too small to stratify
                X, Xv, yw, yv = train_test_split(X, yw, test_size=self.validation_fraction,
                                                 random_state=int(rng.integers(2 ** 31)))
            validation = (Xv, yv)
            stopping = [EarlyStopping(monitor="val_loss", patience=self.n_iter_no_change, min_delta=self.tol)]
        elif not incremental:
            stopping = [EarlyStopping(monitor="train_loss", patience=self.n_iter_no_change, min_delta=self.tol,
                                      restore_best=False)]
        n = len(X)
        if per_weight is None:
            per_weight = n / float(yw[:, -1].sum())
        bs = min(200, n) if self.batch_size == "auto" else min(int(self.batch_size), n)
        sched = None
        if self.schedule != "constant":
            sched = schedules()[self.schedule](lr=self.lr)
        history = fit(self._model, X, yw, optimizer=self._optimizer, loss=loss, epochs=epochs, batch_size=bs,
                      schedule=sched, l2=self.l2 * per_weight, validation=validation, stopping=stopping,
                      divergence=None, seed=rng, dtype=np.dtype(self.dtype))
        self.loss_curve_ = list(self.loss_curve_) + [e["train_loss"] for e in history.epochs]
        self.n_iter_ += len(history.epochs)
        self.t_ += history.steps
        if validation is not None:
            self.validation_scores_ = [-e["val_loss"] for e in history.epochs]
        return self

    def _pack(self, y, sample_weight, n):
        w = _check_sample_weight(sample_weight, np.empty((n, 1)), dtype=np.float64)  # refuses all zeros too
        y = np.asarray(y, dtype=np.float64).reshape(n, -1)
        return np.hstack([y, w[:, None]])

    def _outputs(self, X):
        check_is_fitted(self, "_model")
        X = validate_data(self, X, reset=False, dtype=[np.float64, np.float32])
        return predict(self._model, X).astype(np.float64, copy=False)

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.non_deterministic = False
        return tags


class MLPClassifier(ClassifierMixin, _MLP):
    """A multi-layer perceptron classifier trained by ``descend.fit`` (softmax cross-entropy + L2).

    Parameters (scikit-learn defaults where scikit-learn has the parameter): ``hidden_layer_sizes=(100,)``;
    ``activation`` relu | tanh | logistic | identity | leaky_relu | elu; ``optimizer`` a name of
    ``descend.config.optimizers()`` ("adam") with ``lr`` (1e-3) and ``optimizer_params`` (a dict of its
    other keywords, e.g. {"momentum": 0.9}); ``schedule`` a name of ``descend.config.schedules()``;
    ``batch_size`` ("auto": min(200, n)); ``max_iter`` epochs (200); ``tol`` (1e-4) and ``n_iter_no_change``
    (10): stop when the training loss (or, with ``early_stopping``, the validation loss on a stratified
    ``validation_fraction`` of the data, the best epoch's θ kept) has not improved by ``tol`` for that many
    epochs; ``l2`` (λ of (λ/2m)·Σ‖W‖², 1e-4 as scikit-learn's alpha); ``dropout`` (0); ``warm_start``;
    ``random_state``; ``dtype`` ("float64").

    Fitted: ``classes_``, ``n_features_in_`` (``feature_names_in_``), ``n_iter_``, ``loss_curve_``, ``t_``.
    Binary problems use two softmax outputs, so ``predict_proba`` has shape (n, 2).
    """

    _loss = staticmethod(_weighted_cross_entropy)
    _plain_loss = staticmethod(F.cross_entropy)

    def _encode(self, y):
        return np.searchsorted(self.classes_, y)

    def fit(self, X, y, sample_weight=None):
        """Train from scratch (or, with ``warm_start``, from the last fit) on (X, y); returns self."""
        X, y = validate_data(self, X, y, reset=True, dtype=[np.float64, np.float32], y_numeric=False)
        y = column_or_1d(y, warn=True)
        check_classification_targets(y)
        classes = np.unique(y)
        if len(classes) < 2:
            raise ValueError(f"only one class ({classes[0]!r}) is present in y; a classifier needs at least 2 classes")
        rng = self._rng()
        if not (self.warm_start and hasattr(self, "_model") and np.array_equal(classes, self.classes_)):
            self.classes_ = classes
            self._build(X.shape[1], len(classes), rng)
        yw = self._pack(self._encode(y), sample_weight, len(y))
        return self._train(X, yw, self.max_iter, rng, incremental=False)

    def partial_fit(self, X, y, classes=None, sample_weight=None):
        """One epoch on (X, y); the first call needs ``classes`` (every label that will ever be seen)."""
        first = not hasattr(self, "_model")
        X, y = validate_data(self, X, y, reset=first, dtype=[np.float64, np.float32])
        y = column_or_1d(y, warn=True)
        check_classification_targets(y)
        if first:
            if classes is None:
                raise ValueError("the first call to partial_fit needs classes=... (all the labels, e.g. np.unique(y))")
            self.classes_ = np.unique(classes)
            self._build(X.shape[1], max(len(self.classes_), 2), self._rng())
        elif classes is not None and not np.array_equal(np.unique(classes), self.classes_):
            raise ValueError(f"classes={classes!r} differ from the classes of the first partial_fit {self.classes_!r}")
        unseen = np.setdiff1d(y, self.classes_)
        if len(unseen):
            raise ValueError(f"y holds labels {unseen.tolist()} not in classes {self.classes_.tolist()}")
        rng = np.random.default_rng([self.n_iter_, *(() if self.random_state is None else
                                                    [int(self._rng().integers(2 ** 31))])])
        return self._train(X, self._pack(self._encode(y), sample_weight, len(y)), 1, rng, incremental=True)

    def predict_proba(self, X):
        """Class probabilities (n, n_classes): the softmax of the network's outputs."""
        z = self._outputs(X)
        e = np.exp(z - z.max(axis=1, keepdims=True))
        return e / e.sum(axis=1, keepdims=True)

    def predict_log_proba(self, X):
        z = self._outputs(X)
        z = z - z.max(axis=1, keepdims=True)
        return z - np.log(np.exp(z).sum(axis=1, keepdims=True))

    def predict(self, X):
        """The most probable class of each row, as the labels given to ``fit``."""
        out = self._outputs(X)  # first: it raises NotFittedError before classes_ exists
        return self.classes_[out.argmax(axis=1)]


class MLPRegressor(RegressorMixin, _MLP):
    """A multi-layer perceptron regressor trained by ``descend.fit`` (squared error ½·mean + L2); parameters as
    ``MLPClassifier``. Targets (n,) or (n, k); ``predict`` returns the same shape."""

    _loss = staticmethod(_weighted_squared_error)
    _plain_loss = None  # scikit-learn's ½·mean squared error is not F.mse: always the weighted form

    def fit(self, X, y, sample_weight=None):
        """Train from scratch (or, with ``warm_start``, from the last fit) on (X, y); returns self."""
        X, y = validate_data(self, X, y, reset=True, dtype=[np.float64, np.float32], multi_output=True,
                             y_numeric=True)
        rng = self._rng()
        k = 1 if y.ndim == 1 else y.shape[1]
        if not (self.warm_start and hasattr(self, "_model") and self._k == k):
            self._build(X.shape[1], k, rng)
        self._k, self._y_1d = k, y.ndim == 1
        return self._train(X, self._pack(y, sample_weight, len(y)), self.max_iter, rng, incremental=False)

    def partial_fit(self, X, y, sample_weight=None):
        """One epoch on (X, y), continuing from the previous calls."""
        first = not hasattr(self, "_model")
        X, y = validate_data(self, X, y, reset=first, dtype=[np.float64, np.float32], multi_output=True,
                             y_numeric=True)
        k = 1 if y.ndim == 1 else y.shape[1]
        if first:
            self._build(X.shape[1], k, self._rng())
            self._k, self._y_1d = k, y.ndim == 1
        elif k != self._k:
            raise ValueError(f"y has {k} targets per row, the first partial_fit had {self._k}")
        rng = np.random.default_rng([self.n_iter_, *(() if self.random_state is None else
                                                    [int(self._rng().integers(2 ** 31))])])
        return self._train(X, self._pack(y, sample_weight, len(y)), 1, rng, incremental=True)

    def predict(self, X):
        out = self._outputs(X)
        return out[:, 0] if self._y_1d else out

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.target_tags.multi_output = True
        return tags
