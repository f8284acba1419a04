"""Checkpoints: the schema of a run's state and its crash-safe, pickle-free file (safetensors + JSON).

The schema (``capture`` / ``restore``): θ and the model's buffers; the optimizer's ``state_dict()``; the
generators (shuffling, augmentation, dropout layers); the clock (epoch, step, batch in the epoch, its
example order, lr scale, running accuracy); the history; the last good and the best θ; callbacks' state;
the fitted preprocessing and the run's config; the architecture (``nn.spec.describe``, when every layer
is in its table) and the input shape and loss (``io``), so that a checkpoint alone is a model
(``descend.load``). Arrays indexed by θ are stored with every parameter row-major
(``Params.canonical``), whatever θ's own memory order.

Written to a temporary file in the same folder, flushed and fsync'ed, then atomically renamed over
the old checkpoint (and the folder fsync'ed), so a crash at any moment leaves the old or the new
file, never a torn one; temporary files of saves that were killed are removed by the run folder's lock
holder (``descend.runfolder``), never by a save, which could be another process's. Loading parses only
safetensors and JSON: no code runs. The header carries a SHA-256 of the tensors and the metadata
(``digest``), checked on load, so a damaged file is named instead of loaded; files written before the
digest existed have none and load as they did.
"""
from __future__ import annotations

import hashlib
import json
import os
import tempfile
from pathlib import Path

import numpy as np

from ..data.preprocess import from_state_dict as _preprocess_from_state
from ..nn.spec import describable, describe
from .history import History
from .state import Snapshot, generators

FORMAT = "descend-checkpoint"
VERSION = 1

__all__ = ["save_checkpoint", "load_checkpoint", "digest", "check_layout", "capture", "restore", "preprocess_from", "layout_of",
           "FORMAT", "VERSION"]


