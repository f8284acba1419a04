"""The ``[search]`` table of a config file: space, strategy, seed, metric, workers/executor — read and checked."""
from __future__ import annotations

from dataclasses import dataclass

from ..config import build_optimizer, build_schedule
from .space import Space, SpaceError, space_from_toml
from .strategy import Strategy, coarse_to_fine, grid, optuna_tpe, random
from .trial import MINIMIZED, apply

__all__ = ["SearchSpec", "spec_from_toml", "preflight", "METRICS"]

METRICS = ("val_accuracy", "val_loss")
_KEYS = {"strategy", "trials", "epochs", "stages", "seed", "metric", "top_k", "shrink", "widen", "workers",
         "executor", "space", "batch"}


@dataclass(frozen=True)
class SearchSpec:
    """A whole search: what to vary (``space``), how (``strategy``), its ``seed`` and validation ``metric``."""

    space: Space
    strategy: Strategy
    seed: int = 0
    metric: str = "val_accuracy"
    workers: int = 1
    executor: str = "local"

    def __post_init__(self):
        if self.metric not in METRICS:
            raise SpaceError(f"search.metric = {self.metric!r} is not known; choose one of {list(METRICS)} "
                             "(a search is scored on the validation split only)")
        if not (isinstance(self.seed, int) and not isinstance(self.seed, bool) and self.seed >= 0):
            raise SpaceError(f"search.seed = {self.seed!r} must be an integer ≥ 0")
        if not (isinstance(self.workers, int) and not isinstance(self.workers, bool) and self.workers >= 1):
            raise SpaceError(f"search.workers = {self.workers!r} must be an integer ≥ 1")
        if not (self.executor in ("local", "dask") or str(self.executor).startswith("tcp://")):
            raise SpaceError(f"search.executor = {self.executor!r}: use \"local\" (a process pool), \"dask\" "
                             "(a Dask LocalCluster) or the address of a Dask scheduler, tcp://host:port")

    @property
    def maximize(self) -> bool:
        return self.metric not in MINIMIZED

    def fingerprint(self, base_cfg: dict) -> dict:
        """What must match for ``--resume`` to continue a store (workers and executor may change)."""
        s = self.strategy
        return {"space": repr(self.space), "strategy": {"kind": s.kind, "top_k": s.top_k, "shrink": s.shrink,
                                                        "widen": s.widen,
                                                        "stages": [[st.trials, st.epochs] for st in s.stages]},
                "seed": self.seed, "metric": self.metric, "config": base_cfg}


def _int(table, key, default):
    v = table.get(key, default)
    if v is not None and (not isinstance(v, int) or isinstance(v, bool)):
        raise SpaceError(f"search.{key} = {v!r} must be an integer")
    return v


def spec_from_toml(table: dict) -> SearchSpec:
    """The ``[search]`` table as a SearchSpec; unknown keys, a missing space and zero trials are refused by name."""
    if not isinstance(table, dict):
        raise SpaceError("[search] must be a table")
    unknown = sorted(set(table) - _KEYS)
    if unknown:
        raise SpaceError(f"unknown key(s) {unknown} in [search]; known keys: {sorted(_KEYS)}")
    if "space" not in table:
        raise SpaceError("[search] has no [search.space] table; add e.g. "
                         "'optimizer.lr' = { log_uniform = [1e-4, 1e-1] }")
    space = space_from_toml(table["space"])
    kind = table.get("strategy", "random")
    epochs, trials = _int(table, "epochs", None), _int(table, "trials", None)
    if kind == "grid":
        strategy = grid(epochs=epochs)
        space.grid()  # refuses continuous dimensions now, before anything runs
    elif kind == "random":
        if trials is None:
            raise SpaceError("a random search needs search.trials, e.g. trials = 20")
        strategy = random(trials, epochs=epochs)
    elif kind == "optuna-tpe":
        if trials is None:
            raise SpaceError('strategy = "optuna-tpe" needs search.trials, e.g. trials = 20')
        strategy = optuna_tpe(trials, batch=_int(table, "batch", 4), epochs=epochs)
    elif kind == "coarse_to_fine":
        stages = table.get("stages")
        if not isinstance(stages, list) or not stages or not all(isinstance(s, dict) for s in stages):
            raise SpaceError("a coarse_to_fine search needs [[search.stages]] tables, each with trials and epochs")
        for s in stages:
            bad = sorted(set(s) - {"trials", "epochs"})
            if bad or "trials" not in s:
                raise SpaceError(f"a [[search.stages]] table takes trials (required) and epochs; got {sorted(s)}")
        strategy = coarse_to_fine([(s["trials"], s.get("epochs")) for s in stages], top_k=_int(table, "top_k", 3),
                                  shrink=table.get("shrink", 0.5), widen=bool(table.get("widen", False)))
    else:
        raise SpaceError(f"search.strategy = {kind!r} is not known; choose grid, random, coarse_to_fine or optuna-tpe")
    return SearchSpec(space, strategy, seed=_int(table, "seed", 0), metric=table.get("metric", "val_accuracy"),
                      workers=_int(table, "workers", 1), executor=table.get("executor", "local"))


def preflight(base_cfg: dict, space: Space) -> None:
    """Build the config at every end of every dimension: a value the config or an optimizer refuses is an
    error now, naming the key, before any trial runs or anything is written."""
    if base_cfg["train"]["batch_size"] == "auto" or any(p.get("train.batch_size") == "auto" for p in space.corners()):
        raise SpaceError('train.batch_size = "auto" is measured in wall-clock time, which would make the trial table '
                         'depend on the machine; run descend batch-size and set the number, or search over '
                         "train.batch_size = { powers_of_two = [16, 512] }")
    for point in space.corners():
        try:
            cfg = apply(base_cfg, point)
            build_optimizer(cfg)
            build_schedule(cfg)
        except ValueError as e:
            raise SpaceError(f"search.space at {point}: {e}") from None
