"""Does experience help? The offline proposer on a stream of tasks, once per retrieval mode.

Each mode starts from a fresh memory (holding only the knowledge pack) and works through the same
stream of problems one after the other, so later tasks can reuse what earlier ones taught the
memory. Prints one JSON object per line:

    {"mode", "task", "solved", "attempts_to_first_feasible", "attempts"[, "rejections"]}  per task and mode
    {"mode", "summary": true, "tasks", "solved", "total_attempts_to_first_feasible", "rejected", "wall_s"}
    {"comparison": true, "value_minus_none", "value_fewer_than_none"}

An unsolved task counts budget + 1 attempts in the totals. On the CPU only correctness is checked
(the interpreter), so this measures attempts, never speed.

    python benchmarks/bench_offline.py --level 1               # the built-in level-1 suite
    python benchmarks/bench_offline.py --filter 'Soft|Norm' --budget 10
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")
os.environ.setdefault("TRITON_INTERPRET", "1")


def run_mode(mode: str, problems: list, args: argparse.Namespace, verifier: object) -> dict:
    from evokernel.agent.agent import Agent
    from evokernel.agent.settings import AgentSettings
    from evokernel.memory import Memory

    settings = AgentSettings(seed=args.seed)
    if args.budget is not None:
        settings.budget = args.budget
    settings.retrieval.mode = mode
    settings.verify.backend = args.backend
    settings.verify.policy = args.policy
    total = solved = rejected = 0
    started = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp, Memory.open(Path(tmp) / "memory.sqlite") as memory:
        agent = Agent(settings, memory=memory, verifier=verifier)
        for problem in problems:
            result = agent.synthesize(problem)
            first = result.first_feasible_attempt
            attempts = first + 1 if first is not None else settings.budget + 1
            total += attempts
            solved += result.solved
            rejections = [a.lesson for a in result.attempts if a.status == "rejected"]
            rejected += len(rejections)
            line = {"mode": mode, "task": problem.id, "solved": result.solved,
                    "attempts_to_first_feasible": first + 1 if first is not None else None,
                    "attempts": len(result.attempts)}
            if rejections:
                line["rejections"] = rejections  # the anti-hack rule that fired, per rejected attempt
            print(json.dumps(line), flush=True)
    summary = {"mode": mode, "summary": True, "tasks": len(problems), "solved": solved,
               "total_attempts_to_first_feasible": total, "rejected": rejected,
               "wall_s": round(time.perf_counter() - started, 1)}
    print(json.dumps(summary), flush=True)
    return summary


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--suite", default="builtin")
    parser.add_argument("--level", type=int, default=1)
    parser.add_argument("--filter", default=None)
    parser.add_argument("--budget", type=int, default=None, help="attempts per task (default: the agent's)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--backend", default="cpu")
    parser.add_argument("--policy", default="strict", choices=["strict", "mixed"])
    parser.add_argument("--modes", default="value,similarity,none")
    parser.add_argument("--workers", type=int, default=2)
    args = parser.parse_args(argv)

    from evokernel.verify import Verifier, VerifySettings
    from kernelbench.loader import load_suite

    problems = load_suite(args.suite, level=args.level, filter=args.filter)
    summaries = {}
    with Verifier(VerifySettings(backend=args.backend, policy=args.policy), workers=args.workers) as verifier:
        for mode in args.modes.split(","):
            summaries[mode] = run_mode(mode, problems, args, verifier)
    if "value" in summaries and "none" in summaries:
        diff = summaries["value"]["total_attempts_to_first_feasible"] - summaries["none"]["total_attempts_to_first_feasible"]
        print(json.dumps({"comparison": True, "value_minus_none": diff, "value_fewer_than_none": diff < 0}), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
