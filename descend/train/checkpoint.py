"""Crash-safe, pickle-free checkpoints: arrays in a safetensors file, everything else as JSON metadata.

Written to a temporary file in the same folder, flushed and fsync'ed, then atomically renamed over
the old checkpoint (and the folder fsync'ed), so a crash at any moment leaves the old or the new
file, never a torn one. Loading parses only safetensors and JSON: no code runs.
"""
from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path

import numpy as np

FORMAT = "descend-checkpoint"
VERSION = 1

__all__ = ["save_checkpoint", "load_checkpoint", "check_layout", "FORMAT", "VERSION"]


def save_checkpoint(path, arrays: dict[str, np.ndarray], meta: dict) -> Path:
    """Atomically write ``arrays`` (name → ndarray) and the JSON-serializable ``meta`` to ``path``."""
    from safetensors.numpy import save

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    header = {"format": FORMAT, "version": str(VERSION), "meta": json.dumps(meta, allow_nan=False)}
    data = save({k: np.ascontiguousarray(v) for k, v in arrays.items()}, metadata=header)
    fd, tmp = tempfile.mkstemp(prefix=path.name + ".", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
        for stale in path.parent.glob(path.name + ".*.tmp"):  # left by writers killed mid-save
            stale.unlink(missing_ok=True)
    except BaseException:
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
        raise
    dir_fd = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(dir_fd)
    finally:
        os.close(dir_fd)
    return path


def load_checkpoint(path) -> tuple[dict[str, np.ndarray], dict]:
    """Read a checkpoint written by ``save_checkpoint``: (arrays, meta). Refuses other or newer formats."""
    from safetensors import SafetensorError
    from safetensors.numpy import load

    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"no checkpoint at {path}")
    raw = path.read_bytes()
    try:
        arrays = load(raw)
        header_len = int.from_bytes(raw[:8], "little")
        header = json.loads(raw[8:8 + header_len])
    except (SafetensorError, ValueError, UnicodeDecodeError) as e:
        raise ValueError(f"{path} is not a descend checkpoint (unreadable safetensors file: {e})") from None
    info = header.get("__metadata__") or {}
    if info.get("format") != FORMAT:
        raise ValueError(f"{path} is not a descend checkpoint (format {info.get('format')!r})")
    try:
        version = int(info.get("version", "?"))
    except ValueError:
        raise ValueError(f"{path}: unreadable checkpoint version {info.get('version')!r}") from None
    if version > VERSION:
        raise ValueError(f"{path} was written by a newer descend (checkpoint format {version}, this version "
                         f"reads up to {VERSION}); upgrade descend to load it")
    return arrays, json.loads(info["meta"])


def check_layout(expected: list, found: list, what: str = "checkpoint") -> None:
    """Compare two layouts (lists of [name, shape, dtype]) and raise naming every mismatching entry."""
    exp = {e[0]: (tuple(e[1]), str(e[2])) for e in expected}
    got = {e[0]: (tuple(e[1]), str(e[2])) for e in found}
    problems = [f"{n}: missing in the {what}" for n in exp if n not in got]
    problems += [f"{n}: in the {what} but not in the model" for n in got if n not in exp]
    problems += [f"{n}: model has shape {exp[n][0]} {exp[n][1]}, {what} has {got[n][0]} {got[n][1]}"
                 for n in exp if n in got and exp[n] != got[n]]
    if problems:
        raise ValueError(f"the {what} does not fit this model (another architecture?): " + "; ".join(problems))
