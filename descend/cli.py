"""The ``descend`` command: parsing, one-line errors and exit codes for ``descend train`` and ``descend doctor``.

No logic lives here: the config schema and its name tables are ``descend.config``, the training job
is ``descend.jobs.run`` and the babysitting checks are ``descend.diagnose.doctor``. With no
arguments ``descend train`` trains an MLP with Adam and early stopping on scikit-learn's bundled
digits and writes a run folder: config.toml, metrics.jsonl, metrics.json, the checkpoint and PNG plots.
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from .config import ConfigError, datasets, load_config, resolve


def _flag_overrides(args) -> dict:
    """The job flags that were given, as a config table to merge over the TOML file's."""
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
    parser.add_argument("--config", type=Path,
                        help="TOML file with [data] [model] [optimizer] [schedule] [train] tables")
    parser.add_argument("--dataset", help=" | ".join(datasets()))
    parser.add_argument("--hidden", help="hidden layer widths, e.g. 128,64")
    parser.add_argument("--conv", help="convolution blocks' channels, e.g. 16,32 (digits, mnist1d)")
    parser.add_argument("--activation", help="relu | leaky_relu | elu | tanh | sigmoid")
    parser.add_argument("--init", help="auto | he | he_uniform | xavier | xavier_uniform | normal | small")
    parser.add_argument("--optimizer", help="sgd | adagrad | rmsprop | adam | adamw | nadam | lbfgs")
    parser.add_argument("--lr", type=float)
    parser.add_argument("--batch-size", type=int)
    parser.add_argument("--epochs", type=int, help=epochs_help)
    parser.add_argument("--seed", type=int)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="descend", description="Train neural networks on NumPy.")
    sub = parser.add_subparsers(dest="command")
    tr = sub.add_parser("train", help="train a model from flags and/or a TOML config (no arguments: the demo job)")
    add_job_arguments(tr, epochs_help="number of epochs (an upper limit when early stopping is on)")
    tr.add_argument("--out", type=Path, help="run folder (default runs/<dataset>-<time>)")
    tr.add_argument("--resume", type=Path, metavar="RUN", help="continue the run in folder RUN")
    tr.add_argument("--quiet", action="store_true", help="no progress bar")
    from .transfer import add_transfer_arguments
    add_transfer_arguments(tr)  # --init-from RUN --freeze N --new-head CLASSES --backbone-lr-scale S
    dr = sub.add_parser("doctor", help="babysit a training config: run the checks, name the faults, write the figures")
    add_job_arguments(dr, epochs_help="cap of the short training run (default: min(8, train.epochs))")
    dr.add_argument("--out", type=Path, help="folder for the report and figures (default runs/doctor-<time>)")
    from .serving import add_parsers
    add_parsers(sub)  # predict, evaluate: a run folder as a model
    return parser


def _train(args) -> int:
    from .jobs import RUN_FILES, run
    if args.resume:  # the run's own config; flags may change limits, e.g. --epochs to train longer
        out = args.resume
        if args.config or args.out:
            raise ConfigError("--resume RUN continues RUN with its own config.toml; drop --config/--out")
        cfg = resolve(load_config(out / "config.toml"), _flag_overrides(args))
    else:
        cfg = resolve(load_config(args.config) if args.config else {}, _flag_overrides(args))
        out = args.out or Path("runs") / f"{cfg['data']['dataset']}-{time.strftime('%Y%m%d-%H%M%S')}"
    from .transfer import transfer_options
    try:
        transfer = transfer_options(args)
    except ValueError as e:
        raise ConfigError(str(e)) from None
    final = run(cfg, out, resume=bool(args.resume), progress=False if args.quiet else True, transfer=transfer)
    val = final["val_accuracy"]  # None when training stopped inside its first epoch
    print(f"\n{final['dataset']}: test accuracy {final['test_accuracy']:.4f} (validation "
          f"{'—' if val is None else f'{val:.4f}'}), {final['epochs']} epochs / {final['steps']} steps in "
          f"{final['train_seconds']:.1f} s")
    print(f"stopped: {final['stop_reason']}")
    print(f"run folder: {out}  ({', '.join(RUN_FILES)})")
    return 0


def _doctor(args) -> int:
    from .diagnose.doctor import doctor
    epochs = args.epochs
    args.epochs = None  # --epochs caps the doctor's short run, not the config's train.epochs
    cfg = resolve(load_config(args.config) if args.config else {}, _flag_overrides(args))
    out = args.out or Path("runs") / f"doctor-{time.strftime('%Y%m%d-%H%M%S')}"
    report = doctor(cfg, out, epochs=epochs or 8)
    print(report.render())
    print(f"report folder: {out}")
    return 0 if report.ok else 1  # 1: faults were found


def main(argv=None) -> int:
    """Run the ``descend`` command; exit status 0 on success, 1 when ``doctor`` found faults, 2 on a usage error."""
    parser = _parser()
    args = parser.parse_args(["train"] if argv is None and len(sys.argv) == 1 else argv)
    from .serving import COMMANDS
    commands = {"train": _train, "doctor": _doctor, **COMMANDS}
    if args.command not in commands:
        parser.print_help()
        return 2
    try:
        return commands[args.command](args)
    except ConfigError as e:
        print(f"descend: config error: {e}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
