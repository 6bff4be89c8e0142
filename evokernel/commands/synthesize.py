"""`evokernel synthesize PROBLEM.py`: draft, verify and refine a Triton kernel for one problem."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

ORDER = 10


# what kernelbench.runner.run_solutions and the executors do when bench gets no --workers
BENCH_WORKERS_HELP = (
    "candidates verified at once: CPU workers, devices, or Ray actors (default: 2 in agent mode, with either "
    "executor; for --solutions one per GPU/NPU of this machine or of the Ray cluster, and on the CPU "
    "interpreter 1 with the local executor, one per CPU of the Ray cluster with --executor ray)"
)


def add_agent_arguments(p: argparse.ArgumentParser, *, single_task: bool = True) -> None:
    """Arguments shared by `synthesize` and the agent mode of `bench` (which has its own --backend and --rounds)."""
    g = p.add_argument_group("agent")
    g.add_argument("--model", help="litellm model string, e.g. openai/gpt-4o; omitted: the embedded offline proposer")
    g.add_argument("--api-base", help="base URL of an OpenAI-compatible server (e.g. http://127.0.0.1:8000/v1)")
    if single_task:
        g.add_argument("--backend", choices=["auto", "cpu", "cuda", "rocm", "npu"],
                       help="where candidates run (default auto)")
        g.add_argument("--budget", type=int, help="attempts per task, drafting and refining together (default 30)")
        g.add_argument("--policy", choices=["strict", "mixed"],
                       help="strict: every op in Triton; mixed: torch ops allowed beside the kernels (default strict)")
    g.add_argument("--memory", type=Path, help="memory file (default: the shared memory in your data directory)")
    g.add_argument("--seed", type=int, help="seed of every random choice (default 0)")
    g.add_argument("--retrieval", choices=["value", "similarity", "none"],
                   help="value: the learned policy; similarity: Q ignored; none: no memory (default value)")
    g.add_argument("--workers", type=int, metavar="N",
                   help="candidates verified at once: CPU workers, devices, or Ray actors (default 2)"
                   if single_task else BENCH_WORKERS_HELP)
    add_executor_arguments(p)
    g.add_argument("--reply-cache", type=Path, help="SQLite file caching model replies, for exact replays")
    g.add_argument("--config", type=Path, help="TOML settings file (any setting; flags override it)")


def add_executor_arguments(p: argparse.ArgumentParser) -> None:
    """--executor and --ray-address: where candidates are verified (shared by `synthesize` and `bench`)."""
    g = p.add_argument_group("executor")
    g.add_argument("--executor", choices=["local", "ray"],
                   help="local: warm verifier pools on this machine, one per GPU/NPU; ray: actors on a Ray cluster, "
                   "one per GPU/NPU (or CPU), needs `pip install 'evokernel[ray]'` (default local)")
    g.add_argument("--ray-address", metavar="auto|HOST:PORT",
                   help="the Ray cluster to use (implies --executor ray); without it the ray executor starts a "
                   "local Ray instance")


def executor_of(args: argparse.Namespace) -> str | None:
    """--executor, with --ray-address implying ray; None when neither was given."""
    executor = getattr(args, "executor", None)
    if executor is None and getattr(args, "ray_address", None):
        return "ray"
    return executor


def settings_from_args(args: argparse.Namespace, extra: dict[str, Any] | None = None) -> Any:
    """The AgentSettings a command line asks for: file first, then the agent flags, then ``extra``
    (a command's own flags as dotted settings, e.g. bench's {"budget": args.rounds}); validated once
    at the end, so any flag can fix what the file got wrong."""
    from evokernel.agent.settings import load_settings

    return load_settings(
        args.config,
        {
            "llm.model": args.model,
            "llm.api_base": args.api_base,
            "llm.cache_path": str(args.reply_cache) if args.reply_cache else None,
            "verify.backend": getattr(args, "backend", None),
            "verify.policy": getattr(args, "policy", None),
            "budget": getattr(args, "budget", None),
            "seed": args.seed,
            "retrieval.mode": args.retrieval,
            "workers": args.workers,
            "executor": executor_of(args),
            "ray_address": getattr(args, "ray_address", None),
            **(extra or {}),
        },
    )


def register(sub: argparse._SubParsersAction) -> None:
    """Add the `synthesize` sub-command."""
    p = sub.add_parser(
        "synthesize",
        help="write a verified Triton kernel for one PyTorch reference program",
        description=(
            "Draft Triton kernels for PROBLEM.py until one is verified correct, then refine it for speed "
            "(refining needs a GPU or NPU: the CPU interpreter checks correctness only). Every attempt is "
            "written to the memory, which learns which experiences help. Without --model the embedded "
            "offline proposer is used (no API key needed)."
        ),
    )
    p.add_argument("problem", type=Path, help="KernelBench-format problem file (class Model, get_inputs, get_init_inputs)")
    p.add_argument("--out", "-o", type=Path, help="where to write the best kernel (default: <problem>_kernel.py here); "
                   "the run record goes beside it as <out>.run.json")
    add_agent_arguments(p)
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    """Run the agent on one problem; exit 0 when a correct kernel was written, 1 when the budget ran out.

    A stop (a user error such as a rejected key, exit 2), Ctrl-C (exit 130; the running candidates are
    killed) or any other error still writes the best kernel found so far and the run record, marked as
    stopped, before the error is re-raised."""
    from evokernel.agent.agent import Agent, as_task, stop_reason_of
    from evokernel.agent.progress import LiveProgress
    from evokernel.agent.runrecord import check_out_path, write_synthesis_record

    settings = settings_from_args(args)
    task = as_task(args.problem)
    out = args.out or Path.cwd() / f"{task.name}_kernel.py"
    check_out_path(out)
    stop: BaseException | None = None
    with Agent(settings, memory=args.memory) as agent:
        agent.check_reference(task)  # a broken problem file: one line, exit 2, before any attempt
        with LiveProgress(settings.budget, [task]) as progress:
            try:
                result = agent.synthesize(task, on_attempt=progress.on_attempt, close_on_interrupt=True)
            except (Exception, KeyboardInterrupt) as exc:  # keep what was found, then raise
                stop, result = exc, agent.last_result
        if stop is not None and (result is None or not result.attempts):
            raise stop  # stopped before any attempt: nothing to write
        assert result is not None
        record_path = write_synthesis_record(agent, task, result, out, progress.wall_s,
                                             stopped=stop_reason_of(stop) if stop is not None else None)
    progress.summary(result, out if result.solved else None, record_path)
    if stop is not None:
        raise stop
    return 0 if result.solved else 1
