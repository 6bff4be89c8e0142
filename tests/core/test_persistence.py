"""save/load round trips, the saved-format contract (version-1 fixtures) and corrupt files."""

from __future__ import annotations

import json
import struct
from pathlib import Path

import numpy as np
import pytest

from evokernel import _core

DATA = Path(__file__).parent / "data"


def assert_same(a: _core.ExperienceIndex, b: _core.ExperienceIndex) -> None:
    assert (a.dim, a.fp16, len(a)) == (b.dim, b.fp16, len(b))
    assert (a.reward_beta, a.reward_std_floor, a.reward_warmup) == \
        (b.reward_beta, b.reward_std_floor, b.reward_warmup)
    ids = a.ids()
    np.testing.assert_array_equal(ids, b.ids())
    for i in ids.tolist():
        assert a.tag(i) == b.tag(i)
        np.testing.assert_array_equal(a.vector(i), b.vector(i))
    for stage in (_core.DRAFT, _core.REFINE):
        np.testing.assert_array_equal(a.get_q(ids, stage), b.get_q(ids, stage))
        np.testing.assert_array_equal(a.get_visits(ids, stage), b.get_visits(ids, stage))
        assert a.reward_stats(stage) == b.reward_stats(stage)


@pytest.mark.parametrize("fp16", [False, True])
@pytest.mark.parametrize("dim", [5, 32])
def test_round_trip(make_index, rng, tmp_path, fp16, dim):
    index = _core.ExperienceIndex(dim, fp16=fp16, reward_beta=0.2, reward_std_floor=0.3,
                                  reward_warmup=2)
    ids = rng.permutation(np.arange(100, 160, dtype=np.int64))
    index.add(ids, rng.standard_normal((60, dim)).astype(np.float32),
              rng.integers(0, 2**32, 60, dtype=np.uint64).astype(np.uint32))
    index.remove(ids[::7])
    kept = index.ids()
    index.set_q(kept, _core.DRAFT, rng.uniform(-1, 1, len(kept)), rng.integers(0, 9, len(kept)))
    index.update_q(kept[:5], _core.REFINE, 0.7)
    for r in rng.uniform(-1, 1, 5):
        index.normalize_reward(_core.REFINE, float(r))
    path = tmp_path / "index.evk"
    index.save(path)  # pathlib.Path and str are both accepted
    loaded = _core.ExperienceIndex.load(str(path))
    assert_same(index, loaded)
    q = rng.standard_normal((3, dim)).astype(np.float32)
    before = index.search(q, 9, tag_mask=1, tag_value=1)
    after = loaded.search(q, 9, tag_mask=1, tag_value=1)
    for a, b in zip(before, after):
        np.testing.assert_array_equal(a, b)
    # The loaded index keeps working: normalisation continues the same statistics.
    assert index.normalize_reward(_core.REFINE, 0.5) == loaded.normalize_reward(_core.REFINE, 0.5)
    assert not list(tmp_path.glob("*.tmp"))


def test_empty_round_trip(tmp_path):
    index = _core.ExperienceIndex(3)
    index.save(tmp_path / "e")
    loaded = _core.ExperienceIndex.load(tmp_path / "e")
    assert len(loaded) == 0 and loaded.dim == 3


def test_save_replaces_existing_file(make_index, tmp_path):
    path = tmp_path / "x"
    path.write_bytes(b"old contents")
    index, *_ = make_index(4, 4)
    index.save(path)
    assert len(_core.ExperienceIndex.load(path)) == 4


@pytest.mark.parametrize("name", ["index_v1_f32", "index_v1_f16"])
def test_version_1_fixture_loads(name):
    expected = json.loads((DATA / f"{name}.json").read_text())
    index = _core.ExperienceIndex.load(DATA / f"{name}.evkidx")
    assert index.dim == expected["dim"] and index.fp16 == expected["fp16"]
    assert (index.reward_beta, index.reward_std_floor, index.reward_warmup) == (
        expected["reward_beta"], expected["reward_std_floor"], expected["reward_warmup"])
    assert index.ids().tolist() == expected["ids"]
    ids = index.ids()
    assert [index.tag(i) for i in ids.tolist()] == expected["tags"]
    for i, v in zip(ids.tolist(), expected["vectors"]):
        np.testing.assert_array_equal(index.vector(i), np.array(v, dtype=np.float32))
    for stage in (_core.DRAFT, _core.REFINE):
        assert index.get_q(ids, stage).tolist() == expected["q"][stage]
        assert index.get_visits(ids, stage).tolist() == expected["visits"][stage]
        assert list(index.reward_stats(stage)) == expected["reward_stats"][stage]
    # And it is a working index.
    got, _ = index.search(np.array(expected["vectors"][1], np.float32), 1)
    assert got.tolist() == [expected["ids"][1]]


def test_format_version_1_layout():
    """The header fields sit where index_file.h says (the format is a contract)."""
    raw = (DATA / "index_v1_f32.evkidx").read_bytes()
    assert raw[:8] == b"EVKINDEX"
    version, flags, dim, reserved, n = struct.unpack_from("<IIIIQ", raw, 8)
    assert (version, flags, dim, reserved, n) == (1, 0, 6, 0, 5)
    assert len(raw) == 104 + n * (44 + 4 * dim) + 8
    assert struct.unpack_from("<q", raw, 104)[0] == 5  # first id


@pytest.fixture
def saved(tmp_path) -> tuple[Path, bytes]:
    raw = (DATA / "index_v1_f32.evkidx").read_bytes()
    return tmp_path / "bad.evk", raw


def test_every_truncation_is_a_clear_error(saved):
    path, raw = saved
    for size in range(len(raw)):
        path.write_bytes(raw[:size])
        with pytest.raises(ValueError, match="cannot load EvoKernel index"):
            _core.ExperienceIndex.load(path)


def test_every_flipped_byte_is_a_clear_error(saved):
    path, raw = saved
    for pos in range(len(raw)):
        data = bytearray(raw)
        data[pos] ^= 1 << (pos % 8)  # every bit position occurs
        path.write_bytes(bytes(data))
        with pytest.raises(ValueError, match="cannot load EvoKernel index"):
            _core.ExperienceIndex.load(path)


def test_trailing_bytes_bad_magic_and_newer_version(saved):
    path, raw = saved
    path.write_bytes(raw + b"\0")
    with pytest.raises(ValueError, match="does not match its header"):
        _core.ExperienceIndex.load(path)
    path.write_bytes(b"PK\x03\x04" + raw[4:])
    with pytest.raises(ValueError, match="not an EvoKernel index file"):
        _core.ExperienceIndex.load(path)
    path.write_bytes(raw[:8] + struct.pack("<I", 2) + raw[12:])
    with pytest.raises(ValueError, match="newer than this build reads"):
        _core.ExperienceIndex.load(path)
    path.write_bytes(raw[:-1] + bytes([raw[-1] ^ 0xFF]))
    with pytest.raises(ValueError, match="checksum mismatch"):
        _core.ExperienceIndex.load(path)


def test_os_errors(tmp_path, make_index):
    with pytest.raises(FileNotFoundError):
        _core.ExperienceIndex.load(tmp_path / "missing")
    with pytest.raises(IsADirectoryError):
        _core.ExperienceIndex.load(tmp_path)
    index, *_ = make_index(2, 4)
    with pytest.raises(FileNotFoundError):
        index.save(tmp_path / "no" / "such" / "dir" / "x")
