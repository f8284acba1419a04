"""Preprocessing fitted on training data and applied unchanged to validation/test: centering, standardization, PCA, whitening.

CS231n "Training Neural Networks I" / "Neural Networks Part 2" (data preprocessing): with X the
(N, D) training data,

    mean subtraction   X − μ                                  (``Center``)
    normalization      (X − μ) / σ   (σ = 0 → 1)              (``Standardize``)
    PCA                Xc = X − μ; Σ = Xcᵀ·Xc / N = U·diag(S)·Uᵀ; X_rot = Xc·U[:, :k]      (``PCA``)
    PCA whitening      X_rot / √(S[:k] + eps)                                              (``PCAWhiten``)
    ZCA whitening      Xc·U·diag(1/√(S + eps))·Uᵀ  (whitened, rotated back to pixel space) (``ZCAWhiten``)

"An important point to make about the preprocessing is that any preprocessing statistics (e.g.
the data mean) must only be computed on the training data, and then applied to the
validation / test data." Every step therefore has the life cycle ``fit(X_train)`` once →
``transform(X)`` any number of times (never mutating X; float32 out) → ``state_dict()`` /
``load_state_dict()`` for checkpoints (arrays + JSON scalars).

Guard against refitting on evaluation data: a fitted step refuses ``fit`` again unless
``refit=True``. Whether a given array *is* the training data cannot be known in general, so each
step records the number of rows and a BLAKE2 fingerprint of the data it was fitted on;
``fitted_on(X)`` answers "was I fitted on exactly this?", which a loop can assert when it resumes,
and ``fit_transform`` is the one call that both fits and transforms — there is no way to fit on
one array implicitly while transforming another.
"""
from __future__ import annotations

import math

import numpy as np

from .moments import Moments, _as_2d, fingerprint, moments

__all__ = ["Center", "Standardize", "PCA", "PCAWhiten", "ZCAWhiten", "Pipeline", "PREPROCESSORS",
           "from_state_dict"]


