"""Load a trained model from a checkpoint: into a model you built (``load_model``) or as a ready ``Predictor`` (``load``)."""
from __future__ import annotations

from pathlib import Path

import numpy as np

from ..nn import pack
from ..nn.spec import build
from . import checkpoint as ckpt
from .predictor import Predictor

__all__ = ["load_model", "load", "fill"]

CHECKPOINT_NAME = "checkpoint.safetensors"  # the checkpoint's name in a run folder (``descend.jobs``)


def fill(model, arrays: dict, meta: dict, *, best: bool = True, dtype=np.float32, path="checkpoint"):
    """Put a loaded checkpoint's θ (the best epoch's if ``best`` and it holds one), buffers and fitted
    preprocessing into ``model`` and switch it to eval mode. Nothing changes if the checkpoint does not fit."""
    params = pack(model, dtype=np.dtype(dtype))
    ckpt.check_layout(ckpt.layout_of(params), meta["layout"])
    use_best = best and "best.theta" in arrays
    prefix = "best.buffer." if use_best else "buffer."
    missing = [k for k in params.buffers() if prefix + k not in arrays]
    if missing:
        raise ValueError(f"the checkpoint {path} lacks the model's buffers {missing} (another architecture?)")
    preprocess = ckpt.preprocess_from(arrays, meta)
    params.theta[...] = params.from_canonical(arrays["best.theta" if use_best else "theta"])  # stored row-major
    for k, v in params.buffers().items():
        v[...] = arrays[prefix + k]
    model.preprocess = preprocess
    model.eval()
    return model


def load_model(model, path, *, best: bool = True, dtype=np.float32):
    """Fill ``model`` (built with the same architecture) from the checkpoint at ``path`` and return it.

    With ``best=True`` the θ of the best epoch is used when the checkpoint holds one (early
    stopping with restore_best), else the θ training ended with. The fitted preprocessing step
    is set as ``model.preprocess`` so ``predict(model, X_raw)`` applies it. Nothing in the
    model changes if the checkpoint does not fit it (the error names the mismatching entries).
    """
    arrays, meta = ckpt.load_checkpoint(path)
    return fill(model, arrays, meta, best=best, dtype=dtype, path=path)


def checkpoint_path(path) -> Path:
    """The checkpoint file of ``path``: the file itself, or a run folder's ``checkpoint.safetensors``."""
    path = Path(path)
    if path.is_dir():
        f = path / CHECKPOINT_NAME
        if not f.is_file():
            raise FileNotFoundError(f"the folder {path} holds no {CHECKPOINT_NAME}: not a finished run folder "
                                    "(give the run folder `descend train` wrote, or the checkpoint file itself)")
        return f
    if not path.exists():
        raise FileNotFoundError(f"no run folder or checkpoint at {path}")
    return path


def load(path, *, best: bool = True) -> Predictor:
    """The model of a run folder (or a checkpoint file), rebuilt from the architecture its checkpoint records.

    Returns a ``Predictor`` (``predict``, ``predict_proba``, ``outputs``, ``evaluate``) over the network
    with the trained θ (the best epoch's when early stopping kept one and ``best``), its buffers and the
    fitted preprocessing, in the dtype it was trained in. Pickle-free: only safetensors and JSON are
    read. Refuses a missing checkpoint, a newer format, a layer type this descend does not know and a
    checkpoint whose θ does not fit the recorded architecture, naming the problem.
    """
    f = checkpoint_path(path)
    arrays, meta = ckpt.load_checkpoint(f)
    if "architecture" not in meta:
        raise ValueError(f"the checkpoint {f} records no architecture (a model with a custom layer, or written by "
                         "an older descend); build the model yourself and use descend.load_model(model, path)")
    model = build(meta["architecture"])
    dtype = np.dtype(meta["layout"][0][2]) if meta.get("layout") else np.float32
    fill(model, arrays, meta, best=best, dtype=dtype, path=f)
    io = meta.get("io") or {}
    shape = io.get("input_shape")
    return Predictor(model, input_shape=tuple(shape) if shape is not None else None, loss=io.get("loss"),
                     config=meta.get("config") or {}, source=str(f))
