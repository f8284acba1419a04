"""Exponentially weighted averages: the lecture's formula, bias correction, arrays, series."""
import numpy as np
import pytest

from descend.optim.ewa import EWA, ewa


def test_formula_and_correction_beta_098():
    rng = np.random.default_rng(0)
    xs = rng.normal(10.0, 2.0, size=300)
    e = EWA(0.98)
    v = 0.0
    for t, x in enumerate(xs, start=1):
        c = e.update(x)
        v = 0.98 * v + 0.02 * x  # written formula, independently
        assert e.t == t
        np.testing.assert_allclose(e.value, v, rtol=1e-13)
        np.testing.assert_allclose(c, v / (1 - 0.98 ** t), rtol=1e-12)
        assert c == e.corrected
    # first corrected value is the first observation; raw value is biased towards 0
    e2 = EWA(0.98)
    assert e2.update(5.0) == 5.0 and abs(e2.value - 0.1) < 1e-15


def test_constant_series_exact():
    for beta in (0.5, 0.9, 0.98, 0.999):
        out = ewa(np.full(500, 3.7), beta)
        assert np.all(out == 3.7)
        e = EWA(beta)
        assert all(e.update(3.7) == 3.7 for _ in range(200))
        a = EWA(beta)
        for _ in range(50):
            r = a.update(np.full(4, 1.25, dtype=np.float32))
        assert r.dtype == np.float32 and np.all(r == np.float32(1.25))


def test_arrays_in_place_and_series_match():
    rng = np.random.default_rng(1)
    xs = rng.normal(size=(50, 3))
    e = EWA(0.9)
    outs = [e.update(x) for x in xs]
    buf = e._v
    e.update(xs[0])
    assert e._v is buf  # updated in place
    for j in range(3):
        np.testing.assert_allclose(np.array(outs)[:, j], ewa(xs[:, j], 0.9), rtol=1e-12)
    raw = ewa(xs[:, 0], 0.9, bias_correction=False)
    v = 0.0
    for t, x in enumerate(xs[:, 0]):
        v = 0.9 * v + 0.1 * x
        np.testing.assert_allclose(raw[t], v, rtol=1e-13)


def test_state_round_trip_and_errors():
    e = EWA(0.9)
    for x in (1.0, 2.0, 4.0):
        e.update(x)
    f = EWA(0.5)
    f.load_state_dict(e.state_dict())
    assert f.update(3.0) == e.update(3.0) and f.value == e.value and f.t == e.t
    with pytest.raises(ValueError, match="beta"):
        EWA(1.0)
    with pytest.raises(ValueError, match="shape"):
        a = EWA(0.9)
        a.update(np.zeros(3))
        a.update(np.zeros(4))
    with pytest.raises(ValueError, match="1-D"):
        ewa(np.zeros((2, 2)), 0.9)
