"""Machine-readable records of agent runs, written beside their outputs."""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import Any

from evokernel.agent.records import TaskResult, TaskSpec
from evokernel.errors import UserError
from kernelbench.records import json_safe, versions

__all__ = ["write_synthesis_record", "record_path_for", "ledger_of", "check_out_path"]


def record_path_for(out: Path) -> Path:
    """Where the run record of a kernel written to ``out`` goes: ``<out>.run.json``."""
    return out.with_name(out.name + ".run.json") if out.suffix != ".py" else out.with_suffix(".run.json")


def check_out_path(out: Path) -> None:
    """Fail before any work, naming --out, when the kernel or its run record cannot be written at ``out``.

    Creates the missing parent folders (the kernel goes there anyway) and writes nothing else."""
    record = record_path_for(out)
    for path in (out, record):
        if path.is_dir():
            raise UserError(f"--out {out}: {path} is a directory; pass a file path, e.g. --out {out / 'kernel.py'}")
        if path.exists() and not os.access(path, os.W_OK):
            raise UserError(f"--out {out}: {path} exists and is not writable; pass another --out")
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=out.parent, prefix=".evokernel-check-"):
            pass
    except OSError as exc:
        raise UserError(f"--out {out}: cannot write there ({exc.strerror or exc}); pass another --out") from exc


def ledger_of(proposer: Any) -> dict[str, Any] | None:
    """The proposer's token and cost ledger, where it has one."""
    ledger = getattr(proposer, "ledger", None)
    return ledger.to_dict() if ledger is not None else None


def write_synthesis_record(
    agent: Any, task: TaskSpec, result: TaskResult, out: Path, wall_s: float, *, stopped: str | None = None
) -> Path:
    """Write the best kernel (when there is one) to ``out`` and the run record beside it; returns the record's path.

    ``stopped`` says why a run ended before its task did (a stop error, an interrupt); the record
    keeps it, and the result then holds the attempts made up to the stop."""
    record_path = record_path_for(out)
    record = {
        "format": "evokernel.synthesis/1",
        "run_id": getattr(agent, "last_run_id", None),
        "stopped": stopped,
        "problem": str(task.path) if task.path else None,
        "task_id": task.id,
        "task_hash": task.hash,
        "memory": str(agent.memory.path),
        "kernel": str(out) if result.solved else None,
        "versions": versions(),
        "wall_s": round(wall_s, 3),
        "ledger": ledger_of(agent.proposer),
        **agent.run_config(),
        "result": result.to_dict(),
    }
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
        if result.solved and result.best_code is not None:
            out.write_text(result.best_code, encoding="utf-8")
        record_path.write_text(json.dumps(json_safe(record), indent=2) + "\n", encoding="utf-8")
    except OSError as exc:
        raise UserError(f"{out}: cannot write the kernel or its run record ({exc}); pass another --out") from exc
    return record_path
