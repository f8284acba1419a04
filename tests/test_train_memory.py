"""Memory (QUALITY.md): no growth over a long run (RSS at step 1000 within 5 % of step 10, and the traced
allocations barely move), and no autograd graph survives a step."""
import gc
import os
import tracemalloc
import weakref

import pytest
from _trainutil import blobs, mlp, one_numba_thread  # noqa: F401 (fixture)

from descend.nn import Module
from descend.optim import Adam
from descend.train import fit

pytestmark = pytest.mark.usefixtures("one_numba_thread")

X, Y = blobs(256, features=20, classes=4)
PAGE = os.sysconf("SC_PAGE_SIZE")


def _rss() -> int:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * PAGE


class Probe:
    def __init__(self, at, measure):
        self.at, self.measure, self.values = set(at), measure, {}

    def on_step_end(self, state):
        if state.step in self.at:
            gc.collect()
            self.values[state.step] = self.measure()


def _long_run(probe):
    fit(mlp((20, 64, 64, 4)), X, Y, optimizer=Adam(lr=1e-3), steps=1200, batch_size=16, callbacks=[probe],
        validation=(X[:64], Y[:64]))


@pytest.mark.skipif(not os.path.exists("/proc/self/statm"), reason="needs Linux /proc")
def test_rss_does_not_grow_over_1000_steps():
    _long_run(Probe([10], _rss))  # warm up: kernels compiled, buffers and caches allocated
    probe = Probe([10, 1000, 1200], _rss)
    _long_run(probe)
    r10, r1000 = probe.values[10], probe.values[1000]
    assert abs(r1000 - r10) <= 0.05 * r10, (r10, r1000)


def test_traced_allocations_do_not_grow_over_1000_steps():
    _long_run(Probe([10], lambda: 0))
    tracemalloc.start()
    try:
        probe = Probe([10, 1000], lambda: tracemalloc.get_traced_memory()[0])
        _long_run(probe)
    finally:
        tracemalloc.stop()
    growth = probe.values[1000] - probe.values[10]
    # the history grows by two floats per step and a record per epoch (~100 B a step);
    # a leaked batch would be 16·20·4 B = 1.3 kB per step
    assert growth < 200 * 990, growth


class Watched(Module):
    """Wraps a model and keeps weak references to the output tensor and the function that made it."""

    def __init__(self, inner):
        super().__init__()
        self.inner = inner
        object.__setattr__(self, "refs", [])

    def forward(self, x):
        out = self.inner(x)
        if out.requires_grad:
            self.refs.append((weakref.ref(out), weakref.ref(out._creator), out._creator is not None))
        return out


def test_no_autograd_graph_survives_a_step():
    model = Watched(mlp((20, 32, 4)))
    dead = []

    class Check:
        def on_step_end(self, state):
            out, fn, had_creator = model.refs[-1]
            dead.append((had_creator, out() is None, fn() is None))

    gc.disable()  # reference cycles would keep a graph alive until the collector runs: catch those too
    try:
        fit(model, X, Y, optimizer=Adam(), steps=20, batch_size=16, callbacks=[Check()])
    finally:
        gc.enable()
    assert len(dead) == 20 and all(d == (True, True, True) for d in dead), dead
