"""The search folder's store: one SQLite database (WAL, busy timeout), one row per trial, written by the coordinator only.

Workers never see it: they return plain results and the coordinating process writes each finished
trial in its own transaction, so a reader (``descend search --status``, the plots) never blocks it
and a SIGKILL loses no trial that had finished. ``meta`` holds the search's fingerprint (space,
strategy, seed, base config) so ``--resume`` refuses a store made by a different search.
"""
from __future__ import annotations

import json
import sqlite3
import time
from pathlib import Path

from ..runfolder import RunFolder
from .space import SpaceError

__all__ = ["Store", "STATUSES", "FINISHED", "DB_NAME"]

DB_NAME = "search.sqlite"
STATUSES = ("pending", "running", "done", "diverged", "failed")
FINISHED = ("done", "diverged", "failed")  # final: a resumed search never runs these again

_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS trials (
    id INTEGER PRIMARY KEY,
    stage INTEGER NOT NULL, idx INTEGER NOT NULL,
    params TEXT NOT NULL, seed INTEGER NOT NULL, epochs INTEGER,
    status TEXT NOT NULL CHECK (status IN ('pending', 'running', 'done', 'diverged', 'failed')),
    score REAL, val_loss REAL, val_accuracy REAL, steps INTEGER, diverged_step INTEGER,
    stop_reason TEXT, error TEXT, curve TEXT,
    started REAL, finished REAL, seconds REAL,
    UNIQUE (stage, idx)
);
"""

# the columns of a trial table that a search's answer consists of (timings and ids excluded)
RESULT_COLUMNS = ("stage", "idx", "params", "seed", "epochs", "status", "score", "val_loss", "val_accuracy", "steps",
                  "diverged_step", "stop_reason", "error")


class Store:
    """The SQLite store of the search in ``folder``; ``lock=True`` takes the folder for this process, as a run
    folder is taken (``descend.runfolder``: an fcntl lock naming the holder; a second process gets ``FolderBusy``)."""

    def __init__(self, folder, *, lock: bool = True, create: bool = True):
        self.folder = Path(folder)
        self.path = self.folder / DB_NAME
        if not create and not self.path.is_file():
            raise SpaceError(f"{self.folder} holds no {DB_NAME}: not a search folder (start one with descend search)")
        self._lock = RunFolder.claim(self.folder, existing="overwrite") if lock else None
        self.folder.mkdir(parents=True, exist_ok=True)
        self.db = sqlite3.connect(self.path, timeout=30.0, isolation_level=None)  # explicit transactions
        self.db.row_factory = sqlite3.Row
        self.db.execute("PRAGMA busy_timeout = 30000")
        if lock:
            self.db.execute("PRAGMA journal_mode = WAL")
            self.db.execute("PRAGMA synchronous = NORMAL")  # WAL + NORMAL: a commit survives a process kill
            self.db.executescript(_SCHEMA)

    def close(self) -> None:
        self.db.close()
        if self._lock is not None:
            self._lock.release()
            self._lock = None

    # ------------------------------------------------------------------------------------- meta
    def get_meta(self, key: str):
        row = self.db.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
        return None if row is None else json.loads(row[0])

    def set_meta(self, values: dict) -> None:
        with self._transaction():
            self.db.executemany("INSERT OR REPLACE INTO meta (key, value) VALUES (?, ?)",
                                [(k, json.dumps(v, sort_keys=True)) for k, v in values.items()])

    # ----------------------------------------------------------------------------------- trials
    def add_stage(self, stage: int, plan: list[dict], seeds: list[int], epochs: int | None) -> None:
        """Insert a stage's whole plan as pending rows, in one transaction."""
        with self._transaction():
            self.db.executemany(
                "INSERT INTO trials (stage, idx, params, seed, epochs, status) VALUES (?, ?, ?, ?, ?, 'pending')",
                [(stage, i, json.dumps(p, sort_keys=True), s, epochs) for i, (p, s) in enumerate(zip(plan, seeds))])

    def mark_running(self, ids: list[int]) -> None:
        with self._transaction():
            self.db.executemany("UPDATE trials SET status = 'running', started = ? WHERE id = ?",
                                [(time.time(), i) for i in ids])

    def finish(self, trial_id: int, result: dict) -> None:
        """Record a finished trial (one transaction): status, metrics, error, validation curve, timings."""
        with self._transaction():
            self.db.execute(
                "UPDATE trials SET status = ?, score = ?, val_loss = ?, val_accuracy = ?, steps = ?, "
                "diverged_step = ?, stop_reason = ?, error = ?, curve = ?, finished = ?, seconds = ? WHERE id = ?",
                (result["status"], result["score"], result["val_loss"], result["val_accuracy"], result["steps"],
                 result["diverged_step"], result["stop_reason"], result["error"], json.dumps(result["curve"]),
                 time.time(), result["seconds"], trial_id))

    def reset_running(self) -> int:
        """Trials left running by a killed coordinator go back to pending; returns how many."""
        with self._transaction():
            return self.db.execute("UPDATE trials SET status = 'pending', started = NULL "
                                   "WHERE status = 'running'").rowcount

    def trials(self, stage: int | None = None) -> list[dict]:
        """Every trial (of ``stage``) as a dict, params and curve decoded, in (stage, idx) order."""
        q = "SELECT * FROM trials" + (" WHERE stage = ?" if stage is not None else "") + " ORDER BY stage, idx"
        rows = self.db.execute(q, () if stage is None else (stage,)).fetchall()
        out = []
        for r in rows:
            d = dict(r)
            d["params"] = json.loads(d["params"])
            d["curve"] = json.loads(d["curve"]) if d["curve"] else []
            out.append(d)
        return out

    def counts(self) -> dict:
        c = dict.fromkeys(STATUSES, 0)
        c.update(dict(self.db.execute("SELECT status, COUNT(*) FROM trials GROUP BY status").fetchall()))
        return c

    def _transaction(self):
        return _Transaction(self.db)


class _Transaction:
    def __init__(self, db):
        self.db = db

    def __enter__(self):
        self.db.execute("BEGIN IMMEDIATE")
        return self.db

    def __exit__(self, kind, value, tb):
        self.db.execute("COMMIT" if kind is None else "ROLLBACK")
        return False
