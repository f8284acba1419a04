"""The ``descend`` command: parsing, one-line errors and exit codes for ``descend train`` and ``descend doctor``.

No logic lives here: the config schema and its name tables are ``descend.config``, the training job
is ``descend.jobs.run``, run folders are ``descend.runfolder`` and the babysitting checks are
``descend.diagnose.doctor``. With no arguments ``descend train`` trains an MLP with Adam and early
stopping on scikit-learn's bundled digits and writes a run folder: config.toml, metrics.jsonl,
metrics.json, the checkpoint and PNG plots.

Every failure is one line on stderr, ``descend: error: <what> (<why>); <fix>``, and an exit status:
0 finished, 1 runtime failure (or ``doctor`` found faults), 2 usage / config / data error,
3 training stopped by divergence, 130 interrupted (the checkpoint is saved). ``--debug`` adds the traceback.
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from .config import ConfigError, datasets, load_config, resolve

EXIT_OK, EXIT_RUNTIME, EXIT_USAGE, EXIT_DIVERGED, EXIT_INTERRUPTED = 0, 1, 2, 3, 130


class UsageError(ValueError):
    """A command line argparse could not read."""


class _Parser(argparse.ArgumentParser):
    def __init__(self, *args, **kwargs):  # no abbreviations: --epoch must not silently mean --epochs
        super().__init__(*args, allow_abbrev=False, **kwargs)

    def error(self, message):  # argparse prints usage and exits; we want our one line and exit code
        raise UsageError(f"{message} (in `{self.prog}`); see `{self.prog} --help`")


def _widths(flag: str, example: str):
    def parse(text: str) -> list[int]:
        try:
            values = [int(v) for v in text.split(",")]
        except ValueError:
            values = []
        if not values or any(v <= 0 for v in values):
            raise argparse.ArgumentTypeError(f"{text!r} is not a list of positive integers; write e.g. {flag} {example}")
        return values
    return parse


def _batch_size(text: str):
    if text in ("full", "auto"):  # auto: the lecture's rule and a measurement (descend.search.batch_size)
        return text
    try:
        return int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a batch size; write a positive integer, or full "
                                         "for batch gradient descent, or auto") from None


def _schedule(text: str) -> dict:
    """``NAME`` or ``NAME:key=value,key=value`` (values read as TOML: 0.5, 10, true, "epoch") → the [schedule] table."""
    import tomllib
    name, _, rest = text.partition(":")
    table: dict = {"name": name}
    for item in filter(None, rest.split(",")):
        key, eq, value = item.partition("=")
        if not eq or not key:
            raise argparse.ArgumentTypeError(f"{item!r} is not key=value; write e.g. --schedule step:step_size=10,gamma=0.5")
        try:
            table[key.strip()] = tomllib.loads(f"v = {value}")["v"]
        except tomllib.TOMLDecodeError:
            table[key.strip()] = value  # a bare word, e.g. unit=epoch
    return table


def _flag_overrides(args) -> dict:
    """The job flags that were given, as a config table to merge over the TOML file's."""
    o: dict = {}

    def put(section, key, value):
        if value is not None:
            o.setdefault(section, {})[key] = value
    put("data", "dataset", args.dataset)
    put("data", "file", str(args.data) if args.data is not None else None)
    put("data", "target", args.target)
    put("data", "test_file", str(args.test) if args.test is not None else None)
    put("model", "hidden", args.hidden)
    put("model", "conv", args.conv)
    put("model", "activation", args.activation)
    put("model", "init", args.init)
    put("model", "dropout", args.dropout)
    put("optimizer", "name", args.optimizer)
    put("optimizer", "lr", args.lr)
    if args.schedule is not None:
        o["schedule"] = args.schedule
    put("train", "batch_size", args.batch_size)
    put("train", "epochs", args.epochs)
    put("train", "steps", args.steps)
    put("train", "patience", args.patience)
    put("train", "l2", args.l2)
    put("train", "average", args.average)
    put("train", "clip_norm", args.clip_norm)
    put("train", "seed", args.seed)
    return o


