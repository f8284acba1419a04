"""The config schema: the one visible table from TOML names to objects, with validation.

A training job is a TOML file of five tables — [data] [model] [optimizer] [schedule] [train] —
merged onto ``DEFAULT_CONFIG``. The tables below (``datasets``, ``activations``, ``initializers``,
``optimizers``, ``schedules``, ``stopping``) are the only place where a name in a config becomes a
library object; ``descend train``, ``descend doctor`` and the search read configs through here.
The library is imported lazily inside each table so that ``import descend.config`` stays light.
"""
from __future__ import annotations

import copy
import inspect
import tomllib
from pathlib import Path

import numpy as np

__all__ = ["DEFAULT_CONFIG", "ConfigError", "merge", "load_config", "check_config", "resolve", "build_model",
           "build_optimizer", "build_schedule", "build_stopping", "prepare_data", "datasets", "activations",
           "initializers", "optimizers", "schedules", "stopping", "IMAGE_DATASETS", "RULES"]

DEFAULT_CONFIG = {
    "data": {"dataset": "digits", "val_fraction": 0.15, "standardize": True, "seed": 0, "file": "", "target": "",
             "test_file": ""},
    "model": {"conv": [], "hidden": [128, 64], "activation": "relu", "init": "auto", "dropout": 0.0,
              "batch_norm": False},
    "optimizer": {"name": "adam", "lr": 1e-3},
    "schedule": {"name": "constant"},
    "train": {"batch_size": 32, "epochs": 60, "steps": 0, "patience": 8, "min_loss_change": 0.0,
              "min_param_change": 0.0, "time_limit": 0.0, "l2": 0.0, "seed": 0, "divergence": 3.0,
              "checkpoint_every": 0, "average": "", "clip_norm": 0.0},
}


class ConfigError(ValueError):
    """A config key or value that is not understood; the message names it and the choices."""


# ----------------------------------------------------------------------------------- the name tables


def datasets() -> dict:
    """``data.dataset`` → a loader ``(seed=..., [images=...]) -> descend.data.Dataset``."""
    from . import data as D
    return {"digits": D.load_digits, "iris": D.load_iris, "wine": D.load_wine,
            "breast_cancer": D.load_breast_cancer, "mnist1d": D.load_mnist1d,
            "spiral": lambda seed=0: D.make_spiral(rng=np.random.default_rng(seed))}


IMAGE_DATASETS = ("digits", "mnist1d")  # loaders with images=True: (1, 8, 8) and (1, 40) samples


def activations() -> dict:
    """``model.activation`` → the activation layer class."""
    from . import nn
    return {"relu": nn.ReLU, "leaky_relu": nn.LeakyReLU, "elu": nn.ELU, "tanh": nn.Tanh, "sigmoid": nn.Sigmoid}


def initializers() -> dict:
    """``model.init`` → the weight initializer (``auto``: None, the layer's own choice by activation)."""
    from .nn import init
    return {"auto": None, "he": init.he_normal, "he_uniform": init.he_uniform, "xavier": init.xavier_normal,
            "xavier_uniform": init.xavier_uniform, "normal": init.normal, "small": init.small_random}


def optimizers() -> dict:
    """``optimizer.name`` → the optimizer class (the table's other keys are its keyword arguments)."""
    from . import optim
    return {"sgd": optim.SGD, "adagrad": optim.Adagrad, "rmsprop": optim.RMSprop, "adam": optim.Adam,
            "adamw": optim.AdamW, "nadam": optim.NAdam, "lbfgs": optim.LBFGS}


def schedules() -> dict:
    """``schedule.name`` → the schedule class (the table's other keys are its keyword arguments)."""
    from .optim import schedules as S
    return {"constant": S.Constant, "inverse_time": S.InverseTimeDecay, "exponential": S.ExponentialDecay,
            "inverse_sqrt": S.InverseSqrtDecay, "step": S.StepDecay, "piecewise": S.PiecewiseConstant,
            "warmup": S.LinearWarmup, "cosine": S.Cosine, "warmup_cosine": S.warmup_cosine}


