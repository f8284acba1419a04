"""The user's own classification data from a file: ``.npz`` (arrays X and y), ``.npy`` or ``.csv`` (a target column).

Labels become class numbers 0..K−1 in sorted order of their values (strings allowed in CSV); a float
label that is not a whole number is refused, because ``descend train`` does classification. Every
problem raises ``ValueError`` naming the file, what is wrong and the fix, before anything is trained.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

__all__ = ["load_table", "load_file_dataset", "read_csv", "column_index"]

SUFFIXES = (".npz", ".npy", ".csv")


def load_table(path, *, target: str = "") -> tuple[np.ndarray, np.ndarray]:
    """(X float32 (N, D), y raw labels (N,)) from ``path``; ``target`` names y's column (CSV: header name or
    0-based index; .npy: index; .npz ignores it and reads the arrays ``X`` and ``y``)."""
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix not in SUFFIXES:
        raise ValueError(f"data file {path} has the suffix {path.suffix!r} (descend reads {', '.join(SUFFIXES)}); "
                         "save it as one of these")
    if not path.is_file():
        raise ValueError(f"data file {path} does not exist (no such file); check the path")
    if suffix == ".npz":
        X, y = _npz(path)
    elif suffix == ".npy":
        X, y = _columns(path, _npy(path), target, header=None)
    else:
        header, table = read_csv(path)
        X, y = _columns(path, table, target, header=header)
    if len(X) == 0:
        raise ValueError(f"data file {path} holds 0 samples (an empty table); give a file with data")
    if X.ndim != 2 or X.shape[1] == 0:
        raise ValueError(f"data file {path}: X has shape {X.shape} (0 features or not a table); "
                         "give a 2-D table with at least one feature column")
    if len(X) != len(y):
        raise ValueError(f"data file {path}: X has {len(X)} rows but y has {len(y)} (they must match); "
                         "fix the file")
    try:
        X = X.astype(np.float32)
    except (TypeError, ValueError) as e:
        raise ValueError(f"data file {path}: a feature is not a number ({e}); remove or encode that column") from None
    bad = ~np.isfinite(X)
    if bad.any():
        r, c = map(int, np.argwhere(bad)[0])
        raise ValueError(f"data file {path}: X has {int(bad.sum())} NaN/inf values (first at row {r}, column {c}); "
                         "remove or impute them")
    return X, y


def load_file_dataset(path, *, target: str = "", test_path: str = "", test_fraction: float = 0.2,
                      rng: np.random.Generator):
    """A ``Dataset`` from the file(s): the test part from ``test_path``, else a seeded stratified ``test_fraction``."""
    from .datasets import Dataset
    from .split import train_val_split
    X, y = load_table(path, target=target)
    classes, y_idx = _classes(path, y)
    if test_path:
        Xt, yt = load_table(test_path, target=target)
        if Xt.shape[1] != X.shape[1]:
            raise ValueError(f"test file {test_path} has {Xt.shape[1]} features but {path} has {X.shape[1]} "
                             "(they must match); give files with the same columns")
        yt_idx = _map_labels(test_path, yt, classes)
    else:
        X, y_idx, Xt, yt_idx = train_val_split(X, y_idx, val_fraction=test_fraction, rng=rng,
                                               stratify=bool(np.bincount(y_idx).min() >= 2))
    return Dataset(Path(path).stem, X, y_idx.astype(np.int64), Xt, yt_idx.astype(np.int64), len(classes),
                   (X.shape[1],))


def _npz(path: Path):
    try:
        with np.load(path, allow_pickle=False) as z:
            missing = [k for k in ("X", "y") if k not in z.files]
            if missing:
                raise ValueError(f"data file {path} lacks the array(s) {missing} (it has {z.files}); save it with "
                                 "np.savez(path, X=features, y=labels)")
            return z["X"], z["y"]
    except ValueError as e:
        if "lacks the array" in str(e):
            raise
        raise ValueError(f"data file {path} is not a readable .npz ({e}); save it with np.savez") from None
    except OSError as e:
        raise ValueError(f"data file {path} is not a readable .npz ({e}); save it with np.savez") from None


def _npy(path: Path) -> np.ndarray:
    try:
        a = np.load(path, allow_pickle=False)
    except (ValueError, OSError) as e:
        raise ValueError(f"data file {path} is not a readable .npy ({e}); save it with np.save") from None
    if a.ndim != 2:
        raise ValueError(f"data file {path} holds an array of shape {a.shape} (a .npy must be a 2-D table whose "
                         "--target column is y); save X and y with np.savez(path, X=..., y=...) instead")
    return a


def read_csv(path) -> tuple[list[str] | None, np.ndarray]:
    """(the header's column names, or None when the first row is all numbers; the cells (N, D) as strings)."""
    import csv
    path = Path(path)
    with open(path, newline="", encoding="utf-8") as f:
        rows = [r for r in csv.reader(f) if r]
    header = [h.strip() for h in rows[0]] if rows and not all(_is_number(c) for c in rows[0]) else None
    body = rows[1:] if header is not None else rows
    if not body:
        raise ValueError(f"data file {path} has no data rows; give a CSV with at least one row (after an "
                         "optional header line)")
    width = len(header) if header is not None else len(body[0])
    bad = next((i for i, r in enumerate(body) if len(r) != width), None)
    if bad is not None:
        line = bad + (2 if header is not None else 1)
        raise ValueError(f"data file {path}: line {line} has {len(body[bad])} fields but the "
                         f"{'header' if header is not None else 'first line'} has {width} (a ragged table); "
                         "fix that line")
    return header, np.array(body, dtype=object)


def column_index(header: list[str] | None, width: int, target: str) -> int | None:
    """The column ``target`` names: a header name, or a (negative allowed) 0-based index; None if neither."""
    if header is not None and target in header:
        return header.index(target)
    if str(target).lstrip("-").isdigit() and -width <= int(target) < width:
        return int(target) % width
    return None


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def _columns(path: Path, table: np.ndarray, target: str, *, header):
    if target == "":
        where = "a column name or number" if header is not None else "a column number"
        raise ValueError(f"data file {path} needs --target (which column holds the labels: {where}); "
                         f"e.g. --target {header[-1] if header else table.shape[1] - 1}")
    col = column_index(header, table.shape[1], target)
    if col is None:
        known = f"the columns are {header}" if header is not None else f"it has {table.shape[1]} columns"
        raise ValueError(f"data file {path} has no column {target!r} ({known}); choose one with --target")
    X = np.delete(table, col, axis=1)
    y = table[:, col]
    if header is not None:
        try:
            X = X.astype(np.float64)
        except ValueError:
            name = next(h for j, h in enumerate(np.delete(np.array(header, dtype=object), col))
                        if not _numeric(X[:, j]))
            raise ValueError(f"data file {path}: column {name!r} is not numeric (descend trains on numbers); "
                             "remove or encode that column") from None
    return X, y


def _numeric(col) -> bool:
    try:
        np.asarray(col).astype(np.float64)
        return True
    except ValueError:
        return False


def _as_labels(path, y: np.ndarray) -> np.ndarray:
    if y.dtype == object and _numeric(y):
        y = y.astype(np.float64)
    if y.dtype.kind == "f":
        if not np.all(np.isfinite(y)):
            raise ValueError(f"data file {path}: the labels contain NaN/inf; remove those rows")
        frac = y != np.round(y)
        if frac.any():
            raise ValueError(f"data file {path}: label {y[frac][0].item()!r} is not a class (labels must be whole numbers "
                             "or names: descend train does classification); round or bin the target into classes")
        y = y.astype(np.int64)
    return y.astype(str) if y.dtype == object else y


def _classes(path, y):
    y = _as_labels(path, y)
    classes, idx = np.unique(y, return_inverse=True)
    if len(classes) < 2:
        raise ValueError(f"data file {path}: the labels have only one class ({classes.tolist()}); "
                         "classification needs at least two")
    return classes, idx


def _map_labels(path, y, classes):
    y = _as_labels(path, y)
    idx = np.searchsorted(classes, y)
    idx = np.clip(idx, 0, len(classes) - 1)
    unknown = classes[idx] != y
    if unknown.any():
        raise ValueError(f"test file {path}: label {np.asarray(y[unknown][0]).item()!r} does not occur in the training data (its classes "
                         f"are {classes.tolist()}); give test data of the same classes")
    return idx
