"""Lessons and feedback derived from verdicts."""

from __future__ import annotations

from evokernel.agent.lessons import LESSON_CHARS, feedback_for, lesson_for


def test_no_kernel_lesson_says_why() -> None:
    text = lesson_for(None, stage="draft", proposal_error="the reply has no ```python code block")
    assert text.startswith("no kernel:")
    assert "code block" in text


def test_compile_error_lesson_keeps_the_decisive_message() -> None:
    verdict = {"status": "compile_error", "message": "candidate.py:12: arange's range must be a power of 2"}
    text = lesson_for(verdict, stage="draft")
    assert text == "compile error: candidate.py:12: arange's range must be a power of 2"


def test_rejected_lesson_names_the_rule() -> None:
    verdict = {"status": "rejected", "rule": "ghost_replay", "message": "output still correct with kernels disabled"}
    assert lesson_for(verdict, stage="draft").startswith("rejected by the verifier (rule ghost_replay):")


def test_crash_lesson_names_the_signal() -> None:
    assert "SIGSEGV" in lesson_for({"status": "crashed", "signal": "SIGSEGV", "message": ""}, stage="draft")


def test_correct_refinement_lesson_compares_with_the_best() -> None:
    verdict = {"status": "correct", "feasible": True, "kernels_launched": ["softmax_kernel"], "latency_ms": 0.5,
               "speedup_eager": 1.8}
    text = lesson_for(verdict, stage="refine", best_ms=1.0)
    assert "softmax_kernel" in text and "0.5 ms" in text and "2.00x the task's best" in text


def test_correct_draft_lesson_lists_kept_torch_ops() -> None:
    verdict = {"status": "correct", "kernels_launched": ["k"], "torch_ops": ["aten.convolution"]}
    assert "aten.convolution" in lesson_for(verdict, stage="draft")


def test_lessons_are_one_bounded_line() -> None:
    verdict = {"status": "runtime_error", "message": "x\n" * 1000}
    text = lesson_for(verdict, stage="draft")
    assert "\n" not in text and len(text) <= LESSON_CHARS


def test_feedback_lists_trials_and_message() -> None:
    verdict = {"status": "incorrect", "message": "mismatch in rows 0-3",
               "trials": [{"name": "trial0", "max_abs_error": 0.5, "mismatch": "rows 0-3", "ignored": 1}]}
    text = feedback_for(verdict)
    assert "status: incorrect" in text and "mismatch in rows 0-3" in text and "'max_abs_error': 0.5" in text
    assert "ignored" not in text
