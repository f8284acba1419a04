"""The training step with divergence's rollback: θ before a step is kept only when a rule needs it."""
from __future__ import annotations

import numpy as np

from .objective import Objective
from .state import FitState, Snapshot
from .stopping import Divergence

__all__ = ["Guard", "SNAPSHOT_EVERY"]

# Divergence rolls back to the last good θ kept every this many steps: the optimizer writes θ into the
# snapshot in its own pass, so keeping it costs a fraction of a copy per step (benchmarks/NOTES.md).
SNAPSHOT_EVERY = 10


class Guard:
    """The optimizer step with divergence's rollback and ‖Δθ‖: θ before a step is kept only when needed.

    Every ``SNAPSHOT_EVERY`` steps the optimizer writes θ before its update into a candidate snapshot
    (buffers copied just before); when that step's loss — the loss *of that θ* — is good, the candidate
    becomes the last good θ. A diverging loss puts the last good θ back.
    """

    def __init__(self, state: FitState, rule: Divergence | None, needs_change: bool):
        self.state, self.rule, self.diverged = state, rule, False
        self.fused = getattr(state.optimizer, "accepts_keep", False)  # a user's own optimizer may lack step(keep=)
        if rule is not None and state.good is None:
            state.good = Snapshot(state.params)
        self.candidate = Snapshot(state.params) if rule is not None else None
        self.before = np.empty_like(state.params.theta) if needs_change else None
        self.snapped = False

    def step(self, objective: Objective, lr: float) -> float:
        state, theta = self.state, self.state.params.theta
        self.snapped = self.rule is not None and (state.step % SNAPSHOT_EVERY == 0 or state.good.step < 0)
        if self.snapped:
            self.candidate.take(state.params, state.step, theta=False)  # buffers now; θ comes from the step
        keep = self.before if self.before is not None else (self.candidate.theta if self.snapped else None)
        if keep is not None and not self.fused:
            np.copyto(keep, theta)
        if self.fused:
            value = state.optimizer.step(theta, objective, lr=lr, keep=keep)
        else:
            value = state.optimizer.step(theta, objective, lr=lr)
        if self.snapped and keep is self.before:
            np.copyto(self.candidate.theta, self.before)
        return value

    def check(self, value: float) -> str | None:
        """After a step: the divergence reason (θ rolled back), or None; records ‖Δθ‖ when a rule needs it."""
        state = self.state
        if self.rule is not None:
            reason = self.rule.check(value, state.history.initial_loss, state.step)
            if reason:
                (state.good if state.good.step >= 0 else self.candidate).put(state.params)
                self.diverged = True
                return reason
            if self.snapped:  # the candidate's θ has just shown a good loss
                state.good, self.candidate = self.candidate, state.good
        if self.before is not None:  # θ before the step is not needed any more: Δθ in its place
            np.subtract(state.params.theta, self.before, out=self.before)
            state.history.param_change.append(float(np.linalg.norm(self.before)))
        return None
