"""BFGS for small full-batch problems: a dense inverse-Hessian estimate built from rank-two updates, with a line search."""
import numpy as np

from .base import Optimizer, check_theta, evaluate
from .linesearch import backtracking, set_search_settings, strong_wolfe
from ..common.validate import positive_int

__all__ = ["BFGS", "MAX_SIZE"]

MAX_SIZE = 4096  # default limit on θ's size: H is then 4096² float64 values = 128 MiB


def _mib(n: int) -> str:
    size = 8.0 * n * n
    return f"{size / 2 ** 30:.1f} GiB" if size >= 2 ** 30 else f"{size / 2 ** 20:.1f} MiB"


class BFGS(Optimizer):
    """Broyden–Fletcher–Goldfarb–Shanno (Nocedal & Wright, Algorithm 6.1; CS231n "Second-order methods").

    H approximates the inverse Hessian (D × D, float64). Each iteration:

        d = −H·g                                  (−g when H·g is not a descent direction: H is reset to I)
        t from the line search along d            (first iteration: t = min(1, 1/‖g‖₁)·lr, later t = lr)
        s = t·d,  θ ← θ + s,  y = g(θ) − g_old,  ρ = 1/(yᵀs)
        H ← (I − ρ·s·yᵀ)·H·(I − ρ·y·sᵀ) + ρ·s·sᵀ   (skipped when yᵀs ≤ 1e-10: the curvature condition fails)

    H₀ = I; before the first update it is scaled to (yᵀs / yᵀy)·I (N&W eq. 6.20), as L-BFGS's H_diag.
    line_search="strong_wolfe" (default) or "backtracking" are the functions L-BFGS uses
    (``descend.optim.linesearch``); None takes the fixed step t. The arithmetic is float64 whatever
    θ's dtype.

    One ``step`` runs up to ``max_iter`` iterations and ``max_eval`` closure calls on a full-batch
    objective and stops early when max|g| ≤ tolerance_grad, max|s| ≤ tolerance_change or
    |Δloss| < tolerance_change (the stopping rules of L-BFGS). ``max_iter=1`` makes one ``step`` one
    iteration (what ``descend compare`` draws).

    Memory: D² float64 values (O(D²), which is why networks use L-BFGS). θ larger than ``max_size``
    (default ``MAX_SIZE`` = 4096, H = 128 MiB) is refused with the memory it would need; raise
    ``max_size`` knowingly.

    State: ``H`` (D × D float64, created by ``init_state`` or the first step), ``func_evals``; ``t``
    counts iterations. Defaults: lr=1, max_iter=20, max_eval=max_iter·5//4, tolerance_grad=1e-7,
    tolerance_change=1e-9, line_search="strong_wolfe", max_size=4096.
    """

    needs_full_batch = True  # a line search on a changing (mini-batch) objective misleads it

    _hyper = ("lr", "max_iter", "max_eval", "tolerance_grad", "tolerance_change", "line_search", "max_size")
    _scalars = ("func_evals",)

    def __init__(self, *, lr=1.0, max_iter=20, max_eval=None, tolerance_grad=1e-7, tolerance_change=1e-9,
                 line_search="strong_wolfe", max_size=MAX_SIZE):
        super().__init__()
        set_search_settings(self, lr=lr, max_iter=max_iter, max_eval=max_eval, tolerance_grad=tolerance_grad,
                            tolerance_change=tolerance_change, line_search=line_search)
        self.max_size = positive_int("max_size", max_size)
        self.func_evals = 0
        self._H = None
        self._h_scaled = False  # H₀ = I has been scaled by the first update (it is inside H after that)

    # ------------------------------------------------------------------ the iteration
    def step(self, theta, closure, lr=None, keep=None):
        check_theta(theta)
        self._check_size(theta)  # before the closure runs: a too-large θ is refused with nothing done
        lr, keep, loss, g = self._begin(theta, closure, lr, keep)
        if keep is not None:  # θ moves during the line search: keep it now
            np.copyto(keep, theta)
        g = g.astype(np.float64)
        first_loss = loss
        evals = 1
        self.func_evals += 1
        if self._H is None:
            self._H = np.eye(theta.size)
        if np.max(np.abs(g)) <= self.tolerance_grad:
            return first_loss
        H = self._H
        n_iter = 0
        while n_iter < self.max_iter:
            n_iter += 1
            self.t += 1
            d = -(H @ g)
            gtd = float(g @ d)
            if gtd > -self.tolerance_change:  # H lost positive definiteness (rounding): restart from steepest descent
                H[...] = np.eye(theta.size)
                d, gtd = -g, -float(g @ g)
                if gtd > -self.tolerance_change:
                    break
            t = min(1.0, 1.0 / float(np.sum(np.abs(g)))) * lr if self.t == 1 else lr
            x0 = theta.astype(np.float64)

            def phi(step):
                theta[...] = x0 + step * d
                f_val, grad = evaluate(closure, theta)
                theta[...] = x0
                return f_val, grad.astype(np.float64)

            if self.line_search is None:
                new_loss, new_g = phi(t)
                ls_evals = 1
            elif self.line_search == "strong_wolfe":
                new_loss, new_g, t, ls_evals = strong_wolfe(phi, t, d, loss, g, gtd,
                                                            tolerance_change=self.tolerance_change,
                                                            max_ls=max(1, self.max_eval - evals))
            else:
                new_loss, new_g, t, ls_evals = backtracking(phi, t, d, loss, g, gtd, max_ls=max(1, self.max_eval - evals))
            theta[...] = x0 + t * d
            s = theta.astype(np.float64) - x0  # the step θ really took (after rounding to its dtype)
            y = new_g - g
            self._update(H, s, y)
            prev_loss, loss, g = loss, new_loss, new_g
            evals += ls_evals
            self.func_evals += ls_evals
            if np.max(np.abs(g)) <= self.tolerance_grad or n_iter == self.max_iter or evals >= self.max_eval:
                break
            if np.max(np.abs(s)) <= self.tolerance_change or abs(loss - prev_loss) < self.tolerance_change:
                break
        return self._end(theta, keep, first_loss)

    def _update(self, H, s, y):
        """The BFGS rank-two update of the inverse Hessian, in place (N&W eq. 6.17, expanded)."""
        ys = float(y @ s)
        if ys <= 1e-10:
            return
        if not self._h_scaled:
            H *= ys / float(y @ y)
            self._h_scaled = True
        hy = H @ y
        H += ((ys + float(y @ hy)) / (ys * ys)) * np.outer(s, s)
        H -= (np.outer(hy, s) + np.outer(s, hy)) / ys

    # ------------------------------------------------------------------ state (protocol: see Optimizer)
    def init_state(self, theta):
        """Check θ (size limit, existing state) and create H = I."""
        check_theta(theta)
        self._check_size(theta)
        if self._H is None:
            self._H = np.eye(theta.size)

    def _check_size(self, theta):
        n = theta.size
        if n > self.max_size:
            raise ValueError(f"BFGS keeps a dense {n} × {n} float64 inverse-Hessian estimate: θ of size {n} would "
                             f"need {_mib(n)}, over the limit max_size={self.max_size} ({_mib(self.max_size)}); "
                             f"use LBFGS for a θ this large, or pass BFGS(max_size={n}) if the memory is there")
        if self._H is not None and self._H.shape != (n, n):
            raise ValueError(f"optimizer state 'H' has shape {self._H.shape}, but theta has size {n}; "
                             f"use a new optimizer for a new theta")

    def state_dict(self, *, out=None) -> dict:
        d = super().state_dict(out=out)
        d["scaled"] = bool(self._h_scaled)
        return d

    def _state_arrays(self):
        return () if self._H is None else (("H", self._H),)

    def load_state_dict(self, d) -> None:
        if isinstance(d, dict) and "scaled" in d and not isinstance(d["scaled"], (bool, np.bool_)):
            raise ValueError(f"entry 'scaled' must be a bool, got {d['scaled']!r}")
        rest = {k: v for k, v in d.items() if k != "scaled"} if isinstance(d, dict) else d
        if isinstance(d, dict) and "scaled" not in d:
            raise ValueError("entry 'scaled' is missing from the BFGS state")
        super().load_state_dict(rest)
        self._h_scaled = bool(d["scaled"])

    def _load_buffers(self, fresh, d):
        if "H" not in d:
            if d["t"] > 0:
                raise ValueError(f"entry 'H' is missing from the BFGS state (t = {d['t']})")
            return {}
        h = d["H"]
        if not isinstance(h, np.ndarray) or h.ndim != 2 or h.shape[0] != h.shape[1] or h.dtype != np.float64:
            raise ValueError(f"entry 'H' must be a square 2-D float64 array, got "
                             f"{getattr(h, 'shape', type(h).__name__)} {getattr(h, 'dtype', '')}")
        if h.shape[0] > fresh.max_size:
            raise ValueError(f"entry 'H' is {h.shape[0]} × {h.shape[0]}, over max_size={fresh.max_size}")
        if self._H is not None and h.shape != self._H.shape:
            raise ValueError(f"entry 'H' has shape {h.shape}, but this optimizer's state has shape {self._H.shape}")
        return {"H": h}

    def _set_arrays(self, arrays):
        self._H = np.array(arrays["H"], dtype=np.float64, order="C", copy=True) if arrays else None
