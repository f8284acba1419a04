"""Numba kernels for the first-order optimizer updates: one fused pass over θ, grad and the state.

Each kernel reads like the per-element formula of its optimizer. Conventions shared by all of them:

- arrays are 1-D and of one dtype (float32 or float64); every scalar argument is passed already cast
  to that dtype by the caller (``dt(x)``), so a float32 update does float32 arithmetic throughout
  and no float64 value is ever formed per element;
- state values whose magnitude falls below ``tiny`` (the smallest normal number of the dtype) are
  stored as 0: moments of dead units decay into denormals, and arithmetic on denormals is slow;
- optional buffers that a configuration does not use are passed as None, which Numba compiles into a
  version without their branch (an empty array and a flag keep the loop from vectorizing);
- weight decay comes per run of θ: ``lams[r]`` is the decay λ of θ[bounds[r]:bounds[r + 1]] (one run
  when the optimizer has no weight-decay groups), so groups cost no extra call and no per-element vector.
  ``bounds`` is uint64 and i = lo + k unsigned: a signed index that does not start at 0 makes Numba add
  a negative-index check per element, which stops LLVM vectorizing (benchmarks/NOTES.md);
- ``keep``, the second argument of every kernel, receives θ as it was before the update unless it
  is None: the training loop's "last good θ", written in the same pass instead of by a separate copy.
  None (not an empty array) stands for "no keep", so Numba compiles a version without the branch.

Measurements behind each point: benchmarks/NOTES.md.

This module imports numba (slow to import), so the optimizer modules import it lazily on the first step.
"""
import math
import types

from numba import njit, prange

# Below this size the serial kernel runs: waking the threads costs more than a small update (NOTES.md).
PARALLEL_MIN = 1 << 20


def _fused(f):
    """Compile one kernel body twice — parallel (prange over numba's threads) and serial (prange runs
    as range) — and pick by θ's size. The serial copy gets its own qualname, so each has its own cache file."""
    parallel = njit(cache=True, parallel=True)(f)
    g = types.FunctionType(f.__code__, f.__globals__, f.__name__ + "_serial", f.__defaults__, f.__closure__)
    g.__qualname__ = f.__qualname__ + "_serial"
    g.__module__ = f.__module__
    # error_model="numpy" (as parallel=True implies): ZeroDivisionError checks keep LLVM from vectorizing
    serial = njit(cache=True, error_model="numpy")(g)

    def kernel(theta, *args):
        return (parallel if theta.size >= PARALLEL_MIN else serial)(theta, *args)

    kernel.__name__, kernel.__qualname__, kernel.__doc__ = f.__name__, f.__qualname__, f.__doc__
    kernel.parallel, kernel.serial = parallel, serial
    return kernel


@njit(cache=True, inline="always", error_model="numpy")
def _store_flushed(arr, i, x, tiny):
    """arr[i] = x, or 0 when |x| is below the smallest normal number (no denormal state)."""
    arr[i] = x if abs(x) >= tiny else 0


@njit(cache=True, inline="always", error_model="numpy")
def _start(theta, keep, g, i, wd):
    """Every kernel's first half for element i: keep[i] ← θ[i] (unless keep is None); returns g[i] + wd·θ[i]."""
    if keep is not None:  # None compiles a version without it (see the module docstring)
        keep[i] = theta[i]
    return g[i] + wd * theta[i]


@njit(cache=True, inline="always", error_model="numpy")
def _denominator(s, eps, eps_inside):
    """AdaGrad's and RMSprop's √s + eps, or √(s + eps) when ``eps_inside`` (Keras's and TensorFlow's form)."""
    if eps_inside:
        return math.sqrt(s + eps)
    return math.sqrt(s) + eps


@njit(cache=True, inline="always", error_model="numpy")
def _adam_moments(gi, m, v, i, b1, omb1, b2, omb2, tiny):
    """Adam's and NAdam's shared moments of element i, whose gradient (L2 included) is gi:
    m ← b1·m + (1−b1)·g; v ← b2·v + (1−b2)·g² (stored flushed); returns (m, v)."""
    mi = b1 * m[i] + omb1 * gi
    vi = b2 * v[i] + omb2 * gi * gi
    _store_flushed(m, i, mi, tiny)
    _store_flushed(v, i, vi, tiny)
    return mi, vi


