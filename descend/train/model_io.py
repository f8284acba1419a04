"""Load a trained model from a checkpoint: θ (the best epoch's, if early stopping kept one), buffers, preprocessing."""
from __future__ import annotations

import numpy as np

from ..nn import pack
from . import checkpoint as ckpt

__all__ = ["load_model"]


def load_model(model, path, *, best: bool = True, dtype=np.float32):
    """Fill ``model`` (built with the same architecture) from the checkpoint at ``path`` and return it.

    With ``best=True`` the θ of the best epoch is used when the checkpoint holds one (early
    stopping with restore_best), else the θ training ended with. The fitted preprocessing step
    is set as ``model.preprocess`` so ``predict(model, X_raw)`` applies it. Nothing in the
    model changes if the checkpoint does not fit it (the error names the mismatching entries).
    """
    arrays, meta = ckpt.load_checkpoint(path)
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