def stopping() -> dict:
    """``train.<key>`` → the stopping rule that key switches on when it is non-zero (a value → a rule)."""
    from . import train as T
    return {"patience": lambda v: T.EarlyStopping(monitor="val_loss", patience=v),
            "min_loss_change": T.SmallLossChange, "min_param_change": T.SmallParamChange,
            "time_limit": T.TimeLimit}


def _pick(table: dict, value, key: str):
    if value not in table:
        raise ConfigError(f"{key} = {value!r} is not known; choose one of {sorted(table)}")
    return table[value]


# ------------------------------------------------------------------------- reading and validating


def merge(base: dict, override: dict, where: str = "") -> dict:
    """``base`` with ``override``'s values, recursively; a key ``base`` lacks is refused by name.

    The [optimizer] and [schedule] tables are open: their extra keys pass through to the
    constructor, which validates them (``build_optimizer``, ``build_schedule``).
    """
    out = copy.deepcopy(base)
    for k, v in override.items():
        if k not in base:
            raise ConfigError(f"unknown config key {where + k!r}; known keys here: {sorted(base)}")
        if isinstance(base[k], dict):
            if not isinstance(v, dict):
                raise ConfigError(f"config key {where + k!r} must be a table [{where + k}]")
            if k in ("optimizer", "schedule"):
                out[k].update(v)  # hyperparameters pass through to the constructor, which validates them
            else:
                out[k] = merge(base[k], v, where + k + ".")
        else:
            out[k] = v
    return out


def load_config(path) -> dict:
    """The TOML file at ``path`` as a dict (not merged); a missing or malformed file is a ConfigError."""
    path = Path(path)
    try:
        with open(path, "rb") as f:
            return tomllib.load(f)
    except FileNotFoundError:
        raise ConfigError(f"config file {path} does not exist") from None
    except tomllib.TOMLDecodeError as e:  # its message ends "(at line L, column C)"
        raise ConfigError(f"config file {path} is not valid TOML: {e}") from None


def _is_int(v) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def _is_number(v) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool)


# what each scalar setting must be: (test, the rule in words)
RULES = {
    "data.val_fraction": (lambda v: isinstance(v, (int, float)) and 0 < v < 1, "a number between 0 and 1"),
    "data.standardize": (lambda v: isinstance(v, bool), "true or false"),
    "data.seed": (_is_int, "an integer"),
    "data.file": (lambda v: isinstance(v, str), "a path to a .npz, .npy or .csv file (empty: use data.dataset)"),
    "data.target": (lambda v: isinstance(v, str), "the label column's name or number, as a string"),
    "data.test_file": (lambda v: isinstance(v, str), "a path like data.file (empty: split a test part off)"),
    "model.conv": (lambda v: isinstance(v, list) and all(_is_int(c) and c > 0 for c in v),
                   "a list of positive channel counts, e.g. [16, 32] (empty: no convolution)"),
    "model.hidden": (lambda v: isinstance(v, list) and all(_is_int(h) and h > 0 for h in v),
                     "a list of positive layer widths, e.g. [128, 64]"),
    "model.dropout": (lambda v: isinstance(v, (int, float)) and 0 <= v < 1, "a drop probability in [0, 1)"),
    "model.batch_norm": (lambda v: isinstance(v, bool), "true or false"),
    "train.batch_size": (lambda v: v in ("full", "auto") or (_is_int(v) and v > 0),
                         'a positive integer, "full" for batch gradient descent, or "auto" (descend batch-size)'),
    "train.epochs": (lambda v: _is_int(v) and v > 0, "a positive integer"),
    "train.steps": (lambda v: _is_int(v) and v >= 0, "an integer ≥ 0 (a step limit; 0 = none)"),
    "train.patience": (lambda v: _is_int(v) and v >= 0, "an integer ≥ 0 (0 turns early stopping off)"),
    "train.min_loss_change": (lambda v: _is_number(v) and v >= 0,
                              "a number ≥ 0 (stop when the epoch loss changes less; 0 = off)"),
    "train.min_param_change": (lambda v: _is_number(v) and v >= 0,
                               "a number ≥ 0 (stop when a step moves θ less, ‖Δθ‖; 0 = off)"),
    "train.time_limit": (lambda v: _is_number(v) and v >= 0, "seconds ≥ 0 (0 = no limit)"),
    "train.l2": (lambda v: _is_number(v) and v >= 0, "a number ≥ 0"),
    "train.seed": (_is_int, "an integer"),
    "train.divergence": (lambda v: _is_number(v) and (v == 0 or v > 1),
                         "a factor > 1 (0 turns the divergence guard off)"),
    "train.checkpoint_every": (lambda v: _is_int(v) and v >= 0, "an integer ≥ 0 (steps; 0 = every epoch only)"),
    "train.clip_norm": (lambda v: _is_number(v) and v >= 0,
                        "a number ≥ 0 (clip the gradient's global L2 norm to it; 0 = off)"),
    "train.average": (lambda v: v in ("", "ema", "polyak"),
                      '"ema" or "polyak" (θ averaged over the run, evaluated in its place), or "" for none'),
}


