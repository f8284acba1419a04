"""The lecture's initialization experiment (examples/init_experiment.py) reproduces its three regimes."""
import importlib.util
from pathlib import Path

import pytest

EXAMPLE = Path(__file__).resolve().parents[1] / "examples" / "init_experiment.py"


@pytest.fixture(scope="module")
def reports():
    spec = importlib.util.spec_from_file_location("init_experiment", EXAMPLE)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod.run(n=500)  # 10 tanh layers of 500 units, unit-Gaussian input


def test_small_weights_collapse_toward_zero(reports):
    stds = reports["W·0.01"].stds
    assert reports["W·0.01"].problem == "vanishing"
    assert all(b < 0.35 * a for a, b in zip(stds, stds[1:]))  # shrinks ~0.22× per layer (0.01·√500)
    assert stds[-1] < 1e-5


def test_unit_weights_saturate(reports):
    rep = reports["W·1.0"]
    assert rep.problem == "saturated"
    assert all(s.saturated > 0.8 for s in rep.layers)  # pre-activations have std ≈ √500 ≈ 22
    assert all(s.std > 0.9 for s in rep.layers)


def test_xavier_stays_healthy(reports):
    rep = reports["Xavier"]
    assert rep.ok and rep.problem is None
    assert all(0.1 < s.std < 0.8 for s in rep.layers)
    assert max(s.saturated for s in rep.layers) < 0.05


def test_example_writes_its_plot(tmp_path):
    spec = importlib.util.spec_from_file_location("init_experiment", EXAMPLE)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    from descend.diagnose.plots import plot_init_experiment
    out = plot_init_experiment(mod.run(n=100, width=50, depth=3), tmp_path / "init.png")
    assert out.stat().st_size > 10_000
