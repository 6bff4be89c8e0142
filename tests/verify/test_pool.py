"""The worker pool: crashes and hangs end the worker, never the run; dead workers are replaced;
many threads may verify at once."""

from __future__ import annotations

import asyncio
import concurrent.futures
import os
import signal
import time

import pytest

from evokernel.verify import Verifier, VerifySettings


def test_concurrent_evaluations_from_threads(verifier, data) -> None:
    jobs = [("relu", data.good("relu"), "correct"), ("relu", data.hostile("identity_relu"), "incorrect"),
            ("row_sum", data.good("row_sum"), "correct"), ("relu", data.hostile("segfault_kernel"), "crashed")]
    with concurrent.futures.ThreadPoolExecutor(4) as pool:
        futures = [pool.submit(verifier.evaluate, data.problem(p), src) for p, src, _ in jobs]
        statuses = [f.result(timeout=300).status for f in futures]
    assert statuses == [expected for *_, expected in jobs]


def test_async_callers(verifier, data) -> None:
    async def main():
        return await asyncio.gather(
            verifier.evaluate_async(data.problem("relu"), data.good("relu")),
            verifier.evaluate_async(data.problem("relu"), data.hostile("uninitialized_output")),
        )

    first, second = asyncio.run(main())
    assert (first.status, second.status) == ("correct", "incorrect")


def test_dead_zygote_is_replaced(verifier, data) -> None:
    pool = verifier._pools[("cpu", "fork")]  # white box: kill the fork server behind the verifier's back
    assert verifier.evaluate(data.problem("relu"), data.good("relu")).status == "correct"
    os.kill(pool._proc.pid, signal.SIGKILL)
    pool._proc.wait()
    verdict = verifier.evaluate(data.problem("relu"), data.good("relu"))
    assert verdict.status == "correct", verdict.summary()
    assert pool.restarts >= 1


def test_worker_killed_mid_job_is_reported_and_the_next_job_runs(verifier, data, settings) -> None:
    # a worker killed from outside (as the OOM killer would) becomes "crashed" with its signal
    src = data.hostile("infinite_loop")
    result = {}

    def run():
        result["v"] = verifier.evaluate(data.problem("relu"), src, settings.replace(timeout_s=60))

    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        future = pool.submit(run)
        deadline = time.monotonic() + 60
        victim = None
        while victim is None and time.monotonic() < deadline:
            for job_dir in (verifier.workdir / "jobs").glob("candidate-*"):
                progress = job_dir / "progress"
                if progress.exists() and progress.read_text().startswith("trial"):
                    victim = job_dir
            time.sleep(0.05)
        assert victim is not None
        for pid in os.listdir("/proc"):
            if pid.isdigit():
                try:
                    if os.readlink(f"/proc/{pid}/cwd") == str(victim / "scratch"):
                        os.kill(int(pid), signal.SIGKILL)
                except OSError:
                    continue
        future.result(timeout=120)
    verdict = result["v"]
    assert verdict.status == "crashed" and verdict.signal == "SIGKILL"
    assert verifier.evaluate(data.problem("relu"), data.good("relu")).status == "correct"


def test_bad_problem_is_a_user_error(verifier, data, tmp_path) -> None:
    from evokernel.errors import UserError

    broken = tmp_path / "broken.py"
    broken.write_text(data.problem("relu").read_text().replace("return torch.relu(x)", "return x @ x"))
    with pytest.raises(UserError, match="broken.py: the reference fails to run: RuntimeError: mat1 and mat2"):
        verifier.evaluate(broken, data.good("relu"))
    assert verifier.evaluate(data.problem("relu"), data.good("relu")).status == "correct"


@pytest.mark.slow
def test_spawned_workers(data) -> None:
    s = VerifySettings(backend="cpu", max_elements=1024, start_method="spawn")
    with Verifier(s, workers=1) as v:
        good = v.evaluate(data.problem("relu"), data.good("relu"))
        crash = v.evaluate(data.problem("relu"), data.hostile("segfault_kernel"))
    assert good.status == "correct" and crash.status == "crashed"


@pytest.mark.slow
def test_module_level_evaluate(data) -> None:
    from evokernel.verify import evaluate

    verdict = evaluate(data.problem("relu"), data.good("relu"), VerifySettings(backend="cpu", max_elements=1024))
    assert verdict.status == "correct"


def test_reference_failing_without_fitting_is_a_user_error(verifier, data, settings, tmp_path) -> None:
    from evokernel.errors import UserError

    broken = tmp_path / "broken_small.py"
    broken.write_text(data.problem("matmul").read_text().replace("torch.matmul(A, B)", "torch.matmul(B, A)"))
    with pytest.raises(UserError, match="broken_small.py: the reference forward failed on trial_0: RuntimeError"):
        verifier.evaluate(broken, data.good("matmul"), settings.replace(fit="none"))


def _running_jobs(verifier: Verifier) -> int:
    return sum(len(getattr(pool, "_handles", None) or getattr(pool, "_running", None) or ())
               for pool in list(verifier._pools.values()))


@pytest.mark.slow
@pytest.mark.parametrize("start_method", ["fork", "spawn"])
def test_close_kills_the_running_candidate_and_gives_no_verdict(data, start_method: str) -> None:
    from evokernel.verify.sandbox.pool import PoolError

    s = VerifySettings(backend="cpu", max_elements=1024, start_method=start_method, timeout_s=120.0, trials=1)
    v = Verifier(s, workers=1)
    with concurrent.futures.ThreadPoolExecutor(1) as ex:
        future = ex.submit(v.evaluate, data.problem("relu"), data.hostile("infinite_loop"))
        deadline = time.monotonic() + 60
        while not (v._refs and _running_jobs(v)) and time.monotonic() < deadline:  # the candidate runs
            time.sleep(0.05)
        assert v._refs and _running_jobs(v), "the candidate never started"
        started = time.monotonic()
        v.close()
        with pytest.raises(PoolError, match="closed"):  # killed by close(): not a 'crashed' verdict
            future.result(timeout=30)
    assert time.monotonic() - started < 60  # far sooner than the candidate's 120 s timeout


def test_a_spawned_worker_that_dies_after_ready_is_a_pool_error(tmp_path) -> None:
    import subprocess
    import sys

    from evokernel.verify.sandbox.pool import PoolError, SpawnPool

    pool = SpawnPool("cpu", {}, prestart=0)
    # says it is ready with its stdin already closed: the job cannot be handed over
    script = "import os, sys, time; os.close(0); print('{\"ready\": true}', flush=True); time.sleep(30)"
    pool._spawn = lambda: subprocess.Popen(  # type: ignore[method-assign]
        [sys.executable, "-c", script], stdin=subprocess.PIPE, stdout=subprocess.PIPE, start_new_session=True)
    try:
        with pytest.raises(PoolError, match="died before taking the job"):
            pool.launch(tmp_path)
    finally:
        pool.close()
