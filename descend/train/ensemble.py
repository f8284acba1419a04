"""Model ensembles: K models from different seeds, their softmax probabilities averaged; θ averaging beside them.

CS231n ("Training Neural Networks II", model ensembles): train several independent models and
average their predictions at test time — "almost always +2 % extra performance". Members differ
by their seed (initialization and shuffling order). The ensemble's prediction is

    p(y | x) = (1/K) Σ_k softmax(f_k(x)),  ŷ = argmax_y p(y | x).

The same lecture's cheap alternative needs a single run: average the parameters over the
iterations (Polyak averaging, or an exponential moving average of θ) — ``descend.train.Averaging``.
``ensemble_report`` trains both and reports them side by side.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Callable, Sequence

import numpy as np

from .. import data as D
from ..nn import pack
from .callbacks import Averaging
from .evaluate import predict
from .loop import fit

__all__ = ["Ensemble", "train_ensemble", "MemberResult", "EnsembleReport", "ensemble_report", "softmax"]


def softmax(z: np.ndarray) -> np.ndarray:
    """Row-wise softmax of logits (N, C), shifted by the row maximum (exact for large logits)."""
    z = np.asarray(z, dtype=np.float64)
    e = np.exp(z - z.max(axis=1, keepdims=True))
    return e / e.sum(axis=1, keepdims=True)


def _score(prob: np.ndarray, y: np.ndarray) -> dict:
    p = prob[np.arange(len(y)), y]
    return {"loss": float(-np.mean(np.log(np.maximum(p, 1e-12)))), "accuracy": float(np.mean(prob.argmax(axis=1) == y))}


class Ensemble:
    """Trained classifiers whose softmax probabilities are averaged (each with weight 1/K)."""

    def __init__(self, models: Sequence):
        if not models:
            raise ValueError("Ensemble needs at least one model")
        self.models = list(models)

    def __len__(self) -> int:
        return len(self.models)

    def member_proba(self, X) -> list[np.ndarray]:
        return [softmax(predict(m, X)) for m in self.models]

    def predict_proba(self, X) -> np.ndarray:
        """(N, C) mean of the members' softmax probabilities."""
        return np.mean(self.member_proba(X), axis=0)

    def predict(self, X) -> np.ndarray:
        return self.predict_proba(X).argmax(axis=1)

    def evaluate(self, X, y) -> dict:
        """Cross-entropy of the averaged probabilities and accuracy of their argmax on (X, y)."""
        X, y = D.check_Xy(X, y)
        return _score(self.predict_proba(X), y)


def train_ensemble(make_model: Callable[[np.random.Generator], object], X, y, *, optimizer: Callable[[], object],
                   k: int = 5, seeds: Sequence[int] | None = None, callbacks_for: Callable | None = None,
                   **fit_kwargs) -> tuple[Ensemble, list]:
    """Train ``k`` models with ``fit``; member i is ``make_model(np.random.default_rng(seeds[i]))``
    trained with ``seed=seeds[i]`` (so initialization and shuffling both differ) and a fresh
    ``optimizer()``. ``fit_kwargs`` go to every ``fit`` (epochs, batch_size, validation, ...).
    Returns the ensemble and the members' histories.
    """
    seeds = list(range(k)) if seeds is None else list(seeds)
    if len(seeds) < 1:
        raise ValueError(f"train_ensemble needs k ≥ 1 members, got k={k}, seeds={seeds}")
    if not callable(optimizer):
        raise TypeError("optimizer must be a function returning a fresh optimizer for each member, "
                        "e.g. optimizer=lambda: Adam(lr=1e-3)")
    models, histories = [], []
    for s in seeds:
        model = make_model(np.random.default_rng(s))
        extra = callbacks_for(s) if callbacks_for is not None else {}
        histories.append(fit(model, X, y, optimizer=optimizer(), seed=s, **fit_kwargs, **extra))
        models.append(model)
    return Ensemble(models), histories


@dataclass
class MemberResult:
    seed: int
    test_accuracy: float
    test_loss: float


