"""fit with preprocessing and augmentation, load_model, lazy gradient zeroing, Ctrl-C, and CLI config checks."""
from __future__ import annotations

import os
import signal

import numpy as np
import pytest

from descend import nn, optim, pack
from descend.data import PCAWhiten, Standardize
from descend.nn import functional as F
from descend.train import evaluate, fit, load_model, predict

from _trainutil import blobs, mlp


def _shifted_blobs():
    X, y = blobs(200, 5, 3)
    return (X * 50 + 1000).astype(np.float32), y  # far from zero mean / unit scale


def test_preprocess_fitted_on_training_data_and_applied_by_predict(tmp_path):
    X, y = _shifted_blobs()
    Xtr, ytr, Xte = X[:150], y[:150], X[150:]
    pre = Standardize()
    model = mlp((5, 16, 3))
    fit(model, Xtr, ytr, optimizer=optim.Adam(lr=1e-2), epochs=3, preprocess=pre, checkpoint=tmp_path / "c.st")
    assert pre.fitted and pre.fitted_on(Xtr)                     # training statistics only
    np.testing.assert_allclose(pre.mean, Xtr.mean(axis=0), rtol=1e-5)
    assert model.preprocess is pre
    expected = model.__call__(pre.transform(Xte))                # what the network sees
    with_pre = predict(model, Xte)                                # raw data in, as into fit
    np.testing.assert_allclose(with_pre, np.asarray(expected.data), rtol=1e-6)
    # a fresh model loads θ and the fitted statistics from the checkpoint and predicts the same
    fresh = load_model(mlp((5, 16, 3), seed=7), tmp_path / "c.st", best=False)
    assert isinstance(fresh.preprocess, Standardize) and fresh.preprocess is not pre
    np.testing.assert_array_equal(predict(fresh, Xte), with_pre)


def test_preprocess_changing_feature_count_and_resume(tmp_path):
    X, y = _shifted_blobs()
    model = mlp((3, 8, 3))                                          # PCA keeps 3 of 5 features
    fit(model, X, y, optimizer=optim.SGD(lr=0.05, momentum=0.9), steps=7, batch_size=32,
        preprocess=PCAWhiten(n_components=3), checkpoint=tmp_path / "a.st")
    straight = mlp((3, 8, 3))
    fit(straight, X, y, optimizer=optim.SGD(lr=0.05, momentum=0.9), steps=12, batch_size=32,
        preprocess=PCAWhiten(n_components=3))
    resumed = mlp((3, 8, 3))
    fit(resumed, X, y, optimizer=optim.SGD(lr=0.05, momentum=0.9), steps=12, batch_size=32,
        resume=tmp_path / "a.st")                                   # statistics come from the checkpoint
    np.testing.assert_array_equal(pack(resumed).theta, pack(straight).theta)
    assert resumed.preprocess.fitted_on(X)


def test_augment_only_on_training_batches_deterministic_and_resumable(tmp_path):
    X, y = blobs(96, 5, 3)
    seen = []

    def noise(xb, rng):
        seen.append(len(xb))
        return xb + rng.standard_normal(xb.shape).astype(np.float32)

    def run(steps, **kw):
        m = mlp((5, 16, 3))
        fit(m, X, y, optimizer=optim.Adam(lr=1e-2), steps=steps, batch_size=16, augment=noise,
            validation=(X, y), **kw)
        return pack(m).theta.copy()

    a, b = run(12), run(12)
    np.testing.assert_array_equal(a, b)                            # same seed, same augmentation
    assert seen.count(16) == 24 and len(seen) == 24                # validation batches never augmented
    plain = mlp((5, 16, 3))
    fit(plain, X, y, optimizer=optim.Adam(lr=1e-2), steps=12, batch_size=16)
    assert not np.array_equal(pack(plain).theta, a)       # the augmentation did something
    run(5, checkpoint=tmp_path / "aug.st")
    resumed = mlp((5, 16, 3))
    fit(resumed, X, y, optimizer=optim.Adam(lr=1e-2), steps=12, batch_size=16, augment=noise,
        validation=(X, y), resume=tmp_path / "aug.st")
    np.testing.assert_array_equal(pack(resumed).theta, a)  # the augmentation generator resumes too


