"""A run folder is a model: descend.load rebuilds the architecture from the checkpoint and predicts bit for bit."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import descend
from descend import data as D
from descend import nn
from descend.nn.spec import LAYERS, build, describe
from descend.optim import SGD, Adam
from descend.train import checkpoint as ckpt

from _trainutil import blobs

ROOT = Path(__file__).resolve().parents[1]


def _cnn(rng):
    return nn.Sequential(nn.Conv2d(1, 4, 3, padding=1, rng=rng), nn.BatchNorm2d(4), nn.ReLU(), nn.MaxPool2d(2),
                         nn.Conv2d(4, 4, 3, padding=1, rng=rng), nn.Tanh(), nn.AvgPool2d(2), nn.Flatten(),
                         nn.Dropout(0.2, rng=rng), nn.Linear(16, 10, rng=rng))


def _mlp(rng, features):
    # 2048 → 16 is stored column-major in θ (Linear's tall-product layout): the load must rebuild that too
    return nn.Sequential(nn.Linear(features, 16, rng=rng), nn.BatchNorm1d(16), nn.LeakyReLU(0.05),
                         nn.Dropout(0.3, rng=rng), nn.Linear(16, 8, rng=rng), nn.ELU(0.5),
                         nn.Maxout(8, 4, pieces=3, rng=rng), nn.Sigmoid(), nn.Linear(4, 3, rng=rng))


def test_describe_then_build_gives_the_same_architecture():
    rng = np.random.default_rng(0)
    for model in (_cnn(rng), _mlp(rng, 2048)):
        spec = describe(model)
        json.dumps(spec)  # JSON data only
        rebuilt = build(spec)
        assert repr(rebuilt) == repr(model)
        assert describe(rebuilt) == spec
        a, b = descend.pack(model), descend.pack(rebuilt)
        assert [(e.name, e.shape, e.kind, e.order) for e in a.layout] == \
               [(e.name, e.shape, e.kind, e.order) for e in b.layout]
    assert {"Linear", "Conv2d", "BatchNorm2d", "Dropout", "Flatten"} <= set(LAYERS)


@pytest.mark.parametrize("kind", ["mlp", "cnn"])
def test_load_predicts_bit_for_bit_what_the_training_process_predicts(tmp_path, kind):
    rng = np.random.default_rng(1)
    if kind == "cnn":
        ds = D.load_digits(seed=0, images=True)
        X, y, Xt = ds.X_train[:300], ds.y_train[:300], ds.X_test[:100]
        model, pre = _cnn(rng), None
    else:
        X, y = blobs(n=200, features=2048, classes=3, seed=2)
        Xt = blobs(n=50, features=2048, classes=3, seed=3)[0]
        model, pre = _mlp(rng, 2048), D.Standardize()
    es = descend.train.EarlyStopping(monitor="val_loss", patience=2, restore_best=True)
    descend.fit(model, X, y, optimizer=Adam(lr=1e-2), epochs=4, batch_size=32, validation=(X[:50], y[:50]),
                stopping=[es], preprocess=pre, checkpoint=tmp_path / "checkpoint.safetensors")
    expected = descend.predict(model, Xt)
    loaded = descend.load(tmp_path)  # the run folder
    assert isinstance(loaded, descend.Predictor)
    assert loaded.input_shape == X.shape[1:] and loaded.loss == "cross_entropy"
    np.testing.assert_array_equal(loaded.outputs(Xt), expected)
    np.testing.assert_array_equal(loaded.predict(Xt), expected.argmax(axis=1))
    p = loaded.predict_proba(Xt)
    e = np.exp(expected.astype(np.float64) - expected.max(axis=1, keepdims=True))
    np.testing.assert_allclose(p, e / e.sum(axis=1, keepdims=True), rtol=1e-5, atol=1e-7)
    assert p.dtype == np.float32
    np.testing.assert_array_equal(descend.load(tmp_path / "checkpoint.safetensors").outputs(Xt), expected)


def test_load_in_a_new_process_gives_the_same_bits(tmp_path):
    X, y = blobs(n=90, features=6, classes=3, seed=4)
    model = nn.Sequential(nn.Linear(6, 12, rng=np.random.default_rng(0)), nn.ReLU(),
                          nn.Linear(12, 3, rng=np.random.default_rng(1)))
    descend.fit(model, X, y, optimizer=SGD(lr=0.1, momentum=0.9), epochs=3, preprocess=D.Standardize(),
                checkpoint=tmp_path / "checkpoint.safetensors")
    np.save(tmp_path / "X.npy", X)
    code = ("import sys, numpy as np, descend; m = descend.load(sys.argv[1]); "
            "np.save(sys.argv[2], m.outputs(np.load(sys.argv[3])))")
    subprocess.run([sys.executable, "-c", code, str(tmp_path), str(tmp_path / "out.npy"), str(tmp_path / "X.npy")],
                   check=True, cwd=ROOT, env={"PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin"})
    np.testing.assert_array_equal(np.load(tmp_path / "out.npy"), descend.predict(model, X))


def test_a_run_folder_of_descend_train_is_a_model(tmp_path):
    from descend.config import prepare_data, resolve
    from descend.jobs import run
    cfg = resolve({"model": {"hidden": [16]}, "train": {"epochs": 2, "patience": 0}})
    final = run(cfg, tmp_path / "run", progress=False)
    Xte, yte = prepare_data(cfg)[4:6]
    m = descend.load(tmp_path / "run")
    assert m.preprocess is not None  # the run's fitted standardization came along
    res = m.evaluate(Xte, yte)
    assert res["accuracy"] == final["test_accuracy"] and res["loss"] == final["test_loss"]
    cm = np.array(res["confusion_matrix"])
    assert cm.shape == (10, 10) and cm.sum() == len(yte)
    assert np.trace(cm) / len(yte) == res["accuracy"]


def test_bce_and_regression_models(tmp_path):
    rng = np.random.default_rng(0)
    X = rng.standard_normal((80, 3)).astype(np.float32)
    yb = (X[:, 0] > 0).astype(np.float32)
    m = nn.Sequential(nn.Linear(3, 1, rng=rng))
    descend.fit(m, X, yb, optimizer=Adam(lr=0.05), loss=nn.bce_with_logits, epochs=3,
                checkpoint=tmp_path / "b.safetensors")
    z = descend.predict(m, X)[:, 0]
    p = descend.load(tmp_path / "b.safetensors").predict_proba(X)
    assert p.shape == (80, 2)
    np.testing.assert_allclose(p[:, 1], 1 / (1 + np.exp(-z.astype(np.float64))), rtol=1e-6)
    np.testing.assert_array_equal(descend.load(tmp_path / "b.safetensors").predict(X), (z > 0).astype(int))
    r = nn.Sequential(nn.Linear(3, 2, rng=rng))
    descend.fit(r, X, X[:, :2] * 2, optimizer=Adam(lr=0.05), loss=nn.mse, epochs=3,
                checkpoint=tmp_path / "r.safetensors")
    loaded = descend.load(tmp_path / "r.safetensors")
    np.testing.assert_array_equal(loaded.predict(X), descend.predict(r, X))
    with pytest.raises(ValueError, match="predict_proba needs a model trained with cross_entropy"):
        loaded.predict_proba(X)


def _trained(tmp_path):
    X, y = blobs(n=60, features=5, classes=3)
    model = nn.Sequential(nn.Linear(5, 8, rng=np.random.default_rng(0)), nn.ReLU(),
                          nn.Linear(8, 3, rng=np.random.default_rng(1)))
    path = tmp_path / "checkpoint.safetensors"
    descend.fit(model, X, y, optimizer=Adam(), epochs=1, checkpoint=path)
    return path, X


def _rewrite(path, change):
    arrays, meta = ckpt.load_checkpoint(path)
    change(meta)
    ckpt.save_checkpoint(path, arrays, meta)


def test_refusals_name_the_problem(tmp_path):
    path, X = _trained(tmp_path)
    (tmp_path / "empty").mkdir()
    with pytest.raises(FileNotFoundError, match="holds no checkpoint.safetensors"):
        descend.load(tmp_path / "empty")
    with pytest.raises(FileNotFoundError, match="no run folder or checkpoint"):
        descend.load(tmp_path / "nowhere")
    with pytest.raises(ValueError, match="the model takes samples of shape \\(5,\\) \\(5 features\\)"):
        descend.load(path).predict(X[:, :4])
    with pytest.raises(TypeError, match="dtype <U"):
        descend.load(path).predict(np.array([["a"] * 5]))

    _rewrite(path, lambda m: m["architecture"]["model"]["layers"][1].update(type="Swish"))
    with pytest.raises(ValueError, match="unknown layer type 'Swish' at 1"):
        descend.load(path)
    _rewrite(path, lambda m: m["architecture"].update(version=99))
    with pytest.raises(ValueError, match="version 99.*upgrade descend"):
        descend.load(path)
    _rewrite(path, lambda m: m.pop("architecture"))
    with pytest.raises(ValueError, match="records no architecture"):
        descend.load(path)


def test_a_model_with_a_custom_layer_still_checkpoints_but_cannot_be_loaded_alone(tmp_path):
    class Twice(nn.Module):
        def forward(self, x):
            return x * 2.0

    X, y = blobs(n=30, features=5, classes=3)
    model = nn.Sequential(nn.Linear(5, 3, rng=np.random.default_rng(0)), Twice())
    with pytest.raises(ValueError, match="layer 1 of type Twice has no architecture description"):
        describe(model)
    descend.fit(model, X, y, optimizer=Adam(), epochs=1, batch_size=None, checkpoint=tmp_path / "c.safetensors")
    with pytest.raises(ValueError, match="records no architecture.*load_model"):
        descend.load(tmp_path / "c.safetensors")