def add_job_arguments(parser, *, epochs_help: str) -> None:
    """The flags that describe a training job, shared by ``descend train`` and ``descend doctor``."""
    parser.add_argument("--config", type=Path,
                        help="TOML file with [data] [model] [optimizer] [schedule] [train] tables")
    parser.add_argument("--dataset", help=" | ".join(datasets()))
    parser.add_argument("--data", type=Path, metavar="FILE", help="your own data: .npz (X, y), .npy or .csv")
    parser.add_argument("--target", metavar="COLUMN", help="the label column of a .npy/.csv --data file")
    parser.add_argument("--test", type=Path, metavar="FILE", help="test data of the same columns as --data")
    parser.add_argument("--hidden", type=_widths("--hidden", "128,64"), help="hidden layer widths, e.g. 128,64")
    parser.add_argument("--conv", type=_widths("--conv", "16,32"),
                        help="convolution blocks' channels, e.g. 16,32 (digits, mnist1d)")
    parser.add_argument("--activation", help="relu | leaky_relu | elu | tanh | sigmoid")
    parser.add_argument("--init", help="auto | he | he_uniform | xavier | xavier_uniform | normal | small")
    parser.add_argument("--dropout", type=float, metavar="P", help="dropout probability after each hidden layer")
    parser.add_argument("--optimizer", help="sgd | adagrad | rmsprop | adam | adamw | nadam | lbfgs "
                                            "(lbfgs wants --batch-size full)")
    parser.add_argument("--lr", type=float)
    parser.add_argument("--schedule", type=_schedule, metavar="NAME[:k=v,...]",
                        help="learning-rate schedule and its parameters, e.g. cosine, step:step_size=10,gamma=0.5 "
                             "(cosine's total defaults to the run's length)")
    parser.add_argument("--batch-size", type=_batch_size, metavar="N|full")
    parser.add_argument("--epochs", type=int, help=epochs_help)
    parser.add_argument("--steps", type=int, help="a step limit (0 = none)")
    parser.add_argument("--patience", type=int, help="early stopping patience in epochs (0 = off)")
    parser.add_argument("--l2", type=float, metavar="LAMBDA", help="λ of the L2 term (λ/2m)·Σ‖W‖²")
    parser.add_argument("--clip-norm", type=float, metavar="MAX", help="clip the gradient's global L2 norm (0 = off)")
    parser.add_argument("--average", choices=["ema", "polyak"], help="evaluate θ averaged over the run")
    parser.add_argument("--seed", type=int)


def _parser() -> argparse.ArgumentParser:
    from . import __version__
    parser = _Parser(prog="descend", description="Train neural networks on NumPy.",
                     epilog="exit status: 0 finished, 1 runtime failure, 2 usage/config/data error, "
                            "3 stopped by divergence, 130 interrupted (checkpoint saved)")
    parser.add_argument("--version", action="version", version=f"descend {__version__}")
    sub = parser.add_subparsers(dest="command", parser_class=_Parser)
    tr = sub.add_parser("train", help="train a model from flags and/or a TOML config (no arguments: the demo job)")
    add_job_arguments(tr, epochs_help="number of epochs (an upper limit when early stopping is on)")
    tr.add_argument("--out", type=Path, help="run folder (default runs/<dataset>-<time>-<random suffix>)")
    tr.add_argument("--resume", type=Path, metavar="RUN", help="continue the run in folder RUN")
    tr.add_argument("--overwrite", action="store_true", help="replace the run already in --out")
    tr.add_argument("--quiet", action="store_true", help="no progress bar")
    tr.add_argument("--distributed", action="store_true",
                    help="data-parallel over the ranks of mpiexec: mpiexec -n 2 descend train --distributed")
    from .transfer import add_transfer_arguments
    add_transfer_arguments(tr)  # --init-from, --freeze, --new-head, --backbone-lr-scale, --backbone-weight-decay-scale
    dr = sub.add_parser("doctor", help="babysit a training config: run the checks, name the faults, write the figures")
    add_job_arguments(dr, epochs_help="cap of the short training run (default: min(8, train.epochs))")
    dr.add_argument("--out", type=Path, help="folder for the report and figures (default runs/doctor-<time>-<suffix>)")
    add_compare_parser(sub)
    add_search_parser(sub)
    from .serving import add_parsers
    add_parsers(sub)  # predict, evaluate: a run folder as a model
    add_batch_size_parser(sub)
    for command in sub.choices.values():  # every command takes it (main reads it before parsing)
        command.add_argument("--debug", action="store_true", help="show the traceback of an error")
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


