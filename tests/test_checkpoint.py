"""Checkpoints (QUALITY.md): crash-safe under real SIGKILLs while saving, refuse another architecture or a
newer format naming what differs, and never run code from a crafted file (no pickle on the load path)."""
import json
import os
import pickle
import random
import signal
import struct
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

from descend import pack
import pytest
from _trainutil import blobs, mlp, one_numba_thread  # noqa: F401 (fixture)

import _checkpoint_writer as CW
from descend.optim import Adam
from descend.train import fit, load_checkpoint, save_checkpoint
from descend.train.checkpoint import FORMAT, VERSION, check_layout

HERE = Path(__file__).parent
KILLS = 60
SIZE = 1 << 20  # 4 MB of float32 θ


def _which(path) -> str:
    arrays, meta = load_checkpoint(path)
    expected_arrays, expected_meta = CW.contents(meta["which"], SIZE)
    assert meta == expected_meta
    assert sorted(arrays) == sorted(expected_arrays)
    for k in arrays:
        assert arrays[k].dtype == expected_arrays[k].dtype and np.array_equal(arrays[k], expected_arrays[k]), k
    return meta["which"]


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs fork and SIGKILL")
def test_sigkill_while_saving_leaves_the_old_or_the_new_checkpoint(tmp_path):
    path = tmp_path / "run" / "ckpt.safetensors"
    path.parent.mkdir()
    driver = subprocess.Popen([sys.executable, str(HERE / "_checkpoint_writer.py"), str(path), str(SIZE)],
                              stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, cwd=HERE)
    contents = CW.contents("A", SIZE)
    times = []
    for _ in range(3):
        t0 = time.perf_counter()
        save_checkpoint(tmp_path / "timing" / "t.safetensors", *contents)
        times.append(time.perf_counter() - t0)
    t_save = min(times)  # kill within ~3 saves of the fork: mostly mid-save, on any disk
    rnd = random.Random(0)
    seen = {"A": 0, "B": 0, "missing": 0}
    strays = 0
    started = time.monotonic()
    try:
        for _ in range(KILLS):
            driver.stdin.write("fork\n")
            driver.stdin.flush()
            pid = int(driver.stdout.readline())
            time.sleep(rnd.uniform(0.0, 3 * t_save + 0.005))
            os.kill(pid, signal.SIGKILL)
            driver.stdin.write("reap\n")
            driver.stdin.flush()
            status = int(driver.stdout.readline())
            assert os.WIFSIGNALED(status) and os.WTERMSIG(status) == signal.SIGKILL  # it died by the kill
            if not path.exists():
                assert seen["A"] + seen["B"] == 0, "a checkpoint that existed disappeared"
                seen["missing"] += 1
            else:
                seen[_which(path)] += 1
            for stray in path.parent.iterdir():  # temp files of interrupted saves: never the checkpoint itself
                if stray == path:
                    continue
                assert stray.name.startswith(path.name + ".") and stray.name.endswith(".tmp"), stray
                strays += 1
                try:
                    _which(stray)  # complete but not yet renamed: still exactly A or B
                except ValueError:
                    pass  # torn: refused, as it should be
                stray.unlink()
    finally:
        driver.stdin.write("quit\n")
        driver.stdin.flush()
        driver.wait(timeout=10)
    assert seen["A"] > 5 and seen["B"] > 5, seen  # kills landed across many saves of both versions
    assert strays > 0, "no kill interrupted a save; the test would not show anything"
    assert time.monotonic() - started < 60


