"""The ``descend`` command: ``descend train`` runs a training job from flags and/or a TOML config.

Names in configs map to objects through the visible tables below (the only place that does so).
With no arguments ``descend train`` trains an MLP with Adam and early stopping on scikit-learn's
bundled digits and writes a run folder: config.toml, metrics.jsonl, metrics.json, the checkpoint
and PNG plots.
"""
from __future__ import annotations

import argparse
import copy
import inspect
import json
import sys
import time
import tomllib
from pathlib import Path

import numpy as np

DEFAULT_CONFIG = {
    "data": {"dataset": "digits", "val_fraction": 0.15, "standardize": True, "seed": 0},
    "model": {"conv": [], "hidden": [128, 64], "activation": "relu", "init": "auto", "dropout": 0.0,
              "batch_norm": False},
    "optimizer": {"name": "adam", "lr": 1e-3},
    "schedule": {"name": "constant"},
    "train": {"batch_size": 32, "epochs": 60, "steps": 0, "patience": 8, "min_loss_change": 0.0,
              "min_param_change": 0.0, "time_limit": 0.0, "l2": 0.0, "seed": 0, "divergence": 3.0,
              "checkpoint_every": 0},
}


def _datasets():
    from . import data as D
    return {"digits": D.load_digits, "iris": D.load_iris, "wine": D.load_wine,
            "breast_cancer": D.load_breast_cancer, "mnist1d": D.load_mnist1d,
            "spiral": lambda seed=0: D.make_spiral(rng=np.random.default_rng(seed))}


_IMAGE_DATASETS = ("digits", "mnist1d")  # loaders with images=True: (1, 8, 8) and (1, 40) samples


def _activations():
    from . import nn
    return {"relu": nn.ReLU, "leaky_relu": nn.LeakyReLU, "elu": nn.ELU, "tanh": nn.Tanh, "sigmoid": nn.Sigmoid}


def _inits():
    from .nn import init
    return {"auto": None, "he": init.he_normal, "he_uniform": init.he_uniform, "xavier": init.xavier_normal,
            "xavier_uniform": init.xavier_uniform, "normal": init.normal, "small": init.small_random}


def _optimizers():
    from . import optim
    return {"sgd": optim.SGD, "adagrad": optim.Adagrad, "rmsprop": optim.RMSprop, "adam": optim.Adam,
            "adamw": optim.AdamW, "nadam": optim.NAdam, "lbfgs": optim.LBFGS}


def _schedules():
    from .optim import schedules as S
    return {"constant": S.Constant, "inverse_time": S.InverseTimeDecay, "exponential": S.ExponentialDecay,
            "inverse_sqrt": S.InverseSqrtDecay, "step": S.StepDecay, "piecewise": S.PiecewiseConstant,
            "warmup": S.LinearWarmup, "cosine": S.Cosine, "warmup_cosine": S.warmup_cosine}


class ConfigError(ValueError):
    """A config key or value that is not understood; the message names it and the choices."""


def _pick(table: dict, value, key: str):
    if value not in table:
        raise ConfigError(f"{key} = {value!r} is not known; choose one of {sorted(table)}")
    return table[value]


def _merge(base: dict, override: dict, where: str = "") -> dict:
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
                out[k] = _merge(base[k], v, where + k + ".")
        else:
            out[k] = v
    return out


def _is_int(v) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def _is_number(v) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool)


# what each scalar setting must be: (test, the rule in words)
_RULES = {
    "data.val_fraction": (lambda v: isinstance(v, (int, float)) and 0 < v < 1, "a number between 0 and 1"),
    "data.standardize": (lambda v: isinstance(v, bool), "true or false"),
    "data.seed": (_is_int, "an integer"),
    "model.conv": (lambda v: isinstance(v, list) and all(_is_int(c) and c > 0 for c in v),
                   "a list of positive channel counts, e.g. [16, 32] (empty: no convolution)"),
    "model.hidden": (lambda v: isinstance(v, list) and all(_is_int(h) and h > 0 for h in v),
                     "a list of positive layer widths, e.g. [128, 64]"),
    "model.dropout": (lambda v: isinstance(v, (int, float)) and 0 <= v < 1, "a drop probability in [0, 1)"),
    "model.batch_norm": (lambda v: isinstance(v, bool), "true or false"),
    "train.batch_size": (lambda v: v == "full" or (_is_int(v) and v > 0),
                         'a positive integer, or "full" for batch gradient descent'),
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
}


def check_config(cfg: dict) -> dict:
    """Refuse a setting of the wrong type or range, naming the key, the value and what it must be."""
    for key, (ok, rule) in _RULES.items():
        section, name = key.split(".")
        value = cfg[section][name]
        if not ok(value):
            raise ConfigError(f"{key} = {value!r} is invalid: it must be {rule}")
    return cfg


