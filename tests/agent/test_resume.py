"""A bench run in agent mode, SIGKILLed in the middle of a round, resumes and ends with the same memory
as an uninterrupted run with the same seed and the same scripted replies."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import pytest

from evokernel.cli import main
from evokernel.memory import Memory
from fakes.openai_server import FakeOpenAIServer, Reply, stall

DATA = Path(__file__).parent / "data"

# (task id, attempt number in the prompt) -> candidate file
REPLIES = {
    ("level1/1_ReLU", 1): "relu_wrong",
    ("level1/1_ReLU", 2): "relu_correct",
    ("level1/2_Scale", 1): "relu_compile_error",
    ("level1/2_Scale", 2): "relu_wrong",
    ("level1/2_Scale", 3): "scale_correct",
}
STALL_AT = ("level1/2_Scale", 2)


class Script:
    """Replies that depend only on the request (task and attempt), optionally stalling at one of them."""

    def __init__(self) -> None:
        self.stall = False
        self.stalled = threading.Event()

    def __call__(self, body: dict[str, Any]) -> Any:
        prompt = body["messages"][1]["content"]
        task = re.search(r"^# Task (\S+):", prompt, re.M).group(1)
        attempt = int(re.search(r"This is attempt (\d+)", prompt).group(1))
        if self.stall and (task, attempt) == STALL_AT:
            self.stalled.set()
            return stall(600.0)
        name = REPLIES[(task, attempt)]
        return Reply(f"```python\n{(DATA / f'{name}.py').read_text()}```")


def make_suite(root: Path) -> Path:
    level = root / "suite" / "level1"
    level.mkdir(parents=True)
    (level / "1_ReLU.py").write_text((DATA / "relu_problem.py").read_text())
    (level / "2_Scale.py").write_text((DATA / "scale_problem.py").read_text())
    return root / "suite"


def bench_args(suite: Path, server: FakeOpenAIServer, memory: Path, out: Path) -> list[str]:
    # both runs draw their inputs with one secret (a config file), as a resumed run does with its own
    config = suite.parent / "settings.toml"
    config.write_text('[verify]\ninput_key = "0123456789abcdef"\n')
    return ["bench", "--suite", str(suite), "--agent", "--model", "openai/test-model", "--api-base", server.url,
            "--memory", str(memory), "--out", str(out), "--rounds", "3", "--backend", "cpu", "--trials", "2",
            "--no-progress", "--config", str(config)]  # fmt: skip


def memory_view(path: Path) -> dict[str, Any]:
    """Everything a run leaves in the memory that must not depend on interruptions (no ids, times, run ids)."""
    with Memory.open(path) as mem:
        items = mem.items(kind="experience")
        index = {item.id: n for n, item in enumerate(items)}
        rows = [
            (i.task_id, i.stage, i.code, i.lesson, i.reward, i.feasible, round(i.q_draft, 12), round(i.q_refine, 12),
             i.visits_draft, i.visits_refine, index.get(i.parent_id), i.meta["attempt"], i.meta["round"],
             [index[c] for c in map(int, i.meta["record"]["q_changes"])])
            for i in items
        ]  # fmt: skip
        return {"items": rows, "draft": mem.reward_stats("draft"), "refine": mem.reward_stats("refine")}


def attempts_view(run_dir: Path) -> list[tuple]:
    lines = [json.loads(line) for line in (run_dir / "results.jsonl").read_text().splitlines()]
    return [(r["problem_id"], r["round"], r["status"], r["reward"]) for r in lines if r["type"] == "attempt"]


@pytest.mark.slow
def test_killed_bench_run_resumes_to_the_same_memory(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test-not-a-secret")
    suite = make_suite(tmp_path)
    script = Script()
    with FakeOpenAIServer(default=script) as server:
        # the uninterrupted run
        assert main(bench_args(suite, server, tmp_path / "a.sqlite", tmp_path / "run-a")) == 0

        # the same run in a child process, killed while round 1 waits for a reply
        script.stall = True
        env = {**os.environ, "LITELLM_LOCAL_MODEL_COST_MAP": "True"}
        log = tmp_path / "child.log"
        with log.open("wb") as out:
            child = subprocess.Popen(
                [sys.executable, "-m", "evokernel.cli", *bench_args(suite, server, tmp_path / "b.sqlite", tmp_path / "run-b")],
                env=env, stdout=out, stderr=subprocess.STDOUT,
            )  # fmt: skip
            try:
                assert script.stalled.wait(180), log.read_text()
                time.sleep(0.5)
                child.send_signal(signal.SIGKILL)
            finally:
                child.wait(30)
        killed = memory_view(tmp_path / "b.sqlite")
        assert [row[12] for row in killed["items"]] == [0, 0]  # round 0 only: round 1 never committed

        script.stall = False
        assert main(["bench", "--resume", str(tmp_path / "run-b"), "--no-progress"]) == 0

    assert memory_view(tmp_path / "b.sqlite") == memory_view(tmp_path / "a.sqlite")
    header = json.loads((tmp_path / "run-b" / "results.jsonl").read_text().splitlines()[0])
    assert "0123456789abcdef" not in json.dumps(header)  # the input secret stays in the memory
    assert attempts_view(tmp_path / "run-b") == attempts_view(tmp_path / "run-a")
    lines = [json.loads(line) for line in (tmp_path / "run-a" / "results.jsonl").read_text().splitlines()]
    assert all(r["worker"]["executor"] == "local" for r in lines if r["type"] == "attempt")  # where each ran
    statuses = {(p, r): s for p, r, s, _ in attempts_view(tmp_path / "run-a")}
    assert statuses[("level1/2_Scale", 2)] == "correct" and statuses[("level1/1_ReLU", 1)] == "correct"


def test_resume_of_a_folder_without_an_agent_run_is_a_clear_error(tmp_path: Path, capsys) -> None:
    assert main(["bench", "--resume", str(tmp_path)]) == 2
    assert "no results.jsonl" in capsys.readouterr().err