def test_lazy_zero_grad_zeroes_parameters_backward_did_not_reach():
    rng = np.random.default_rng(0)
    used, unused = nn.Linear(4, 2, rng=rng), nn.Linear(4, 2, rng=rng)
    model = nn.Sequential(used, unused)  # only `used` takes part in the forward pass below
    params = nn.pack(model)
    params.grad[...] = 7.0                                          # stale values from an earlier step
    params.zero_grad(lazy=True)
    x = rng.standard_normal((3, 4)).astype(np.float32)
    F.cross_entropy(used(x), np.array([0, 1, 0])).backward()
    params.zero_unwritten()
    assert np.all(params.view("1.weight", of="grad") == 0) and np.all(params.view("1.bias", of="grad") == 0)
    eager = nn.pack(nn.Sequential(nn.Linear(4, 2, rng=np.random.default_rng(0))))
    eager.theta[...] = params.theta[:eager.theta.size]
    eager.zero_grad()
    F.cross_entropy(eager.model[0](x), np.array([0, 1, 0])).backward()
    np.testing.assert_array_equal(params.grad[:eager.grad.size], eager.grad)  # overwrite == zero then add


def test_ctrl_c_stops_after_the_current_step_and_saves(tmp_path):
    X, y = blobs()

    class CtrlC:
        def on_step_end(self, state):
            if state.step == 3:
                os.kill(os.getpid(), signal.SIGINT)

    model = mlp()
    h = fit(model, X, y, optimizer=optim.SGD(lr=0.1), epochs=50, batch_size=8, callbacks=[CtrlC()],
            checkpoint=tmp_path / "c.st")
    assert h.steps == 3 and "interrupted" in h.stop_reason
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler  # handler restored
    from descend.train import load_checkpoint
    _, meta = load_checkpoint(tmp_path / "c.st")
    assert meta["clock"]["step"] == 3


def test_ctrl_c_in_an_epochs_last_step_stops_there():
    X, y = blobs()
    per_epoch = -(-len(X) // 8)

    class CtrlC:
        def on_step_end(self, state):
            if state.step == per_epoch:
                os.kill(os.getpid(), signal.SIGINT)

    h = fit(mlp(), X, y, optimizer=optim.SGD(lr=0.1), epochs=50, batch_size=8, callbacks=[CtrlC()])
    assert h.steps == per_epoch and len(h.epochs) == 1  # the epoch ends as trained; no step of the next
    assert h.stop_reason == f"interrupted by the user (Ctrl-C) after step {per_epoch}"


@pytest.mark.parametrize("section,key,value,words", [

    ("train", "batch_size", 0, "train.batch_size = 0"),
    ("train", "epochs", "ten", "train.epochs = 'ten'"),
    ("train", "divergence", 0.5, "factor > 1"),
    ("data", "val_fraction", 1.5, "between 0 and 1"),
    ("model", "dropout", 1.0, r"\[0, 1\)"),
])
def test_cli_refuses_bad_values_naming_them(tmp_path, capsys, section, key, value, words):
    import re

    import tomli_w

    from descend import cli
    path = tmp_path / "bad.toml"
    path.write_text(tomli_w.dumps({section: {key: value}}))
    assert cli.main(["train", "--config", str(path), "--quiet", "--out", str(tmp_path / "run")]) == 2
    assert re.search(words, capsys.readouterr().err)


def test_cli_resume_takes_new_limits_from_flags(tmp_path, capsys):
    from descend import cli
    run = tmp_path / "run"
    assert cli.main(["train", "--quiet", "--epochs", "2", "--out", str(run)]) == 0
    assert cli.main(["train", "--quiet", "--resume", str(run), "--epochs", "3"]) == 0
    import json
    assert json.loads((run / "metrics.json").read_text())["epochs"] == 3
    assert cli.main(["train", "--quiet", "--resume", str(tmp_path / "nowhere")]) == 2
