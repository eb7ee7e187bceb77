"""Where user code defined something: the first stack frame outside the dagrunner package.

Every authoring error names a `file:line`, and that line must be the user's (`extract >> load` in their DAG
file), never ours. Walking `sys._getframe` is cheap (no source lines are read, unlike `inspect.stack()`),
so we capture a location for every DAG, task and edge as it is defined.
"""

from __future__ import annotations

import os
import sys
from dataclasses import dataclass

_PACKAGE_DIR = os.path.dirname(os.path.dirname(os.path.abspath(__file__))) + os.sep


@dataclass(frozen=True)
class Location:
    """A `file:line` in user code."""

    filename: str
    lineno: int

    def __str__(self) -> str:
        return f"{self.filename}:{self.lineno}"


UNKNOWN = Location("<unknown>", 0)


def is_internal(filename: str) -> bool:
    """True for code inside the dagrunner package (frames we skip when blaming a line)."""
    if not os.path.isabs(filename):
        filename = os.path.abspath(filename)
    return filename.startswith(_PACKAGE_DIR)


def user_location() -> Location:
    """The file:line of the innermost caller that is not dagrunner code."""
    frame = sys._getframe(1)
    while frame is not None:
        filename = frame.f_code.co_filename
        if not is_internal(filename):
            return Location(filename, frame.f_lineno)
        frame = frame.f_back  # type: ignore[assignment]
    return UNKNOWN
