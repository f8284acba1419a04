"""What ``descend compare`` does, as library calls: parse the names, run the race, write the figures, return the table."""
from __future__ import annotations

import time
from pathlib import Path

from ..config import ConfigError
from .names import FUNCTION_LR, OPTIMIZERS, functions, make_optimizer, parse_lrs, parse_names

__all__ = ["compare_function_job", "compare_network_job", "FUNCTION_FILES", "NETWORK_FILES"]

FUNCTION_FILES = ("trajectories.png", "gap.png", "table.txt")
NETWORK_FILES = ("curves.png", "table.txt")


def _parse_start(text):
    if text is None:
        return None
    parts = str(text).split(",")
    try:
        x, y = (float(p) for p in parts)
    except ValueError:
        raise ConfigError(f"--start {text!r} must be two numbers x,y, e.g. --start -1.2,1") from None
    return x, y


def compare_function_job(*, function: str = "rosenbrock", condition: float = 10.0, optimizers: str | None = None,
                         steps: int = 300, lrs=(), start: str | None = None, out=None, gif: bool = False):
    """Race the named optimizers on the named test function and write ``FUNCTION_FILES`` (+ trajectories.gif)
    into ``out``. Returns (race, out folder). Bad names or values raise ConfigError (one line at the CLI)."""
    from .figures import animate_trajectories, plot_gap, plot_trajectories
    from .race import compare_on_function
    try:
        table = functions(condition=condition)
        if function not in table:
            raise ConfigError(f"unknown function {function!r}; known: {', '.join(table)}")
        names = parse_names(optimizers or ",".join(OPTIMIZERS), list(OPTIMIZERS))
        lr = {**{n: FUNCTION_LR[n] for n in names}, **parse_lrs(lrs, names)}
        race = compare_on_function(table[function], {n: make_optimizer(n, lr[n]) for n in names}, steps=steps,
                                   start=_parse_start(start))
    except ValueError as e:  # includes ConfigError
        raise ConfigError(str(e)) from None
    out = Path(out) if out is not None else Path("runs") / f"compare-{function}-{time.strftime('%Y%m%d-%H%M%S')}"
    plot_trajectories(race, out / "trajectories.png")
    plot_gap(race, out / "gap.png")
    if gif:
        animate_trajectories(race, out / "trajectories.gif")
    lr_line = "lr: " + ", ".join(f"{n}={lr[n]:g}" for n in names)
    (out / "table.txt").write_text(race.table() + "\n" + lr_line + "\n")
    return race, out


def compare_network_job(cfg: dict, *, optimizers: str | None = None, lrs=(), epochs: int | None = None,
                        target_loss: float | None = None, out=None):
    """Race the named optimizers on the config's network and write ``NETWORK_FILES`` into ``out``.
    Returns (race, out folder)."""
    from .figures import plot_network
    from .network import compare_on_network
    try:
        names = parse_names(optimizers or "adam,sgd,momentum,rmsprop", list(OPTIMIZERS))
        race = compare_on_network(cfg, names, lrs=parse_lrs(lrs, names, auto=True), epochs=epochs,
                                  target_loss=target_loss)
    except ValueError as e:
        raise ConfigError(str(e)) from None
    out = Path(out) if out is not None else Path("runs") / f"compare-{cfg['data']['dataset']}-{time.strftime('%Y%m%d-%H%M%S')}"
    plot_network(race, out / "curves.png")
    (out / "table.txt").write_text(race.table() + "\n")
    return race, out