def build_model(cfg: dict, input_shape, num_classes: int, rng: np.random.Generator):
    """The network the config describes, for inputs of ``input_shape`` (without the batch axis).

    ``model.conv`` (channel counts, e.g. [16, 32]) adds, per entry, a 3×3 (or length-3) convolution
    with padding 1 → (BatchNorm) → activation → 2×2 max-pooling, on image-shaped input (C, H, W)
    or (C, L); then ``model.hidden`` gives the fully connected layers:
    [Linear → (BatchNorm) → activation → (Dropout)] × hidden → Linear to the classes.
    """
    from . import nn
    m = cfg["model"]
    act = _pick(_activations(), m["activation"], "model.activation")
    init = _pick(_inits(), m["init"], "model.init")
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


def _build_optimizer(cfg: dict):
    o = dict(cfg["optimizer"])
    cls = _pick(_optimizers(), o.pop("name"), "optimizer.name")
    try:
        return cls(**o)
    except (TypeError, ValueError) as e:
        raise ConfigError(f"[optimizer] {e}") from None


def _build_schedule(cfg: dict):
    s = dict(cfg["schedule"])
    name = s.pop("name")
    if name == "constant" and not s:
        return None
    cls = _pick(_schedules(), name, "schedule.name")
    if "lr" in inspect.signature(cls).parameters:
        s.setdefault("lr", cfg["optimizer"]["lr"])
    for key in ("boundaries", "values"):  # TOML arrays → the tuples a frozen schedule holds
        if key in s:
            s[key] = tuple(s[key])
    try:
        return cls(**s)  # its ``unit`` ("epoch" or "step") tells fit which clock to pass
    except (TypeError, ValueError) as e:
        raise ConfigError(f"[schedule] {e}") from None


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
    else:
        loader = _pick(_datasets(), d["dataset"], "data.dataset")
        if cfg["model"]["conv"] and d["dataset"] not in _IMAGE_DATASETS:
            raise ConfigError(f"model.conv needs image-shaped samples; data.dataset = {d['dataset']!r} has none "
                              f"(use one of {list(_IMAGE_DATASETS)} or conv = [])")
        ds = loader(seed=d["seed"], images=True) if cfg["model"]["conv"] else loader(seed=d["seed"])
    X, y, Xv, yv = D.train_val_split(ds.X_train, ds.y_train, val_fraction=d["val_fraction"],
                                     rng=np.random.default_rng(d["seed"]), stratify=True)
    preprocess = D.Standardize() if d["standardize"] else None
    return X, y, Xv, yv, ds.X_test, ds.y_test, ds.num_classes, preprocess


def stopping_rules(t: dict) -> list:
    """The lectures' stopping conditions that the [train] table switches on (epochs and steps are limits of fit)."""
    from .train import EarlyStopping, SmallLossChange, SmallParamChange, TimeLimit
    rules = []
    if t["patience"]:
        rules.append(EarlyStopping(monitor="val_loss", patience=t["patience"]))
    if t["min_loss_change"]:
        rules.append(SmallLossChange(t["min_loss_change"]))
    if t["min_param_change"]:
        rules.append(SmallParamChange(t["min_param_change"]))
    if t["time_limit"]:
        rules.append(TimeLimit(t["time_limit"]))
    return rules


def run(cfg: dict, out: Path, *, resume: bool = False, progress: bool | None = True) -> dict:
    """Train as ``cfg`` says, writing the run folder ``out``; returns the final metrics."""
    from . import plots
    from .train import MetricsLog, ProgressBar, evaluate, fit

    t0 = time.perf_counter()
    d, t = cfg["data"], cfg["train"]
    X, y, Xv, yv, Xte, yte, num_classes, preprocess = prepare_data(cfg)
    rng = np.random.default_rng(t["seed"])
    model = build_model(cfg, X.shape[1:], num_classes, rng)
    optimizer = _build_optimizer(cfg)
    schedule = _build_schedule(cfg)
    out.mkdir(parents=True, exist_ok=True)
    import tomli_w
    (out / "config.toml").write_text(tomli_w.dumps(cfg))  # on resume: with any new limits from the flags
    if not resume:
        (out / "metrics.jsonl").unlink(missing_ok=True)
    stopping = stopping_rules(t)
    ckpt = out / "checkpoint.safetensors"
    if resume and not (out / "checkpoint.safetensors").is_file():
        raise ConfigError(f"cannot resume: {out} holds no checkpoint.safetensors (was the run folder moved?)")
    batch_size = None if t["batch_size"] == "full" else t["batch_size"]
    history = fit(model, X, y, optimizer=optimizer, epochs=t["epochs"], steps=t["steps"] or None, batch_size=batch_size,
                  schedule=schedule, l2=t["l2"], validation=(Xv, yv), stopping=stopping,
                  divergence=t["divergence"] or None, seed=t["seed"],
                  callbacks=[ProgressBar(enabled=progress), MetricsLog(out / "metrics.jsonl")],
                  checkpoint=ckpt, checkpoint_every=t["checkpoint_every"] or None,
                  preprocess=preprocess, resume=ckpt if resume else None, config=cfg)
    test = evaluate(model, Xte, yte)
    final = {"dataset": d["dataset"], "test_accuracy": test["accuracy"], "test_loss": test["loss"],
             "val_accuracy": history.last("val_accuracy"), "train_accuracy": history.last("train_accuracy"),
             "stop_reason": history.stop_reason, "epochs": len(history.epochs), "steps": history.steps,
             "best_epoch": (history.best or {}).get("epoch"), "train_seconds": round(history.elapsed, 3),
             "total_seconds": round(time.perf_counter() - t0, 3)}
    (out / "metrics.json").write_text(json.dumps(final, indent=2) + "\n")
    plots.plot_loss(history, out / "loss.png")
    plots.plot_accuracy(history, out / "accuracy.png")
    plots.plot_lr(history, out / "lr.png")
    return final


