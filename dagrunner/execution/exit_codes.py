"""The exit codes of the local executor's own processes (forkers and task processes), and how to say them.

A task's own failure never shows here: a task process reports it as a `TryFinished` and exits with `OK`.
These codes say why one of our processes ended without doing its job; the worker puts them in the error
of the try it failed.
"""

from __future__ import annotations

import signal
from enum import IntEnum


class ExitCode(IntEnum):
    OK = 0
    #: The forker's own code raised (its traceback is on the worker's stderr).
    FORKER_FAILED = 1
    #: dagrunner's code in a task process raised, outside the task (EX_SOFTWARE; traceback in the try's log).
    TASK_PROCESS_FAILED = 70
    #: The parent died before this process could be tied to it (EX_TEMPFAIL): nothing was left to serve.
    ORPHANED = 75


_MEANINGS = {
    ExitCode.FORKER_FAILED: "the forker's own code failed",
    ExitCode.TASK_PROCESS_FAILED: "dagrunner's code in the task process failed; see the try's log",
    ExitCode.ORPHANED: "its parent process was gone before it started",
}
#: The codes each kind of process exits with by itself (any other code of a task process is the task's doing).
FORKER_CODES = frozenset({ExitCode.FORKER_FAILED, ExitCode.ORPHANED})
TASK_PROCESS_CODES = frozenset({ExitCode.TASK_PROCESS_FAILED, ExitCode.ORPHANED})


def describe_exit(code: int, ours: frozenset[ExitCode] = frozenset()) -> str:
    """`exited with code 3` / `was killed by SIGSEGV`, for an exit code as Popen gives it (negative: the
    signal); the codes in `ours` (those the process uses itself) say what they mean."""
    if code < 0:
        try:
            return f"was killed by {signal.Signals(-code).name}"
        except ValueError:
            return f"was killed by signal {-code}"
    meaning = next((_MEANINGS[c] for c in ours if c == code), None)
    return f"exited with code {code}" + (f" ({meaning})" if meaning else "")
