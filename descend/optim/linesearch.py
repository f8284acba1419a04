"""Line searches along a descent direction, shared by L-BFGS and BFGS: strong Wolfe (cubic interpolation) and Armijo backtracking."""
import math

import numpy as np

from ..common.validate import choice, nonnegative, positive, positive_int

__all__ = ["LINE_SEARCHES", "strong_wolfe", "backtracking", "set_search_settings"]

LINE_SEARCHES = ("strong_wolfe", "backtracking", None)


def set_search_settings(opt, *, lr, max_iter, max_eval, tolerance_grad, tolerance_change, line_search) -> None:
    """Check and set on ``opt`` the settings L-BFGS and BFGS share (same meaning, same defaults)."""
    opt.lr = positive("lr", lr)
    opt.max_iter = positive_int("max_iter", max_iter)
    opt.max_eval = opt.max_iter * 5 // 4 if max_eval is None else positive_int("max_eval", max_eval)
    opt.tolerance_grad = nonnegative("tolerance_grad", tolerance_grad)
    opt.tolerance_change = nonnegative("tolerance_change", tolerance_change)
    opt.line_search = choice("line_search", line_search, LINE_SEARCHES)


def _cubic_minimizer(x1, f1, g1, x2, f2, g2, lo=None, hi=None):
    """Minimizer of the cubic through (x1, f1, slope g1) and (x2, f2, slope g2), clamped to [lo, hi]
    (default: the interval between x1 and x2); the midpoint when the cubic has no minimum
    (Nocedal & Wright, eq. 3.59)."""
    if lo is None:
        lo, hi = (x1, x2) if x1 <= x2 else (x2, x1)
    d1 = g1 + g2 - 3.0 * (f1 - f2) / (x1 - x2)
    disc = d1 * d1 - g1 * g2
    if disc < 0.0:
        return (lo + hi) / 2.0
    d2 = math.sqrt(disc)
    denom = (g2 - g1 + 2.0 * d2) if x1 <= x2 else (g1 - g2 + 2.0 * d2)
    if denom == 0.0:  # a straight line in t (e.g. f unbounded below along d): no interior minimizer
        return (lo + hi) / 2.0
    if x1 <= x2:
        x = x2 - (x2 - x1) * ((g2 + d2 - d1) / denom)
    else:
        x = x1 - (x1 - x2) * ((g1 + d2 - d1) / denom)
    return min(max(x, lo), hi)


def strong_wolfe(phi, t, d, f, g, gtd, *, c1=1e-4, c2=0.9, tolerance_change=1e-9, max_ls=25):
    """Line search along d for a step t satisfying the strong Wolfe conditions
    f(x + t·d) ≤ f + c1·t·gᵀd and |∇f(x + t·d)ᵀd| ≤ c2·|gᵀd| (Nocedal & Wright, Alg. 3.5/3.6, with the
    cubic interpolation and safeguards of minFunc / torch.optim.LBFGS).

    ``phi(t) -> (f, grad)`` evaluates at x + t·d. Returns (f_new, g_new, t, evaluations).
    """
    d_norm = float(np.max(np.abs(d)))
    f_new, g_new = phi(t)
    evals = 1
    gtd_new = float(g_new @ d)
    t_prev, f_prev, g_prev, gtd_prev = 0.0, f, g, gtd
    done = False
    it = 0
    # phase 1: grow t until the minimum is bracketed or the conditions hold
    while it < max_ls:
        sufficient = f_new <= f + c1 * t * gtd and not (it > 1 and f_new >= f_prev)
        if sufficient and abs(gtd_new) <= -c2 * gtd:
            br, br_f, br_g, br_gtd = [t], [f_new], [g_new], [gtd_new]
            done = True
            break
        if not sufficient or gtd_new >= 0.0:
            br, br_f, br_g, br_gtd = [t_prev, t], [f_prev, f_new], [g_prev, g_new], [gtd_prev, gtd_new]
            break
        t_next = _cubic_minimizer(t_prev, f_prev, gtd_prev, t, f_new, gtd_new, t + 0.01 * (t - t_prev), t * 10.0)
        t_prev, f_prev, g_prev, gtd_prev = t, f_new, g_new, gtd_new
        t = t_next
        f_new, g_new = phi(t)
        evals += 1
        gtd_new = float(g_new @ d)
        it += 1
    if it == max_ls:
        br, br_f, br_g, br_gtd = [0.0, t], [f, f_new], [g, g_new], [gtd, gtd_new]

    # phase 2 ("zoom"): shrink the bracket [low, high] by safeguarded cubic interpolation
    low, high = (0, 1) if br_f[0] <= br_f[-1] else (1, 0)
    insufficient = False
    while not done and it < max_ls:
        if abs(br[1] - br[0]) * d_norm < tolerance_change or br[1] == br[0]:  # (== : tolerance_change = 0)
            break
        t = _cubic_minimizer(br[0], br_f[0], br_gtd[0], br[1], br_f[1], br_gtd[1])
        top, bottom = max(br), min(br)
        margin = 0.1 * (top - bottom)
        if min(top - t, t - bottom) < margin:
            # too close to an end: accept once, then move it 10 % inside the bracket
            if insufficient or t >= top or t <= bottom:
                t = top - margin if abs(t - top) < abs(t - bottom) else bottom + margin
                insufficient = False
            else:
                insufficient = True
        else:
            insufficient = False
        f_new, g_new = phi(t)
        evals += 1
        gtd_new = float(g_new @ d)
        it += 1
        if f_new > f + c1 * t * gtd or f_new >= br_f[low]:
            br[high], br_f[high], br_g[high], br_gtd[high] = t, f_new, g_new, gtd_new
            low, high = (0, 1) if br_f[0] <= br_f[1] else (1, 0)
        else:
            if abs(gtd_new) <= -c2 * gtd:
                done = True
            elif gtd_new * (br[high] - br[low]) >= 0.0:
                br[high], br_f[high], br_g[high], br_gtd[high] = br[low], br_f[low], br_g[low], br_gtd[low]
            br[low], br_f[low], br_g[low], br_gtd[low] = t, f_new, g_new, gtd_new
    return br_f[low], br_g[low], br[low], evals


def backtracking(phi, t, d, f, g, gtd, *, c1=1e-4, shrink=0.5, max_ls=25):
    """Armijo backtracking: try t, t·shrink, t·shrink², ... until f(x + t·d) ≤ f + c1·t·gᵀd
    (Nocedal & Wright, Alg. 3.1). If no trial passes within max_ls evaluations, the best trial is
    taken when it lowers f, else t = 0 (no move). Returns (f_new, g_new, t, evaluations)."""
    best = (f, g, 0.0)
    evals = 0
    while evals < max_ls:
        f_new, g_new = phi(t)
        evals += 1
        if f_new <= f + c1 * t * gtd:
            return f_new, g_new, t, evals
        if f_new < best[0]:
            best = (f_new, g_new, t)
        t *= shrink
    return best[0], best[1], best[2], evals
