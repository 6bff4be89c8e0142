"""Parent-side timing on GPU/NPU: the handshake that lets a correct candidate's worker start timing,
the verdict's timing fields (re-check, speedups, review flag) and the file cache of reference timings.

The cache is one JSON object keyed by (problem hash, sizes, device, torch version, timing settings);
writers take an exclusive ``flock`` on a side file and replace the cache atomically, so several
processes (e.g. benchmark shards) may share it.
"""

from __future__ import annotations

import errno
import fcntl
import json
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

from evokernel.verify.compare import compare_case
from evokernel.verify.jobfiles import read_job_text
from evokernel.verify.judge import mismatch_message

__all__ = ["Handshake", "timing_fields", "cache_key", "cache_get", "cache_put"]


def _read(path: Path) -> str:
    return read_job_text(path, 1000)  # the candidate can write there: no link, FIFO or huge file


class Handshake:
    """Called on every supervision tick: once the worker waits on its control FIFO, judge its outputs
    and answer "time" (correct) or "stop". Never leaves the worker blocked: any failure answers "stop"."""

    def __init__(self, job_dir: Path, judge: Callable[[], dict[str, Any]]) -> None:
        self.job_dir = job_dir
        self.judge = judge
        self.done = False

    def __call__(self) -> None:
        if self.done or _read(self.job_dir / "progress").strip() != "awaiting parent":
            return
        try:
            fd = os.open(self.job_dir / "control", os.O_WRONLY | os.O_NONBLOCK)
        except OSError as exc:
            if exc.errno in (errno.ENXIO, errno.ENOENT):
                return  # the worker has not opened its end yet
            raise
        self.done = True
        answer = b"stop\n"
        try:
            if self.judge().get("status") == "correct":
                answer = b"time\n"
        finally:
            try:
                os.write(fd, answer)
            finally:
                os.close(fd)


def timing_fields(
    stats: dict[str, Any] | None,
    recheck: dict[str, Any] | None,
    expected: dict[str, Any],
    inputs: list[Any],
    baseline: dict[str, Any],
    atol: float | None,
    rtol: float | None,
    flag_above: float,
    checks: dict[str, str],
) -> dict[str, Any]:
    """Verdict fields for a correct candidate that was timed (or the re-check failure that undoes it)."""
    if not stats:
        checks["timing"] = "fail: no timing recorded"
        return {}
    report = compare_case("recheck", "recheck", recheck, expected, inputs, atol, rtol)
    if not report.ok:
        checks["recheck"] = "fail"
        return {"status": "incorrect", "phase": "recheck",
                "message": mismatch_message({"description": "re-check after timing"}, report)}
    checks["recheck"] = "pass"
    fields: dict[str, Any] = {"latency_ms": stats["median_ms"]}
    timing: dict[str, Any] = {"candidate": stats, "eager": baseline.get("eager"), "compile": baseline.get("compile")}
    if baseline.get("compile_error"):
        timing["compile_error"] = baseline["compile_error"]
    fields["timing"] = timing
    if baseline.get("eager"):
        fields["speedup_eager"] = round(baseline["eager"]["median_ms"] / stats["median_ms"], 4)
    if baseline.get("compile"):
        fields["speedup_compile"] = round(baseline["compile"]["median_ms"] / stats["median_ms"], 4)
    fields["flagged"] = bool((fields.get("speedup_eager") or 0.0) > flag_above)
    if fields["flagged"]:
        checks["speedup"] = f"flagged: more than {flag_above:g}x faster than eager; review by hand"
    return fields


def cache_key(problem_hash: str, sizes: dict[str, int], device: str, torch_version: str, runs: int, warmup: int,
              compile_too: bool) -> str:
    """The key of one reference timing."""
    return "|".join([problem_hash, json.dumps(sizes, sort_keys=True), device, torch_version, str(runs), str(warmup),
                     str(compile_too)])


def cache_get(path: str | None, key: str) -> dict[str, Any] | None:
    """The cached reference timing for ``key``, or None."""
    if not path or not os.path.exists(path):
        return None
    try:
        with open(path, encoding="utf-8") as f:
            fcntl.flock(f, fcntl.LOCK_SH)
            data = json.load(f)
    except (OSError, ValueError):
        return None
    value = data.get(key) if isinstance(data, dict) else None
    return value if isinstance(value, dict) else None


def cache_put(path: str | None, key: str, value: dict[str, Any]) -> None:
    """Add or replace one entry (exclusive lock, atomic replace)."""
    if not path:
        return
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    with open(target.with_name(target.name + ".lock"), "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        data: dict[str, Any] = {}
        if target.exists():
            try:
                data = json.loads(target.read_text(encoding="utf-8"))
            except (OSError, ValueError):
                data = {}
        data[key] = value
        tmp = target.with_name(f"{target.name}.tmp{os.getpid()}")
        tmp.write_text(json.dumps(data, indent=1, sort_keys=True), encoding="utf-8")
        os.replace(tmp, target)
