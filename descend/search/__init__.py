"""Hyperparameter search: spaces over config keys, grid / random / coarse-to-fine, a SQLite trial store, executors.

Trials are ``fit`` runs built through ``descend.config`` and scored on the validation split only;
``run_search`` coordinates them on any ``concurrent.futures.Executor`` (a local process pool by
default, or Dask), writing one row per trial to the search folder's store.
"""
from .report import best_config, trial_table, write_report
from .runner import make_executor, run_search
from .space import Choice, IntUniform, LogUniform, PowersOfTwo, Space, SpaceError, Uniform, space_from_toml
from .spec import SearchSpec, preflight, spec_from_toml
from .store import Store
from .strategy import (Edge, EdgeWarning, Stage, Strategy, coarse_to_fine, edges, grid, optimize, optuna_tpe, random,
                       trial_seed)
from .trial import apply, run_trial

__all__ = ["LogUniform", "Uniform", "IntUniform", "Choice", "PowersOfTwo", "Space", "SpaceError", "space_from_toml",
           "Stage", "Strategy", "grid", "random", "coarse_to_fine", "optuna_tpe", "optimize", "edges", "Edge", "EdgeWarning",
           "trial_seed", "run_trial", "apply", "SearchSpec", "spec_from_toml", "preflight", "Store", "run_search",
           "make_executor", "trial_table", "best_config", "write_report"]
