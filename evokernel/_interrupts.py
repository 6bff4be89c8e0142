"""Ctrl-C that reaches the run promptly, whichever thread the operating system hands it to.

A process's SIGINT goes to any of its threads that does not block it. Python runs its handler in the
main thread, but only once that thread executes Python again: an event loop asleep in ``select``, or
a thread waiting on a future, would sleep on until a verification (minutes) ends. These helpers wake
the waiting main thread every ``TICK_S`` so the handler runs within that time.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
from collections.abc import Coroutine
from typing import Any, TypeVar

__all__ = ["run_interruptibly", "wait_result", "TICK_S"]

T = TypeVar("T")

TICK_S = 0.2  # longest a Ctrl-C waits for the main thread to notice it


def run_interruptibly(coro: Coroutine[Any, Any, T]) -> T:
    """``asyncio.run(coro)`` with the event loop woken every TICK_S (Ctrl-C cancels the run, then
    KeyboardInterrupt is raised, as with asyncio.run)."""
    return asyncio.run(_with_ticks(coro))


async def _with_ticks(coro: Coroutine[Any, Any, T]) -> T:
    async def tick() -> None:
        while True:
            await asyncio.sleep(TICK_S)

    ticker = asyncio.ensure_future(tick())
    try:
        return await coro
    finally:
        ticker.cancel()


def wait_result(future: concurrent.futures.Future[T]) -> T:
    """``future.result()``, waking every TICK_S so that a Ctrl-C is raised here promptly."""
    while True:
        try:
            return future.result(timeout=TICK_S)
        except concurrent.futures.TimeoutError:
            continue
