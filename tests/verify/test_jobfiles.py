"""The parent reads a candidate's job directory defensively: no links, no FIFOs, no huge files, and
only outputs whose digest the harness recorded."""

from __future__ import annotations

import hashlib
import io
import os
import time

import pytest
import torch

from evokernel.verify.jobfiles import read_job_file, read_job_text


def test_regular_files_are_read(tmp_path) -> None:
    (tmp_path / "progress").write_text("trial_0")
    assert read_job_text(tmp_path / "progress") == "trial_0"
    assert read_job_file(tmp_path / "missing", 100) is None


def test_links_are_not_followed(tmp_path) -> None:
    secret = tmp_path / "secret"
    secret.write_text("sk-not-for-the-verdict")
    os.symlink(secret, tmp_path / "progress")
    assert read_job_file(tmp_path / "progress", 1000) is None


def test_fifos_do_not_block(tmp_path) -> None:
    os.mkfifo(tmp_path / "result.json")
    start = time.monotonic()
    assert read_job_file(tmp_path / "result.json", 1000) is None
    assert time.monotonic() - start < 5


def test_large_files_are_refused(tmp_path) -> None:
    (tmp_path / "outputs.pt").write_bytes(b"x" * 1001)
    assert read_job_file(tmp_path / "outputs.pt", 1000) is None
    assert read_job_file(tmp_path / "outputs.pt", 1001) == b"x" * 1001


def test_outputs_must_be_the_bytes_the_harness_wrote(tmp_path) -> None:
    from evokernel.verify.verifier import _load_outputs, _Tampered

    buffer = io.BytesIO()
    torch.save({"trial_0": {"structure": "tensor", "leaves": [torch.ones(3)]}}, buffer)
    data = buffer.getvalue()
    path = tmp_path / "outputs.pt"
    path.write_bytes(data)
    digest = hashlib.sha256(data).hexdigest()
    assert torch.equal(_load_outputs(path, digest, 1 << 20)["trial_0"]["leaves"][0], torch.ones(3))
    with pytest.raises(_Tampered):
        _load_outputs(path, hashlib.sha256(b"other").hexdigest(), 1 << 20)
    with pytest.raises(_Tampered):
        _load_outputs(path, None, 1 << 20)  # no digest recorded: not trusted either
    with pytest.raises(ValueError):
        _load_outputs(path, digest, 10)  # larger than any output of the reference could be
