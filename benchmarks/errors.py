"""Why a benchmark repetition failed. Each one fails the suite loudly (exit code 1)."""

from __future__ import annotations


class BenchmarkError(Exception):
    """A repetition could not produce trustworthy figures."""


class CorrectnessError(BenchmarkError):
    """The work finished, but not as it must: a run failed, a task was retried, a try is missing."""


class BenchTimeout(BenchmarkError):
    """Something did not happen within its bound."""


class CommandFailed(BenchmarkError):
    """A dagrunner command exited non-zero."""
