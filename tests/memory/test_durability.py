"""A writer SIGKILLed in the middle of a long run of writes leaves a sound memory holding every commit."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

import pytest

from evokernel.memory import Memory

_CHILD = r"""
import json, os, sys
from evokernel.memory import Memory, NewItem

path, report, source = sys.argv[1], sys.argv[2], json.loads(sys.stdin.read())
fd = os.open(report, os.O_WRONLY | os.O_CREAT | os.O_APPEND)
with Memory.open(path) as mem:
    parent = None
    for i in range(100000):
        item = NewItem(
            kind="experience", task_id=f"level1/t{i % 7}", task_name="relu", backend="cpu",
            stage="refine" if parent else "draft", code="x" * 2000 + str(i), lesson=f"attempt {i}",
            outcome={"status": "correct", "i": i}, reward=1.0, parent_id=parent, run_id="kill-test",
            feasible=True, task_source=source,
        )
        (new_id,) = mem.add([item])
        if i % 3 == 0:
            mem.record_rewards([new_id], "draft", 1.0)
        os.write(fd, f"{new_id}\n".encode())  # reported only after the commit returned
        parent = new_id if i % 5 else None
"""


@pytest.mark.slow
def test_sigkill_mid_writes_keeps_every_committed_item(tmp_path, programs) -> None:
    path, report = tmp_path / "m.sqlite", tmp_path / "committed.txt"
    with subprocess.Popen(
        [sys.executable, "-c", _CHILD, str(path), str(report)], stdin=subprocess.PIPE, stderr=subprocess.PIPE
    ) as child:
        child.stdin.write(json.dumps(programs["relu"]).encode())
        child.stdin.close()
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and child.poll() is None:
            if report.exists() and report.read_text().count("\n") >= 60:
                break
            time.sleep(0.05)
        assert child.poll() is None, child.stderr.read().decode()[-2000:]
        os.kill(child.pid, signal.SIGKILL)
        child.wait(timeout=30)
    committed = [int(line) for line in report.read_text().split()]
    assert len(committed) >= 60
    with Memory.open(path) as mem:
        assert mem.integrity_check() == "ok"
        present = {it.id for it in mem.items()}
        assert set(committed) <= present
        assert len(present) <= len(committed) + 1  # at most the one in flight when killed
        for item_id in committed[:: max(1, len(committed) // 10)]:
            item = mem.get(item_id)
            assert item.outcome["status"] == "correct" and item.code.startswith("x" * 2000)
        assert mem.index_origin == "rebuilt"  # the killed writer never saved a snapshot
        assert len(mem.retrieve(programs["relu"], "draft", "cpu", _settings())) == 4


def _settings():
    from evokernel.memory import RetrievalSettings

    return RetrievalSettings(mode="value", epsilon=0.0)
