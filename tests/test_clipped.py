"""Gradient clipping as a step wrapper, against the written formula; from the CLI and TOML, resumable."""
import math

import numpy as np
import pytest
from _trainutil import one_numba_thread  # noqa: F401 (fixture)

from descend import optim
from descend.cli import main
from descend.optim.clipped import Clipped
from descend.train import load_checkpoint


def _closure(g):
    grad = np.empty_like(g)

    def closure():
        grad[...] = g
        return 1.0, grad
    return closure


@pytest.mark.parametrize("scale, clipped", [(10.0, True), (0.01, False)])
def test_one_sgd_step_on_the_clipped_gradient(scale, clipped):
    rng = np.random.default_rng(0)
    theta, g = rng.standard_normal(50), scale * rng.standard_normal(50)
    theta0 = theta.copy()
    Clipped(optim.SGD(lr=0.1), max_norm=1.0).step(theta, _closure(g))
    norm = math.sqrt(float(g @ g))
    expected_g = g * (1.0 / (norm + 1e-6)) if norm > 1.0 else g
    assert (norm > 1.0) == clipped
    np.testing.assert_allclose(theta, theta0 - 0.1 * expected_g, rtol=1e-13, atol=1e-15)


def test_state_and_lr_are_the_wrapped_optimizers():
    inner = optim.Adam(lr=0.01)
    c = Clipped(inner, max_norm=0.5)
    theta = np.ones(4)
    c.step(theta, _closure(np.full(4, 3.0)))
    assert c.state_dict()["t"] == inner.state_dict()["t"] == 1
    c.lr = 0.2
    assert inner.lr == 0.2
    with pytest.raises(ValueError, match="cannot wrap LBFGS"):
        Clipped(optim.LBFGS(), max_norm=1.0)
    with pytest.raises(ValueError, match="max_norm"):
        Clipped(optim.SGD(lr=0.1), max_norm=0.0)


@pytest.mark.usefixtures("one_numba_thread")
def test_clip_norm_from_the_cli_changes_training_and_resumes_bit_identically(tmp_path, capsys):
    job = ["train", "--dataset", "iris", "--hidden", "8", "--optimizer", "sgd", "--lr", "0.5", "--patience", "0",
           "--quiet"]
    for name, extra in (("plain", ["--epochs", "4"]), ("clip", ["--epochs", "4", "--clip-norm", "0.05"]),
                        ("split", ["--epochs", "2", "--clip-norm", "0.05"])):
        assert main([*job, *extra, "--out", str(tmp_path / name)]) == 0
    assert main(["train", "--resume", str(tmp_path / "split"), "--epochs", "4", "--quiet"]) == 0
    theta = {k: load_checkpoint(tmp_path / k / "checkpoint.safetensors")[0]["theta"] for k in ("plain", "clip", "split")}
    assert np.abs(theta["plain"] - theta["clip"]).max() > 1e-3
    np.testing.assert_array_equal(theta["clip"], theta["split"])
    assert load_checkpoint(tmp_path / "clip" / "checkpoint.safetensors")[1]["config"]["train"]["clip_norm"] == 0.05
    assert main([*job, "--optimizer", "lbfgs", "--batch-size", "full", "--clip-norm", "1", "--out",
                 str(tmp_path / "bad")]) == 2
    assert "train.clip_norm = 1.0: gradient clipping cannot wrap LBFGS" in capsys.readouterr().err
    assert not (tmp_path / "bad").exists()


def test_clipping_keeps_frozen_layers_fixed():
    """A frozen layer stays bit-identical when the optimizer is wrapped in ``Clipped`` (the lr scale passes through)."""
    import numpy as np
    from descend import nn, pack
    from descend.optim import Adam
    from descend.optim.clipped import Clipped
    from descend.train import fit
    r = np.random.default_rng(0)
    X, y = r.standard_normal((64, 5)).astype(np.float32), r.integers(0, 3, 64)
    model = nn.Sequential(nn.Linear(5, 8, rng=r), nn.ReLU(), nn.Linear(8, 3, rng=r))
    model[0].freeze()
    before, head = pack(model).view("0.weight").copy(), pack(model).view("2.weight").copy()
    fit(model, X, y, optimizer=Clipped(Adam(lr=0.1, weight_decay=0.0), max_norm=0.5), epochs=2, batch_size=16)
    assert np.array_equal(pack(model).view("0.weight"), before)
    assert not np.array_equal(pack(model).view("2.weight"), head)  # while the head trained


def test_clipped_passes_keep_through_so_the_loop_keeps_its_fused_snapshots():
    import numpy as np
    from descend.optim import SGD
    from descend.optim.clipped import Clipped
    theta = np.array([1.0, -2.0], np.float32)
    keep = np.empty_like(theta)
    Clipped(SGD(lr=0.1), max_norm=1.0).step(theta, lambda: (0.0, np.array([3.0, 4.0], np.float32)), keep=keep)
    assert np.array_equal(keep, [1.0, -2.0])  # θ before the step
    np.testing.assert_allclose(theta, [1.0 - 0.1 * 0.6, -2.0 - 0.1 * 0.8], rtol=1e-6)  # g clipped to norm 1
