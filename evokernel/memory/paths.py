"""Where a memory lives when the caller names no path."""

from __future__ import annotations

import os
from pathlib import Path

__all__ = ["ENV_VAR", "default_memory_path"]

ENV_VAR = "EVOKERNEL_MEMORY"


def default_memory_path() -> Path:
    """``$EVOKERNEL_MEMORY`` if set, else ``memory.sqlite`` in the user's data dir (platformdirs)."""
    env = os.environ.get(ENV_VAR)
    if env:
        return Path(env).expanduser()
    import platformdirs

    return Path(platformdirs.user_data_dir("evokernel", appauthor=False)) / "memory.sqlite"
