"""Newton's method for small problems: Hessian from finite differences of the gradient, or CG on Hv products."""
import math

import numpy as np

from .base import Optimizer, evaluate
from ..common.validate import choice, nonnegative, positive, positive_int

__all__ = ["Newton"]


class Newton(Optimizer):
    """Damped Newton step (Nocedal & Wright ch. 3.3 and 7.1; Boyd & Vandenberghe 9.5):

        θ ← θ − lr·(H + λI)⁻¹·g          (λ = damping; lr = 1 is the pure Newton step)

    H is never written by hand; it is measured from the gradient the closure returns:

    hessian="fd": column j of H is the central difference (g(θ + hⱼeⱼ) − g(θ − hⱼeⱼ)) / 2hⱼ, the
        result symmetrized, (H + λI)p = g solved directly. 1 + 2D closure calls per step, O(D²) memory:
        for small models and 2-D test functions.
    hessian="cg": p from conjugate gradients on (H + λI)p = g, with Hv = (g(θ + hv) − g(θ − hv)) / 2h;
        1 + 2 calls per CG iteration (at most ``cg_max_iter``, default 2D: in floating point CG may need a
        few more than the D iterations of exact arithmetic), O(D) memory. CG stops at a
        relative residual ``cg_tol`` or when it meets non-positive curvature (then it keeps the
        iterate so far, or −g on the first CG iteration, so the step is still a descent direction).

    Finite-difference steps: hⱼ = fd_step·max(1, |θⱼ|) (fd), h = fd_step·max(1, ‖θ‖)/‖v‖ (cg). The
    default fd_step = ε^(1/3) of θ's dtype balances truncation and rounding for general functions;
    on a quadratic the differences are exact for any step, so a large fd_step (e.g. 1) is best there.
    θ is restored exactly after each probe. The arithmetic is float64 whatever θ's dtype.

    H must be positive definite for a descent step: on a non-convex problem use damping > 0.
    Defaults: lr=1, damping=0, hessian="fd", fd_step=None (ε^(1/3)), cg_max_iter=None (2D), cg_tol=1e-10.
    """

    _hyper = ("lr", "damping", "hessian", "fd_step", "cg_max_iter", "cg_tol")

    def __init__(self, *, lr=1.0, damping=0.0, hessian="fd", fd_step=None, cg_max_iter=None, cg_tol=1e-10):
        super().__init__()
        self.lr = positive("lr", lr)
        self.damping = nonnegative("damping", damping)
        self.hessian = choice("hessian", hessian, ("fd", "cg"))
        self.fd_step = None if fd_step is None else positive("fd_step", fd_step)
        self.cg_max_iter = None if cg_max_iter is None else positive_int("cg_max_iter", cg_max_iter)
        self.cg_tol = nonnegative("cg_tol", cg_tol)

    def _h(self, theta):
        return self.fd_step if self.fd_step is not None else np.finfo(theta.dtype).eps ** (1.0 / 3.0)

    def hessian_fd(self, theta, closure):
        """(D, D) float64 Hessian by central differences of the gradient; θ is left unchanged."""
        n = theta.size
        hess = np.empty((n, n))
        h0 = self._h(theta)
        for j in range(n):
            xj = theta[j]
            h = h0 * max(1.0, abs(float(xj)))
            theta[j] = xj + h
            hp = float(theta[j]) - float(xj)  # the step actually taken, after rounding
            _, gp = evaluate(closure, theta)
            gp = gp.astype(np.float64)
            theta[j] = xj - h
            hm = float(xj) - float(theta[j])
            _, gm = evaluate(closure, theta)
            theta[j] = xj
            hess[:, j] = (gp - gm) / (hp + hm)
        return 0.5 * (hess + hess.T)

    def _hvp(self, theta, x0, closure, v, scale):
        nv = float(np.linalg.norm(v))
        if nv == 0.0:
            return np.zeros_like(v)
        h = scale / nv
        theta[...] = x0 + h * v
        _, gp = evaluate(closure, theta)
        gp = gp.astype(np.float64)
        theta[...] = x0 - h * v
        _, gm = evaluate(closure, theta)
        np.copyto(theta, x0)
        return (gp - gm) / (2.0 * h)

    def _solve_cg(self, theta, closure, g):
        x0 = theta.copy()
        x64 = x0.astype(np.float64)
        scale = self._h(theta) * max(1.0, float(np.linalg.norm(x64)))
        lam = self.damping
        p = np.zeros_like(g)
        r = g.copy()
        z = r.copy()
        rs = float(r @ r)
        stop = self.cg_tol * math.sqrt(rs)
        for k in range(self.cg_max_iter or 2 * theta.size):
            az = self._hvp(theta, x64, closure, z, scale) + lam * z
            zaz = float(z @ az)
            if zaz <= 0.0:
                if k == 0:
                    p = g.copy()
                break
            alpha = rs / zaz
            p += alpha * z
            r -= alpha * az
            rs_new = float(r @ r)
            if math.sqrt(rs_new) <= stop:
                break
            z = r + (rs_new / rs) * z
            rs = rs_new
        np.copyto(theta, x0)
        return p

    def step(self, theta, closure, lr=None, keep=None):
        lr, keep, loss, g = self._begin(theta, closure, lr, keep)
        if keep is not None:  # θ moves during the line search / difference quotients: keep it now
            np.copyto(keep, theta)
        g = g.astype(np.float64)
        if self.hessian == "fd":
            a = self.hessian_fd(theta, closure)
            a[np.diag_indices_from(a)] += self.damping
            try:
                p = np.linalg.solve(a, g)
            except np.linalg.LinAlgError:
                raise ValueError("the Hessian (+ damping·I) is singular at this θ; pass damping > 0 (e.g. 1e-3)") from None
        else:
            p = self._solve_cg(theta, closure, g)
        theta -= (lr * p).astype(theta.dtype)
        self.t += 1
        return self._end(theta, keep, loss)
