"""ONNX export checked in onnxruntime against descend (1e-5); PyTorch state_dict import checked against torch (1e-6)."""
from __future__ import annotations

import numpy as np
import onnx
import onnxruntime as ort
import pytest
import torch
from safetensors.torch import save_file

import descend
from descend import data as D
from descend import nn
from descend.cli import main
from descend.export import load_torch_state, to_onnx
from descend.optim import Adam

from _trainutil import blobs


def _run(session, X):
    return session.run(None, {"input": np.asarray(X, np.float32)})


def test_onnx_of_a_cnn_with_preprocessing_matches_descend(tmp_path):
    rng = np.random.default_rng(0)
    ds = D.load_digits(seed=0, images=True)
    X, y, Xt = ds.X_train[:200], ds.y_train[:200], ds.X_test[:64]
    model = nn.Sequential(nn.Conv2d(1, 4, 3, padding=1, rng=rng), nn.BatchNorm2d(4), nn.ReLU(), nn.MaxPool2d(2),
                          nn.Conv2d(4, 6, 3, padding=1, stride=1, rng=rng), nn.ELU(0.7), nn.AvgPool2d(2, padding=1),
                          nn.Flatten(), nn.Dropout(0.3, rng=rng), nn.Linear(54, 16, rng=rng),
                          nn.BatchNorm1d(16), nn.LeakyReLU(0.1), nn.Linear(16, 10, rng=rng), nn.Tanh())
    descend.fit(model, X, y, optimizer=Adam(lr=1e-2), epochs=2, preprocess=D.Standardize(),
                checkpoint=tmp_path / "checkpoint.safetensors")
    loaded = descend.load(tmp_path)
    assert main(["export", str(tmp_path), "--onnx", str(tmp_path / "m.onnx")]) == 0
    session = ort.InferenceSession(str(tmp_path / "m.onnx"), providers=["CPUExecutionProvider"])
    logits, proba = _run(session, Xt)
    np.testing.assert_allclose(logits, loaded.outputs(Xt), atol=1e-5, rtol=1e-5)
    np.testing.assert_allclose(proba, loaded.predict_proba(Xt), atol=1e-5, rtol=1e-5)
    assert not any(n.op_type == "Dropout" for n in onnx.load(str(tmp_path / "m.onnx")).graph.node)


@pytest.mark.parametrize("pre", [D.PCAWhiten(n_components=5), D.ZCAWhiten(), D.Center(), None])
def test_onnx_of_an_mlp_with_each_preprocessing(tmp_path, pre):
    X, y = blobs(n=120, features=8, classes=3, seed=5)
    rng = np.random.default_rng(1)
    width = 5 if isinstance(pre, D.PCAWhiten) else 8
    model = nn.Sequential(nn.Linear(width, 12, rng=rng), nn.Sigmoid(), nn.Linear(12, 3, rng=rng))
    descend.fit(model, X, y, optimizer=Adam(lr=1e-2), epochs=2, preprocess=pre, checkpoint=tmp_path / "c.safetensors")
    loaded = descend.load(tmp_path / "c.safetensors")
    to_onnx(loaded, tmp_path / "m.onnx")
    session = ort.InferenceSession(str(tmp_path / "m.onnx"), providers=["CPUExecutionProvider"])
    np.testing.assert_allclose(_run(session, X)[0], loaded.outputs(X), atol=1e-5, rtol=1e-5)


def test_a_layer_without_onnx_mapping_is_named_and_nothing_is_written(tmp_path):
    rng = np.random.default_rng(0)
    model = nn.Sequential(nn.Linear(4, 6, rng=rng), nn.Maxout(6, 3, rng=rng), nn.Linear(3, 2, rng=rng))
    with pytest.raises(ValueError, match="layer 1 \\(Maxout\\) has no ONNX mapping"):
        to_onnx(model, tmp_path / "m.onnx", input_shape=(4,))
    assert not (tmp_path / "m.onnx").exists()


def test_a_pytorch_state_dict_loads_into_the_equivalent_descend_model(tmp_path):
    torch.manual_seed(0)
    tm = torch.nn.Sequential(torch.nn.Conv2d(1, 3, 3, padding=1), torch.nn.BatchNorm2d(3), torch.nn.ReLU(),
                             torch.nn.MaxPool2d(2), torch.nn.Flatten(), torch.nn.Linear(48, 10), torch.nn.Tanh(),
                             torch.nn.Linear(10, 4)).double()
    tm.train()
    with torch.no_grad():  # non-trivial running statistics
        tm(torch.randn(16, 1, 8, 8, dtype=torch.float64) * 3 + 1)
    tm.eval()
    save_file({k: v.contiguous() for k, v in tm.state_dict().items()}, str(tmp_path / "t.safetensors"))
    rng = np.random.default_rng(0)
    dm = nn.Sequential(nn.Conv2d(1, 3, 3, padding=1, rng=rng), nn.BatchNorm2d(3), nn.ReLU(), nn.MaxPool2d(2),
                       nn.Flatten(), nn.Linear(48, 10, rng=rng), nn.Tanh(), nn.Linear(10, 4, rng=rng))
    descend.pack(dm, dtype=np.float64)
    load_torch_state(dm, tmp_path / "t.safetensors")
    X = np.random.default_rng(1).standard_normal((20, 1, 8, 8))
    with torch.no_grad():
        expected = tm(torch.tensor(X)).numpy()
    np.testing.assert_allclose(descend.predict(dm, X), expected, rtol=1e-6, atol=1e-6)
    wrong = nn.Sequential(nn.Conv2d(1, 3, 3, padding=1, rng=rng), nn.BatchNorm2d(3), nn.ReLU(), nn.MaxPool2d(2),
                          nn.Flatten(), nn.Linear(48, 12, rng=rng), nn.Tanh(), nn.Linear(12, 4, rng=rng))
    before = descend.pack(wrong).theta.copy()
    with pytest.raises(ValueError, match="5.weight: model \\(12, 48\\), file \\(10, 48\\)"):
        load_torch_state(wrong, tmp_path / "t.safetensors")
    np.testing.assert_array_equal(descend.pack(wrong).theta, before)
