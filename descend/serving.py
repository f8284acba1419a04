"""``descend predict``, ``descend evaluate`` and ``descend export``: read a data file, run a loaded run folder on it, write or print the result.

Self-contained beside ``cli.py``: ``add_parsers(sub)`` adds the two subcommands and ``COMMANDS`` maps
their names to functions ``(args) -> exit status``, each printing one ``descend: error: ...`` line
for bad input (exit 2) or a failure while computing (exit 1). The readers and writers are library
calls too (``read_array``, ``read_target``, ``write_array``).
"""
from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

__all__ = ["read_array", "read_target", "write_array", "add_parsers", "COMMANDS", "DataError"]

FORMATS = (".npy", ".npz", ".csv")


class DataError(ValueError):
    """A data file that cannot be read as the command needs; the message names the file and the fix."""


def _read_csv(path: Path) -> tuple[np.ndarray, list[str] | None]:
    """(values as float64 (N, D), the header's column names or None), read by ``descend.data.files.read_csv``."""
    from .data.files import read_csv
    try:
        header, table = read_csv(path)
        return table.astype(np.float64), header
    except ValueError as e:
        raise DataError(f"{path}: not a CSV of numbers ({e}); give numeric columns only, with an optional "
                        "header row") from None


def read_array(path, *, key: str = "X") -> np.ndarray:
    """The array stored in ``path``: a .npy file, the array ``key`` (or the only array) of a .npz, or a numeric CSV."""
    path = Path(path)
    if path.suffix not in FORMATS:
        raise DataError(f"{path}: unknown data format {path.suffix!r}; use one of {', '.join(FORMATS)}")
    if not path.is_file():
        raise DataError(f"no data file at {path}")
    if path.suffix == ".csv":
        return _read_csv(path)[0]
    try:
        loaded = np.load(path, allow_pickle=False)
    except ValueError as e:  # object arrays need pickle: refused
        raise DataError(f"{path}: cannot be read without pickle ({e}); save plain numeric arrays") from None
    if path.suffix == ".npy":
        return loaded
    with loaded:
        names = list(loaded.files)
        if key in names:
            return loaded[key]
        if len(names) == 1:
            return loaded[names[0]]
        raise DataError(f"{path} holds arrays {names} but none named {key!r}; name the inputs {key!r}")


def read_target(data_path, target: str) -> tuple[np.ndarray, np.ndarray]:
    """(X, y) for ``descend evaluate``: ``target`` is a file of targets (.npy/.csv/.npz), an array name in the
    .npz data file, or a column (header name or index) of the CSV data file, which is then dropped from X."""
    data_path = Path(data_path)
    t = Path(target)
    if t.suffix in FORMATS and t.is_file():
        y = read_array(t, key="y")
        return read_array(data_path), (y[:, 0] if y.ndim == 2 and y.shape[1] == 1 and t.suffix == ".csv" else y)
    if data_path.suffix == ".npz":
        with np.load(data_path, allow_pickle=False) as z:
            if target in z.files:
                return read_array(data_path), z[target]
            raise DataError(f"--target {target!r}: no such file, and {data_path} holds no array of that name "
                            f"(it holds {list(z.files)})")
    if data_path.suffix == ".csv":
        from .data.files import column_index
        values, header = _read_csv(data_path)
        col = column_index(header, values.shape[1], target)
        if col is None:
            raise DataError(f"--target {target!r}: no such file, and not a column of {data_path} (columns: "
                            f"{header if header else f'0..{values.shape[1] - 1}'})")
        return np.delete(values, col, axis=1), values[:, col]
    raise DataError(f"--target {target!r}: no such file; give a .npy/.csv file of targets, an array name of a .npz "
                    "data file or a column of a CSV data file")


