"""The one visible table of ``descend compare``: optimizer names → a fresh optimizer for a learning rate, and test functions."""
from __future__ import annotations

from ..optim import BFGS, LBFGS, SGD, Adagrad, Adam, Newton, RMSprop
from ..optim.testfunctions import BEALE, BOOTH, HIMMELBLAU, ROSENBROCK, SADDLE, quadratic

__all__ = ["OPTIMIZERS", "FUNCTION_LR", "NETWORK_LR", "functions", "make_optimizer", "parse_names", "parse_lrs"]

# name → factory(lr). Second-order methods take one iteration per step (max_iter=1), so a trajectory
# has one point per iteration, as in the lectures' pictures.
OPTIMIZERS = {
    "sgd": lambda lr: SGD(lr=lr),
    "momentum": lambda lr: SGD(lr=lr, momentum=0.9),
    "nesterov": lambda lr: SGD(lr=lr, momentum=0.9, nesterov=True),
    "adagrad": lambda lr: Adagrad(lr=lr),
    "rmsprop": lambda lr: RMSprop(lr=lr),
    "adam": lambda lr: Adam(lr=lr),
    "bfgs": lambda lr: BFGS(lr=lr, max_iter=1, max_eval=25),
    "lbfgs": lambda lr: LBFGS(lr=lr, max_iter=1, max_eval=25),
    "newton": lambda lr: Newton(lr=lr),
}

# default learning rates on the 2-D functions: stable on Rosenbrock from (−1.2, 1) for 300 steps
FUNCTION_LR = {"sgd": 1e-3, "momentum": 1e-3, "nesterov": 1e-3, "adagrad": 0.3, "rmsprop": 1e-2, "adam": 0.05,
               "bfgs": 1.0, "lbfgs": 1.0, "newton": 1.0}
# default learning rates on networks (the optimizers' usual defaults); second-order ones are refused there
NETWORK_LR = {"sgd": 0.05, "momentum": 0.01, "nesterov": 0.01, "adagrad": 0.01, "rmsprop": 1e-3, "adam": 1e-3}


def functions(*, condition: float = 10.0) -> dict:
    """Test-function name → Function2D (``condition``: the quadratic's condition number)."""
    return {f.name: f for f in (ROSENBROCK, BEALE, HIMMELBLAU, SADDLE, BOOTH, quadratic(condition=condition))}


def parse_names(text: str, known) -> list:
    """"sgd,adam" → ["sgd", "adam"]; an unknown or repeated name raises ValueError listing the known ones."""
    names = [n.strip().lower() for n in str(text).split(",") if n.strip()]
    if not names:
        raise ValueError(f"no optimizer named; choose from {', '.join(known)}")
    for n in names:
        if n not in known:
            raise ValueError(f"unknown optimizer {n!r}; known: {', '.join(known)}")
    dup = sorted({n for n in names if names.count(n) > 1})
    if dup:
        raise ValueError(f"optimizer {dup[0]!r} is named twice; name each once")
    return names


def parse_lrs(items, names, *, auto: bool = False) -> dict:
    """["adam=0.1", "sgd=1e-3"] → {"adam": 0.1, "sgd": 0.001}; each name must be one of ``names``, each value > 0
    (or, with ``auto``, the word auto: the network race picks that lr with the LR range test)."""
    out = {}
    for item in items or ():
        name, sep, value = str(item).partition("=")
        name = name.strip().lower()
        if not sep:
            raise ValueError(f"--lr {item!r} must look like name=value, e.g. adam=0.01")
        if name not in names:
            raise ValueError(f"--lr {item!r} names {name!r}, which is not among the optimizers compared ({', '.join(names)})")
        if value.strip().lower() == "auto" and auto:
            out[name] = "auto"
            continue
        try:
            lr = float(value)
        except ValueError:
            raise ValueError(f"--lr {item!r}: {value!r} is not a number{' (or auto)' if auto else ''}") from None
        if not lr > 0 or lr == float("inf"):
            raise ValueError(f"--lr {item!r}: the learning rate must be a finite number > 0")
        out[name] = lr
    return out


def make_optimizer(name: str, lr: float):
    return OPTIMIZERS[name](lr)
