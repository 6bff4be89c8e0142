"""The local executor: device planning, pinning, retry after a pool failure, dispatch, and the wiring into the
agent and `evokernel bench` (one flag, --workers, for both modes)."""

from __future__ import annotations

import json
import logging
import sys
import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest

from evokernel.errors import UserError
from evokernel.verify import Verdict
from evokernel.verify.executors import make_executor
from evokernel.verify.executors.local import LocalExecutor, _PinnedBackend, plan_devices
from evokernel.verify.executors.ray_executor import check_address, import_ray
from evokernel.verify.sandbox.pool import PoolError


# --------------------------------------------------------------------------- device plan and pinning
def test_the_interpreter_gets_one_pool_of_n_workers() -> None:
    (slot,) = plan_devices("cpu", 3, device_count=None, device_type="cpu", env={})
    assert (slot.label, slot.capacity, slot.env) == ("cpu", 3, {})


def test_each_gpu_gets_its_own_verifier_pinned_to_it() -> None:
    slots = plan_devices("cuda", None, device_count=4, device_type="cuda", env={})
    assert [s.label for s in slots] == ["cuda:0", "cuda:1", "cuda:2", "cuda:3"]
    assert [s.env for s in slots] == [{"CUDA_VISIBLE_DEVICES": str(i)} for i in range(4)]
    assert all(s.capacity == 1 for s in slots)
    two = plan_devices("cuda", 2, device_count=4, device_type="cuda", env={})
    assert [s.index for s in two] == [0, 1]


def test_pinning_stays_within_an_existing_mask() -> None:
    slots = plan_devices("cuda", None, device_count=2, device_type="cuda", env={"CUDA_VISIBLE_DEVICES": "3, 5"})
    assert [s.env["CUDA_VISIBLE_DEVICES"] for s in slots] == ["3", "5"]
    assert [s.label for s in slots] == ["cuda:3", "cuda:5"]
    rocm = plan_devices("rocm", 1, device_count=2, device_type="cuda", env={"HIP_VISIBLE_DEVICES": "1,0"})
    assert rocm[0].env == {"HIP_VISIBLE_DEVICES": "1"}
    npu = plan_devices("npu", None, device_count=2, device_type="npu", env={})
    assert [s.env for s in npu] == [{"ASCEND_RT_VISIBLE_DEVICES": "0"}, {"ASCEND_RT_VISIBLE_DEVICES": "1"}]


def test_more_workers_than_devices_uses_each_device_once(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.INFO):
        slots = plan_devices("cuda", 8, device_count=2, device_type="cuda", env={})
    assert len(slots) == 2 and "timings never share a device" in caplog.text


def test_a_pinned_backend_narrows_its_workers_and_names_its_device() -> None:
    class Module:
        def get_device_name(self, index: int) -> str:
            return f"GPU model {index}"

    class Inner:
        name = "cuda"
        times_kernels = True

        def worker_env(self) -> dict[str, str]:
            return {"TRITON_INTERPRET": "0"}

        def module(self) -> Module:
            return Module()

        def describe(self) -> str:
            return "GPU model 0"

    pinned = _PinnedBackend(Inner(), {"CUDA_VISIBLE_DEVICES": "6"}, 2)
    assert pinned.worker_env() == {"TRITON_INTERPRET": "0", "CUDA_VISIBLE_DEVICES": "6"}
    assert pinned.describe() == "GPU model 2"
    assert pinned.name == "cuda" and pinned.times_kernels


# --------------------------------------------------------------------------- dispatch and retry (test doubles)
class FakeVerifier:
    """Answers "correct" with its name as the message; raises PoolError for the first ``fail`` calls."""

    def __init__(self, name: str, fail: int = 0, block: threading.Event | None = None) -> None:
        self.name, self.fail, self.block = name, fail, block
        self.workers = 1
        self.calls = 0
        self.closed = False

    def evaluate(self, problem: Any, source: str, settings: Any = None) -> Verdict:
        self.calls += 1
        if self.block is not None and source == "block":
            assert self.block.wait(30)
        if self.fail > 0:
            self.fail -= 1
            raise PoolError(f"{self.name} lost its worker")
        return Verdict(status="correct", message=self.name)

    def close(self) -> None:
        self.closed = True


def test_a_failed_pool_costs_one_retry_on_another_verifier(cpu_settings, data) -> None:
    a, b = FakeVerifier("a", fail=1), FakeVerifier("b")
    with LocalExecutor(cpu_settings, verifiers=[a, b]) as ex:
        verdict = ex.evaluate(data.problem("relu"), "x")
    assert verdict.message == "b" and (a.calls, b.calls) == (1, 1)
    assert verdict.worker["attempt"] == 2 and verdict.worker["slot"] == 1
    assert "a lost its worker" in verdict.worker["retried_after"][0]
    assert a.closed and b.closed


