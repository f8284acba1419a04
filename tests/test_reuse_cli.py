"""descend predict / descend evaluate: a run folder on a data file (.npy, .npz, .csv), results equal to the library's."""
from __future__ import annotations

import numpy as np
import pytest

import descend
from descend import data as D
from descend import nn
from descend.cli import main
from descend.optim import Adam

from _trainutil import blobs


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    """A trained run: (folder, X_test, y_test, the training process's own outputs on X_test)."""
    tmp = tmp_path_factory.mktemp("run")
    X, y = blobs(n=150, features=4, classes=3, seed=0)
    Xt, yt = X[:40] + np.float32(0.5), y[:40]  # shifted: not all correct
    model = nn.Sequential(nn.Linear(4, 8, rng=np.random.default_rng(0)), nn.Tanh(),
                          nn.Linear(8, 3, rng=np.random.default_rng(1)))
    descend.fit(model, X, y, optimizer=Adam(lr=0.02), epochs=3, preprocess=D.Standardize(),
                checkpoint=tmp / "checkpoint.safetensors")
    return tmp, Xt, yt, descend.predict(model, Xt)


def test_predict_writes_what_the_library_predicts(run, tmp_path, capsys):
    folder, Xt, yt, out = run
    np.save(tmp_path / "X.npy", Xt)
    assert main(["predict", str(folder), "--data", str(tmp_path / "X.npy"), "--out", str(tmp_path / "p.npy")]) == 0
    np.testing.assert_array_equal(np.load(tmp_path / "p.npy"), out.argmax(axis=1))
    assert main(["predict", str(folder), "--data", str(tmp_path / "X.npy"), "--outputs",
                 "--out", str(tmp_path / "o.csv")]) == 0
    np.testing.assert_array_equal(np.loadtxt(tmp_path / "o.csv", delimiter=",", dtype=np.float32), out)  # 9 digits
    np.savetxt(tmp_path / "X.csv", Xt, delimiter=",", header="a,b,c,d", comments="", fmt="%.9g")
    capsys.readouterr()
    assert main(["predict", str(folder), "--data", str(tmp_path / "X.csv"), "--proba"]) == 0
    printed = np.loadtxt(capsys.readouterr().out.splitlines(), delimiter=",")
    np.testing.assert_allclose(printed, descend.load(folder).predict_proba(Xt), rtol=1e-7)
    np.testing.assert_allclose(printed.sum(axis=1), 1, rtol=1e-6)


def test_evaluate_prints_loss_accuracy_and_the_confusion_matrix(run, tmp_path, capsys):
    folder, Xt, yt, out = run
    np.savez(tmp_path / "d.npz", X=Xt, y=yt)
    capsys.readouterr()
    assert main(["evaluate", str(folder), "--data", str(tmp_path / "d.npz"), "--target", "y"]) == 0
    text = capsys.readouterr().out
    z = out.astype(np.float64)
    logp = z - z.max(axis=1, keepdims=True)
    logp -= np.log(np.exp(logp).sum(axis=1, keepdims=True))
    loss = -logp[np.arange(len(yt)), yt].mean()
    assert f"loss: {loss:.6g}" in text
    pred = out.argmax(axis=1)
    assert f"accuracy: {np.mean(pred == yt):.4f}" in text
    rows = [line.split() for line in text.splitlines()[-3:]]
    cm = np.array([[int(v) for v in r[1:]] for r in rows])
    expected = np.array([[np.sum((yt == i) & (pred == j)) for j in range(3)] for i in range(3)])
    np.testing.assert_array_equal(cm, expected)
    # the same through a CSV with the label as a named column, and a separate target file
    np.savetxt(tmp_path / "d.csv", np.c_[yt, Xt], delimiter=",", header="label,a,b,c,d", comments="", fmt="%.9g")
    assert main(["evaluate", str(folder), "--data", str(tmp_path / "d.csv"), "--target", "label"]) == 0
    assert capsys.readouterr().out == text
    np.save(tmp_path / "X.npy", Xt)
    np.savetxt(tmp_path / "y.csv", yt, fmt="%d")
    assert main(["evaluate", str(folder), "--data", str(tmp_path / "X.npy"), "--target", str(tmp_path / "y.csv")]) == 0
    assert capsys.readouterr().out == text


