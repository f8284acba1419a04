"""Start a training run from a trained one: ``transfer_model`` (init from a run, freeze, new head, backbone lr scale).

``descend train --init-from RUN --freeze N --new-head CLASSES --backbone-lr-scale 0.1`` calls it
through ``descend.jobs.run(..., transfer=...)``; ``add_transfer_arguments`` adds those flags.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from . import nn
from .train import load

__all__ = ["transfer_model", "add_transfer_arguments", "transfer_options"]


def transfer_model(run, *, input_shape, num_classes: int, freeze: int = 0, new_head: int | None = None,
                   backbone_lr_scale: float = 1.0, backbone_weight_decay_scale: float = 1.0, rng: np.random.Generator):
    """The network of ``run`` (its trained θ) ready to train on new data.

    ``freeze``: the first N layers of the network are frozen (``Module.freeze``); ``new_head``: the last
    ``Linear`` is replaced by a fresh one with that many outputs (drawn from ``rng``);
    ``backbone_lr_scale``: every layer but the head trains at lr × that; ``backbone_weight_decay_scale``:
    their weight decay (the optimizer's and the L2 λ) is multiplied by that. Checked first: the new data's
    sample shape must be the run's, and the output count must match ``num_classes``.
    """
    if isinstance(run, nn.Module):
        module, saved = run, None
    else:
        loaded = load(run)  # read and rebuilt once
        module, saved = loaded.module, loaded.input_shape
    if saved is not None and tuple(saved) != tuple(input_shape):
        raise ValueError(f"the run {run} was trained on samples of shape {tuple(saved)}, the data have "
                         f"{tuple(input_shape)}; use data of the same shape")
    if not isinstance(module, nn.Sequential) or not isinstance(module[-1], nn.Linear):
        raise ValueError("--init-from needs a run whose network is a Sequential ending in a Linear layer")
    layers = len(module)
    if not isinstance(freeze, int) or not 0 <= freeze < layers:
        raise ValueError(f"--freeze {freeze}: the network has {layers} layers, so freeze 0..{layers - 1} of them "
                         "(the head stays trainable)")
    if not backbone_lr_scale >= 0:
        raise ValueError(f"--backbone-lr-scale must be ≥ 0, got {backbone_lr_scale}")
    if not backbone_weight_decay_scale >= 0:
        raise ValueError(f"--backbone-weight-decay-scale must be ≥ 0, got {backbone_weight_decay_scale}")
    head = module[-1]
    if new_head is not None:
        if new_head != num_classes:
            raise ValueError(f"--new-head {new_head} does not match the data's {num_classes} classes")
        module[-1] = head = nn.Linear(head.in_features, int(new_head), rng=rng)
    elif head.out_features != num_classes:
        raise ValueError(f"the run's network has {head.out_features} outputs but the data have {num_classes} "
                         f"classes; pass --new-head {num_classes}")
    module.unfreeze()
    module.train()
    for layer in module[:-1]:
        layer.set_lr_scale(backbone_lr_scale)
        layer.set_weight_decay_scale(backbone_weight_decay_scale)
    for layer in module[:freeze]:
        layer.freeze()
    return module


def add_transfer_arguments(parser) -> None:
    """The transfer-learning flags of ``descend train``."""
    parser.add_argument("--init-from", type=Path, metavar="RUN", help="start from the trained network of run RUN")
    parser.add_argument("--freeze", type=int, default=0, metavar="N", help="freeze its first N layers")
    parser.add_argument("--new-head", type=int, metavar="CLASSES", help="replace its last layer by a new one")
    parser.add_argument("--backbone-lr-scale", type=float, default=1.0, metavar="S",
                        help="train every layer but the head at lr × S (e.g. 0.1)")
    parser.add_argument("--backbone-weight-decay-scale", type=float, default=1.0, metavar="S",
                        help="multiply the weight decay and L2 of every layer but the head by S (e.g. 0)")


def transfer_options(args) -> dict | None:
    """The transfer flags given, as keyword arguments of ``transfer_model`` (None: no --init-from)."""
    if args.init_from is None:
        if (args.freeze or args.new_head is not None or args.backbone_lr_scale != 1.0
                or args.backbone_weight_decay_scale != 1.0):
            raise ValueError("--freeze, --new-head, --backbone-lr-scale and --backbone-weight-decay-scale need "
                             "--init-from RUN")
        return None
    return {"run": str(args.init_from), "freeze": args.freeze, "new_head": args.new_head,
            "backbone_lr_scale": args.backbone_lr_scale,
            "backbone_weight_decay_scale": args.backbone_weight_decay_scale}
