"""Short, decisive error messages that point at the candidate's file and line.

The agent's memory stores lessons derived from these messages, so each is one line (at most
``MAX_CHARS``), names ``candidate.py:LINE`` where the candidate's own code is involved, and drops
harness and library frames.
"""

from __future__ import annotations

import re
import traceback
from dataclasses import dataclass

__all__ = ["ErrorInfo", "describe_exception", "trim", "crash_location", "MAX_CHARS", "CANDIDATE_NAME"]

MAX_CHARS = 400
CANDIDATE_NAME = "candidate.py"

# Exception types that, raised inside a kernel body on the interpreter, would be compile errors on a GPU.
_COMPILE_LIKE = ("NameError", "AttributeError", "TypeError", "SyntaxError", "UnboundLocalError", "CompilationError",
                 "TritonSemanticError", "UnsupportedLanguageConstruct", "CompileTimeAssertionFailure")
_WRAPPERS = ("InterpreterError",)


@dataclass
class ErrorInfo:
    """What went wrong, where: the exception text and the candidate frame nearest the error."""

    type_name: str
    text: str
    line: int | None
    function: str | None
    code: str | None
    in_kernel: bool = False

    def message(self, prefix: str = "") -> str:
        """One line: "candidate.py:23 in forward: IndexError: ... (`code`)"."""
        where = CANDIDATE_NAME if self.line is None else f"{CANDIDATE_NAME}:{self.line}"
        if self.function and self.line is not None:
            where += f" in {self.function}"
        code = f" (`{self.code}`)" if self.code else ""
        head = f"{prefix}{where}: " if prefix or where else ""
        return trim(f"{head}{self.type_name}: {self.text}{code}")

    @property
    def compile_like(self) -> bool:
        """True for errors that a GPU compiler would raise before launch."""
        return self.type_name in _COMPILE_LIKE


def trim(text: str, limit: int = MAX_CHARS) -> str:
    """Collapse whitespace to one line and cut at ``limit`` characters."""
    one = re.sub(r"\s+", " ", text).strip()
    return one if len(one) <= limit else one[: limit - 3] + "..."


def _chain(exc: BaseException) -> list[BaseException]:
    seen: list[BaseException] = []
    cur: BaseException | None = exc
    while cur is not None and cur not in seen and len(seen) < 8:
        seen.append(cur)
        cur = cur.__cause__ or cur.__context__
    return seen


def describe_exception(
    exc: BaseException, candidate_path: str, kernel_names: frozenset[str] = frozenset()
) -> ErrorInfo:
    """Find the innermost candidate frame over the exception chain and the most telling message."""
    chain = _chain(exc)
    # The interpreter wraps kernel errors: report the wrapped one.
    main = next((e for e in chain if type(e).__name__ not in _WRAPPERS), exc)
    frame = None
    for e in chain:
        frames = [f for f in traceback.extract_tb(e.__traceback__) if f.filename == candidate_path]
        if frames:
            frame = frames[-1]
            if e is main:
                break
    text = str(main)
    if type(main).__name__ == "CompilationError":
        # "at 3:4:\n<source excerpt>\n<error>": keep the error and the line it names
        lines = [ln for ln in text.splitlines() if ln.strip()]
        text = lines[-1] if lines else text
    info = ErrorInfo(
        type_name=type(main).__name__,
        text=trim(text or repr(main), 300),
        line=frame.lineno if frame else None,
        function=frame.name if frame else None,
        code=(frame.line or "").strip()[:120] if frame else None,
    )
    info.in_kernel = bool(frame and frame.name in kernel_names)
    return info


_FAULT_LINE = re.compile(r'File "(?P<file>[^"]+)", line (?P<line>\d+) in (?P<func>\S+)')


def crash_location(stderr_text: str, candidate_path: str) -> str | None:
    """From faulthandler's dump: "candidate.py:12 in relu_kernel" for the innermost candidate frame."""
    for match in _FAULT_LINE.finditer(stderr_text):
        if match.group("file") == candidate_path:
            # faulthandler prints the innermost frame first
            return f"{CANDIDATE_NAME}:{match.group('line')} in {match.group('func')}"
    return None
