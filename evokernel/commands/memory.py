"""`evokernel memory stats|export|import|prune`: inspect, move and trim the agent's memory."""

from __future__ import annotations

import argparse
import json
from typing import Any

__all__ = ["ORDER", "register", "run"]

ORDER = 40

_SQLITE_MAGIC = b"SQLite format 3\x00"


def register(subparsers: Any) -> None:
    """Add the `memory` command and its actions (imports nothing heavy)."""
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument(
        "--memory",
        metavar="PATH",
        help="memory file (default: $EVOKERNEL_MEMORY, else memory.sqlite in the user's data dir)",
    )
    common.add_argument(
        "--embedder",
        metavar="NAME",
        help="'structural' or 'litellm:<model>' (default: the embedder the memory was made with)",
    )
    common.add_argument("--api-base", metavar="URL", help="api_base of a litellm embedding model")
    common.add_argument(
        "--reembed", action="store_true", help="re-embed every item when --embedder differs from the memory's"
    )

    parser = subparsers.add_parser(
        "memory",
        help="inspect, export, import and prune the memory",
        description="Inspect, move and trim the value-driven memory shared by all tasks and runs.",
    )
    actions = parser.add_subparsers(dest="memory_action", metavar="ACTION", required=True)

    stats = actions.add_parser("stats", parents=[common], help="counts, tasks, runs, reward statistics")
    stats.add_argument("--json", action="store_true", help="print one JSON object instead of text")

    export = actions.add_parser("export", parents=[common], help="write items as JSON Lines")
    export.add_argument("output", metavar="OUT.jsonl", help="file to write")
    export.add_argument("--task", action="append", default=None, metavar="ID", help="only this task (repeatable)")
    export.add_argument(
        "--exclude-task", action="append", default=[], metavar="ID", help="leave this task out (repeatable)"
    )

    imp = actions.add_parser(
        "import", parents=[common], help="add items from a JSON Lines export or merge another memory file"
    )
    imp.add_argument("source", metavar="FILE", help="a .jsonl export or another memory (.sqlite) to merge")

    prune = actions.add_parser(
        "prune", parents=[common], help="delete items matching every given rule (knowledge kept unless asked)"
    )
    prune.add_argument("--task", action="append", default=[], metavar="ID", help="items of this task (repeatable)")
    prune.add_argument("--older-than", type=float, metavar="DAYS", help="items created more than DAYS days ago")
    prune.add_argument("--q-below", type=float, metavar="Q", help="items whose Q value (of --stage) is below Q")
    prune.add_argument("--stage", choices=("draft", "refine"), default="draft", help="stage of --q-below")
    prune.add_argument("--include-knowledge", action="store_true", help="prune knowledge items too")
    prune.add_argument("--dry-run", action="store_true", help="count what would be deleted, delete nothing")

    parser.set_defaults(run=run)


def _open(args: argparse.Namespace, *, create: bool) -> Any:
    from evokernel.memory.embedders import embedder_from_name
    from evokernel.memory.memory import Memory

    embedder = embedder_from_name(args.embedder, api_base=args.api_base) if args.embedder else None
    return Memory.open(args.memory, embedder, reembed=args.reembed, create=create)


def run(args: argparse.Namespace) -> int:
    """Run one memory action; user errors raise UserError (printed by the CLI, exit 2)."""
    action = {"stats": _stats, "export": _export, "import": _import, "prune": _prune}[args.memory_action]
    return action(args)


def _stats(args: argparse.Namespace) -> int:
    with _open(args, create=False) as memory:
        stats = memory.stats()
    if args.json:
        print(json.dumps(stats, indent=2, sort_keys=True))
        return 0
    emb = stats["embedder"]
    lines = [
        f"memory      {stats['path']}",
        f"embedder    {emb['name']} (dim {emb['dim']})",
        f"items       {stats['items']}  " + "  ".join(f"{k}={v}" for k, v in sorted(stats["by_kind"].items())),
        "backends    " + ("  ".join(f"{k}={v}" for k, v in sorted(stats["by_backend"].items())) or "-"),
        "stages      " + ("  ".join(f"{k}={v}" for k, v in sorted(stats["by_stage"].items())) or "-"),
        f"tasks       {stats['tasks']} ({stats['tasks_solved']} with a feasible kernel; "
        f"{stats['feasible']} feasible experiences)",
        f"runs        {stats['runs']}",
    ]
    for stage, rs in stats["reward_stats"].items():
        lines.append(f"rewards     {stage}: n={rs['count']} mean={rs['mean']:.4f} var={rs['var']:.4f}")
    print("\n".join(lines))
    return 0


def _export(args: argparse.Namespace) -> int:
    with _open(args, create=False) as memory:
        n = memory.export_jsonl(args.output, task_ids=args.task, exclude_task_ids=args.exclude_task)
    print(f"exported {n} items to {args.output}")
    return 0


def _import(args: argparse.Namespace) -> int:
    from pathlib import Path

    from evokernel.errors import UserError
    from evokernel.memory import transfer

    source = Path(args.source).expanduser()
    if not source.is_file():
        raise UserError(f"{source}: no such file; pass a .jsonl export or a memory file to merge")
    with open(source, "rb") as f:
        is_sqlite = f.read(len(_SQLITE_MAGIC)) == _SQLITE_MAGIC
    # read (and check) the source before the target is opened: a bad source creates no empty memory
    records = transfer.read_memory(source) if is_sqlite else transfer.read_jsonl(source)
    with _open(args, create=True) as memory:
        if is_sqlite:
            transfer.check_merge_source(source, memory.path)
        n = memory.import_records(records)
        path = memory.path
    print(f"{'merged' if is_sqlite else 'imported'} {n} items from {source} into {path}")
    return 0


def _prune(args: argparse.Namespace) -> int:
    with _open(args, create=False) as memory:
        n = memory.prune(
            task_ids=args.task,
            older_than_days=args.older_than,
            q_below=args.q_below,
            stage=args.stage,
            include_knowledge=args.include_knowledge,
            dry_run=args.dry_run,
        )
        print(f"{'would delete' if args.dry_run else 'deleted'} {n} items from {memory.path}")
    return 0
