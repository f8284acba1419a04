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
    dr = sub.add_parser("doctor", help="babysit a training config: run the checks, name the faults, write the figures")
    add_job_arguments(dr, epochs_help="cap of the short training run (default: min(8, train.epochs))")
    dr.add_argument("--out", type=Path, help="folder for the report and figures (default runs/doctor-<time>)")
    add_compare_parser(sub)
    return parser


def add_compare_parser(sub) -> None:
    """``descend compare``: optimizers raced on a 2-D test function (--function) or on a network (--config)."""
    cp = sub.add_parser("compare", help="race optimizers on a 2-D test function (trajectories) or on a network")
    cp.add_argument("--function", help="rosenbrock (default) | beale | himmelblau | saddle | booth | quadratic")
    cp.add_argument("--condition", type=float, default=10.0, help="the quadratic's condition number (default 10)")
    cp.add_argument("--config", type=Path, help="a training job's TOML: race on its network instead of a function")
    cp.add_argument("--optimizers", help="comma-separated: sgd,momentum,nesterov,adagrad,rmsprop,adam,bfgs,lbfgs,newton")
    cp.add_argument("--steps", type=int, default=300, help="steps per optimizer on a function (default 300)")
    cp.add_argument("--epochs", type=int, help="epochs per optimizer on a network (default: the config's)")
    cp.add_argument("--lr", action="append", metavar="NAME=VALUE", help="an optimizer's learning rate (repeatable)")
    cp.add_argument("--start", metavar="X,Y", help="the common start on the function (default: its usual one); write --start=-1.2,1 when x < 0")
    cp.add_argument("--target-loss", type=float, help="network: the validation loss timed to (default: the "
                    "highest of the runs' best)")
    cp.add_argument("--out", type=Path, help="folder for the figures and the table (default runs/compare-<name>-<time>)")
    cp.add_argument("--gif", action="store_true", help="also write an animated GIF of the trajectories")


def _compare(args) -> int:
    from .compare.command import compare_function_job, compare_network_job
    if args.config is not None:
        if args.function or args.start or args.gif:
            raise ConfigError("--config races on a network; --function/--start/--gif are for the 2-D functions")
        race, out = compare_network_job(resolve(load_config(args.config)), optimizers=args.optimizers, lrs=args.lr,
                                        epochs=args.epochs, target_loss=args.target_loss, out=args.out)
    else:
        race, out = compare_function_job(function=(args.function or "rosenbrock").lower(), condition=args.condition,
                                         optimizers=args.optimizers, steps=args.steps, lrs=args.lr,
                                         start=args.start, out=args.out, gif=args.gif)
    print(race.table())
    print(f"figures and table: {out}")
    return 0


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
    final = run(cfg, out, resume=bool(args.resume), progress=False if args.quiet else True)
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
    commands = {"train": _train, "doctor": _doctor, "compare": _compare}
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
