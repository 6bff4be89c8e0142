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