def _load_config(path: Path) -> dict:
    try:
        with open(path, "rb") as f:
            return tomllib.load(f)
    except FileNotFoundError:
        raise ConfigError(f"config file {path} does not exist") from None
    except tomllib.TOMLDecodeError as e:
        raise ConfigError(f"config file {path} is not valid TOML: {e}") from None


def _flag_overrides(args) -> dict:
    o: dict = {}

    def put(section, key, value):
        if value is not None:
            o.setdefault(section, {})[key] = value
    put("data", "dataset", args.dataset)
    put("model", "hidden", [int(h) for h in args.hidden.split(",")] if args.hidden else None)
    put("model", "conv", [int(c) for c in args.conv.split(",")] if args.conv else None)
    put("model", "activation", args.activation)
    put("model", "init", args.init)
    put("optimizer", "name", args.optimizer)
    put("optimizer", "lr", args.lr)
    put("train", "batch_size", args.batch_size)
    put("train", "epochs", args.epochs)
    put("train", "seed", args.seed)
    return o


def add_job_arguments(parser, *, epochs_help: str) -> None:
    """The flags that describe a training job, shared by ``descend train`` and ``descend doctor``."""
    parser.add_argument("--config", type=Path, help="TOML file with [data] [model] [optimizer] [schedule] [train] tables")
    parser.add_argument("--dataset", help=" | ".join(("digits", "iris", "wine", "breast_cancer", "mnist1d", "spiral")))
    parser.add_argument("--hidden", help="hidden layer widths, e.g. 128,64")
    parser.add_argument("--conv", help="convolution blocks' channels, e.g. 16,32 (digits, mnist1d)")
    parser.add_argument("--activation", help="relu | leaky_relu | elu | tanh | sigmoid")
    parser.add_argument("--init", help="auto | he | he_uniform | xavier | xavier_uniform | normal | small")
    parser.add_argument("--optimizer", help="sgd | adagrad | rmsprop | adam | adamw | nadam | lbfgs")
    parser.add_argument("--lr", type=float)
    parser.add_argument("--batch-size", type=int)
    parser.add_argument("--epochs", type=int, help=epochs_help)
    parser.add_argument("--seed", type=int)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="descend", description="Train neural networks on NumPy.")
    sub = parser.add_subparsers(dest="command")
    tr = sub.add_parser("train", help="train a model from flags and/or a TOML config (no arguments: the demo job)")
    add_job_arguments(tr, epochs_help="number of epochs (an upper limit when early stopping is on)")
    tr.add_argument("--out", type=Path, help="run folder (default runs/<dataset>-<time>)")
    tr.add_argument("--resume", type=Path, metavar="RUN", help="continue the run in folder RUN")
    tr.add_argument("--quiet", action="store_true", help="no progress bar")
    from .diagnose.doctor import add_subparser, main_from_args
    add_subparser(sub)
    args = parser.parse_args(["train"] if argv is None and len(sys.argv) == 1 else argv)
    if args.command == "doctor":
        return main_from_args(args)
    if args.command != "train":
        parser.print_help()
        return 2
    try:
        if args.resume:  # the run's own config; flags may change limits, e.g. --epochs to train longer
            out = args.resume
            if args.config or args.out:
                raise ConfigError("--resume RUN continues RUN with its own config.toml; drop --config/--out")
            cfg = _merge(_merge(DEFAULT_CONFIG, _load_config(out / "config.toml")), _flag_overrides(args))
        else:
            cfg = DEFAULT_CONFIG
            if args.config:
                cfg = _merge(cfg, _load_config(args.config))
            cfg = _merge(cfg, _flag_overrides(args))
            out = args.out or Path("runs") / f"{cfg['data']['dataset']}-{time.strftime('%Y%m%d-%H%M%S')}"
        final = run(check_config(cfg), out, resume=bool(args.resume), progress=False if args.quiet else True)
    except ConfigError as e:
        print(f"descend: config error: {e}", file=sys.stderr)
        return 2
    val = final["val_accuracy"]  # None when training stopped inside its first epoch
    print(f"\n{final['dataset']}: test accuracy {final['test_accuracy']:.4f} (validation "
          f"{'—' if val is None else f'{val:.4f}'}), {final['epochs']} epochs / {final['steps']} steps in "
          f"{final['train_seconds']:.1f} s")
    print(f"stopped: {final['stop_reason']}")
    print(f"run folder: {out}  (config.toml, metrics.jsonl, metrics.json, checkpoint.safetensors, "
          "loss.png, accuracy.png, lr.png)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
