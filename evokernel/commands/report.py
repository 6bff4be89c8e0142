"""`evokernel report RUN_DIR [RUN_DIR_B] [-o report.html]`: one self-contained HTML report."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

__all__ = ["ORDER", "register", "run"]

ORDER = 35


def register(subparsers: Any) -> None:
    """Add the `report` command (imports nothing heavy)."""
    parser = subparsers.add_parser(
        "report",
        help="HTML report of a bench run, or a comparison of two runs",
        description="Write one self-contained HTML file (plots embedded) for a run folder written by "
        "`evokernel bench`; with two run folders, compare them side by side.",
    )
    parser.add_argument("runs", nargs="+", type=Path, metavar="RUN_DIR", help="one run folder, or two to compare")
    parser.add_argument(
        "-o",
        "--output",
        type=Path,
        metavar="FILE",
        help="HTML file to write (default: RUN_DIR/report.html, or RUN_A/compare-<RUN_B>.html)",
    )
    parser.add_argument("--json", action="store_true", help="print the metrics as one JSON object on stdout (the report's path goes to stderr)")
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    """Read the run(s), write the HTML file, print its path (stderr with --json) and whether a run is incomplete."""
    import json
    import sys

    from evokernel.errors import UserError
    from kernelbench.records import json_safe, read_run
    from kernelbench.report import run_metrics, write_report

    if len(args.runs) > 2:
        raise UserError("evokernel report takes one run folder, or two to compare")
    runs = [read_run(p) for p in args.runs]
    out = args.output
    if out is None:
        out = runs[0].run_dir / ("report.html" if len(runs) == 1 else f"compare-{runs[1].name}.html")
    path = write_report(runs, out)
    for r in runs:
        note = r.coverage().note()
        if note:
            print(f"{r.run_dir}: {note}", file=sys.stderr)
    if args.json:  # stdout is the JSON alone, so it can be piped; the path goes to stderr
        print(json.dumps(json_safe({r.name: run_metrics(r) for r in runs})))
        print(path, file=sys.stderr)
    else:
        print(path)
    return 0
