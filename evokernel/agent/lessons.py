"""Short lessons and prompt feedback derived from a verifier verdict (stored with every attempt)."""

from __future__ import annotations

from typing import Any

__all__ = ["lesson_for", "feedback_for", "LESSON_CHARS"]

LESSON_CHARS = 400

_STATUS_WORDS = {
    "compile_error": "compile error",
    "runtime_error": "runtime error",
    "incorrect": "wrong result",
    "rejected": "rejected by the verifier",
    "timeout": "timed out",
    "crashed": "crashed",
    "memory_exceeded": "exceeded the memory limit",
}


def _clip(text: str, limit: int) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _worst_trial(verdict: dict[str, Any]) -> dict[str, Any] | None:
    trials = [t for t in verdict.get("trials") or [] if isinstance(t, dict)]
    if not trials:
        return None
    return max(trials, key=lambda t: t.get("max_abs_error") or 0.0)


def _speed_phrase(verdict: dict[str, Any], best_ms: float | None) -> str:
    latency = verdict.get("latency_ms")
    if latency is None:
        return ""
    parts = [f"{latency:.4g} ms"]
    if verdict.get("speedup_eager"):
        parts.append(f"{verdict['speedup_eager']:.2f}x vs eager")
    if best_ms:
        ratio = best_ms / latency
        parts.append(f"{ratio:.2f}x the task's best before ({best_ms:.4g} ms)")
    return ", ".join(parts)


def lesson_for(
    verdict: dict[str, Any] | None,
    *,
    stage: str,
    proposal_error: str | None = None,
    best_ms: float | None = None,
) -> str:
    """One line saying what happened and the decisive detail (error category, message, mismatch or speed)."""
    if verdict is None:
        return _clip(f"no kernel: {proposal_error or 'the proposer returned nothing'}", LESSON_CHARS)
    status = verdict.get("status", "unknown")
    message = verdict.get("message") or ""
    if status == "correct":
        kernels = ", ".join(verdict.get("kernels_launched") or []) or "?"
        speed = _speed_phrase(verdict, best_ms if stage == "refine" else None)
        head = "correct draft" if stage == "draft" else "correct refinement"
        text = f"{head} (kernels: {kernels})" + (f"; {speed}" if speed else "")
        torch_ops = verdict.get("torch_ops") or []
        if torch_ops:
            text += f"; torch ops kept: {', '.join(torch_ops[:6])}"
        return _clip(text, LESSON_CHARS)
    words = _STATUS_WORDS.get(status, status)
    if status == "rejected" and verdict.get("rule"):
        words += f" (rule {verdict['rule']})"
    if status == "crashed" and verdict.get("signal"):
        words += f" ({verdict['signal']})"
    detail = message
    if status == "incorrect":
        worst = _worst_trial(verdict)
        if worst and not message:
            detail = f"max abs error {worst.get('max_abs_error')}"
    return _clip(f"{words}: {detail}" if detail else words, LESSON_CHARS)


def feedback_for(verdict: dict[str, Any] | None, *, proposal_error: str | None = None, limit: int = 2000) -> str:
    """The fuller feedback shown to the proposer on its next attempt at the same task."""
    if verdict is None:
        return _clip(f"Your last reply produced no kernel: {proposal_error or 'no code'}.", limit)
    lines = [f"status: {verdict.get('status')}"]
    if verdict.get("rule"):
        lines.append(f"rule: {verdict['rule']}")
    if verdict.get("message"):
        lines.append(f"message: {verdict['message']}")
    for i, trial in enumerate(verdict.get("trials") or []):
        if not isinstance(trial, dict):
            continue
        summary = {k: v for k, v in trial.items() if k in ("name", "shapes", "max_abs_error", "mean_abs_error",
                                                           "max_rel_error", "mismatch", "passed")}
        lines.append(f"trial {i}: {summary}")
        if len(lines) > 12:
            break
    if verdict.get("torch_ops"):
        lines.append(f"torch ops in forward: {', '.join(verdict['torch_ops'][:10])}")
    if verdict.get("latency_ms") is not None:
        lines.append(f"latency: {verdict['latency_ms']:.4g} ms; speedup vs eager: {verdict.get('speedup_eager')}")
    text = "\n".join(lines)
    return text if len(text) <= limit else text[: limit - 3] + "..."
