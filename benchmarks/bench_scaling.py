"""Scaling of a built-in suite evaluation with the number of workers, on the local and the Ray executor.

Every selected built-in problem gets one solution file: a real Triton kernel that fills the output
(shape and dtype of the reference at interpreter sizes) with zeros. The verifier runs the whole
check on each (reference, candidate worker, comparison: the verdict is ``incorrect``), so the work
per problem is what `evokernel bench --solutions` does. Each configuration builds a fresh executor
and warms every worker with one tiny candidate (``startup_s``, not part of the wall time), then
evaluates the suite through ``run_solutions`` (``wall_s``).

Prints one JSON object per (executor, workers) and a summary with the speedups of 2 workers over 1.
On the CPU backend the speedup is bounded by the cores that are free: compare ``cpus`` and
``load_avg_1m`` in the output.

``--workload sleepy`` swaps the suite for problems whose references sleep instead of compute: their
scaling shows what the executors themselves allow when the cores are not free.

Usage: python benchmarks/bench_scaling.py [--problems N] [--workers 1,2] [--executors local,ray]
       [--workload builtin|sleepy]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import tempfile
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
WARM_PROBLEM = ROOT / "tests" / "verify" / "problems" / "relu.py"
WARM_CANDIDATE = ROOT / "tests" / "verify" / "good" / "relu.py"

CANDIDATE = """import torch
import torch.nn as nn
import triton
import triton.language as tl


@triton.jit
def fill_kernel(y_ptr, n, BLOCK: tl.constexpr):
    offs = tl.program_id(0) * BLOCK + tl.arange(0, BLOCK)
    tl.store(y_ptr + offs, tl.zeros((BLOCK,), dtype=tl.float32), mask=offs < n)


class ModelNew(nn.Module):
    def __init__(self, *args, **kwargs):
        super().__init__()

    def forward(self, *inputs):
        y = torch.empty({shape}, device=inputs[0].device, dtype=torch.{dtype})
        fill_kernel[(triton.cdiv(y.numel(), 1024),)](y, y.numel(), BLOCK=1024)
        return y
"""


SLEEPY_PROBLEM = """import time

import torch
import torch.nn as nn


class Model(nn.Module):
    \"\"\"ReLU whose reference sleeps {sleep} s per forward (variant {i}): waiting, not computing.\"\"\"

    def __init__(self):
        super().__init__()

    def forward(self, x):
        time.sleep({sleep})
        return torch.relu(x)


def get_inputs():
    return [torch.randn(16, 256)]


def get_init_inputs():
    return []