def test_torn_files_are_refused(tmp_path):
    path = tmp_path / "c.safetensors"
    save_checkpoint(path, *CW.contents("A", 1000))
    raw = path.read_bytes()
    for cut in (0, 4, 8, 20, len(raw) // 2, len(raw) - 1):
        torn = tmp_path / f"torn{cut}.safetensors"
        torn.write_bytes(raw[:cut])
        with pytest.raises(ValueError, match=r"is damaged or not a descend checkpoint"):
            load_checkpoint(torn)


def _checkpoint_of(model, path):
    X, y = blobs(32, features=model[0].in_features)
    fit(model, X, y, optimizer=Adam(), steps=2, batch_size=16, checkpoint=path)


def test_another_architecture_is_refused_naming_the_entries(tmp_path):
    path = tmp_path / "c.safetensors"
    _checkpoint_of(mlp((5, 16, 3)), path)
    X, y = blobs(32)
    with pytest.raises(ValueError, match=r"does not fit this model \(another architecture\?\): "
                                         r"0\.weight: model has shape \(8, 5\) float32, checkpoint has \(16, 5\) "
                                         r"float32; 0\.bias: model has shape \(8,\) float32, checkpoint has \(16,\)"):
        fit(mlp((5, 8, 3)), X, y, optimizer=Adam(), steps=4, batch_size=16, resume=path)
    with pytest.raises(ValueError, match=r"4\.weight: missing in the checkpoint; 4\.bias: missing in the checkpoint"):
        fit(mlp((5, 16, 16, 3)), X, y, optimizer=Adam(), steps=4, batch_size=16, resume=path)
    model = mlp((5, 16, 3))
    before = np.concatenate([p.data.ravel() for p in model.parameters()])
    with pytest.raises(ValueError, match=r"0\.weight: model has shape \(16, 5\) float64, "
                                         r"checkpoint has \(16, 5\) float32"):
        fit(model, X, y, optimizer=Adam(), steps=4, batch_size=16, resume=path, dtype=np.float64)
    assert np.array_equal(np.concatenate([p.data.ravel() for p in model.parameters()]), before)  # untouched
    h = fit(model, X, y, optimizer=Adam(), steps=4, batch_size=16, resume=path)  # the right one loads
    assert h.steps == 4


def test_check_layout_lists_every_problem():
    with pytest.raises(ValueError) as e:
        check_layout([["a", [2], "float32"], ["b", [3], "float32"]],
                     [["a", [2], "float64"], ["c", [1], "float32"]])
    msg = str(e.value)
    assert "a: model has shape (2,) float32, checkpoint has (2,) float64" in msg
    assert "b: missing in the checkpoint" in msg and "c: in the checkpoint but not in the model" in msg
    check_layout([["a", [2], "float32"]], [["a", (2,), "float32"]])  # equal: silent


def _header(meta_info: dict, tensors=None) -> bytes:
    header = dict(tensors or {"theta": {"dtype": "F32", "shape": [2], "data_offsets": [0, 8]}})
    header["__metadata__"] = meta_info
    h = json.dumps(header).encode()
    return struct.pack("<Q", len(h)) + h + b"\0" * 8


def test_newer_format_is_refused(tmp_path):
    path = tmp_path / "new.safetensors"
    path.write_bytes(_header({"format": FORMAT, "version": str(VERSION + 1), "meta": "{}"}))
    with pytest.raises(ValueError, match=rf"written by a newer descend \(checkpoint format {VERSION + 1}, this "
                                         rf"version reads up to {VERSION}\); upgrade descend"):
        load_checkpoint(path)
    path.write_bytes(_header({"format": FORMAT, "version": "one", "meta": "{}"}))
    with pytest.raises(ValueError, match=r"unreadable checkpoint version 'one'"):
        load_checkpoint(path)
    path.write_bytes(_header({"format": "other-tool", "version": "1"}))
    with pytest.raises(ValueError, match=r"is not a descend checkpoint \(format 'other-tool'\)"):
        load_checkpoint(path)
    path.write_bytes(_header({"format": FORMAT, "version": str(VERSION), "meta": "{}"}))
    arrays, meta = load_checkpoint(path)  # the current version loads
    assert meta == {} and np.array_equal(arrays["theta"], np.zeros(2, np.float32))


class _Boom:
    """Unpickling this object would create the marker file."""

    def __init__(self, marker):
        self.marker = str(marker)

    def __reduce__(self):
        return (open, (self.marker, "w"))


def test_crafted_files_raise_and_run_no_code(tmp_path):
    marker = tmp_path / "pwned"
    payload = pickle.dumps(_Boom(marker))
    crafted = {
        "pickle.safetensors": payload,
        "npz.safetensors": None,  # an .npz with an object (pickled) array, below
        "torch-like.safetensors": b"PK\x03\x04" + payload,
        "garbage.safetensors": os.urandom(4096),
        "huge-header.safetensors": struct.pack("<Q", 1 << 62) + b"{}",
        "json-not-dict.safetensors": struct.pack("<Q", 2) + b"[]",
        "pickle-in-metadata.safetensors": _header({"format": FORMAT, "version": "1", "meta": payload.hex()}),
        "empty.safetensors": b"",
    }
    for name, data in crafted.items():
        path = tmp_path / name
        if data is None:
            with open(path, "wb") as f:
                np.savez(f, theta=np.array([_Boom(marker)], dtype=object))
        else:
            path.write_bytes(data)
        with pytest.raises(ValueError):
            load_checkpoint(path)
        assert not marker.exists(), f"{name} ran code"
    with pytest.raises(FileNotFoundError, match=r"no checkpoint at"):
        load_checkpoint(tmp_path / "absent.safetensors")


def test_a_checkpoint_holds_everything_needed(tmp_path):
    path = tmp_path / "c.safetensors"
    model = mlp()
    X, y = blobs(40)
    fit(model, X, y, optimizer=Adam(), steps=5, batch_size=16, checkpoint=path, config={"lr": 1e-3})
    arrays, meta = load_checkpoint(path)
    assert np.array_equal(arrays["theta"], pack(model).theta)
    assert {"optimizer.m", "optimizer.v", "order"} <= set(arrays)
    assert meta["optimizer"]["t"] == 5 and meta["clock"]["step"] == 5 and meta["clock"]["batch"] == 2
    assert meta["config"] == {"lr": 1e-3} and len(meta["history"]["step_loss"]) == 5
    assert meta["rng"]["bit_generator"] == "PCG64"
    assert [tuple(e[1]) for e in meta["layout"]] == [(16, 5), (16,), (3, 16), (3,)]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["c.safetensors"]  # no temp files left


def test_checkpoints_store_column_major_weights_row_major(tmp_path):
    """θ's own order keeps a narrowing Linear's weight column-major; on disk every parameter is row-major
    (the layout the file has always had), and resume and load_model convert back exactly."""
    from descend.train import load_model
    X, y = blobs(300, features=300, classes=4)
    path, straight_path = tmp_path / "c.safetensors", tmp_path / "s.safetensors"

    def model():
        return mlp((300, 100, 4))

    straight, opt = model(), Adam()
    fit(straight, X, y, optimizer=opt, steps=12, batch_size=32, checkpoint=straight_path)
    assert pack(straight).layout[0].order == "F"
    arrays, _ = load_checkpoint(straight_path)
    row_major = np.concatenate([p.data.ravel() for p in straight.parameters()])
    assert np.array_equal(arrays["theta"], row_major)
    assert not np.array_equal(arrays["theta"], pack(straight).theta)
    assert np.array_equal(arrays["optimizer.m"], pack(straight).canonical(opt.state["m"]))

    half = model()
    fit(half, X, y, optimizer=Adam(), steps=5, batch_size=32, checkpoint=path)
    resumed = model()
    fit(resumed, X, y, optimizer=Adam(), steps=12, batch_size=32, checkpoint=path, resume=path)
    assert np.array_equal(pack(resumed).theta, pack(straight).theta)  # bit for bit
    a, b = load_checkpoint(path)[0], arrays
    for k in b:
        assert np.array_equal(a[k], b[k], equal_nan=True), k  # optimizer state included

    loaded = load_model(model(), straight_path, best=False)
    for p, q in zip(loaded.parameters(), straight.parameters()):
        assert np.array_equal(p.data, q.data)
