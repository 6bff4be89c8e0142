"""The `evokernel` command line: one sub-command per module in evokernel/commands/."""

from __future__ import annotations

import argparse
import importlib
import logging
import os
import pkgutil
import select
import sys
from collections.abc import Sequence

from evokernel.errors import UserError

__all__ = ["main", "build_parser"]


def _command_modules() -> list:
    """Every module in evokernel/commands, ordered by its ORDER constant (the `--help` order)."""
    import evokernel.commands as pkg

    mods = [importlib.import_module(f"{pkg.__name__}.{m.name}") for m in pkgutil.iter_modules(pkg.__path__)]
    return sorted(mods, key=lambda m: (getattr(m, "ORDER", 100), m.__name__))


def build_parser() -> argparse.ArgumentParser:
    """The full argument parser (sub-command modules only add arguments; they import nothing heavy)."""
    parser = argparse.ArgumentParser(
        prog="evokernel",
        description="Synthesize verified, fast Triton kernels for PyTorch reference programs.",
    )
    parser.add_argument("-v", "--verbose", action="count", default=0, help="more log output (-vv for debug)")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for module in _command_modules():
        module.register(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the CLI; user errors print one line and return exit code 2, Ctrl-C returns 130, and a closed
    stdout (the reader went away) returns 141 quietly."""
    parser = build_parser()
    args = parser.parse_args(argv)
    level = logging.WARNING - 10 * min(args.verbose, 2)
    logging.basicConfig(level=level, format="%(levelname)s %(name)s: %(message)s")
    try:
        code = int(args.run(args) or 0)
        sys.stdout.flush()  # inside the try: a reader that went away is seen here, not at interpreter exit
        return code
    except BrokenPipeError:
        if not _stdout_broken():  # another pipe (a worker's) broke: a real error, not `| head`
            raise
        return _stdout_closed()
    except UserError as exc:
        print(f"evokernel: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("evokernel: interrupted", file=sys.stderr)
        return 130


def _stdout_broken() -> bool:
    """Whether stdout is a pipe whose reader has gone away (polling it for writing reports an error)."""
    try:
        fd = sys.stdout.fileno()
    except (AttributeError, ValueError, OSError):  # replaced or closed stdout (tests, embedding)
        return False
    poller = select.poll()
    poller.register(fd, select.POLLOUT)
    return any(events & select.POLLERR for _, events in poller.poll(0))


def _stdout_closed() -> int:
    """The reader of stdout went away (``evokernel memory stats | head -1``): exit quietly with 141
    (128 + SIGPIPE, as a shell reports a writer killed by SIGPIPE), discarding what is still buffered."""
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, sys.stdout.fileno())  # Python's final flush of stdout must not fail again
    os.close(devnull)
    return 141


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