class _Step:
    """Fit-once life cycle shared by every preprocessing step."""

    kind = ""
    _full = False         # whether _fit needs the full covariance (else per-feature variance)
    _arrays: tuple = ()   # names of the fitted arrays (state_dict entries)
    _scalars: tuple = ()  # names of hyperparameters (JSON scalars, constructor keywords)

    def __init__(self):
        self.n_fit: int | None = None
        self.fingerprint: str | None = None
        self.feature_shape: tuple | None = None

    @property
    def fitted(self) -> bool:
        return self.n_fit is not None

    def fit(self, X, *, refit: bool = False):
        """Compute the statistics of the training data X (N, ...) and return self.

        Raises ``RuntimeError`` if already fitted, unless ``refit=True`` (fitting again on
        validation or test data would leak them into the preprocessing).
        """
        if self.fitted and not refit:
            raise RuntimeError(f"{type(self).__name__} is already fitted (on {self.n_fit} training rows); "
                               "transform validation/test data with .transform(X). To fit again on new "
                               "training data on purpose, pass refit=True")
        shape = tuple(np.shape(X))
        if np.asarray(X[:1]).dtype.kind not in "biuf":
            raise TypeError(f"X must hold numbers, got dtype {np.asarray(X[:1]).dtype}")
        if len(shape) < 2 or shape[0] == 0:
            raise ValueError(f"X must have shape (N, features...) with N ≥ 1, got {shape}")
        self._fit(moments(X, full=self._full, name=f"{type(self).__name__}.fit: X"))
        self.n_fit = shape[0]
        self.fingerprint = fingerprint(X)
        self.feature_shape = tuple(np.shape(X)[1:])
        return self

    def fit_transform(self, X, *, refit: bool = False) -> np.ndarray:
        return self.fit(X, refit=refit).transform(X)

    def fitted_on(self, X) -> bool:
        """True if this step was fitted on exactly X (same shape and values)."""
        return self.fitted and len(X) == self.n_fit and fingerprint(X) == self.fingerprint

    def _check(self, X) -> np.ndarray:
        if not self.fitted:
            raise RuntimeError(f"{type(self).__name__} is not fitted: call .fit(X_train) first (on training data only)")
        A = _as_2d(X)
        if tuple(np.shape(X)[1:]) != self.feature_shape and A.shape[1] != math.prod(self.feature_shape):
            raise ValueError(f"{type(self).__name__} was fitted on samples of shape {self.feature_shape}, "
                             f"got {tuple(np.shape(X)[1:])}")
        return A

    def transform(self, X) -> np.ndarray:
        """Apply the training statistics to X (N, ...); X is not modified; returns float32."""
        A = self._check(X)
        out = self._transform(A.astype(np.float32, copy=False))
        if out.shape[1] == A.shape[1]:
            out = out.reshape(np.shape(X))
        return np.ascontiguousarray(out, dtype=np.float32)

    __call__ = transform

    def state_dict(self) -> dict:
        """Arrays (the fitted statistics) and JSON scalars (kind, hyperparameters, fit record)."""
        if not self.fitted:
            raise RuntimeError(f"{type(self).__name__} is not fitted: nothing to save")
        d = {"kind": self.kind, "n_fit": self.n_fit, "fingerprint": self.fingerprint,
             "feature_shape": list(self.feature_shape)}
        d.update({k: getattr(self, k) for k in self._scalars})
        d.update({k: getattr(self, k).copy() for k in self._arrays})
        return d

    def load_state_dict(self, d: dict) -> None:
        """Restore a fitted step saved by ``state_dict`` (of the same kind and hyperparameters)."""
        if d.get("kind") != self.kind:
            raise ValueError(f"state of kind {d.get('kind')!r} cannot load into {type(self).__name__} ({self.kind!r})")
        missing = [k for k in ("n_fit", "fingerprint", "feature_shape") + self._arrays + self._scalars if k not in d]
        if missing:
            raise ValueError(f"{type(self).__name__} state is missing {missing}")
        for k in self._scalars:
            if d[k] != getattr(self, k):
                raise ValueError(f"{type(self).__name__} state has {k}={d[k]!r} but this step has {getattr(self, k)!r}; "
                                 f"build it with {k}={d[k]!r} or use from_state_dict(state)")
        for k in self._arrays:
            setattr(self, k, np.array(d[k], dtype=np.float32))
        self.n_fit = int(d["n_fit"])
        self.fingerprint = str(d["fingerprint"])
        self.feature_shape = tuple(int(s) for s in d["feature_shape"])

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={getattr(self, k)!r}" for k in self._scalars)
        state = f"fitted on {self.n_fit} rows" if self.fitted else "not fitted"
        return f"{type(self).__name__}({args}) [{state}]"


class Center(_Step):
    """Zero-centering: X − μ, μ the per-feature mean of the training data."""

    kind = "center"
    _arrays = ("mean",)

    def _fit(self, m):
        self.mean = m.mean.astype(np.float32)

    def _transform(self, A):
        return A - self.mean

    def inverse_transform(self, Z) -> np.ndarray:
        A = _as_2d(Z)
        return (A + self.mean).reshape(np.shape(Z)).astype(np.float32)


class Standardize(_Step):
    """Normalization: (X − μ)/σ per feature (population σ; a constant feature gets σ = 1, so it maps to 0)."""

    kind = "standardize"
    _arrays = ("mean", "std")

    def _fit(self, m):
        self.mean = m.mean.astype(np.float32)
        std = np.sqrt(m.var)
        std[std == 0] = 1.0
        self.std = std.astype(np.float32)

    def _transform(self, A):
        return (A - self.mean) / self.std

    def inverse_transform(self, Z) -> np.ndarray:
        A = _as_2d(Z)
        return (A * self.std + self.mean).reshape(np.shape(Z)).astype(np.float32)


def _eig(m: Moments):
    """Mean, eigenvalues S (descending) and eigenvectors U of the covariance Xcᵀ·Xc/N (float64 SVD)."""
    U, S, _ = np.linalg.svd(m.cov)  # cov is symmetric PSD: the SVD is its eigendecomposition, sorted
    return m.mean, S, U


