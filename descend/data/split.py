"""Train/validation split with an explicit Generator, optionally stratified by class.

Memory-mapped X: the validation rows are read into memory (they are few); the training part is a
``RowView`` — the rows of the file it stands for, read batch by batch by ``take`` — so the file is
never loaded whole. Its rows keep file order (reading them is then a forward sweep); the loop
reshuffles every epoch anyway. If you would rather keep the file as it is, split it once on disk
(or pass ``X_val, y_val`` to ``fit`` explicitly) and train on the whole memory map.
"""
from __future__ import annotations

import numpy as np

from .batching import RowView, _gather, is_mapped

__all__ = ["train_val_split"]


def train_val_split(X, y, *, val_fraction: float = 0.1, rng: np.random.Generator, stratify: bool = False):
    """Split (X, y) at random into ``(X_tr, y_tr, X_val, y_val)``.

    The validation part has ``round(val_fraction · N)`` samples. ``stratify=True`` keeps the class
    proportions of ``y`` in both parts: each class is split separately (the class quotas are the
    exact proportional shares rounded by largest remainder, so they sum to the total), then each
    part is shuffled. ``y`` may be None (unlabelled data; not with stratify).

    Both parts are new arrays with X's and y's dtypes (validate with ``check_Xy`` first to get
    float32/int64), except that a memory-mapped X gives ``X_tr`` as a ``RowView`` (see the module
    docstring). Raises ValueError if ``val_fraction`` is not in (0, 1) or a side would be empty.
    """
    if not isinstance(rng, np.random.Generator):
        raise TypeError(f"train_val_split needs an explicit rng=np.random.default_rng(seed), got {rng!r}")
    if isinstance(val_fraction, bool) or not isinstance(val_fraction, (int, float, np.integer, np.floating)) \
            or not 0.0 < float(val_fraction) < 1.0:
        raise ValueError(f"val_fraction must be a number strictly between 0 and 1, got {val_fraction!r}; "
                         "e.g. val_fraction=0.1 keeps 10 % of the samples for validation")
    val_fraction = float(val_fraction)
    if not is_mapped(X) and not isinstance(X, np.ndarray):
        X = np.asarray(X)
    n = len(X)
    if y is not None:
        y = np.asarray(y)
        if len(y) != n:
            raise ValueError(f"X has {n} samples but y has {len(y)}; they must match")
    if stratify and (y is None or y.ndim != 1):
        raise ValueError("stratify=True needs the labels y as a 1-D array of classes, got "
                         + ("None; pass y or stratify=False" if y is None else f"shape {y.shape}"))
    n_val = int(round(val_fraction * n))
    if n_val == 0 or n_val == n:
        side = "validation" if n_val == 0 else "training"
        raise ValueError(f"val_fraction={val_fraction} of {n} samples leaves the {side} part empty; "
                         f"use a val_fraction between {1 / n:.3g} and {1 - 1 / n:.3g}" if n > 1 else
                         f"cannot split {n} sample into two non-empty parts")

    if stratify:
        val_idx, tr_idx = _stratified(y, n_val, rng)
    else:
        perm = rng.permutation(n)
        val_idx, tr_idx = perm[:n_val], perm[n_val:]

    if is_mapped(X):
        X_tr = RowView(X, np.sort(tr_idx))
        tr_idx = X_tr.index
    else:
        X_tr = _gather(X, tr_idx, dtype=None)
    X_val = _gather(X, val_idx, dtype=None)
    y_tr = None if y is None else y[tr_idx]
    y_val = None if y is None else y[val_idx]
    return X_tr, y_tr, X_val, y_val


def _stratified(y: np.ndarray, n_val: int, rng: np.random.Generator):
    classes, inverse, counts = np.unique(y, return_inverse=True, return_counts=True)
    exact = n_val * counts / counts.sum()
    quota = np.floor(exact).astype(np.int64)
    short = n_val - int(quota.sum())
    if short:  # largest remainder; ties go to the larger class, then the lower label
        order = np.lexsort((-counts, -(exact - quota)))
        quota[order[:short]] += 1
    val_parts, tr_parts = [], []
    for c in range(len(classes)):
        members = rng.permutation(np.flatnonzero(inverse == c))
        val_parts.append(members[:quota[c]])
        tr_parts.append(members[quota[c]:])
    val_idx = rng.permutation(np.concatenate(val_parts))
    tr_idx = rng.permutation(np.concatenate(tr_parts))
    if len(tr_idx) == 0:
        raise ValueError("the stratified split leaves the training part empty; lower val_fraction")
    return val_idx, tr_idx