@pytest.mark.parametrize("make, args, message", [
    (lambda p, X, y: np.save(p / "X.npy", X[:, :3]), ["predict", "{run}", "--data", "{p}/X.npy"],
     "the data have 3 features per sample .* the model takes samples of shape \\(4,\\)"),
    (lambda p, X, y: np.save(p / "X.npy", X), ["predict", "{p}", "--data", "{p}/X.npy"], "holds no checkpoint"),
    (lambda p, X, y: np.save(p / "X.npy", X), ["predict", "{run}", "--data", "{p}/X.npy", "--out", "{p}/o.txt"],
     "unknown format '.txt'"),
    (lambda p, X, y: (p / "X.csv").write_text("a,b,c,d\n1,2,x,4\n"), ["predict", "{run}", "--data", "{p}/X.csv"],
     "not a CSV of numbers"),
    (lambda p, X, y: np.save(p / "X.npy", np.array(["a"] * 4, dtype=object), allow_pickle=True),
     ["predict", "{run}", "--data", "{p}/X.npy"], "cannot be read without pickle"),
    (lambda p, X, y: np.savez(p / "d.npz", X=X, y=y + 5), ["evaluate", "{run}", "--data", "{p}/d.npz", "--target", "y"],
     "labels from 5 to 7, but the model has 3 classes"),
    (lambda p, X, y: np.savez(p / "d.npz", X=X, y=y), ["evaluate", "{run}", "--data", "{p}/d.npz", "--target", "t"],
     "holds no array of that name"),
    (lambda p, X, y: np.save(p / "X.npy", X.astype(np.float32) * np.nan),
     ["predict", "{run}", "--data", "{p}/X.npy"], "NaN"),
])
def test_bad_input_is_one_line_and_exit_2(run, tmp_path, capsys, make, args, message):
    folder, Xt, yt, _ = run
    make(tmp_path, Xt, yt)
    capsys.readouterr()
    assert main([a.format(run=folder, p=tmp_path) for a in args]) == 2
    err = capsys.readouterr().err
    assert err.startswith("descend: error: ") and err.count("\n") == 1
    import re
    assert re.search(message, err), err
    assert not (tmp_path / "o.txt").exists()


def test_train_from_a_run_with_frozen_layers_and_a_new_head(tmp_path, capsys):
    assert main(["train", "--hidden", "16,8", "--epochs", "2", "--quiet", "--out", str(tmp_path / "a")]) == 0
    base = descend.load(tmp_path / "a")
    theta0 = descend.pack(base.module).theta.copy()
    assert main(["train", "--init-from", str(tmp_path / "a"), "--freeze", "2", "--new-head", "10",
                 "--backbone-lr-scale", "0.1", "--hidden", "16,8", "--epochs", "2", "--quiet",
                 "--out", str(tmp_path / "b")]) == 0
    tuned = descend.load(tmp_path / "b")
    p0, p1 = descend.pack(base.module), descend.pack(tuned.module)
    for name in ("0.weight", "0.bias"):  # layers 0 (Linear) and 1 (ReLU) frozen: bit-identical
        np.testing.assert_array_equal(p1.view(name), p0.view(name))
    assert not np.array_equal(p1.view("2.weight"), p0.view("2.weight"))  # trained at lr/10
    np.testing.assert_array_equal(descend.pack(base.module).theta, theta0)
    capsys.readouterr()
    assert main(["train", "--init-from", str(tmp_path / "a"), "--dataset", "iris", "--epochs", "1", "--quiet",
                 "--out", str(tmp_path / "c")]) == 2
    assert "trained on samples of shape (64,), the data have (4,)" in capsys.readouterr().err
    assert main(["train", "--freeze", "2", "--out", str(tmp_path / "d")]) == 2
    assert "need --init-from" in capsys.readouterr().err
    assert not (tmp_path / "c" / "checkpoint.safetensors").exists() and not (tmp_path / "d").exists()
