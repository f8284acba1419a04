"""Streaming statistics of training data: mean and (co)variance in float64 over chunks of rows, and a fingerprint.

A memory-mapped X is read a chunk at a time (never whole); the fitted preprocessing steps
(``descend.data.preprocess``) are built from these moments.
"""
from __future__ import annotations

import hashlib
import math
from dataclasses import dataclass

import numpy as np

__all__ = ["Moments", "moments", "fingerprint"]


def _as_2d(X, name: str = "X") -> np.ndarray:
    X = np.asarray(X)
    if X.dtype.kind not in "biuf":
        raise TypeError(f"{name} must hold numbers, got dtype {X.dtype}")
    if X.ndim < 2 or X.shape[0] == 0:
        raise ValueError(f"{name} must have shape (N, features...) with N ≥ 1, got {X.shape}")
    return X.reshape(len(X), -1)


CHUNK_BYTES = 64 << 20  # rows are read this many float64 bytes at a time, so a memory-mapped X is never loaded whole


def _chunks(X, itemsize: int = 8):
    """Consecutive row blocks of X (N, ...) as in-memory (rows, D) arrays, about CHUNK_BYTES each."""
    n, d = len(X), math.prod(np.shape(X)[1:])
    rows = max(1, CHUNK_BYTES // (itemsize * max(d, 1)))
    for start in range(0, n, rows):
        yield np.asarray(X[start:start + rows]).reshape(-1, d)


def fingerprint(X) -> str:
    """BLAKE2b (16-byte) digest of X's shape and float32 values: the identity of a training set."""
    h = hashlib.blake2b(digest_size=16)
    h.update(repr(tuple(np.shape(X))).encode())
    for block in _chunks(X, itemsize=4):
        h.update(np.ascontiguousarray(block, dtype=np.float32).data)
    return h.hexdigest()


@dataclass
class Moments:
    """Streaming statistics of training data: count, mean and scatter Σ(x−μ)² per feature (``full=False``)
    or the matrix Σ(x−μ)(x−μ)ᵀ (``full=True``), in float64."""

    n: int
    mean: np.ndarray
    scatter: np.ndarray

    @property
    def var(self) -> np.ndarray:
        """Population variance per feature."""
        return (np.diag(self.scatter) if self.scatter.ndim == 2 else self.scatter) / self.n

    @property
    def cov(self) -> np.ndarray:
        """Population covariance matrix Xcᵀ·Xc/N."""
        return self.scatter / self.n


def moments(X, *, full: bool, name: str = "X") -> Moments:
    """Mean and scatter of X (N, ...) over rows, read in chunks and combined with Chan et al.'s pairwise
    update (stable; on one chunk it is exactly mean and Σ(x − mean)²). Refuses NaN/inf."""
    total = None
    for block in _chunks(X):
        C = block.astype(np.float64)
        if not np.all(np.isfinite(C)):
            raise ValueError(f"{name} has NaN/inf values; clean the data before fitting preprocessing")
        r, mc = len(C), C.mean(axis=0)
        Cc = C - mc
        sc = Cc.T @ Cc if full else np.einsum("ij,ij->j", Cc, Cc)
        if total is None:
            total = Moments(r, mc, sc)
            continue
        n = total.n + r
        delta = mc - total.mean
        total.mean = total.mean + delta * (r / n)
        total.scatter = total.scatter + sc + (np.outer(delta, delta) if full else delta * delta) * (total.n * r / n)
        total.n = n
    return total
