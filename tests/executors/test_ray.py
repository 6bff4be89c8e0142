"""The Ray executor against a local Ray started here (CPU workers, the interpreter backend): where candidates
run, a candidate's own crash (not retried), a worker killed mid-candidate (retried elsewhere), a worker dying
twice (recorded as crashed), and `evokernel bench` / the agent through it.

Starting Ray takes several seconds (about 7-10 s on a small machine), once for the whole module.
"""

from __future__ import annotations

import json
import os
import signal
import time
from pathlib import Path
from typing import Any

import pytest

ray = pytest.importorskip("ray", reason="the ray executor needs `pip install 'evokernel[ray]'`")

from evokernel.errors import UserError  # noqa: E402
from evokernel.verify.executors import make_executor  # noqa: E402
from evokernel.verify.executors.ray_executor import RayExecutor  # noqa: E402

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module", autouse=True)
def local_ray() -> Any:
    """A private local Ray for this module: 4 logical CPUs (two executors of two workers can coexist)."""
    if ray.is_initialized():  # pragma: no cover - someone else's Ray: do not reuse it
        ray.shutdown()
    ray.init(num_cpus=4, include_dashboard=False, log_to_driver=False, configure_logging=False)
    yield
    ray.shutdown()


@pytest.fixture(scope="module")
def executor(cpu_settings) -> Any:
    """Two CPU actors, each with a warm Verifier; shared by the tests below (kills are healed by replacement)."""
    with make_executor("ray", cpu_settings, workers=2) as ex:
        yield ex


def _children(pid: int) -> list[int]:
    out = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/stat", "rb") as f:
                    stat = f.read()
                if int(stat[stat.rindex(b")") + 2 :].split()[1]) == pid:
                    out.append(int(entry))
            except (OSError, ValueError, IndexError):
                continue
    return out


def _descendants(pid: int) -> list[int]:
    found, todo = [], [pid]
    while todo:
        kids = _children(todo.pop())
        found += kids
        todo += kids
    return found


def _alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            return f.read().split(b")")[-1].split()[0] != b"Z"
    except OSError:
        return False


def _wait_ready(ex: RayExecutor, n: int, timeout: float = 60.0) -> list[dict[str, Any]]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        infos = ex.worker_infos()
        if len(infos) >= n:
            return infos
        time.sleep(0.1)
    raise AssertionError(f"only {len(ex.worker_infos())} of {n} Ray workers ready")


def test_candidates_run_on_actors_and_say_where(executor: RayExecutor, data) -> None:
    assert executor.workers == 2 and executor.resource == "CPU"
    info = executor.backend_info()
    assert info.name == "cpu" and not info.times_kernels
    good = executor.evaluate(data.problem("relu"), data.good("relu"))
    wrong = executor.evaluate(data.problem("relu"), data.agent("relu_wrong").read_text())
    assert (good.status, wrong.status) == ("correct", "incorrect")
    actors = {w["actor_id"]: w for w in _wait_ready(executor, 2)}
    for verdict in (good, wrong):
        worker = verdict.worker
        assert worker["executor"] == "ray" and worker["attempt"] == 1 and "retried_after" not in worker
        assert worker["actor_id"] in actors and worker["pid"] == actors[worker["actor_id"]]["pid"]
        assert worker["pid"] != os.getpid() and worker["node_id"] and worker["device"] == "cpu"
        assert json.loads(verdict.to_json())["worker"] == worker


def test_a_bad_problem_is_a_user_error_on_the_driver(executor: RayExecutor, tmp_path: Path) -> None:
    bad = tmp_path / "no_model.py"
    bad.write_text("import torch\n\ndef get_inputs():\n    return []\n")
    with pytest.raises(UserError, match="missing Model"):
        executor.evaluate(bad, "x = 1\n")


def test_workers_that_cannot_start_are_one_user_error(cpu_settings) -> None:
    # every actor's constructor fails: json.JSONDecoder is no Backend
    with pytest.raises(UserError, match="no Ray worker could start: .*not a subclass of evokernel.backends.Backend"):
        make_executor("ray", cpu_settings.replace(backend="json:JSONDecoder"), workers=1, start_timeout_s=120)


def test_a_candidate_that_crashes_its_sandbox_is_not_a_worker_death(executor: RayExecutor, data) -> None:
    before = {w["actor_id"]: w["pid"] for w in _wait_ready(executor, 2)}
    verdict = executor.evaluate(data.problem("relu"), data.hostile("segfault_kernel"))
    assert verdict.status == "crashed" and verdict.signal == "SIGSEGV"
    assert verdict.worker["attempt"] == 1 and "retried_after" not in verdict.worker
    after = {w["actor_id"]: w["pid"] for w in executor.worker_infos()}
    assert after == before and all(_alive(pid) for pid in after.values())