def check_config(cfg: dict) -> dict:
    """Refuse a setting of the wrong type or range, naming the key, the value and what it must be.

    Names (dataset, activation, optimizer, ...) are checked against their table when built.
    """
    for key, (ok, rule) in RULES.items():
        section, name = key.split(".")
        value = cfg[section][name]
        if not ok(value):
            raise ConfigError(f"{key} = {value!r} is invalid: it must be {rule}")
    return cfg


def resolve(*overrides: dict) -> dict:
    """``DEFAULT_CONFIG`` with each of ``overrides`` merged on in order (e.g. a TOML file, then flags), checked."""
    cfg = DEFAULT_CONFIG
    for o in overrides:
        cfg = merge(cfg, o)
    return check_config(copy.deepcopy(cfg))


# ------------------------------------------------------------------------------- building objects


def build_model(cfg: dict, input_shape, num_classes: int, rng: np.random.Generator):
    """The network the config describes, for inputs of ``input_shape`` (without the batch axis).

    ``model.conv`` (channel counts, e.g. [16, 32]) adds, per entry, a 3×3 (or length-3) convolution
    with padding 1 → (BatchNorm) → activation → 2×2 max-pooling, on image-shaped input (C, H, W)
    or (C, L); then ``model.hidden`` gives the fully connected layers:
    [Linear → (BatchNorm) → activation → (Dropout)] × hidden → Linear to the classes.
    """
    from . import nn
    m = cfg["model"]
    act = _pick(activations(), m["activation"], "model.activation")
    init = _pick(initializers(), m["init"], "model.init")
    hidden, conv = m["hidden"], m["conv"]
    shape = tuple(input_shape) if isinstance(input_shape, (tuple, list)) else (int(input_shape),)
    layers = []
    if conv:
        if len(shape) not in (2, 3):
            raise ConfigError(f"model.conv needs image-shaped input (C, L) or (C, H, W), but the data has samples "
                              f"of shape {shape}; use a dataset with an image form (digits, mnist1d) or conv = []")
        Conv, Pool, Norm = (nn.Conv2d, nn.MaxPool2d, nn.BatchNorm2d) if len(shape) == 3 else \
            (nn.Conv1d, nn.MaxPool1d, nn.BatchNorm1d)
        channels, sizes = shape[0], list(shape[1:])
        for i, c in enumerate(conv):
            if any(n % 2 for n in sizes):
                raise ConfigError(f"model.conv = {conv}: block {i + 1} would halve a {'×'.join(map(str, sizes))} map "
                                  "with 2×2 max-pooling, which needs even sizes; use fewer conv blocks")
            layers.append(Conv(channels, c, 3, padding=1, init=init, rng=rng))
            if m["batch_norm"]:
                layers.append(Norm(c))
            layers += [act(), Pool(2)]
            channels, sizes = c, [n // 2 for n in sizes]
        layers.append(nn.Flatten())
        width = channels * int(np.prod(sizes))
    else:
        width = int(np.prod(shape))
        if len(shape) > 1:
            layers.append(nn.Flatten())
    for h in hidden:
        layers.append(nn.Linear(width, h, init=init, rng=rng))
        if m["batch_norm"]:
            layers.append(nn.BatchNorm1d(h))
        layers.append(act())
        if m["dropout"]:
            layers.append(nn.Dropout(m["dropout"], rng=rng))
        width = h
    layers.append(nn.Linear(width, num_classes, init=init, rng=rng))
    return nn.Sequential(*layers)


def build_optimizer(cfg: dict):
    """A fresh optimizer from the [optimizer] table: ``name`` picks the class, the other keys are its arguments."""
    o = dict(cfg["optimizer"])
    cls = _pick(optimizers(), o.pop("name"), "optimizer.name")
    try:
        optimizer = cls(**o)
    except (TypeError, ValueError) as e:
        raise ConfigError(f"[optimizer] {e}") from None
    clip = cfg["train"].get("clip_norm", 0.0)
    if not clip:
        return optimizer
    from .optim.clipped import Clipped
    try:
        return Clipped(optimizer, max_norm=clip)
    except ValueError as e:
        raise ConfigError(f"train.clip_norm = {clip!r}: {e}") from None


def build_schedule(cfg: dict):
    """The [schedule] table's schedule, or None for a constant rate (``lr`` defaults to ``optimizer.lr``)."""
    s = dict(cfg["schedule"])
    name = s.pop("name")
    if name == "constant" and not s:
        return None
    cls = _pick(schedules(), name, "schedule.name")
    if "lr" in inspect.signature(cls).parameters:
        s.setdefault("lr", cfg["optimizer"]["lr"])
    for key in ("boundaries", "values"):  # TOML arrays → the tuples a frozen schedule holds
        if key in s:
            s[key] = tuple(s[key])
    try:
        return cls(**s)  # its ``unit`` ("epoch" or "step") tells fit which clock to pass
    except (TypeError, ValueError) as e:
        raise ConfigError(f"[schedule] {e}") from None


def build_stopping(cfg: dict) -> list:
    """The lectures' stopping conditions that the [train] table switches on, in ``stopping()``'s order.

    ``train.epochs`` and ``train.steps`` are limits of ``fit`` itself, not rules built here.
    """
    t = cfg["train"]
    return [make(t[key]) for key, make in stopping().items() if t[key]]


def prepare_data(cfg: dict, data=None) -> tuple:
    """The config's data: (X, y, X_val, y_val, X_test, y_test, num_classes, preprocess).

    The dataset (or ``data``, a ``descend.data.Dataset``) is split into training and validation
    parts (stratified, seeded); ``preprocess`` is an unfitted ``Standardize`` when the config asks
    for it (``fit`` fits it on the training part only and applies it everywhere), else None.
    """
    from . import data as D
    d = cfg["data"]
    if data is not None:
        ds = data
    elif d["file"]:
        from .data.files import load_file_dataset
        if cfg["model"]["conv"]:
            raise ConfigError(f"model.conv needs image-shaped samples; data.file = {d['file']!r} gives a table "
                              "(use conv = [])")
        try:
            ds = load_file_dataset(d["file"], target=d["target"], test_path=d["test_file"],
                                   rng=np.random.default_rng(d["seed"]))
        except ValueError as e:
            raise ConfigError(str(e)) from None
    else:
        loader = _pick(datasets(), d["dataset"], "data.dataset")
        if cfg["model"]["conv"] and d["dataset"] not in IMAGE_DATASETS:
            raise ConfigError(f"model.conv needs image-shaped samples; data.dataset = {d['dataset']!r} has none "
                              f"(use one of {list(IMAGE_DATASETS)} or conv = [])")
        ds = loader(seed=d["seed"], images=True) if cfg["model"]["conv"] else loader(seed=d["seed"])
    X, y, Xv, yv = D.train_val_split(ds.X_train, ds.y_train, val_fraction=d["val_fraction"],
                                     rng=np.random.default_rng(d["seed"]), stratify=True)
    preprocess = D.Standardize() if d["standardize"] else None
    return X, y, Xv, yv, ds.X_test, ds.y_test, ds.num_classes, preprocess