def test_a_second_pool_failure_is_raised(cpu_settings, data) -> None:
    with LocalExecutor(cpu_settings, verifiers=[FakeVerifier("a", fail=5), FakeVerifier("b", fail=5)]) as ex:
        with pytest.raises(PoolError, match="lost its worker"):
            ex.evaluate(data.problem("relu"), "x")


def test_closing_under_a_running_candidate_raises_at_once_without_a_retry(cpu_settings, data, caplog) -> None:
    release = threading.Event()
    a, b = FakeVerifier("a", fail=1, block=release), FakeVerifier("b")
    ex = LocalExecutor(cpu_settings, verifiers=[a, b])
    with ThreadPoolExecutor(1) as pool, caplog.at_level(logging.WARNING):
        busy = pool.submit(ex.evaluate, data.problem("relu"), "block")
        while a.calls == 0:
            threading.Event().wait(0.01)
        ex.close()  # Ctrl-C: the executor is closed while a's candidate runs
        release.set()  # ... whose verifier then reports the closed pool
        with pytest.raises(PoolError, match="lost its worker"):
            busy.result(timeout=30)
    assert b.calls == 0 and "failed (attempt" not in caplog.text


def test_a_problem_goes_back_to_the_worker_that_holds_its_reference(cpu_settings, data) -> None:
    release = threading.Event()
    a, b = FakeVerifier("a", block=release), FakeVerifier("b")
    with LocalExecutor(cpu_settings, verifiers=[a, b]) as ex:
        with ThreadPoolExecutor(1) as pool:
            busy = pool.submit(ex.evaluate, data.problem("row_sum"), "block")  # holds worker a
            while a.calls == 0:
                threading.Event().wait(0.01)
            assert ex.evaluate(data.problem("relu"), "x").message == "b"
            release.set()
            assert busy.result().message == "a"
        # both are free now; relu's reference lives with b
        assert ex.evaluate(data.problem("relu"), "y").message == "b"
        assert ex.evaluate(data.problem("row_sum"), "z").message == "a"


def test_a_bad_problem_is_a_user_error_before_any_worker_is_taken(cpu_settings, tmp_path: Path) -> None:
    a = FakeVerifier("a")
    with LocalExecutor(cpu_settings, verifiers=[a]) as ex:
        with pytest.raises(UserError, match="no such problem file"):
            ex.evaluate(tmp_path / "missing.py", "x")
    assert a.calls == 0


