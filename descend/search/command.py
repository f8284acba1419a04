"""``descend search`` as a library call: read the TOML, run or resume the search, print the table, write the report."""
from __future__ import annotations

import copy
import sys
import time
import warnings
from pathlib import Path

from ..config import load_config, resolve
from .report import trial_table, write_report
from .runner import run_search
from .space import SpaceError
from .spec import preflight, spec_from_toml
from .store import DB_NAME, Store
from .strategy import EdgeWarning

__all__ = ["search_command", "status_command", "SEARCH_FILE"]

SEARCH_FILE = "search.toml"  # the search's own config, copied into its folder (what --resume reads)


def _load(path) -> tuple[dict, "object", dict]:
    raw = load_config(path)
    if "search" not in raw:
        raise SpaceError(f"{path} has no [search] table; add one with a [search.space] (see examples/search.toml)")
    table = copy.deepcopy(raw)
    spec = spec_from_toml(table.pop("search"))
    return resolve(table), spec, raw


def search_command(config=None, *, out=None, resume=None, workers=None, executor=None, quiet=False,
                   on_best=None) -> int:
    """Run ``descend search``; returns the exit status (0 finished). ``on_best(path of best.toml, folder)``
    is called at the end when given (``--test``: train the chosen configuration and touch the test split once)."""
    import tomli_w
    if resume is not None:
        folder = Path(resume)
        source = config or folder / SEARCH_FILE
        if not Path(source).is_file():
            raise SpaceError(f"--resume {folder}: {source} does not exist (is {folder} a search folder?)")
    elif config is None:
        raise SpaceError("descend search needs a config file with a [search] table, or --resume DIR / --status DIR")
    else:
        source = config
    base, spec, raw = _load(source)
    overrides = {k: v for k, v in (("workers", workers), ("executor", executor)) if v is not None}
    if overrides:
        spec = spec_from_toml({**raw["search"], **overrides})
    if resume is None:
        folder = Path(out) if out else Path("runs") / f"search-{time.strftime('%Y%m%d-%H%M%S')}"
        preflight(base, spec.space)  # bad input is refused before the folder is made
        if (folder / DB_NAME).exists():
            raise SpaceError(f"{folder} already holds a search; continue it with --resume {folder} or choose another --out")
        folder.mkdir(parents=True, exist_ok=True)
        (folder / SEARCH_FILE).write_text(tomli_w.dumps(raw))  # first: what --resume reads after a kill
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", EdgeWarning)
        result = run_search(base, spec, folder, resume=resume is not None, progress=not quiet)
    trials = result["trials"]
    print(trial_table(trials, metric=spec.metric, maximize=spec.maximize, limit=20))
    for w in caught:
        if issubclass(w.category, EdgeWarning):
            print(f"warning: {w.message}")
        else:
            warnings.warn_explicit(w.message, w.category, w.filename, w.lineno)
    written = write_report(folder, base, trials, metric=spec.metric, maximize=spec.maximize, space=spec.space)
    counts = {s: sum(t["status"] == s for t in trials) for s in ("done", "diverged", "failed")}
    print(f"{len(trials)} trials: {counts['done']} done, {counts['diverged']} diverged, {counts['failed']} failed")
    if (folder / "best.toml").exists():
        print(f"best config: {folder / 'best.toml'}  (descend train --config {folder / 'best.toml'})")
    print(f"search folder: {folder}  ({', '.join(p.name for p in written)}, search.sqlite)")
    if on_best is not None and (folder / "best.toml").exists():
        on_best(folder / "best.toml", folder)
    return 0


def status_command(folder) -> int:
    """``descend search --status DIR``: the counts and the best trials, read without disturbing a running search."""
    folder = Path(folder)
    store = Store(folder, lock=False, create=False)
    try:
        metric = store.get_meta("fingerprint")["metric"]
        trials = store.trials()
        counts = store.counts()
    finally:
        store.close()
    print(" · ".join(f"{n} {s}" for s, n in counts.items()))
    if trials:
        print(trial_table(trials, metric=metric, maximize=metric != "val_loss", limit=10))
    sys.stdout.flush()
    return 0