@_fused
def sgd(theta, keep, g, lr, lams, bounds):
    """θ ← θ − lr·(g + wd·θ)."""
    for r in range(bounds.size - 1):  # the runs of θ with one weight decay λ (one run without groups)
        wd = lams[r]
        lo = bounds[r]
        for k in prange(bounds[r + 1] - lo):
            i = lo + k
            gi = _start(theta, keep, g, i, wd)
            theta[i] = theta[i] - lr * gi


@_fused
def sgd_momentum(theta, keep, g, v, lr, mu, damp1, lams, bounds, nesterov, first, tiny):
    """PyTorch form: v ← μ·v + (1−dampening)·g (v ← g on the first step); θ ← θ − lr·(g + μ·v if nesterov else v)."""
    for r in range(bounds.size - 1):  # the runs of θ with one weight decay λ (one run without groups)
        wd = lams[r]
        lo = bounds[r]
        for k in prange(bounds[r + 1] - lo):
            i = lo + k
            gi = _start(theta, keep, g, i, wd)
            if first:
                vi = gi
            else:
                vi = mu * v[i] + damp1 * gi
            _store_flushed(v, i, vi, tiny)
            if nesterov:
                theta[i] = theta[i] - lr * (gi + mu * vi)
            else:
                theta[i] = theta[i] - lr * vi


@_fused
def sgd_ewa(theta, keep, g, v, lr_c, beta, omb, lams, bounds, tiny):
    """Lecture form: v ← β·v + (1−β)·g; θ ← θ − lr_c·v, lr_c = lr / (1−βᵗ) with bias correction, else lr."""
    for r in range(bounds.size - 1):  # the runs of θ with one weight decay λ (one run without groups)
        wd = lams[r]
        lo = bounds[r]
        for k in prange(bounds[r + 1] - lo):
            i = lo + k
            gi = _start(theta, keep, g, i, wd)
            vi = beta * v[i] + omb * gi
            _store_flushed(v, i, vi, tiny)
            theta[i] = theta[i] - lr_c * vi


@_fused
def sgd_cs231n(theta, keep, g, v, lr, mu, lams, bounds, tiny):
    """CS231n form: v ← μ·v − lr·g; θ ← θ + v."""
    for r in range(bounds.size - 1):  # the runs of θ with one weight decay λ (one run without groups)
        wd = lams[r]
        lo = bounds[r]
        for k in prange(bounds[r + 1] - lo):
            i = lo + k
            gi = _start(theta, keep, g, i, wd)
            vi = mu * v[i] - lr * gi
            _store_flushed(v, i, vi, tiny)
            theta[i] = theta[i] + vi


@_fused
def adagrad(theta, keep, g, s, clr, eps, lams, bounds, eps_inside):
    """s ← s + g²; θ ← θ − clr·g / (√s + eps), or θ ← θ − clr·g / √(s + eps) when eps_inside."""
    for r in range(bounds.size - 1):  # the runs of θ with one weight decay λ (one run without groups)
        wd = lams[r]
        lo = bounds[r]
        for k in prange(bounds[r + 1] - lo):
            i = lo + k
            gi = _start(theta, keep, g, i, wd)
            si = s[i] + gi * gi
            s[i] = si
            theta[i] = theta[i] - clr * gi / _denominator(si, eps, eps_inside)


