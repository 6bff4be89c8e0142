"""Reading files from a candidate's job directory in the parent, where the candidate could write them.

A file there may be a symbolic link (to a secret the parent can read), a FIFO (an open that never
returns, stalling the supervisor) or huge. Only a regular file is read, opened without following links
and without blocking, and only up to a size limit.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path

__all__ = ["read_job_file", "read_job_text", "OUTPUTS_DIGEST"]

OUTPUTS_DIGEST = "outputs_sha256"  # the worker record's field holding the digest of outputs.pt


def read_job_file(path: str | os.PathLike[str], limit: int) -> bytes | None:
    """The bytes of a regular file at ``path`` (not followed if a link), or None when it is missing, is
    something else, or holds more than ``limit`` bytes."""
    try:
        fd = os.open(Path(path), os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_NOFOLLOW", 0)
                     | getattr(os, "O_CLOEXEC", 0))
    except OSError:
        return None
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode) or info.st_size > limit:
            return None
        chunks: list[bytes] = []
        total = 0
        while total <= limit:
            chunk = os.read(fd, min(1 << 20, limit + 1 - total))
            if not chunk:
                break
            chunks.append(chunk)
            total += len(chunk)
        return None if total > limit else b"".join(chunks)
    except OSError:
        return None
    finally:
        os.close(fd)


def read_job_text(path: str | os.PathLike[str], limit: int = 200_000) -> str:
    """Text of a job file ("" when :func:`read_job_file` gives None)."""
    data = read_job_file(path, limit)
    return data.decode("utf-8", "replace") if data is not None else ""