def test_a_worker_killed_mid_candidate_is_replaced_and_the_candidate_retried_elsewhere(executor: RayExecutor,
                                                                                        data) -> None:
    killed: list[dict[str, Any]] = []

    def kill_while_running(worker: dict[str, Any], attempt: int) -> None:
        if attempt != 1:
            return
        deadline = time.monotonic() + 60
        while len(_descendants(worker["pid"])) < 2 and time.monotonic() < deadline:  # zygote + the reference job
            time.sleep(0.02)
        jobs = _descendants(worker["pid"])
        assert len(jobs) >= 2, "the worker never started the candidate's work"
        os.kill(worker["pid"], signal.SIGKILL)
        killed.append({**worker, "processes": jobs})

    executor.on_dispatch = kill_while_running
    try:
        verdict = executor.evaluate(data.problem("slow_relu"), data.good("relu"))
    finally:
        executor.on_dispatch = None
    assert len(killed) == 1
    assert verdict.status == "correct"  # the retry judged it
    assert verdict.worker["attempt"] == 2 and verdict.worker["actor_id"] != killed[0]["actor_id"]
    (note,) = verdict.worker["retried_after"]
    assert f"pid {killed[0]['pid']}" in note and "Died" in note
    infos = _wait_ready(executor, 2)  # the dead actor was replaced
    assert killed[0]["actor_id"] not in {w["actor_id"] for w in infos}
    deadline = time.monotonic() + 20  # and the dead worker's processes did not outlive it
    while any(_alive(p) for p in killed[0]["processes"]) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not any(_alive(p) for p in killed[0]["processes"])


def test_a_worker_dying_twice_is_recorded_as_crashed(executor: RayExecutor, data) -> None:
    attempts: list[int] = []

    def kill_every_time(worker: dict[str, Any], attempt: int) -> None:
        attempts.append(attempt)
        ray.kill(executor.actor(worker["actor_id"]), no_restart=True)

    executor.on_dispatch = kill_every_time
    started = time.monotonic()
    try:
        verdict = executor.evaluate(data.problem("relu"), data.good("relu"))
    finally:
        executor.on_dispatch = None
    assert attempts == [1, 2] and time.monotonic() - started < 120
    assert verdict.status == "crashed" and not verdict.feasible
    assert "died twice" in verdict.message and verdict.phase == "executor"
    assert len(verdict.worker["retried_after"]) == 2 and verdict.problem_id == "relu"
    assert executor.evaluate(data.problem("relu"), data.good("relu")).status == "correct"  # healed: replaced actors


def test_bench_verifies_solutions_through_ray(tmp_path: Path, data, capsys) -> None:
    from evokernel.cli import main
    from kernelbench.records import read_run

    solutions = tmp_path / "solutions"
    solutions.mkdir()
    (solutions / "relu.py").write_text(data.good("relu"))
    (solutions / "row_sum.py").write_text(data.good("row_sum"))
    suite = tmp_path / "suite"
    suite.mkdir()
    for name in ("relu", "row_sum"):
        (suite / f"{name}.py").write_text(data.problem(name).read_text())
    out = tmp_path / "run"
    argv = ["bench", "--suite", str(suite), "--solutions", str(solutions), "--backend", "cpu", "--trials", "2",
            "--out", str(out), "--no-progress", "--executor", "ray", "--workers", "2"]
    assert main(argv) == 0, capsys.readouterr().err
    run = read_run(out)
    assert run.header["executor"] == "ray" and run.header["workers"] == 2
    assert [r["status"] for r in run.results] == ["correct", "correct"]
    assert all(r["verdict"]["worker"]["executor"] == "ray" and r["verdict"]["worker"]["actor_id"] for r in run.results)


def test_the_agent_runs_a_suite_through_ray(executor: RayExecutor, tmp_path: Path, data, cpu_settings) -> None:
    from evokernel.agent.agent import Agent
    from evokernel.agent.settings import AgentSettings
    from evokernel.agent.suite import run_agent_suite
    from evokernel.agent.types import Proposal
    from evokernel.memory import Memory
    from kernelbench.loader import load_problem

    class Stub:
        name = "stub"

        async def propose(self, request: Any) -> Proposal:
            return Proposal(code=data.good("relu"))

    # the executor is injected (starting another costs seconds); the local tests cover building it from settings
    settings = AgentSettings(budget=1, workers=2, executor="ray")
    settings.verify = cpu_settings.replace()
    with Memory.open(tmp_path / "m.sqlite") as memory:
        with Agent(settings, memory=memory, proposer=Stub(), verifier=executor) as agent:
            assert agent.backend == "cpu" and agent.device == executor.backend_info().device
            results = run_agent_suite(agent, [load_problem(data.problem("relu"))], tmp_path / "run",
                                      device=agent.device)
            item = memory.items(task_id=results[0]["problem_id"], kind="experience")[0]
    (result,) = results
    assert result["status"] == "correct" and result["verdict"]["worker"]["executor"] == "ray"
    assert item.outcome["worker"]["actor_id"] == result["verdict"]["worker"]["actor_id"]