@_fused
def rmsprop(theta, keep, g, sq, ga, buf, lr, alpha, oma, eps, lams, bounds, mom, eps_inside, tiny):
    """s ← α·s + (1−α)·g²; [centered (ga given): ḡ ← α·ḡ + (1−α)·g, s̃ = s − ḡ²]; d = √s̃ + eps (or √(s̃ + eps));
    momentum (buf given): b ← μ·b + g/d, θ ← θ − lr·b; else θ ← θ − lr·g/d."""
    for r in range(bounds.size - 1):  # the runs of θ with one weight decay λ (one run without groups)
        wd = lams[r]
        lo = bounds[r]
        for k in prange(bounds[r + 1] - lo):
            i = lo + k
            gi = _start(theta, keep, g, i, wd)
            si = alpha * sq[i] + oma * gi * gi
            _store_flushed(sq, i, si, tiny)
            if ga is not None:
                gai = alpha * ga[i] + oma * gi
                _store_flushed(ga, i, gai, tiny)
                si = si - gai * gai
            d = _denominator(si, eps, eps_inside)
            if buf is not None:
                bi = mom * buf[i] + gi / d
                _store_flushed(buf, i, bi, tiny)
                theta[i] = theta[i] - lr * bi
            else:
                theta[i] = theta[i] - lr * gi / d


@_fused
def adam(theta, keep, g, m, v, vmax, step_size, b1, omb1, b2, omb2, eps, bc2_sqrt, lams, decays, bounds, tiny):
    """g ← g + wd·θ (L2); m ← b1·m + (1−b1)·g; v ← b2·v + (1−b2)·g²; [AMSGrad (vmax given): v̂ ← max(v̂, v)];
    θ ← decay·θ − step_size·m / (√v / bc2_sqrt + eps), step_size = lr/(1−b1ᵗ), bc2_sqrt = √(1−b2ᵗ),
    decay = 1 − lr·λ for AdamW's decoupled decay (1 otherwise)."""
    for r in range(bounds.size - 1):  # the runs of θ with one weight decay λ (one run without groups)
        wd = lams[r]  # the L2 term's λ (0 when the decay is decoupled)
        decay = decays[r]  # 1 − lr·λ when decoupled (1 otherwise)
        lo = bounds[r]
        for k in prange(bounds[r + 1] - lo):
            i = lo + k
            gi = _start(theta, keep, g, i, wd)
            mi, vi = _adam_moments(gi, m, v, i, b1, omb1, b2, omb2, tiny)
            if vmax is not None:
                if vmax[i] > vi:
                    vi = vmax[i]
                else:
                    vmax[i] = vi
            theta[i] = decay * theta[i] - step_size * mi / (math.sqrt(vi) / bc2_sqrt + eps)


@_fused
def nadam(theta, keep, g, m, v, b1, omb1, b2, omb2, eps, bc2, lams, decays, bounds, cg, cm, tiny):
    """m ← b1·m + (1−b1)·g; v ← b2·v + (1−b2)·g²; d = √(v/(1−b2ᵗ)) + eps;
    θ ← decay·θ + cg·g/d + cm·m/d with cg = −lr(1−μₜ)/(1−Πμ₁..ₜ), cm = −lr·μₜ₊₁/(1−Πμ₁..ₜ₊₁)."""
    for r in range(bounds.size - 1):  # the runs of θ with one weight decay λ (one run without groups)
        wd = lams[r]  # the L2 term's λ (0 when the decay is decoupled)
        decay = decays[r]  # 1 − lr·λ when decoupled (1 otherwise)
        lo = bounds[r]
        for k in prange(bounds[r + 1] - lo):
            i = lo + k
            gi = _start(theta, keep, g, i, wd)
            mi, vi = _adam_moments(gi, m, v, i, b1, omb1, b2, omb2, tiny)
            d = math.sqrt(vi / bc2) + eps
            theta[i] = decay * theta[i] + cg * gi / d + cm * mi / d


@_fused
def rescale(theta, keep, scales, bounds):
    """The lr scale of each run of θ (``scales[r]`` on θ[bounds[r]:bounds[r + 1]]): θ ← (θ − keep)·s + keep, the
    step scaled by s; s = 0 puts ``keep`` back exactly (frozen), s = 1 leaves the run alone."""
    for r in range(bounds.size - 1):
        s = scales[r]
        if s == 1:
            continue
        lo = bounds[r]
        if s == 0:  # the run's one test, outside its loop
            for k in prange(bounds[r + 1] - lo):
                theta[lo + k] = keep[lo + k]
        else:
            for k in prange(bounds[r + 1] - lo):
                i = lo + k
                theta[i] = (theta[i] - keep[i]) * s + keep[i]
