"""Errors a user can cause; the CLI turns each into one line and exit code 2."""

from __future__ import annotations

__all__ = ["UserError"]


class UserError(ValueError):
    """A bad file, setting or environment that the user can fix; the message says how."""
