"""`evokernel eval PROBLEM.py CANDIDATE.py`: verify one candidate and print its verdict.

Exit codes: 0 correct, 1 any other verdict, 2 bad input (missing file, broken problem, bad setting).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

__all__ = ["ORDER", "register", "run"]

ORDER = 20


def register(subparsers: Any) -> None:
    """Add the `eval` command (imports nothing heavy)."""
    parser = subparsers.add_parser(
        "eval",
        help="verify one candidate against a problem",
        description="Verify a candidate (a Python file defining ModelNew with Triton kernels) against a "
        "KernelBench-format problem: sandboxed, anti-hack checked, compared outside the candidate's "
        "process, timed on GPU/NPU.",
    )
    parser.add_argument("problem", metavar="PROBLEM.py", help="reference program (Model, get_inputs, get_init_inputs)")
    parser.add_argument("candidate", metavar="CANDIDATE.py", help="candidate program defining ModelNew")
    parser.add_argument("--backend", default="auto", choices=("auto", "cpu", "cuda", "rocm", "npu"),
                        help="target (default: auto, the device this machine has)")
    parser.add_argument("--trials", type=int, default=5, help="trials with fresh seeded inputs (default 5)")
    parser.add_argument("--atol", type=float, default=None, help="absolute tolerance (default: per dtype)")
    parser.add_argument("--rtol", type=float, default=None, help="relative tolerance (default: per dtype)")
    parser.add_argument("--policy", default="strict", choices=("strict", "mixed"),
                        help="torch compute ops in forward: strict forbids them, mixed lists them")
    parser.add_argument("--timeout", type=float, default=120.0, metavar="SEC", help="wall clock per candidate")
    parser.add_argument("--memory-limit", type=float, default=4.0, metavar="GB", help="resident memory per candidate")
    parser.add_argument("--fit", default="auto", choices=("auto", "cpu", "none"),
                        help="shrink sizes for the interpreter (auto: cpu on the cpu backend)")
    parser.add_argument("--max-elements", type=int, default=65536, help="per input tensor when fitting (default 65536)")
    parser.add_argument("--seed", type=int, default=0,
                        help="seed of weights and inputs (inputs also mix in a secret of each run, so that a "
                        "candidate cannot precompute them; see --reproducible-inputs)")
    parser.add_argument("--reproducible-inputs", action="store_true",
                        help="inputs from --seed alone: the same on every run (for debugging a candidate)")
    parser.add_argument("--no-probes", action="store_true", help="skip the signed/scaled/shifted probes")
    parser.add_argument("--no-ghost", action="store_true", help="skip ghost replay")
    parser.add_argument("--runs", type=int, default=100, help="timed runs on GPU/NPU (default 100)")
    parser.add_argument("--reference-cache", metavar="FILE", help="JSON file caching reference timings")
    parser.add_argument("--json", action="store_true", help="print the full verdict as JSON")
    parser.add_argument("--output", metavar="FILE", help="also write the verdict as JSON to FILE")
    parser.set_defaults(run=run)


def _read_candidate(path: str) -> str:
    from evokernel.errors import UserError
    from evokernel.verify.static_gate import defines_model_new

    p = Path(path)
    if p.is_dir():
        raise UserError(f"{p}: is a folder, not a candidate file; pass the path of a .py file defining ModelNew")
    if not p.is_file():
        raise UserError(f"{p}: no such candidate file; pass the path of a .py file defining ModelNew")
    try:
        source = p.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise UserError(f"{p}: cannot be read ({exc}); check its permissions and encoding (UTF-8)") from exc
    if not defines_model_new(source):
        raise UserError(f"{p}: defines no ModelNew; a candidate defines class ModelNew(nn.Module) "
                        "with Model's constructor and forward signature")
    return source


def _output_path(path: str | None) -> Path | None:
    """--output FILE, checked before any work: not a folder, in a folder that exists."""
    from evokernel.errors import UserError

    if path is None:
        return None
    p = Path(path)
    if p.is_dir():
        raise UserError(f"--output {p}: is a folder; pass a file name for the verdict JSON")
    if not p.parent.is_dir():
        raise UserError(f"--output {p}: folder {p.parent} does not exist; create it or pass another file")
    return p


def _write_output(path: Path, record: dict[str, Any]) -> None:
    from evokernel.errors import UserError

    try:
        path.write_text(json.dumps(record, indent=2) + "\n", encoding="utf-8")
    except OSError as exc:
        raise UserError(f"--output {path}: cannot write the verdict ({exc.strerror or exc})") from exc


def _print_human(verdict: Any) -> None:
    from rich.console import Console
    from rich.text import Text

    console = Console(highlight=False, markup=False)  # messages come from candidates: print them literally
    color = "green" if verdict.feasible else "red"
    head = verdict.status if verdict.rule is None else f"{verdict.status} ({verdict.rule})"
    console.print(Text.assemble((head, f"bold {color}"), "  ", verdict.message), soft_wrap=True)
    console.print(f"backend {verdict.backend} ({verdict.device}); sizes {verdict.sizes}; {verdict.wall_s:.2f} s")
    if verdict.kernels_launched:
        console.print(f"kernels: {', '.join(verdict.kernels_launched)}")
    if verdict.torch_ops:
        console.print(f"torch compute ops in forward: {', '.join(verdict.torch_ops)}")
    for case in verdict.trials:
        outs = case.get("outputs") or []
        worst = max((o.get("max_abs", 0.0) for o in outs), default=0.0)
        name = case.get("description", case.get("name"))
        if case.get("kind") == "ghost":  # the output must be wrong with every launch skipped
            good = not case.get("ok") or case.get("error")
            console.print(f"  {'ok ' if good else 'BAD'} {name}: output {'wrong' if good else 'still correct'} "
                          "with every Triton launch skipped")
            continue
        mark = "ok " if case.get("ok") else "BAD"
        console.print(f"  {mark} {name}: max abs err {worst:.3g}")
    if verdict.timing:
        cand = verdict.timing.get("candidate") or {}
        flag = "  [flagged for review]" if verdict.flagged else ""
        console.print(f"latency {cand.get('median_ms', float('nan')):.4f} ms (p20 {cand.get('p20_ms', 0):.4f}, "
                      f"p80 {cand.get('p80_ms', 0):.4f}); speedup vs eager {verdict.speedup_eager}, "
                      f"vs torch.compile {verdict.speedup_compile}{flag}")


def run(args: argparse.Namespace) -> int:
    """Verify, print, return 0 when correct and 1 otherwise."""
    from evokernel.verify import Verifier, VerifySettings
    from evokernel.verify.problem import resolve_problem

    settings = VerifySettings(
        backend=args.backend, trials=args.trials, atol=args.atol, rtol=args.rtol, policy=args.policy,
        timeout_s=args.timeout, memory_limit_gb=args.memory_limit, fit=args.fit, max_elements=args.max_elements,
        seed=args.seed, probes=not args.no_probes, ghost_replay=not args.no_ghost, timing_runs=args.runs,
        reference_cache=args.reference_cache, secret_inputs=not args.reproducible_inputs,
    )
    resolve_problem(Path(args.problem))  # a bad problem file fails here, before any worker starts
    source = _read_candidate(args.candidate)
    output = _output_path(args.output)
    with Verifier(settings, workers=1) as verifier:
        verdict = verifier.evaluate(Path(args.problem), source)
    record = verdict.to_dict()
    if output is not None:
        _write_output(output, record)
    if args.json:
        print(json.dumps(record, indent=2))
    else:
        _print_human(verdict)
    return 0 if verdict.feasible else 1

