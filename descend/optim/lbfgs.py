"""L-BFGS for full-batch problems: two-loop recursion with strong-Wolfe or backtracking line search."""
import numpy as np

from .base import Optimizer, check_theta, evaluate
from .linesearch import backtracking, set_search_settings, strong_wolfe
from ..common.validate import positive_int

__all__ = ["LBFGS"]


class LBFGS(Optimizer):
    """Limited-memory BFGS (Nocedal 1980; Nocedal & Wright ch. 7), the algorithm of torch.optim.LBFGS.

    One ``step`` runs up to ``max_iter`` iterations (and ``max_eval`` closure calls) on a full-batch
    closure. Each iteration: direction d = −H·g by the two-loop recursion over the last
    ``history_size`` pairs (s = Δθ, y = Δg; a pair is kept only when yᵀs > 1e-10), with initial
    scaling H₀ = (yᵀs / yᵀy)·I; first step length min(1, 1/‖g‖₁)·lr, then lr; then

        line_search="strong_wolfe" (default): t from ``strong_wolfe`` (c1 = 1e-4, c2 = 0.9);
        line_search="backtracking": Armijo backtracking from t, halving;
        line_search=None: fixed step t;
        θ ← θ + t·d.

    Stops when max|g| ≤ tolerance_grad, max|t·d| ≤ tolerance_change, |Δloss| < tolerance_change,
    gᵀd > −tolerance_change, or the iteration/evaluation budget is spent.

    State: ``d``, ``prev_grad`` (size D), ``old_dirs``/``old_stps`` (k × D, the y and s pairs), ``ro``
    (k, 1/yᵀs), scalars ``step_size``, ``H_diag``, ``prev_loss``, ``func_evals``; ``t`` counts iterations.
    Memory ≈ 2·history_size·D values.

    Defaults (PyTorch): lr=1, max_iter=20, max_eval=max_iter·5//4, tolerance_grad=1e-7,
    tolerance_change=1e-9, history_size=100. PyTorch's default line search is None; ours is
    "strong_wolfe", which is what full-batch use needs. Unlike PyTorch, the line search uses the
    optimizer's tolerance_change (PyTorch always passes its default 1e-9).
    """

    needs_full_batch = True  # a line search on a changing (mini-batch) objective misleads it

    _hyper = ("lr", "max_iter", "max_eval", "tolerance_grad", "tolerance_change", "history_size", "line_search")
    _scalars = ("step_size", "H_diag", "prev_loss", "func_evals")

    def __init__(self, *, lr=1.0, max_iter=20, max_eval=None, tolerance_grad=1e-7, tolerance_change=1e-9,
                 history_size=100, line_search="strong_wolfe"):
        super().__init__()
        set_search_settings(self, lr=lr, max_iter=max_iter, max_eval=max_eval, tolerance_grad=tolerance_grad,
                            tolerance_change=tolerance_change, line_search=line_search)
        self.history_size = positive_int("history_size", history_size)
        self.step_size = None
        self.H_diag = 1.0
        self.prev_loss = None
        self.func_evals = 0
        self._d = None
        self._prev_grad = None
        self._dirs, self._stps, self._ro = [], [], []

    def step(self, theta, closure, lr=None, keep=None):
        lr, keep, loss, g = self._begin(theta, closure, lr, keep)
        if keep is not None:  # θ moves during the line search / difference quotients: keep it now
            np.copyto(keep, theta)
        g = g.copy()  # the closure may reuse its grad buffer
        first_loss = loss
        evals = 1
        self.func_evals += 1
        self._check_size(theta)
        if np.max(np.abs(g)) <= self.tolerance_grad:
            return first_loss

        d, t = self._d, self.step_size
        dirs, stps, ro = self._dirs, self._stps, self._ro
        prev_grad, prev_loss, h_diag = self._prev_grad, self.prev_loss, self.H_diag
        n_iter = 0
        while n_iter < self.max_iter:
            n_iter += 1
            self.t += 1
            if self.t == 1:
                d = -g
                dirs, stps, ro = [], [], []
                h_diag = 1.0
            else:
                y = g - prev_grad
                s = d * t
                ys = float(y @ s)
                if ys > 1e-10:
                    if len(dirs) == self.history_size:
                        del dirs[0], stps[0], ro[0]
                    dirs.append(y)
                    stps.append(s)
                    ro.append(1.0 / ys)
                    h_diag = ys / float(y @ y)
                # two-loop recursion: d = −H·g
                q = -g
                al = [0.0] * len(dirs)
                for i in range(len(dirs) - 1, -1, -1):
                    al[i] = float(stps[i] @ q) * ro[i]
                    q -= al[i] * dirs[i]
                d = q * h_diag
                for i in range(len(dirs)):
                    be = float(dirs[i] @ d) * ro[i]
                    d += (al[i] - be) * stps[i]
            prev_grad = g
            prev_loss = loss
            t = min(1.0, 1.0 / float(np.sum(np.abs(g)))) * lr if self.t == 1 else lr
            gtd = float(g @ d)
            if gtd > -self.tolerance_change:
                break

            ls_evals = 0
            if self.line_search is None:
                theta += t * d
                if n_iter != self.max_iter:
                    loss, g = evaluate(closure, theta)
                    g = g.copy()
                    ls_evals = 1
                opt_cond = np.max(np.abs(g)) <= self.tolerance_grad
            else:
                x0 = theta.copy()

                def phi(step):
                    np.multiply(d, step, out=theta)
                    np.add(theta, x0, out=theta)
                    f_val, grad = evaluate(closure, theta)
                    np.copyto(theta, x0)
                    return f_val, grad.copy()

                if self.line_search == "strong_wolfe":
                    loss, g, t, ls_evals = strong_wolfe(phi, t, d, loss, g, gtd, tolerance_change=self.tolerance_change,
                                                        max_ls=self.max_eval - evals)
                else:
                    loss, g, t, ls_evals = backtracking(phi, t, d, loss, g, gtd, max_ls=self.max_eval - evals)
                np.multiply(d, t, out=theta)
                theta += x0
                opt_cond = np.max(np.abs(g)) <= self.tolerance_grad
            evals += ls_evals
            self.func_evals += ls_evals

            if n_iter == self.max_iter or evals >= self.max_eval or opt_cond:
                break
            if np.max(np.abs(d * t)) <= self.tolerance_change:
                break
            if abs(loss - prev_loss) < self.tolerance_change:
                break

        self._d, self.step_size = d, t
        self._dirs, self._stps, self._ro = dirs, stps, ro
        self._prev_grad, self.prev_loss, self.H_diag = prev_grad, prev_loss, h_diag
        return self._end(theta, keep, first_loss)

    # ------------------------------------------------------------------ state (protocol: see Optimizer)
    _nullable = ("step_size", "prev_loss")  # None until the first iteration

    def init_state(self, theta):
        """Check θ against existing state; L-BFGS's arrays are made by its first iteration (their number
        grows with the history), so there is nothing to create in advance."""
        check_theta(theta)
        self._check_size(theta)

    def _check_size(self, theta):
        if self._d is not None and (self._d.shape != theta.shape or self._d.dtype != theta.dtype):
            raise ValueError(f"optimizer state 'd' has shape {self._d.shape} and dtype {self._d.dtype}, but theta has "
                             f"shape {theta.shape} and dtype {theta.dtype}; use a new optimizer for a new theta")

    def _state_arrays(self):
        if self._d is None:
            return ()
        n, dt = self._d.size, self._d.dtype
        return (("d", self._d), ("prev_grad", self._prev_grad),
                ("old_dirs", np.array(self._dirs, dtype=dt).reshape(len(self._dirs), n)),
                ("old_stps", np.array(self._stps, dtype=dt).reshape(len(self._stps), n)),
                ("ro", np.array(self._ro, dtype=np.float64)))

    def _load_buffers(self, fresh, d):
        names = ("d", "prev_grad", "old_dirs", "old_stps", "ro")
        present = [k for k in names if k in d]
        if not present:
            if d["t"] > 0:
                raise ValueError(f"entry 'd' is missing from the LBFGS state (t = {d['t']})")
            return {}
        for k in names:
            if k not in d:
                raise ValueError(f"entry {k!r} is missing from the LBFGS state")
            if not isinstance(d[k], np.ndarray):
                raise ValueError(f"entry {k!r} must be an ndarray, got {type(d[k]).__name__}")
        ref = d["d"]
        if ref.ndim != 1 or ref.dtype not in (np.float32, np.float64):
            raise ValueError(f"entry 'd' must be a 1-D float32/float64 array, got shape {ref.shape} dtype {ref.dtype}")
        if self._d is not None and (ref.shape != self._d.shape or ref.dtype != self._d.dtype):
            raise ValueError(f"entry 'd' has shape {ref.shape} and dtype {ref.dtype}, expected {self._d.shape} and "
                             f"{self._d.dtype}")
        n, dt = ref.size, ref.dtype
        k = d["ro"].shape[0] if d["ro"].ndim == 1 else -1
        if d["ro"].ndim != 1 or d["ro"].dtype != np.float64 or k > fresh.history_size:
            raise ValueError(f"entry 'ro' must be a float64 vector of at most history_size={fresh.history_size} "
                             f"values, got shape {d['ro'].shape} dtype {d['ro'].dtype}")
        expected = {"prev_grad": (n,), "old_dirs": (k, n), "old_stps": (k, n)}
        for name, shape in expected.items():
            if d[name].shape != shape or d[name].dtype != dt:
                raise ValueError(f"entry {name!r} has shape {d[name].shape} and dtype {d[name].dtype}, expected "
                                 f"{shape} and {dt}")
        return {name: d[name] for name in names}

    def _set_arrays(self, st):
        if not st:
            self._d = self._prev_grad = None
            self._dirs, self._stps, self._ro = [], [], []
            return
        self._d = np.array(st["d"], order="C", copy=True)
        self._prev_grad = np.array(st["prev_grad"], order="C", copy=True)
        self._dirs = [np.array(row, order="C", copy=True) for row in st["old_dirs"]]
        self._stps = [np.array(row, order="C", copy=True) for row in st["old_stps"]]
        self._ro = [float(r) for r in st["ro"]]
