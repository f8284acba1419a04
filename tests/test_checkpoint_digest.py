"""Checkpoints carry a SHA-256 of their tensors and metadata: one flipped bit anywhere is refused, naming the
file as damaged; files written before the digest (no "sha256" in the header) still load."""
import json

import numpy as np
import pytest

import _checkpoint_writer as CW
from descend.train import load_checkpoint, save_checkpoint
from descend.train.checkpoint import FORMAT, VERSION, digest


def _flip(raw: bytes, pos: int, bit: int) -> bytes:
    b = bytearray(raw)
    b[pos] ^= 1 << bit
    return bytes(b)


def _same(a, b) -> bool:
    (aa, am), (ba, bm) = a, b
    return am == bm and sorted(aa) == sorted(ba) and all(
        aa[k].dtype == ba[k].dtype and aa[k].tobytes() == ba[k].tobytes() for k in aa)


def test_a_flipped_bit_in_the_tensors_is_refused_naming_the_file(tmp_path):
    path = tmp_path / "c.safetensors"
    save_checkpoint(path, *CW.contents("A", 1000))
    raw = path.read_bytes()
    start = 8 + int.from_bytes(raw[:8], "little")
    rng = np.random.default_rng(0)
    for pos in rng.integers(start, len(raw), 40):
        bad = tmp_path / f"flip{pos}.safetensors"
        bad.write_bytes(_flip(raw, int(pos), int(rng.integers(8))))
        with pytest.raises(ValueError, match="damaged") as e:
            load_checkpoint(bad)
        assert str(bad) in str(e.value)


def test_a_flipped_bit_in_the_header_never_loads_different_content(tmp_path):
    path = tmp_path / "c.safetensors"
    save_checkpoint(path, *CW.contents("B", 100))
    good = load_checkpoint(path)
    raw = path.read_bytes()
    header_end = 8 + int.from_bytes(raw[:8], "little")
    meta_at = raw.index(b'"meta"')
    refused = 0
    for pos in range(8, header_end):
        bad = tmp_path / "h.safetensors"
        bad.write_bytes(_flip(raw, pos, pos % 8))
        try:
            loaded = load_checkpoint(bad)
        except ValueError as e:
            assert str(bad) in str(e)
            refused += 1
            continue
        assert _same(loaded, good), f"a flip at byte {pos} loaded different content"
    # the metadata (meta JSON, digest) is covered: every flip inside it is refused
    assert refused > (header_end - meta_at) // 2


def test_a_file_without_a_digest_still_loads(tmp_path):
    from safetensors.numpy import save
    arrays, meta = CW.contents("A", 50)
    old = tmp_path / "old.safetensors"
    old.write_bytes(save(arrays, metadata={"format": FORMAT, "version": str(VERSION), "meta": json.dumps(meta)}))
    loaded_arrays, loaded_meta = load_checkpoint(old)
    assert loaded_meta == meta and all(np.array_equal(loaded_arrays[k], arrays[k]) for k in arrays)


def test_the_digest_is_sha256_of_names_dtypes_shapes_bytes_and_meta():
    import hashlib
    a = {"b": np.arange(3, dtype=np.float32), "a": np.ones((2, 2))}
    h = hashlib.sha256()
    for name in ("a", "b"):
        h.update(f"{name}\0{a[name].dtype.str}\0{a[name].shape}\0".encode() + a[name].tobytes())
    h.update(b'{"x": 1}')
    assert digest(a, '{"x": 1}') == h.hexdigest()
    assert digest(a, '{"x": 2}') != h.hexdigest()
