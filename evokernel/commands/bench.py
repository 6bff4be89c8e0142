"""`evokernel bench`: run a KernelBench-style suite and record the results.

Solutions mode (``--solutions DIR``) verifies ``DIR/<problem id>.py`` for every selected problem.
Agent mode (``--agent``, implied by ``--model`` or ``--resume``) runs the agent over the suite in
lockstep rounds with one shared memory. Both verify through an executor (``--executor local|ray``,
``--ray-address``, ``--workers N``). Shared helpers load the suite, build the verifier settings and
pick the run folder; each mode is one function.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

__all__ = ["ORDER", "register", "run", "add_suite_arguments", "add_verify_arguments"]

ORDER = 30

def add_suite_arguments(parser: argparse.ArgumentParser) -> None:
    """--suite, --level, --filter (shared by the bench modes)."""
    parser.add_argument(
        "--suite",
        default="builtin",
        metavar="builtin|hf|PATH",
        help="'builtin' (the team's suite), 'hf[:NAME]' (Hugging Face), a folder in the KernelBench layout "
        "or one problem file (default: builtin)",
    )
    parser.add_argument("--level", type=int, metavar="N", help="only problems of this level")
    parser.add_argument("--filter", metavar="REGEX", help="only problems whose id matches (re.search)")


def add_verify_arguments(parser: argparse.ArgumentParser) -> None:
    """Verifier settings a bench run commonly changes."""
    parser.add_argument("--backend", help="auto | cpu | cuda | rocm | npu (default: auto; in agent mode the "
                        "--config file's, else auto)")
    parser.add_argument("--trials", type=int, metavar="N", help="correctness trials per candidate (default: 5)")
    parser.add_argument("--timeout", type=float, metavar="S", help="seconds per candidate (default: 120)")
    parser.add_argument("--policy", choices=("strict", "mixed"), help="torch compute ops in forward (default: strict)")
    parser.add_argument(
        "--reference-cache",
        metavar="FILE",
        help="reference timing cache (default: reference_timings.json beside the run folder)",
    )


def register(subparsers: Any) -> None:
    """Add the `bench` command (imports nothing heavy)."""
    parser = subparsers.add_parser(
        "bench",
        help="evaluate solutions, or run the agent, over a KernelBench-style suite",
        description="Solutions mode (--solutions DIR): verify the solution file of every problem of a suite "
        "(DIR/<problem id>.py, e.g. DIR/level1/19_ReLU.py). Agent mode (--agent, --model or --resume): run the "
        "agent over the suite in lockstep rounds (one attempt per unfinished problem per round) with one shared "
        "memory. Both write RUN_DIR/results.jsonl and print a summary.",
    )
    add_suite_arguments(parser)
    parser.add_argument("--solutions", type=Path, metavar="DIR", help="folder of solution files named by problem id")
    add_verify_arguments(parser)
    parser.add_argument("--out", type=Path, metavar="RUN_DIR", help="run folder (default: runs/bench-<time>)")
    parser.add_argument("--jobs", type=int, metavar="N", help="deprecated alias of --workers")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")
    agent = parser.add_argument_group("agent mode")
    agent.add_argument("--agent", action="store_true",
                       help="run the agent over the suite (the embedded offline proposer unless --model is given)")
    agent.add_argument("--rounds", type=int, metavar="N", help="lockstep rounds = attempts per problem (default 30)")
    agent.add_argument("--resume", type=Path, metavar="RUN_DIR",
                       help="continue a killed agent run where its memory stands (its settings and problems are reused)")
    from evokernel.commands.synthesize import add_agent_arguments

    add_agent_arguments(parser, single_task=False)
    parser.set_defaults(run=run)


def load_problems(args: argparse.Namespace) -> list[Any]:
    """The selected problems; UserError when none match."""
    from evokernel.errors import UserError
    from kernelbench.loader import load_suite

    problems = load_suite(args.suite, level=args.level, filter=args.filter)
    if not problems:
        given = [f"--level {args.level}"] if args.level is not None else []
        given += [f"--filter {args.filter!r}"] if args.filter is not None else []
        if not given:
            raise UserError(f"suite {args.suite!r} holds no problems")
        raise UserError(f"no problems of suite {args.suite!r} match {' '.join(given)}")
    return problems


def verify_settings(args: argparse.Namespace) -> Any:
    """VerifySettings from the command line (validated; bad values are one-line UserErrors)."""
    from evokernel.verify import VerifySettings

    changes: dict[str, Any] = {}
    for arg, field in (
        ("backend", "backend"),
        ("trials", "trials"),
        ("timeout", "timeout_s"),
        ("policy", "policy"),
        ("reference_cache", "reference_cache"),
    ):
        value = getattr(args, arg, None)
        if value is not None:
            changes[field] = str(value) if field == "reference_cache" else value
    return VerifySettings(**changes)


def run_dir(args: argparse.Namespace) -> Path:
    """--out, or a fresh runs/bench-<time> folder."""
    from kernelbench.runner import default_run_dir

    return args.out if args.out is not None else default_run_dir()


def run_solutions_mode(args: argparse.Namespace) -> int:
    """Verify a folder of solution files and print the summary."""
    from rich.console import Console

    from evokernel.commands.synthesize import executor_of
    from kernelbench.runner import run_solutions
    from kernelbench.summary import print_summary

    problems = load_problems(args)
    settings = verify_settings(args)
    out = run_dir(args)
    result = run_solutions(
        problems,
        args.solutions,
        run_dir=out,
        settings=settings,
        suite=str(args.suite),
        progress=not args.no_progress,
        workers=args.workers,
        executor=executor_of(args) or "local",
        ray_address=args.ray_address,
    )
    console = Console()
    print_summary(result.metrics, console=console, title=str(args.suite))
    console.print(f"results: {result.run_dir / 'results.jsonl'}", markup=False)
    return 0


def _agent_settings(args: argparse.Namespace) -> Any:
    """AgentSettings of a new agent run: file, then agent flags, then the verifier flags of bench;
    validated once at the end, so the flags can fix what the file got wrong."""
    from evokernel.commands.synthesize import settings_from_args
    from evokernel.errors import UserError

    if args.rounds is not None and args.rounds < 1:  # the budget setting, named by the flag that set it
        raise UserError(f"--rounds must be at least 1 (got {args.rounds})")
    return settings_from_args(
        args,
        extra={
            "budget": args.rounds,
            "verify.backend": args.backend,
            "verify.trials": args.trials,
            "verify.timeout_s": args.timeout,
            "verify.policy": args.policy,
            "verify.reference_cache": str(args.reference_cache) if args.reference_cache else None,
        },
    )


def _resumed(args: argparse.Namespace) -> tuple[Any, list[Any], Path, Path | None, str]:
    """Settings, problems, run folder, memory and suite of the run to resume, from its header."""
    from evokernel.agent.settings import apply_overrides, settings_from_dict
    from evokernel.agent.suite import resume_settings
    from evokernel.commands.synthesize import executor_of
    from evokernel.errors import UserError
    from kernelbench.loader import load_suite

    header = resume_settings(args.resume)
    config = header.get("settings") or {}
    settings = settings_from_dict(config.get("settings") or {})
    # where candidates run does not change what the run computes: these may differ from the first run
    executor = executor_of(args)
    if executor == "local":
        settings.ray_address = None
    apply_overrides(settings, {"executor": executor, "workers": args.workers, "ray_address": args.ray_address})
    suite = str(header.get("suite", "builtin"))
    by_id = {p.id: p for p in load_suite(suite)}
    ids = header.get("task_ids") or []
    missing = [i for i in ids if i not in by_id]
    if missing:
        raise UserError(f"{args.resume}: problems of the run are no longer in suite {suite!r}: {', '.join(missing[:5])}")
    memory = Path(header["memory"]) if header.get("memory") else None
    return settings, [by_id[i] for i in ids], args.resume, memory, suite


def run_agent_mode(args: argparse.Namespace) -> int:
    """Run (or resume) the agent over the suite and print the summary."""
    from rich.console import Console

    from evokernel.agent.agent import Agent
    from evokernel.agent.progress import SuiteProgress
    from evokernel.agent.suite import run_agent_suite
    from kernelbench.metrics import compute_metrics
    from kernelbench.records import read_run
    from kernelbench.runner import reference_cache_path
    from kernelbench.summary import print_summary

    if args.resume is not None:
        settings, problems, out, memory, suite = _resumed(args)
    else:
        settings, problems = _agent_settings(args), load_problems(args)
        out, memory, suite = run_dir(args), args.memory, str(args.suite)
        if settings.verify.reference_cache is None:
            settings.verify.reference_cache = str(reference_cache_path(out))
    with Agent(settings, memory=memory) as agent:
        with SuiteProgress(len(problems), quiet=args.no_progress) as progress:
            results = run_agent_suite(
                agent, problems, out, suite=suite, device=agent.device,
                resume=args.resume is not None, on_attempt=progress.on_attempt, close_on_interrupt=True,
            )
        run = read_run(out)
        metrics = compute_metrics(results, backend=agent.backend, attempts=run.attempts)
    console = Console()
    print_summary(metrics, console=console, title=f"{suite} (agent)")
    console.print(f"results: {out / 'results.jsonl'}", markup=False)
    return 0


def run(args: argparse.Namespace) -> int:
    """Dispatch to the bench mode the arguments ask for."""
    import logging

    from evokernel.errors import UserError

    if args.jobs is not None:
        logging.getLogger("evokernel.bench").warning("--jobs is deprecated; use --workers")
        if args.workers is None:
            args.workers = args.jobs
    agent_mode = args.agent or args.model is not None or args.resume is not None
    if agent_mode and args.solutions is not None:
        raise UserError("pass either --solutions DIR (evaluate solution files) or --agent/--model (run the agent), not both")
    if agent_mode:
        return run_agent_mode(args)
    if getattr(args, "solutions", None) is not None:
        return run_solutions_mode(args)
    raise UserError(
        "evokernel bench needs --solutions DIR (a folder of <problem id>.py solution files) "
        "or --agent (run the agent over the suite)"
    )
