"""Parsing in several threads at once never fails (CPython 3.11's AST constructor is not thread-safe)."""

from __future__ import annotations

import threading
from pathlib import Path

import evokernel
from evokernel._ast import parse

SOURCE = (Path(evokernel.__file__).parent / "verify" / "static_gate.py").read_text()


class _Cycle:
    """Garbage with a finalizer: the collector runs Python code, and may switch threads, mid-parse."""

    def __del__(self) -> None:
        sum(range(50))


def test_concurrent_parses_while_the_collector_runs_finalizers() -> None:
    # With a bare ast.parse this fails on 3.11.7 ("AST constructor recursion depth mismatch") in about
    # half a second; through evokernel._ast.parse it must not.
    errors: list[BaseException] = []

    def churn() -> None:
        for _ in range(30000):
            a, b = _Cycle(), _Cycle()
            a.other, b.other = b, a

    def work() -> None:
        for _ in range(15):
            try:
                assert parse(SOURCE, "static_gate.py").body
            except SystemError as exc:
                errors.append(exc)

    threads = [threading.Thread(target=churn)] + [threading.Thread(target=work) for _ in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors, errors[0]