def add_batch_size_parser(sub) -> None:
    """``descend batch-size``: the lecture's batch-size rule beside measured throughput and validation loss."""
    bs = sub.add_parser("batch-size", help="recommend a batch size: the lecture rule and measurements side by side")
    add_job_arguments(bs, epochs_help="(unused: each size trains for --time-budget seconds)")
    bs.add_argument("--time-budget", type=float, default=1.0, help="seconds of training per batch size (default 1)")
    bs.add_argument("--memory-mb", type=float, default=1024.0, help="memory budget in MB (default 1024)")


def _cmd_batch_size(args) -> int:
    from .search.batch_size import find_batch_size
    cfg = resolve(load_config(args.config) if args.config else {}, _flag_overrides(args))
    try:
        report = find_batch_size(cfg, time_budget=args.time_budget, memory_budget_mb=args.memory_mb)
    except ValueError as e:
        raise ConfigError(str(e)) from None
    print(report.render())
    return 0


def add_search_parser(sub) -> None:
    """``descend search``: a hyperparameter search from a TOML file with a [search] table."""
    se = sub.add_parser("search", help="hyperparameter search (grid / random / coarse-to-fine) from a TOML with [search]")
    se.add_argument("config", nargs="?", type=Path, help="TOML file: a training config plus a [search] table")
    se.add_argument("--out", type=Path, help="search folder (default runs/search-<time>)")
    se.add_argument("--resume", type=Path, metavar="DIR", help="continue the search in DIR (runs only unfinished trials)")
    se.add_argument("--status", type=Path, metavar="DIR", help="print the progress and best trials of the search in DIR")
    se.add_argument("--workers", type=int, help="parallel trials (default search.workers, else 1)")
    se.add_argument("--executor", help='local (process pool) | dask (a LocalCluster) | tcp://host:port (a Dask scheduler)')
    se.add_argument("--quiet", action="store_true", help="no progress line")
    se.add_argument("--test", action="store_true",
                    help="at the end, train best.toml into DIR/best-run and report its test accuracy (the only use "
                         "of the test split)")


def _test_best(best: Path, folder: Path) -> None:
    """``descend search --test``: train the chosen configuration once and report its test accuracy."""
    from .jobs import run
    final = run(resolve(load_config(best)), folder / "best-run", progress=False)
    print(f"chosen configuration: test accuracy {final['test_accuracy']:.4f} (validation "
          f"{final['val_accuracy']:.4f}); run folder {folder / 'best-run'}")


def _cmd_search(args) -> int:
    from .search.command import search_command, status_command
    if args.status:
        return status_command(args.status)
    try:
        return search_command(args.config, out=args.out, resume=args.resume, workers=args.workers,
                              executor=args.executor, quiet=args.quiet, on_best=_test_best if args.test else None)
    except KeyboardInterrupt:
        print("\ndescend: search interrupted; continue it with descend search --resume DIR", file=sys.stderr)
        return 130
    except RuntimeError as e:
        print(f"descend: error: {e}", file=sys.stderr)
        return 1


def _train(args) -> int:
    from .jobs import ABORTED, RUN_FILES, check_resume, run, run_config
    flags = _flag_overrides(args)
    if args.resume:  # the run's own config; flags may change limits, e.g. --epochs to train longer
        if args.config or args.out or args.overwrite:
            raise ConfigError("--resume RUN cannot be combined with --config/--out/--overwrite (RUN continues with its "
                              "own config.toml in its own folder); drop those flags")
        if not args.resume.is_dir():
            raise ConfigError(f"cannot resume {args.resume} (no such folder); give the folder of an earlier run")
        old = resolve(run_config(args.resume))
        check_resume(old, flags)
        cfg, out = resolve(old, flags), args.resume
    else:
        if args.overwrite and not args.out:
            raise ConfigError("--overwrite needs --out (the run folder to replace); add --out RUN")
        cfg = resolve(load_config(args.config) if args.config else {}, flags)
        out = args.out
    from .transfer import transfer_options
    try:
        transfer = transfer_options(args)
    except ValueError as e:
        raise ConfigError(str(e)) from None
    final = run(cfg, out, resume=bool(args.resume), overwrite=args.overwrite, progress=False if args.quiet else True,
                distributed=args.distributed, transfer=transfer)
    if final.get("rank", 0) != 0:
        return 0  # one rank reports: rank 0
    val = final["val_accuracy"]  # None when training stopped inside its first epoch
    if args.resume and final["trained_steps"] == 0:
        print(f"nothing to do: {final['out']} already met its limits ({final['stop_reason']}); "
              "raise --epochs or --steps (and give --patience 0 to an early-stopped run) to train further")
        return EXIT_OK
    print(f"\n{final['dataset']}: test accuracy {final['test_accuracy']:.4f} (validation "
          f"{'—' if val is None else f'{val:.4f}'}), {final['epochs']} epochs / {final['steps']} steps in "
          f"{final['train_seconds']:.1f} s")
    print(f"stopped: {final['stop_reason']}")
    print(f"run folder: {final['out']}  ({', '.join(RUN_FILES)})")
    reason = final["stop_reason"] or ""
    if ABORTED[0] in reason:
        print(f"descend: error: training diverged ({reason}); the last good θ is in {final['out']}; lower --lr",
              file=sys.stderr)
        return EXIT_DIVERGED
    if ABORTED[1] in reason:
        print(f"descend: interrupted ({reason}); the checkpoint is saved: continue with "
              f"descend train --resume {final['out']}", file=sys.stderr)
        return EXIT_INTERRUPTED
    return EXIT_OK


