"""Exponentially weighted averages with bias correction, for scalars, arrays and whole series."""
import math
import numbers

import numpy as np

__all__ = ["EWA", "ewa"]


def _beta(beta):
    if isinstance(beta, bool) or not isinstance(beta, numbers.Real) or not 0.0 <= beta < 1.0:
        raise ValueError(f"beta must be in [0, 1), got {beta!r}; 0.9 averages over ~10 values, 0.98 over ~50")
    return float(beta)


class EWA:
    """Exponentially weighted (moving) average (Andrew Ng, "Improving Deep Neural Networks", week 2):

        v_t = β·v_{t−1} + (1 − β)·θ_t,  v_0 = 0           (``value``, the raw average)
        v̂_t = v_t / (1 − βᵗ)                              (``corrected``, bias correction)

    It averages over roughly 1/(1 − β) values. ``update(x)`` takes a scalar or an array (arrays are
    averaged element-wise into float buffers of x's float dtype, float64 for integer input, updated in
    place) and returns the corrected average (a copy for arrays, so the caller may keep it).

    The corrected average is tracked as v̂_t = v̂_{t−1} + (1 − β)/(1 − βᵗ)·(θ_t − v̂_{t−1}), which is
    algebraically v_t/(1 − βᵗ) and keeps a constant series exactly constant in floating point.
    """

    def __init__(self, beta):
        self.beta = _beta(beta)
        self.t = 0
        self._v = None
        self._c = None

    @property
    def value(self):
        """Raw average v_t (0 before the first update)."""
        return 0.0 if self._v is None else self._v

    @property
    def corrected(self):
        """Bias-corrected average v_t/(1 − βᵗ) (0 before the first update)."""
        return 0.0 if self._c is None else self._c

    def update(self, x):
        b = self.beta
        k = (1.0 - b) / (1.0 - b ** (self.t + 1))
        if np.ndim(x) == 0 and self._v is None or isinstance(self._v, float):
            x = float(x)
            if self._v is None:
                self._v, self._c = 0.0, 0.0
            self._v = b * self._v + (1.0 - b) * x
            self._c = self._c + k * (x - self._c)
        else:
            x = np.asarray(x)
            if self._v is None:
                dtype = x.dtype if x.dtype.kind == "f" else np.float64
                self._v = np.zeros(x.shape, dtype=dtype)
                self._c = np.zeros(x.shape, dtype=dtype)
            elif x.shape != self._v.shape:
                raise ValueError(f"EWA of shape {self._v.shape} cannot average a value of shape {x.shape}")
            dt = self._v.dtype.type
            self._v *= dt(b)
            self._v += dt(1.0 - b) * x
            self._c += dt(k) * (x - self._c)
        self.t += 1
        return self._c.copy() if isinstance(self._c, np.ndarray) else self._c

    def state_dict(self):
        return {"beta": self.beta, "t": self.t, "value": self._v if self._v is None else np.copy(self._v),
                "corrected": self._c if self._c is None else np.copy(self._c)}

    def load_state_dict(self, d):
        for key in ("beta", "t", "value", "corrected"):
            if key not in d:
                raise ValueError(f"entry {key!r} is missing from the EWA state")
        self.beta = _beta(d["beta"])
        self.t = int(d["t"])
        conv = (lambda a: a if a is None or isinstance(a, float) else np.array(a, copy=True))
        self._v, self._c = conv(d["value"]), conv(d["corrected"])


def ewa(series, beta, bias_correction=True):
    """Exponentially weighted average of a 1-D series (e.g. a loss curve), as a float64 array of the
    same length: v̂_t (bias_correction=True) or v_t, with v_t = β·v_{t−1} + (1 − β)·x_t, v_0 = 0."""
    x = np.asarray(series, dtype=np.float64)
    if x.ndim != 1:
        raise ValueError(f"series must be 1-D, got shape {x.shape}")
    b = _beta(beta)
    out = np.empty_like(x)
    v = 0.0
    if bias_correction:
        bt = 1.0
        for i, xi in enumerate(x):
            bt *= b
            v += (1.0 - b) / (1.0 - bt) * (xi - v)
            out[i] = v
    else:
        for i, xi in enumerate(x):
            v = b * v + (1.0 - b) * xi
            out[i] = v
    return out
