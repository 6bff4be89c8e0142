"""The CLI exits quietly when its reader goes away (`evokernel memory stats | head -1`)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from evokernel.memory import Memory


def test_a_closed_stdout_is_a_quiet_exit(tmp_path: Path) -> None:
    path = tmp_path / "m.sqlite"
    Memory.open(path).close()
    read, write = os.pipe()
    os.close(read)  # the reader is gone before the first line
    try:
        proc = subprocess.run(
            [sys.executable, "-c", "import sys; from evokernel.cli import main; sys.exit(main(sys.argv[1:]))",
             "memory", "stats", "--memory", str(path)],
            stdout=write, stderr=subprocess.PIPE, text=True, timeout=120,
        )
    finally:
        os.close(write)
    assert proc.returncode == 141 and proc.stderr == ""


def test_another_broken_pipe_is_not_taken_for_a_closed_stdout(monkeypatch, capsys) -> None:
    import pytest

    from evokernel import cli
    from evokernel.commands import memory as memory_command

    def broken(args: object) -> int:
        raise BrokenPipeError(32, "Broken pipe")  # e.g. a worker's stdin, while stdout is fine

    monkeypatch.setattr(memory_command, "run", broken)
    monkeypatch.setattr(cli, "_stdout_broken", lambda: False)
    with pytest.raises(BrokenPipeError):
        cli.main(["memory", "stats"])