def _doctor(args) -> int:
    from .diagnose.doctor import doctor
    from .runfolder import RunFolder
    epochs = args.epochs
    args.epochs = None  # --epochs caps the doctor's short run, not the config's train.epochs
    cfg = resolve(load_config(args.config) if args.config else {}, _flag_overrides(args))
    folder = RunFolder.claim(args.out, existing="overwrite") if args.out else RunFolder.new("runs", "doctor")
    try:
        report = doctor(cfg, folder.path, epochs=epochs or 8)
    except BaseException:
        folder.discard()
        raise
    finally:
        folder.release()
    print(report.render())
    print(f"report folder: {folder.path}")
    return EXIT_OK if report.ok else EXIT_RUNTIME  # 1: faults were found


def _one_line(e: BaseException) -> tuple[str, int]:
    """The error's line and exit status (see the module docstring)."""
    from .runfolder import FolderBusy
    text = " ".join(str(e).split()) or type(e).__name__
    if isinstance(e, FolderBusy):
        return text, EXIT_RUNTIME
    if isinstance(e, (ValueError, TypeError)):  # the library's user errors: config, data, flags, checkpoints
        return text, EXIT_USAGE
    if isinstance(e, FileNotFoundError) and not getattr(e, "filename", None):  # a path the user gave (a run, a
        return text, EXIT_USAGE  # data file) that holds nothing to read: the library's message names it
    if isinstance(e, MemoryError):
        return "out of memory (MemoryError); use a smaller --batch-size or model", EXIT_RUNTIME
    if isinstance(e, OSError):
        where = f" {e.filename}" if getattr(e, "filename", None) else ""
        return f"cannot access{where} ({e.strerror or text}); check the path and its permissions", EXIT_RUNTIME
    return (f"{type(e).__name__}: {text} (an unexpected failure); rerun with --debug for the traceback and report it",
            EXIT_RUNTIME)


def main(argv=None) -> int:
    """Run the ``descend`` command and return its exit status (see the module docstring)."""
    argv = list(sys.argv[1:] if argv is None else argv) or ["train"]
    debug = "--debug" in argv
    try:
        parser = _parser()
        args = parser.parse_args(argv)
        from .serving import COMMANDS
        commands = {"train": _train, "doctor": _doctor, "compare": _compare, "search": _cmd_search,
                    "batch-size": _cmd_batch_size, **COMMANDS}
        if args.command not in commands:
            raise UsageError("no command given (descend runs a command); use `descend train`, `descend doctor` or `descend compare`")
        return commands[args.command](args)
    except SystemExit as e:  # --help and --version
        return e.code if isinstance(e.code, int) else EXIT_OK
    except BrokenPipeError:  # the reader of the output (e.g. `| head`) stopped reading: not a failure
        return EXIT_OK
    except KeyboardInterrupt:
        if debug:
            raise
        print("descend: interrupted (Ctrl-C before training started); nothing was saved", file=sys.stderr)
        return EXIT_INTERRUPTED
    except Exception as e:
        if debug:
            raise
        text, code = _one_line(e)
        print(f"descend: error: {text}", file=sys.stderr)
        return code


if __name__ == "__main__":
    sys.exit(main())