def write_array(path, values: np.ndarray) -> Path:
    """Write ``values`` to ``path``: .npy (exact) or .csv (integers as such, floats with 9 significant digits,
    enough to read float32 back exactly)."""
    path = Path(path)
    if path.suffix == ".npy":
        np.save(path, values, allow_pickle=False)
    elif path.suffix == ".csv":
        fmt = "%d" if values.dtype.kind in "iub" else "%.9g"
        np.savetxt(path, values.reshape(len(values), -1), fmt=fmt, delimiter=",")
    else:
        raise DataError(f"--out {path}: unknown format {path.suffix!r}; use .npy or .csv")
    return path


# ------------------------------------------------------------------------------------------ the commands


def add_parsers(sub) -> None:
    """Add ``predict`` and ``evaluate`` to the ``descend`` command's subparsers."""
    p = sub.add_parser("predict", help="predict with a trained run folder (or checkpoint) on a data file")
    p.add_argument("run", type=Path, metavar="RUN", help="run folder written by `descend train`, or a checkpoint")
    p.add_argument("--data", type=Path, required=True, help="inputs: .npy, .npz (array 'X') or .csv")
    p.add_argument("--out", type=Path, help="write the predictions to .npy or .csv (default: print them)")
    p.add_argument("--proba", action="store_true", help="class probabilities instead of class indices")
    p.add_argument("--outputs", action="store_true", help="the network's raw outputs (logits)")
    e = sub.add_parser("evaluate", help="loss, accuracy and confusion matrix of a run folder on a labelled data file")
    e.add_argument("run", type=Path, metavar="RUN", help="run folder written by `descend train`, or a checkpoint")
    e.add_argument("--data", type=Path, required=True, help="inputs: .npy, .npz or .csv")
    e.add_argument("--target", required=True,
                   help="targets: a .npy/.csv file, an array name of the .npz data, or a column of the CSV data")
    x = sub.add_parser("export", help="write a trained run folder (or checkpoint) as an ONNX model")
    x.add_argument("run", type=Path, metavar="RUN", help="run folder written by `descend train`, or a checkpoint")
    x.add_argument("--onnx", type=Path, required=True, help="the .onnx file to write")


def _predict(args) -> int:
    from .train import load
    model = load(args.run)
    X = read_array(args.data)
    if args.outputs:
        result = model.outputs(X)
    elif args.proba:
        result = model.predict_proba(X)
    else:
        result = model.predict(X)
    if args.out is not None:
        write_array(args.out, result)
        print(f"{len(result)} predictions written to {args.out}")
    else:
        fmt = "%d" if result.dtype.kind in "iub" else "%.9g"
        np.savetxt(sys.stdout, result.reshape(len(result), -1), fmt=fmt, delimiter=",")
    return 0


def _evaluate(args) -> int:
    from .train import load
    model = load(args.run)
    X, y = read_target(args.data, args.target)
    res = model.evaluate(X, y)
    print(f"samples: {len(X)}")
    print(f"loss: {res['loss']:.6g}")
    if "accuracy" in res:
        print(f"accuracy: {res['accuracy']:.4f}")
        cm = np.array(res["confusion_matrix"])
        width = max(len(str(cm.max())), len(str(len(cm) - 1)), 4)
        print("confusion matrix (rows: true class, columns: predicted):")
        print(" " * 6 + " ".join(f"{j:>{width}}" for j in range(len(cm))))
        for i, row in enumerate(cm):
            print(f"{i:>5} " + " ".join(f"{v:>{width}}" for v in row))
    return 0


def _export(args) -> int:
    from .export import to_onnx
    from .train import load
    model = load(args.run)
    to_onnx(model, args.onnx)
    print(f"ONNX model written to {args.onnx} (input 'input' of shape (N, {', '.join(map(str, model.input_shape))}), "
          "output 'logits'" + (", 'probabilities')" if model.loss == "cross_entropy" else ")"))
    return 0


COMMANDS = {"predict": _predict, "evaluate": _evaluate, "export": _export}  # errors: descend.cli.main