@dataclass
class EnsembleReport:
    """Each member's and the ensemble's test accuracy/loss, and θ averaging of member 0's run.

    ``averaging`` maps "last θ", "EMA θ (β=…)", "Polyak θ (from step …)" to {"accuracy", "loss"}.
    """

    members: list
    ensemble_accuracy: float
    ensemble_loss: float
    averaging: dict
    ensemble: Ensemble = field(repr=False, default=None)

    @property
    def mean_member_accuracy(self) -> float:
        return float(np.mean([m.test_accuracy for m in self.members]))

    @property
    def best_member_accuracy(self) -> float:
        return float(max(m.test_accuracy for m in self.members))

    @property
    def verdict(self) -> str:
        gain = self.ensemble_accuracy - self.mean_member_accuracy
        return (f"the ensemble of {len(self.members)} reaches {self.ensemble_accuracy:.2%} test accuracy, "
                f"{gain:+.2%} over the mean member ({self.mean_member_accuracy:.2%}); "
                f"best member {self.best_member_accuracy:.2%}")

    def render(self) -> str:
        """A Markdown table: members, ensemble, and θ averaging of one run."""
        rows = ["| model | test accuracy | test loss |", "|---|---|---|"]
        rows += [f"| member seed={m.seed} | {m.test_accuracy:.4f} | {m.test_loss:.4f} |" for m in self.members]
        rows.append(f"| mean of members | {self.mean_member_accuracy:.4f} | "
                    f"{np.mean([m.test_loss for m in self.members]):.4f} |")
        rows.append(f"| **ensemble of {len(self.members)} (mean probabilities)** | {self.ensemble_accuracy:.4f} | "
                    f"{self.ensemble_loss:.4f} |")
        for name, r in self.averaging.items():
            rows.append(f"| one run, {name} | {r['accuracy']:.4f} | {r['loss']:.4f} |")
        return "\n".join(rows) + "\n\n" + self.verdict


def ensemble_report(make_model: Callable[[np.random.Generator], object], X, y, X_test, y_test, *,
                    optimizer: Callable[[], object], k: int = 5, seeds: Sequence[int] | None = None,
                    ema_beta: float = 0.99, polyak_start: int | None = None, **fit_kwargs) -> EnsembleReport:
    """Train an ensemble of ``k`` and compare it with parameter averaging of a single run.

    Member 0's run also keeps an EMA of θ (β = ``ema_beta``, bias-corrected) and a Polyak average
    (the running mean of θ from step ``polyak_start``; default: the second half of the run when
    ``epochs`` is given, else from the start); neither changes the training itself.
    """
    X, y = D.check_Xy(X, y)
    X_test, y_test = D.check_Xy(X_test, y_test, name="X_test")
    seeds = list(range(k)) if seeds is None else list(seeds)
    if polyak_start is None:
        epochs, bs = fit_kwargs.get("epochs"), fit_kwargs.get("batch_size", 32)
        per_epoch = math.ceil(len(X) / (bs or len(X)))
        polyak_start = (epochs * per_epoch) // 2 if epochs else 0
    ema = Averaging(kind="ema", beta=ema_beta, evaluate=False)
    polyak = Averaging(kind="polyak", start=polyak_start, evaluate=False)
    user_callbacks = list(fit_kwargs.pop("callbacks", ()))

    def callbacks_for(seed):
        if seed == seeds[0]:
            return {"callbacks": user_callbacks + [ema, polyak]}
        return {"callbacks": user_callbacks}

    ens, _ = train_ensemble(make_model, X, y, optimizer=optimizer, seeds=seeds, callbacks_for=callbacks_for,
                            **fit_kwargs)
    probs = ens.member_proba(X_test)
    members = [MemberResult(s, **{f"test_{k}": v for k, v in _score(p, y_test).items()}) for s, p in zip(seeds, probs)]
    total = _score(np.mean(probs, axis=0), y_test)
    first = ens.models[0]
    params = pack(first, dtype=fit_kwargs.get("dtype", np.float32))  # the θ that fit packed and trained
    averaging = {"last θ": _score(probs[0], y_test)}
    with ema.applied(params):
        averaging[f"EMA θ (β={ema_beta:g})"] = _score(softmax(predict(first, X_test)), y_test)
    with polyak.applied(params):
        averaging[f"Polyak θ (mean from step {polyak_start})"] = _score(softmax(predict(first, X_test)), y_test)
    return EnsembleReport(members, total["accuracy"], total["loss"], averaging, ens)
