"""Device profile of a timed candidate: per-kernel device time, checked and summarized for refining.

The worker profiles a few forwards of a correct candidate after timing it (backends that have a
profiler: CUDA/ROCm through ``torch.profiler``) and reports rows ``{"name", "calls", "device_us"}``
per forward. The rows come from the candidate's process, so the parent accepts only well-formed,
bounded rows (:func:`clean_rows`) and writes the summary the refining prompt shows
(:func:`summarize_profile`): where the device time goes, and how much of the measured latency is
device time at all (the rest is launch and host overhead, which fusion removes and tiling does not).
"""

from __future__ import annotations

import math
from typing import Any

__all__ = ["clean_rows", "summarize_profile", "MAX_ROWS", "SHOWN_ROWS"]

MAX_ROWS = 64  # rows accepted from a worker
SHOWN_ROWS = 8  # rows shown in the summary; the rest are folded into one line
_NAME_CHARS = 120


def clean_rows(raw: Any) -> list[dict[str, Any]] | None:
    """Well-formed profile rows from a worker's result (None when absent or malformed)."""
    if not isinstance(raw, list) or not raw or len(raw) > MAX_ROWS:
        return None
    rows = []
    for row in raw:
        if not isinstance(row, dict):
            return None
        name, calls, device_us = row.get("name"), row.get("calls"), row.get("device_us")
        if not isinstance(name, str) or not name.strip():
            return None
        if isinstance(calls, bool) or not isinstance(calls, (int, float)) or not 0 < calls < 1e9:
            return None
        if isinstance(device_us, bool) or not isinstance(device_us, (int, float)):
            return None
        if not math.isfinite(device_us) or not 0 <= device_us < 1e12:
            return None
        rows.append({"name": " ".join(name.split())[:_NAME_CHARS], "calls": round(float(calls), 2),
                     "device_us": float(device_us)})
    return rows


def summarize_profile(rows: list[dict[str, Any]] | None, latency_ms: float | None) -> str | None:
    """A few lines for the refining prompt: device time per kernel and its share of the latency."""
    if not rows:
        return None
    rows = sorted(rows, key=lambda r: -r["device_us"])
    total_us = sum(r["device_us"] for r in rows)
    launches = sum(r["calls"] for r in rows)
    head = f"device time per forward: {total_us / 1e3:.4g} ms in {launches:g} kernel launches"
    if latency_ms and latency_ms > 0:
        busy = total_us / 1e3 / latency_ms
        head += f"; measured latency {latency_ms:.4g} ms, {min(busy, 1.0):.0%} of it on the device"
        if busy < 0.5:
            head += " (launch/host overhead dominates: fewer, fused launches help more than retiling)"
    lines = [head]
    for r in rows[:SHOWN_ROWS]:
        share = r["device_us"] / total_us if total_us > 0 else 0.0
        lines.append(f"  {share:6.1%}  {r['device_us'] / 1e3:9.4g} ms  x{r['calls']:g}  {r['name']}")
    rest = rows[SHOWN_ROWS:]
    if rest:
        rest_us = sum(r["device_us"] for r in rest)
        share = rest_us / total_us if total_us > 0 else 0.0
        lines.append(f"  {share:6.1%}  {rest_us / 1e3:9.4g} ms  in {len(rest)} more kernels")
    return "\n".join(lines)
