"""History: what a training run did — per-step loss and lr, per-epoch metrics, and why it stopped."""
from __future__ import annotations

import math
from dataclasses import dataclass, field


@dataclass
class History:
    """The record of one ``fit``: lists a person (or a stopping rule, or a plot) can read.

    ``step_loss[t]`` is the mini-batch objective (data loss + L2) at step t before its update,
    ``step_lr[t]`` the learning rate used; ``epochs`` holds one dict per finished epoch with
    ``epoch, step, train_loss, train_accuracy`` (running averages over the epoch's batches) and
    ``val_loss, val_accuracy`` when validation data is given; ``param_change`` holds ‖Δθ‖ per
    step when a rule needs it; ``elapsed`` is the training wall time in seconds (across resumes);
    ``best`` describes the epoch whose θ early stopping restored.
    """

    step_loss: list = field(default_factory=list)
    step_lr: list = field(default_factory=list)
    param_change: list = field(default_factory=list)
    epochs: list = field(default_factory=list)
    stop_reason: str | None = None
    best: dict | None = None
    elapsed: float = 0.0

    @property
    def steps(self) -> int:
        return len(self.step_loss)

    @property
    def initial_loss(self) -> float | None:
        return self.step_loss[0] if self.step_loss else None

    def metric(self, name: str) -> list:
        """The per-epoch values of ``name`` (e.g. "val_loss"), skipping epochs that lack it."""
        return [e[name] for e in self.epochs if e.get(name) is not None]

    def last(self, name: str):
        values = self.metric(name)
        return values[-1] if values else None

    def to_dict(self) -> dict:
        return {"step_loss": [_json_float(x) for x in self.step_loss],
                "step_lr": [_json_float(x) for x in self.step_lr],
                "param_change": [_json_float(x) for x in self.param_change],
                "epochs": [{k: _json_float(v) for k, v in e.items()} for e in self.epochs],
                "stop_reason": self.stop_reason, "best": self.best, "elapsed": self.elapsed}

    @classmethod
    def from_dict(cls, d: dict) -> "History":
        return cls(step_loss=[float(x) for x in d["step_loss"]], step_lr=[float(x) for x in d["step_lr"]],
                   param_change=[float(x) for x in d["param_change"]],
                   epochs=[{k: _from_json(v) for k, v in e.items()} for e in d["epochs"]],
                   stop_reason=d["stop_reason"], best=d.get("best"), elapsed=float(d.get("elapsed", 0.0)))


_NONFINITE = ("nan", "inf", "-inf")


def _json_float(x):
    # JSON has no NaN/inf (a run that diverged with divergence=None has them in its losses and metrics):
    # the checkpoint's JSON keeps them as strings that _from_json / float() read back
    return repr(x) if isinstance(x, float) and not math.isfinite(x) else x


def _from_json(x):
    return float(x) if isinstance(x, str) and x in _NONFINITE else x