# --------------------------------------------------------------------------- factory and Ray errors without Ray
def test_make_executor_names_what_is_wrong(cpu_settings, monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(UserError, match="unknown executor 'dask'"):
        make_executor("dask", cpu_settings)
    with pytest.raises(UserError, match="only the ray executor"):
        make_executor("local", cpu_settings, address="auto")
    with pytest.raises(UserError, match="positive"):
        make_executor("local", cpu_settings, workers=0)
    monkeypatch.setitem(sys.modules, "ray", None)  # as if ray were not installed
    with pytest.raises(UserError, match=r"pip install 'evokernel\[ray\]'"):
        import_ray()
    with pytest.raises(UserError, match="evokernel\\[ray\\]"):
        make_executor("ray", cpu_settings)


def test_an_unreachable_ray_address_is_a_user_error() -> None:
    import socket

    with socket.socket() as s:  # a port nothing listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    with pytest.raises(UserError, match=f"127.0.0.1:{port}: no Ray cluster answers"):
        check_address(f"127.0.0.1:{port}", timeout_s=2.0)
    with pytest.raises(UserError, match="expected auto or HOST:PORT"):
        check_address("my-cluster")
    check_address("auto")  # left to ray.init


def test_a_ray_actor_sweeps_the_folders_of_dead_actors(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import os
    import subprocess
    import tempfile

    from evokernel.verify.executors.ray_executor import _actor_workdir

    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True,
                          check=True).stdout.strip()
    base = tmp_path / "evokernel-ray"
    (base / f"pid-{dead}" / "jobs").mkdir(parents=True)  # left by an actor that was killed
    (base / f"pid-{os.getppid()}").mkdir()  # a live process's
    mine = _actor_workdir()
    assert mine == base / f"pid-{os.getpid()}" and mine.is_dir()
    assert not (base / f"pid-{dead}").exists() and (base / f"pid-{os.getppid()}").exists()


# --------------------------------------------------------------------------- the real thing on the CPU
@pytest.mark.slow
def test_local_executor_verifies_concurrently_and_says_where(cpu_settings, data) -> None:
    ex = make_executor("local", cpu_settings, workers=2)
    assert isinstance(ex, LocalExecutor) and ex.workers == 2
    info = ex.backend_info()
    assert info.name == "cpu" and not info.times_kernels and "interpreter" in info.device
    jobs = [(data.problem("relu"), data.good("relu")), (data.problem("relu"), data.agent("relu_wrong").read_text()),
            (data.problem("row_sum"), data.good("row_sum"))]
    with ex, ThreadPoolExecutor(3) as pool:
        verdicts = list(pool.map(lambda job: ex.evaluate(*job), jobs))
    assert [v.status for v in verdicts] == ["correct", "incorrect", "correct"]
    for v in verdicts:
        assert v.worker["executor"] == "local" and v.worker["device"] == "cpu" and v.worker["attempt"] == 1
        assert v.worker["host"] and v.worker["pid"] > 0 and "retried_after" not in v.worker
        assert Verdict.from_dict(json.loads(v.to_json())).worker == v.worker
    ex.close()  # twice is fine
    with pytest.raises(UserError, match="closed"):
        ex.evaluate(data.problem("relu"), data.good("relu"))


def test_old_verdict_records_load_without_a_worker() -> None:
    old = {"status": "correct", "message": "", "backend": "cpu", "version": 1}
    assert Verdict.from_dict(old).worker is None
    assert Verdict.from_dict({**old, "worker": {"executor": "ray"}, "added_later": 1}).worker == {"executor": "ray"}


class StubProposer:
    """Always proposes the same code."""

    name = "stub"

    def __init__(self, code: str) -> None:
        self.code = code

    async def propose(self, request: Any) -> Any:
        from evokernel.agent.types import Proposal

        return Proposal(code=self.code)


@pytest.mark.slow
def test_the_agent_builds_its_executor_from_the_settings(cpu_settings, data, tmp_path: Path) -> None:
    from evokernel.agent.agent import Agent, as_task
    from evokernel.agent.runrecord import write_synthesis_record
    from evokernel.agent.settings import AgentSettings
    from evokernel.memory import Memory

    settings = AgentSettings(budget=2, workers=2, executor="local")
    settings.verify = cpu_settings.replace()
    with Memory.open(tmp_path / "m.sqlite") as memory:
        with Agent(settings, memory=memory, proposer=StubProposer(data.good("relu"))) as agent:
            assert isinstance(agent.verifier, LocalExecutor) and agent.verifier.workers == 2
            assert agent.backend == "cpu" and not agent.can_time and "interpreter" in agent.device
            result = agent.synthesize(data.problem("relu"))
            path = write_synthesis_record(agent, as_task(data.problem("relu")), result, tmp_path / "k.py", 1.0)
        assert agent.verifier._closed  # the agent owned it
        item = memory.get(result.attempts[0].item_id)
    assert result.solved and result.attempts[0].verdict["worker"]["executor"] == "local"
    assert item.outcome["worker"]["device"] == "cpu"  # the memory keeps where it ran
    record = json.loads(path.read_text())
    assert record["settings"]["executor"] == "local" and record["settings"]["workers"] == 2
    assert record["result"]["attempts"][0]["verdict"]["worker"]["executor"] == "local"


# --------------------------------------------------------------------------- evokernel bench --workers / --jobs
def _bench(tmp_path: Path, data: Any, name: str, *flags: str) -> Path:
    from evokernel.cli import main

    solutions = tmp_path / f"solutions-{name}"
    solutions.mkdir()
    (solutions / "relu.py").write_text(data.good("relu"))
    out = tmp_path / "runs" / name
    argv = ["bench", "--suite", str(data.problem("relu")), "--solutions", str(solutions), "--backend", "cpu",
            "--trials", "2", "--out", str(out), "--no-progress", *flags]
    assert main(argv) == 0
    return out


@pytest.mark.slow
def test_bench_solutions_take_workers_and_record_where_each_ran(tmp_path: Path, data, capsys,
                                                                caplog: pytest.LogCaptureFixture) -> None:
    from kernelbench.records import read_run

    run = read_run(_bench(tmp_path, data, "workers", "--workers", "2", "--executor", "local"))
    assert run.header["executor"] == "local" and run.header["workers"] == 2
    (result,) = run.results
    assert result["status"] == "correct" and result["verdict"]["worker"]["executor"] == "local"

    with caplog.at_level(logging.WARNING):
        run = read_run(_bench(tmp_path, data, "jobs", "--jobs", "2"))  # the deprecated spelling still works
    assert run.header["workers"] == 2 and "--jobs is deprecated" in caplog.text

    run = read_run(_bench(tmp_path, data, "default"))
    assert run.header["workers"] == 1  # the interpreter's default in solutions mode, as before
    capsys.readouterr()


def test_bench_refuses_a_local_executor_with_a_ray_address(tmp_path: Path, data, capsys) -> None:
    from evokernel.cli import main

    argv = ["bench", "--suite", str(data.problem("relu")), "--solutions", str(tmp_path), "--backend", "cpu",
            "--executor", "local", "--ray-address", "auto"]
    (tmp_path / "relu.py").write_text("x")
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert "only the ray executor uses it" in err and "Traceback" not in err
