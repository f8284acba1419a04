"""``Predictor``: a trained network with its fitted preprocessing, as ``descend.load`` returns it — predict, probabilities, evaluate."""
from __future__ import annotations

import math

import numpy as np

from .. import data as D
from ..nn import functional as F
from .evaluate import evaluate, predict

__all__ = ["Predictor", "LOSSES"]

# a checkpoint's loss name → the loss function (the one table ``descend.load`` reads a name through)
LOSSES = {"cross_entropy": F.cross_entropy, "hinge": F.hinge, "bce_with_logits": F.bce_with_logits, "mse": F.mse}
_CLASSIFIERS = ("cross_entropy", "hinge", "bce_with_logits")


def _softmax(z: np.ndarray) -> np.ndarray:
    e = np.exp(z - z.max(axis=1, keepdims=True))
    return e / e.sum(axis=1, keepdims=True)


class Predictor:
    """A trained ``module`` with its fitted ``preprocess``: raw data in, predictions out.

    - ``outputs(X)``: the network's outputs (logits for a classifier), exactly ``descend.predict(module, X)``;
    - ``predict(X)``: class indices (argmax of the logits; logit > 0 for ``bce_with_logits``) for a
      classifier, the outputs for a regressor;
    - ``predict_proba(X)``: softmax of the logits (cross-entropy), or σ(logit) as (N, 2) columns
      [P(0), P(1)] for a single-output ``bce_with_logits`` model; refused for other losses;
    - ``evaluate(X, y)``: mean loss, accuracy and confusion matrix (rows: true class, columns: predicted).

    Inputs are checked against the model first: samples of ``input_shape``, or flat rows of as many
    features (reshaped), numeric; a mismatch raises ValueError/TypeError naming both.
    """

    def __init__(self, module, *, input_shape: tuple | None = None, loss: str | None = None,
                 config: dict | None = None, source: str = ""):
        if loss is not None and loss not in LOSSES:
            raise ValueError(f"unknown loss {loss!r}; known: {sorted(LOSSES)}")
        self.module, self.input_shape, self.loss, self.config, self.source = module, input_shape, loss, config, source
        self.preprocess = getattr(module, "preprocess", None)
        params = module.parameters()
        self.dtype = params[0].data.dtype if params else np.dtype(np.float32)

    @property
    def is_classifier(self) -> bool:
        return self.loss in _CLASSIFIERS

    @property
    def n_features(self) -> int | None:
        """Number of input features (the product of ``input_shape``), or None when not recorded."""
        return None if self.input_shape is None else math.prod(self.input_shape)

    def check_input(self, X) -> np.ndarray:
        """``X`` as an array of samples of ``input_shape``; refuses a wrong feature count or non-numeric data."""
        X = np.asarray(X) if not isinstance(X, np.ndarray) else X
        if X.dtype.kind not in "fiub":
            raise TypeError(f"the data have dtype {X.dtype}, but the model takes numbers (it computes in "
                            f"{self.dtype}); convert the columns to numbers first")
        if X.dtype.kind == "b":
            X = X.astype(self.dtype)
        if self.input_shape is None:
            return X
        shape = tuple(self.input_shape)
        if X.ndim >= 1 and tuple(X.shape[1:]) == shape:
            return X
        if X.ndim == 2 and X.shape[1] == self.n_features:
            return X.reshape((len(X),) + shape)  # flat rows (a CSV) of an image model
        if X.ndim == 1 and len(shape) == 1 and X.shape[0] == shape[0]:
            raise ValueError(f"X has shape {X.shape}: one sample of {shape[0]} features; pass a batch of shape "
                             f"(1, {shape[0]}), e.g. X.reshape(1, -1)")
        got = X.shape[1:] if X.ndim >= 2 else X.shape
        raise ValueError(f"the data have {math.prod(got)} features per sample (shape {tuple(X.shape)}), but the "
                         f"model takes samples of shape {shape} ({self.n_features} features); pass data with "
                         f"{self.n_features} features per row")

    def outputs(self, X, *, batch_size: int = 1024) -> np.ndarray:
        """The network's outputs for raw ``X`` (preprocessing applied), in eval mode: (N, outputs)."""
        return predict(self.module, self.check_input(X), batch_size=batch_size)

    def _labels(self, out: np.ndarray) -> np.ndarray:
        if self.loss == "bce_with_logits":
            labels = (out > 0).astype(np.int64)
            return labels[:, 0] if labels.ndim == 2 and labels.shape[1] == 1 else labels
        return out.argmax(axis=1)

    def predict(self, X, *, batch_size: int = 1024) -> np.ndarray:
        """Class indices (N,) for a classifier; the outputs for a regression model."""
        out = self.outputs(X, batch_size=batch_size)
        return self._labels(out) if self.is_classifier else out

    def predict_proba(self, X, *, batch_size: int = 1024) -> np.ndarray:
        """Class probabilities (N, C): softmax of the logits (cross-entropy), [1 − σ, σ] for one bce logit."""
        if self.loss == "cross_entropy":
            return _softmax(self.outputs(X, batch_size=batch_size))
        if self.loss == "bce_with_logits":
            z = self.outputs(X, batch_size=batch_size)
            p = 1 / (1 + np.exp(-z))
            return np.concatenate([1 - p, p], axis=1) if z.shape[1] == 1 else p
        raise ValueError(f"predict_proba needs a model trained with cross_entropy or bce_with_logits, this one was "
                         f"trained with {self.loss!r} (its outputs are not probabilities); use predict or outputs")

    def evaluate(self, X, y, *, batch_size: int = 1024) -> dict:
        """Mean loss, and for a classifier accuracy and the confusion matrix (list of rows, true × predicted)."""
        if self.loss is None:
            raise ValueError("the checkpoint records no loss, so the model cannot be evaluated; retrain it with "
                             "this descend")
        X = self.check_input(X)
        y = np.asarray(y)
        if len(y) != len(X):
            raise ValueError(f"the targets have {len(y)} rows but the data {len(X)}; give one target per sample")
        out = self.outputs(X, batch_size=batch_size)
        if self.is_classifier:
            k = 2 if self.loss == "bce_with_logits" else out.shape[1]
            if self.loss != "bce_with_logits":
                y = D.check_Xy(out, y.reshape(len(y), -1)[:, 0] if y.ndim == 2 and y.shape[1] == 1 else y)[1]
                if len(y) and (y.min() < 0 or y.max() >= k):
                    raise ValueError(f"the targets hold class labels from {y.min()} to {y.max()}, but the model has "
                                     f"{k} classes (labels 0..{k - 1}); pass the labels the model was trained with")
        res = evaluate(self.module, X, y, loss=LOSSES[self.loss], batch_size=batch_size)
        if self.is_classifier:
            pred = self._labels(out)
            cm = np.zeros((k, k), dtype=np.int64)
            np.add.at(cm, (y.astype(np.int64).ravel(), pred.ravel()), 1)
            res["confusion_matrix"] = cm.tolist()
        return res

    def __repr__(self) -> str:
        return (f"Predictor({type(self.module).__name__} of {len(list(self.module.named_parameters()))} tensors, "
                f"input_shape={self.input_shape}, loss={self.loss!r}, source={self.source!r})")
