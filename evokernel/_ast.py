"""``ast.parse`` behind one process-wide lock.

CPython 3.11 keeps the AST constructor's recursion depth in interpreter-wide state, so two threads
parsing at once fail with "SystemError: AST constructor recursion depth mismatch" whenever a thread
switch lands inside the constructor (the garbage collector running a ``__del__`` is enough; cpython
gh-106905). The agent parses in several threads at once (proposers, the verifier's static gate, the
embedder), so every parse in this package goes through :func:`parse`.
"""

from __future__ import annotations

import ast
import threading

__all__ = ["parse", "parse_expression"]

_LOCK = threading.Lock()


def parse(source: str, filename: str = "<unknown>") -> ast.Module:
    """``ast.parse(source, filename)``, one thread at a time."""
    with _LOCK:
        return ast.parse(source, filename=filename)


def parse_expression(source: str) -> ast.expr:
    """The expression ``source`` (``ast.parse(source, mode="eval").body``), one thread at a time."""
    with _LOCK:
        return ast.parse(source, mode="eval").body