"""


def sleepy_problems(n: int, folder: Path, sleep: float) -> list[Any]:
    """``n`` distinct problems whose references wait instead of compute: scaling without free cores."""
    from kernelbench.loader import load_problem

    folder.mkdir(parents=True, exist_ok=True)
    problems = []
    for i in range(n):
        path = folder / f"sleepy_{i}.py"
        path.write_text(SLEEPY_PROBLEM.format(sleep=sleep, i=i))
        problems.append(load_problem(path, root=folder))
    return problems


def select(problems: list[Any], n: int) -> list[Any]:
    """``n`` problems spread evenly over the suite (all of them when n <= 0)."""
    if n <= 0 or n >= len(problems):
        return list(problems)
    step = len(problems) / n
    return [problems[int(i * step)] for i in range(n)]


def write_solutions(problems: list[Any], folder: Path, max_elements: int) -> None:
    """A zero-fill solution per problem, shaped like the reference output at interpreter sizes."""
    import torch

    from evokernel.programs import load_program
    from evokernel.verify.sizing import fit_problem

    for problem in problems:
        fitted = fit_problem(problem.source, max_elements=max_elements, filename=problem.id)
        module = load_program(fitted.source, problem.id)
        try:
            torch.manual_seed(0)
            with torch.no_grad():
                out = module.Model(*module.get_init_inputs())(*module.get_inputs())
        finally:
            sys.modules.pop(module.__name__, None)
        path = folder / f"{problem.id}.py"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(CANDIDATE.format(shape=tuple(out.shape), dtype=str(out.dtype).removeprefix("torch.")))


def run_one(executor: str, workers: int, problems: list[Any], solutions: Path, out: Path, settings: Any,
            env: dict[str, Any]) -> dict[str, Any]:
    """Start an executor, evaluate the suite through it, return the record."""
    from evokernel.verify.executors import make_executor
    from kernelbench.runner import run_solutions

    t0 = time.perf_counter()
    ex = make_executor(executor, settings, workers=workers)
    try:
        # every worker warm (its sandbox started) before the clock starts: one tiny candidate each, at once
        with ThreadPoolExecutor(workers) as pool:
            warm = list(pool.map(lambda _: ex.evaluate(WARM_PROBLEM, WARM_CANDIDATE.read_text(), settings),
                                 range(workers)))
        assert all(v.status == "correct" for v in warm), [v.summary() for v in warm]
        startup = time.perf_counter() - t0
        t1 = time.perf_counter()
        run = run_solutions(problems, solutions, run_dir=out / f"{executor}-{workers}", settings=settings,
                            verifier=ex, workers=workers, progress=False)
        wall = time.perf_counter() - t1
    finally:
        ex.close()
    statuses = Counter(r["status"] for r in run.results)
    where = Counter(str((r["verdict"] or {}).get("worker", {}).get("pid")) for r in run.results)
    return {
        "bench": "suite_scaling",
        "executor": executor,
        "workers": workers,
        "problems": len(problems),
        "wall_s": round(wall, 2),
        "startup_s": round(startup, 2),
        "candidates_per_minute": round(60.0 * len(problems) / wall, 1),
        "statuses": dict(statuses),
        "worker_processes": len(where),
        **env,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--problems", type=int, default=16, help="built-in problems, spread over the suite (0: all)")
    parser.add_argument("--workers", default="1,2", help="comma-separated worker counts")
    parser.add_argument("--executors", default="local,ray", help="comma-separated: local, ray")
    parser.add_argument("--max-elements", type=int, default=4096, help="interpreter size per input tensor")
    parser.add_argument("--trials", type=int, default=2, help="correctness trials per candidate")
    parser.add_argument("--ray-cpus", type=int, default=None, help="num_cpus of the local Ray (default: all)")
    parser.add_argument("--workload", choices=("builtin", "sleepy"), default="builtin",
                        help="builtin: the suite (CPU-bound on the interpreter); sleepy: references that sleep "
                        "(shows the executor's own scaling when the cores are busy)")
    parser.add_argument("--sleep", type=float, default=0.2, help="sleepy: seconds per reference forward")
    args = parser.parse_args()

    from evokernel.verify import VerifySettings
    from kernelbench.loader import load_suite

    os.environ.setdefault("TRITON_INTERPRET", "1")
    workers = [int(w) for w in args.workers.split(",")]
    executors = [e.strip() for e in args.executors.split(",") if e.strip()]
    settings = VerifySettings(backend="cpu", max_elements=args.max_elements, trials=args.trials)
    env = {"workload": args.workload, "python": platform.python_version(), "cpus": os.cpu_count(),
           "trials": args.trials, "max_elements": args.max_elements}
    records: dict[tuple[str, int], dict[str, Any]] = {}
    with tempfile.TemporaryDirectory(prefix="evokernel-scaling-") as tmp:
        if args.workload == "sleepy":
            problems = sleepy_problems(args.problems or 8, Path(tmp) / "sleepy", args.sleep)
        else:
            problems = select(load_suite("builtin"), args.problems)
        solutions = Path(tmp) / "solutions"
        write_solutions(problems, solutions, args.max_elements)
        for executor in executors:
            extra: dict[str, Any] = {}
            if executor == "ray":
                import ray

                t0 = time.perf_counter()
                ray.init(num_cpus=args.ray_cpus, include_dashboard=False, log_to_driver=False)
                extra["ray_init_s"] = round(time.perf_counter() - t0, 2)
                extra["ray"] = ray.__version__
            try:
                for n in workers:
                    env_now = {**env, **extra, "load_avg_1m": round(os.getloadavg()[0], 2)}
                    record = run_one(executor, n, problems, solutions, Path(tmp) / "runs", settings, env_now)
                    records[(executor, n)] = record
                    print(json.dumps(record), flush=True)
            finally:
                if executor == "ray":
                    ray.shutdown()
    summary: dict[str, Any] = {"bench": "suite_scaling", "mode": "summary", "workload": args.workload,
                               "problems": len(problems)}
    lo, hi = min(workers), max(workers)
    for executor in executors:
        if (executor, lo) in records and (executor, hi) in records and hi != lo:
            speedup = records[(executor, lo)]["wall_s"] / records[(executor, hi)]["wall_s"]
            summary[f"{executor}_speedup_{hi}_over_{lo}"] = round(speedup, 2)
            summary[f"{executor}_efficiency"] = round(speedup / (hi / lo), 2)
    if ("local", lo) in records and ("ray", lo) in records:
        ratio = records[("ray", lo)]["wall_s"] / records[("local", lo)]["wall_s"]
        summary[f"ray_overhead_{lo}_workers"] = round(ratio, 2)
    print(json.dumps(summary), flush=True)


if __name__ == "__main__":
    main()