def _choose_k(S, n_components, variance) -> int:
    if (n_components is None) == (variance is None):
        raise ValueError("give exactly one of n_components=k (an int) or variance=v (a fraction in (0, 1])")
    if n_components is not None:
        if not 1 <= n_components <= len(S):
            raise ValueError(f"n_components must be between 1 and {len(S)} (the number of features), got {n_components}")
        return int(n_components)
    total = S.sum()
    if total <= 0:
        return 1
    ratio = np.cumsum(S) / total
    return int(min(np.searchsorted(ratio, variance - 1e-12) + 1, len(S)))


class PCA(_Step):
    """Project the centered data onto its top k principal directions: X_rot = (X − μ)·U[:, :k], (N, D) → (N, k).

    ``n_components=k`` keeps k directions; ``variance=v`` keeps the fewest directions whose
    eigenvalues sum to at least the fraction v of the total variance. After fitting,
    ``explained_variance`` holds S[:k] and ``explained_variance_ratio`` S[:k]/ΣS.
    """

    _full = True
    kind = "pca"
    _arrays = ("mean", "components", "explained_variance", "explained_variance_ratio")
    _scalars = ("n_components", "variance")

    def __init__(self, n_components: int | None = None, *, variance: float | None = None):
        super().__init__()
        if n_components is not None and (isinstance(n_components, bool) or int(n_components) != n_components
                                         or n_components < 1):
            raise ValueError(f"n_components must be a positive integer, got {n_components!r}")
        if variance is not None and not 0 < variance <= 1:
            raise ValueError(f"variance must be a fraction in (0, 1], got {variance!r}")
        if (n_components is None) == (variance is None):
            raise ValueError("give exactly one of n_components=k (an int) or variance=v (a fraction in (0, 1])")
        self.n_components = None if n_components is None else int(n_components)
        self.variance = None if variance is None else float(variance)

    def _fit(self, m):
        mean, S, U = _eig(m)
        k = _choose_k(S, self.n_components, self.variance)
        self.mean = mean.astype(np.float32)
        self.components = U[:, :k].astype(np.float32)  # (D, k)
        self.explained_variance = S[:k].astype(np.float32)
        self.explained_variance_ratio = (S[:k] / S.sum() if S.sum() > 0 else np.ones(k)).astype(np.float32)

    @property
    def k(self) -> int:
        return self.components.shape[1]

    def _transform(self, A):
        return (A - self.mean) @ self.components

    def inverse_transform(self, Z) -> np.ndarray:
        """Back to the original space: Z·U[:, :k]ᵀ + μ (exact when k = D)."""
        Z = np.asarray(Z, dtype=np.float32)
        return (Z @ self.components.T + self.mean).reshape((len(Z),) + self.feature_shape)


class PCAWhiten(PCA):
    """PCA whitening: X_rot / √(S[:k] + eps) — decorrelated features of unit variance, (N, D) → (N, k).

    Keeps every direction unless ``n_components`` or ``variance`` is given. ``eps`` (default 1e-5,
    CS231n) keeps near-zero-variance directions (noise) from being blown up.
    """

    kind = "pca_whiten"
    _arrays = PCA._arrays + ("scale",)
    _scalars = ("n_components", "variance", "eps")

    def __init__(self, n_components: int | None = None, *, variance: float | None = None, eps: float = 1e-5):
        if n_components is None and variance is None:
            variance = 1.0
        super().__init__(n_components, variance=variance)
        if not eps >= 0:
            raise ValueError(f"eps must be ≥ 0, got {eps!r}")
        self.eps = float(eps)

    def _fit(self, m):
        super()._fit(m)
        self.scale = (1.0 / np.sqrt(self.explained_variance.astype(np.float64) + self.eps)).astype(np.float32)

    def _transform(self, A):
        return ((A - self.mean) @ self.components) * self.scale

    def inverse_transform(self, Z) -> np.ndarray:
        Z = np.asarray(Z, dtype=np.float32)
        return super().inverse_transform(Z / self.scale)


