"""Evaluation: a model's outputs on data (``predict``) and its mean loss and accuracy (``evaluate``)."""
from __future__ import annotations

from typing import Callable

import numpy as np

from .. import data as D
from ..autodiff.tensor import no_grad
from ..nn import functional as F

__all__ = ["predict", "evaluate"]

# which losses are classification losses, and how their outputs turn into an accuracy
_CLASSIFICATION = {F.cross_entropy: "argmax", F.hinge: "argmax", F.bce_with_logits: "sign"}


def _correct(kind: str, out: np.ndarray, y: np.ndarray) -> int:
    if kind == "argmax":
        return int(np.count_nonzero(out.argmax(axis=1) == y))
    return int(np.count_nonzero((out > 0) == (y > 0.5)))


def predict(model, X, *, batch_size: int = 1024) -> np.ndarray:
    """The model's outputs for X in eval mode (no graph), computed in batches; the mode is restored.

    If ``fit`` trained the model with ``preprocess=``, the same fitted step (training statistics)
    is applied to X first — so raw data goes in, as it did into ``fit``. X is cast to the dtype of the
    model's parameters (float32, or float64 for a model packed in float64).
    """
    params = model.parameters()
    dtype = params[0].data.dtype if params else np.float32  # the model's own: float64 models see float64 data
    X, _ = D.check_Xy(X, None, dtype=dtype)
    pre = getattr(model, "preprocess", None)
    was_training = model.training
    model.eval()
    try:
        with no_grad():
            outs = []
            for i in range(0, len(X), batch_size):
                xb = D.take(X, slice(i, i + batch_size), dtype=dtype)
                outs.append(model(pre.transform(xb) if pre is not None else xb).data)
    finally:
        model.train(was_training)
    return np.concatenate(outs)


def evaluate(model, X, y, *, loss: Callable = F.cross_entropy, batch_size: int = 1024) -> dict:
    """Mean loss (and accuracy for classification losses) of the model on (X, y), in eval mode."""
    kind = _CLASSIFICATION.get(loss)
    out = predict(model, X, batch_size=batch_size)
    y = np.asarray(y)
    if kind == "sign":
        y = y.reshape(out.shape)
    result = {"loss": float(loss(out, y).data)}
    if kind:
        result["accuracy"] = _correct(kind, out, y) / len(out)
    return result