def save_checkpoint(path, arrays: dict[str, np.ndarray], meta: dict) -> Path:
    """Atomically write ``arrays`` (name → ndarray) and the JSON-serializable ``meta`` to ``path``."""
    from safetensors.numpy import save

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    arrays = {k: np.ascontiguousarray(v) for k, v in arrays.items()}
    meta_json = json.dumps(meta, allow_nan=False)
    header = {"format": FORMAT, "version": str(VERSION), "meta": meta_json, "sha256": digest(arrays, meta_json)}
    data = save(arrays, metadata=header)
    fd, tmp = tempfile.mkstemp(prefix=path.name + ".", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
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


def digest(arrays: dict[str, np.ndarray], meta_json: str) -> str:
    """SHA-256 (hex) of the tensors — each name, dtype, shape and bytes, in name order — and the metadata JSON."""
    h = hashlib.sha256()
    for name in sorted(arrays):
        a = np.ascontiguousarray(arrays[name])
        h.update(f"{name}\0{a.dtype.str}\0{a.shape}\0".encode())
        h.update(a.tobytes())
    h.update(meta_json.encode())
    return h.hexdigest()


def load_checkpoint(path) -> tuple[dict[str, np.ndarray], dict]:
    """Read a checkpoint written by ``save_checkpoint``: (arrays, meta). Refuses other or newer formats and a
    file whose content does not match its SHA-256 (a damaged file)."""
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
        raise ValueError(f"{path} is damaged or not a descend checkpoint (unreadable safetensors file: {e}); "
                         "restore it from a copy or start the run again") from None
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
    if "sha256" in info and digest(arrays, info.get("meta", "")) != info["sha256"]:
        raise ValueError(f"{path} is damaged (its content does not match the SHA-256 recorded in it); restore it "
                         "from a copy or start the run again")
    try:
        return arrays, json.loads(info["meta"])
    except (KeyError, ValueError) as e:
        raise ValueError(f"{path} is damaged (unreadable metadata: {e}); restore it from a copy or start the run "
                         "again") from None


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


def layout_of(params) -> list:
    """θ's layout as stored: [name, shape, dtype] per parameter."""
    return [[e.name, list(e.shape), str(params.theta.dtype)] for e in params.layout]


def _on_disk(params, arrays: dict, convert) -> dict:
    """``arrays`` with ``convert`` (``params.canonical`` to save, ``params.from_canonical`` to load) applied to
    the θ-indexed ones: θ, the good and best θ, optimizer and callback arrays whose last axis has θ's size."""
    n = params.theta.size
    return {k: convert(v) if ((k in ("theta", "good.theta", "best.theta") or k.startswith(("optimizer.", "callback")))
                              and v.ndim and v.shape[-1] == n) else v
            for k, v in arrays.items()}


def _split(d: dict, prefix: str, arrays: dict) -> dict:
    """Put the array entries of ``d`` into ``arrays`` under ``prefix``; return the others (for the JSON)."""
    arrays.update({prefix + k: v for k, v in d.items() if isinstance(v, np.ndarray)})
    return {k: v for k, v in d.items() if not isinstance(v, np.ndarray)}


def _joined(meta_part: dict, arrays: dict, prefix: str) -> dict:
    out = dict(meta_part)
    out.update({k[len(prefix):]: v for k, v in arrays.items() if k.startswith(prefix)})
    return out


def capture(state) -> tuple[dict, dict]:
    """(arrays, meta) of a ``FitState``: everything a run needs to continue bit-identically."""
    params = state.params
    arrays = {"theta": params.theta}
    arrays.update({f"buffer.{k}": v for k, v in params.buffers().items()})
    meta = {"layout": layout_of(params), "optimizer": _split(state.optimizer.state_dict(), "optimizer.", arrays),
            "history": state.history.to_dict(), "rng": state.rng.bit_generator.state,
            "layer_rngs": {k: g.bit_generator.state for k, g in generators(state.model).items()},
            "clock": {"epoch": state.epoch, "step": state.step, "batch": state.batch, "lr_scale": state.lr_scale,
                      "seen": state.seen, "correct": state.correct},
            "callbacks": {}, "config": state.config or {}}
    if describable(state.model):  # a run folder is then a model: ``descend.load`` rebuilds it
        meta["architecture"] = describe(state.model)
    meta["io"] = {"input_shape": list(state.input_shape) if state.input_shape is not None else None,
                  "loss": state.loss_name}
    if state.order is not None:
        arrays["order"] = state.order
    for name, snap in (("good", state.good), ("best", state.best)):
        if snap is not None and snap.step >= 0:
            arrays[f"{name}.theta"] = snap.theta
            arrays.update({f"{name}.buffer.{k}": v for k, v in snap.buffers.items()})
            meta["clock"][f"{name}_step"] = snap.step
    for i, cb in enumerate(state.callbacks):
        if hasattr(cb, "state_dict"):
            meta["callbacks"][str(i)] = _split(cb.state_dict(), f"callback{i}.", arrays)
    if state.preprocess is not None:
        meta["preprocess"] = _split(state.preprocess.state_dict(), "preprocess.", arrays)
    if state.aug_rng is not None:
        meta["aug_rng"] = state.aug_rng.bit_generator.state
    return _on_disk(params, arrays, params.canonical), meta


def preprocess_from(arrays: dict, meta: dict):
    """The fitted preprocessing step a checkpoint holds, or None."""
    if "preprocess" not in meta:
        return None
    return _preprocess_from_state(_joined(meta["preprocess"], arrays, "preprocess."))


def restore(state, arrays: dict, meta: dict, path="checkpoint") -> None:
    """Put a checkpoint's run state into ``state`` (model, θ, optimizer, generators, clock, history, ...).

    Everything is checked first — layout, buffers, the optimizer's state on a copy — so a checkpoint that
    does not fit leaves the model and the optimizer as they were. The preprocessing is restored by the caller
    (``preprocess_from``), as it must be fitted or loaded before the data are checked against the model.
    """
    params = state.params
    arrays = _on_disk(params, arrays, params.from_canonical)
    check_layout(layout_of(params), meta["layout"])
    missing = [k for k in params.buffers() if f"buffer.{k}" not in arrays]
    if missing:
        raise ValueError(f"the {path} lacks the model's buffers {missing} (another architecture?)")
    opt_state = _joined(meta["optimizer"], arrays, "optimizer.")
    state.optimizer.load_state_dict(opt_state)  # checks every entry before it changes anything
    params.theta[...] = arrays["theta"]
    for k, v in params.buffers().items():
        v[...] = arrays[f"buffer.{k}"]
    state.rng.bit_generator.state = meta["rng"]
    if state.aug_rng is not None and "aug_rng" in meta:
        state.aug_rng.bit_generator.state = meta["aug_rng"]
    gens = generators(state.model)
    for k, s in meta["layer_rngs"].items():
        if k in gens:
            gens[k].bit_generator.state = s
    state.history = History.from_dict(meta["history"])
    state.history.stop_reason = None  # continue: the new call's limits decide when to stop
    clock = meta["clock"]
    state.epoch, state.step, state.batch, state.lr_scale = clock["epoch"], clock["step"], clock["batch"], clock["lr_scale"]
    state.seen, state.correct = clock["seen"], clock["correct"]
    state.order = arrays.get("order")
    for name in ("good", "best"):
        if f"{name}.theta" in arrays:
            snap = Snapshot(params)
            snap.theta[...] = arrays[f"{name}.theta"]
            for k, v in snap.buffers.items():  # format 1 kept no buffers beside the good θ
                v[...] = arrays.get(f"{name}.buffer.{k}", params.buffers()[k])
            snap.step = clock.get(f"{name}_step", state.step)
            setattr(state, name, snap)
    for i, cb in enumerate(state.callbacks):
        if hasattr(cb, "load_state_dict") and str(i) in meta["callbacks"]:
            cb.load_state_dict(_joined(meta["callbacks"][str(i)], arrays, f"callback{i}."))
