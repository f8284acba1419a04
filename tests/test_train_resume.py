"""Resume equivalence (QUALITY.md, "nothing lost"): N steps straight == N/2 steps, checkpoint, a new
process loads it and runs the rest — bit-identical θ, buffers, optimizer state, RNG states, history and
callback states. Compared with np.array_equal / ==, never allclose."""
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from _trainutil import one_numba_thread  # noqa: F401 (fixture)

import _resume_worker as W

HERE = Path(__file__).parent
pytestmark = pytest.mark.usefixtures("one_numba_thread")

# 150 samples, batch 16 → 10 batches per epoch; the split points are deliberately mid-epoch
CASES = {
    # Adam, dropout (layer RNG), early stopping with restore-best, plateau LR scaling, EMA of θ
    "adam-dropout-early-plateau-ema": dict(optimizer="adam", lr=0.03, dropout=0.2, early=4, plateau=True,
                                           average="ema", steps=90, split=45),
    # SGD with (Nesterov) momentum, batch norm buffers, Polyak averaging
    "sgd-momentum-batchnorm-polyak": dict(optimizer="sgd", lr=0.05, nesterov=True, batch_norm=True,
                                          average="polyak", plateau=True, steps=80, split=33),
    # divergence on the first step after the split: the kept θ must be the same "last good θ"
    "divergence-right-after-split": dict(optimizer="sgd", lr=0.05, spike_at=32, steps=60, split=33),
}


def _resume_in_new_process(cfg: dict, checkpoint: Path, out: Path) -> dict:
    proc = subprocess.run([sys.executable, str(HERE / "_resume_worker.py"), json.dumps(cfg), str(checkpoint),
                           str(out)], capture_output=True, text=True, timeout=120, cwd=HERE,
                          env=W.subprocess_env())
    assert proc.returncode == 0, proc.stderr
    return W.load_result(out)


def _assert_identical(straight: dict, resumed: dict) -> None:
    a, b = straight["arrays"], resumed["arrays"]
    assert sorted(a) == sorted(b)
    for k in a:
        assert a[k].dtype == b[k].dtype and a[k].shape == b[k].shape, k
        assert np.array_equal(a[k], b[k], equal_nan=True), f"{k} differs after resume"
    # through JSON on both sides, so both are compared in the same representation
    ma, mb = json.loads(W._jsonable(straight["meta"])), json.loads(W._jsonable(resumed["meta"]))
    assert ma["optimizer"] == mb["optimizer"]  # t and every scalar
    assert ma["rng"] == mb["rng"]
    assert ma["layer_rngs"] == mb["layer_rngs"]
    assert ma.get("callbacks") == mb.get("callbacks")
    ha, hb = ma["history"], mb["history"]
    assert ha["step_lr"] == hb["step_lr"]
    assert np.array_equal(np.array(ha["step_loss"], dtype=float), np.array(hb["step_loss"], dtype=float),
                          equal_nan=True)
    assert ha["param_change"] == hb["param_change"]
    assert ha["epochs"] == hb["epochs"]
    assert ha["best"] == hb["best"]
    assert ha["stop_reason"] == hb["stop_reason"]


@pytest.mark.parametrize("name", list(CASES))
def test_resume_in_new_process_is_bit_identical(name, tmp_path):
    cfg = dict(CASES[name])
    n, split = cfg["steps"], cfg.pop("split")
    assert split % 10 != 0  # mid-epoch
    straight = W.run(cfg, steps=n)
    ckpt = tmp_path / "run.safetensors"
    first = W.run(cfg, steps=split, checkpoint=ckpt)
    assert len(first["meta"]["history"]["step_loss"]) == split
    resumed = _resume_in_new_process(cfg, ckpt, tmp_path / "resumed")
    _assert_identical(straight, resumed)
    h = straight["meta"]["history"]
    if name.startswith("adam"):  # the run really exercised what it claims to
        assert h["best"] is not None and "restored θ of the best epoch" in h["stop_reason"]
        assert len(set(h["step_lr"])) > 1  # the plateau rule changed the lr
        assert len(h["step_loss"]) > split
        assert "optimizer.m" in straight["arrays"] and "optimizer.v" in straight["arrays"]
    if name.startswith("sgd"):
        assert "optimizer.v" in straight["arrays"] and "buffer.1.running_mean" in straight["arrays"]
        assert len(h["step_loss"]) == n
    if name.startswith("divergence"):
        assert len(h["step_loss"]) == split + 1 and h["stop_reason"].startswith("loss")
        assert np.isfinite(straight["arrays"]["theta"]).all()


def test_resume_with_checkpoint_every_mid_epoch_in_process(tmp_path):
    """Checkpoints written every k steps (mid-epoch) by a run that went on also resume exactly."""
    cfg = dict(CASES["adam-dropout-early-plateau-ema"])
    cfg.pop("split")
    straight = W.run(cfg, steps=cfg["steps"])
    ckpt = tmp_path / "every.safetensors"
    W.run(cfg, steps=27, checkpoint=ckpt, checkpoint_every=7)  # last periodic save at 21, final at 27
    from descend.train import load_checkpoint
    _, meta = load_checkpoint(ckpt)
    assert meta["clock"]["step"] == 27 and meta["clock"]["batch"] == 7
    resumed = W.run(cfg, steps=cfg["steps"], resume=ckpt)
    _assert_identical(straight, resumed)


def test_resume_a_finished_run_does_not_train_further(tmp_path):
    """Continuing a run that already reached its limit stops at once with that limit's reason."""
    cfg = dict(optimizer="adam", lr=0.01, steps=25)
    ckpt = tmp_path / "done.safetensors"
    done = W.run(cfg, steps=25, checkpoint=ckpt)
    again = W.run(cfg, steps=25, resume=ckpt)
    assert len(again["meta"]["history"]["step_loss"]) == 25
    assert np.array_equal(done["arrays"]["theta"], again["arrays"]["theta"])
    assert again["meta"]["history"]["stop_reason"] == "reached the maximum of 25 steps"