class ZCAWhiten(_Step):
    """ZCA whitening: W = U·diag(1/√(S + eps))·Uᵀ, X ↦ (X − μ)·W — white, but as close to the input as possible.

    The output keeps the input's shape (images stay images). ``eps`` (default 1e-5; 0.1 is common
    for natural images) limits the amplification of low-variance directions.
    """

    _full = True
    kind = "zca_whiten"
    _arrays = ("mean", "W", "W_inv")
    _scalars = ("eps",)

    def __init__(self, *, eps: float = 1e-5):
        super().__init__()
        if not eps >= 0:
            raise ValueError(f"eps must be ≥ 0, got {eps!r}")
        self.eps = float(eps)

    def _fit(self, m):
        mean, S, U = _eig(m)
        if self.eps == 0 and np.any(S <= 0):
            raise ValueError("ZCAWhiten(eps=0) on data with zero-variance directions would divide by zero; "
                             "use eps > 0 (e.g. 1e-5)")
        d = np.sqrt(S + self.eps)
        self.mean = mean.astype(np.float32)
        self.W = ((U / d) @ U.T).astype(np.float32)
        self.W_inv = ((U * d) @ U.T).astype(np.float32)

    def _transform(self, A):
        return (A - self.mean) @ self.W

    def inverse_transform(self, Z) -> np.ndarray:
        A = _as_2d(Z).astype(np.float32)
        return (A @ self.W_inv + self.mean).reshape(np.shape(Z))


class Pipeline:
    """Steps applied in order; ``fit`` fits each on the previous one's output of the training data.

    Same life cycle as a single step (fit once unless ``refit=True``; ``state_dict`` holds each
    step's state under ``"<i>.<key>"`` and the steps' kinds under ``"kinds"``).
    """

    def __init__(self, *steps):
        for i, s in enumerate(steps):
            if not isinstance(s, _Step):
                raise TypeError(f"Pipeline takes preprocessing steps, got {type(s).__name__} at position {i}")
        self.steps = list(steps)

    @property
    def fitted(self) -> bool:
        return bool(self.steps) and all(s.fitted for s in self.steps)

    def fit(self, X, *, refit: bool = False) -> "Pipeline":
        if self.fitted and not refit:
            raise RuntimeError("Pipeline is already fitted; transform validation/test data with .transform(X), "
                               "or pass refit=True to fit again on new training data on purpose")
        for s in self.steps:
            X = s.fit_transform(X, refit=refit)
        return self

    def fit_transform(self, X, *, refit: bool = False) -> np.ndarray:
        return self.fit(X, refit=refit).transform(X)

    def fitted_on(self, X) -> bool:
        return bool(self.steps) and self.steps[0].fitted_on(X)

    def transform(self, X) -> np.ndarray:
        for s in self.steps:
            X = s.transform(X)
        return X

    __call__ = transform

    def state_dict(self) -> dict:
        d: dict = {"kind": "pipeline", "kinds": [s.kind for s in self.steps]}
        for i, s in enumerate(self.steps):
            d.update({f"{i}.{k}": v for k, v in s.state_dict().items()})
        return d

    def load_state_dict(self, d: dict) -> None:
        if list(d.get("kinds", [])) != [s.kind for s in self.steps]:
            raise ValueError(f"Pipeline state has steps {d.get('kinds')} but this pipeline has "
                             f"{[s.kind for s in self.steps]}")
        for i, s in enumerate(self.steps):
            s.load_state_dict({k[len(f'{i}.'):]: v for k, v in d.items() if k.startswith(f"{i}.")})

    def __repr__(self) -> str:
        return f"Pipeline({', '.join(map(repr, self.steps))})"


# kind (as saved in a state dict / checkpoint) → class: the one visible table for rebuilding steps
PREPROCESSORS = {"center": Center, "standardize": Standardize, "pca": PCA, "pca_whiten": PCAWhiten,
                 "zca_whiten": ZCAWhiten}


def from_state_dict(d: dict):
    """Rebuild a fitted step or pipeline from its ``state_dict`` (e.g. read back from a checkpoint)."""
    kind = d.get("kind")
    if kind == "pipeline":
        steps = [from_state_dict({k[len(f'{i}.'):]: v for k, v in d.items() if k.startswith(f"{i}.")})
                 for i in range(len(d["kinds"]))]
        return Pipeline(*steps)
    if kind not in PREPROCESSORS:
        raise ValueError(f"unknown preprocessing kind {kind!r}; known: {sorted(PREPROCESSORS)}")
    cls = PREPROCESSORS[kind]
    step = cls(**{k: d[k] for k in cls._scalars}) if cls._scalars else cls()
    step.load_state_dict(d)
    return step
