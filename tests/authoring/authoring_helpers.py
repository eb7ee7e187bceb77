"""Helpers for authoring tests (imported by name, like persistence's db_factories)."""

from __future__ import annotations

import sys


def next_line() -> int:
    """The line after the caller's: `where = next_line()` just above the statement under test."""
    return sys._getframe(1).f_lineno + 1
