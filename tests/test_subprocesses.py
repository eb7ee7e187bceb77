"""Starting helper processes survives a forkserver that dies while it forks for us."""

from __future__ import annotations

import pytest

from dagrunner import subprocesses


class _StartsAfter:
    """A process whose start fails the way a dying forkserver makes it fail, `failures` times."""

    def __init__(self, failures: int, error: type[BaseException] = EOFError) -> None:
        self.failures = failures
        self.error = error
        self.starts = 0
        self._popen = None

    def start(self) -> None:
        self.starts += 1
        if self.starts <= self.failures:
            raise self.error("unexpected EOF")
        self._popen = object()


@pytest.mark.parametrize("error", [EOFError, ConnectionResetError, BrokenPipeError])
def test_a_start_broken_by_the_forkserver_is_tried_again(error: type[BaseException]) -> None:
    process = _StartsAfter(failures=subprocesses.START_ATTEMPTS - 1, error=error)
    subprocesses.start_process(process)  # type: ignore[arg-type]
    assert process.starts == subprocesses.START_ATTEMPTS and process._popen is not None


def test_a_forkserver_that_keeps_failing_is_reported() -> None:
    process = _StartsAfter(failures=subprocesses.START_ATTEMPTS)
    with pytest.raises(EOFError):
        subprocesses.start_process(process)  # type: ignore[arg-type]
    assert process.starts == subprocesses.START_ATTEMPTS


def test_a_real_process_starts_again_after_its_forkserver_was_killed() -> None:
    """The real thing, end to end: kill the forkserver, then start another process from the same context."""
    import os
    import signal
    from multiprocessing import forkserver

    ctx = subprocesses.preloaded_context()
    first = ctx.Process(target=int)
    subprocesses.start_process(first)
    first.join(10)
    pid = forkserver._forkserver._forkserver_pid  # type: ignore[attr-defined]
    if pid is None:
        pytest.fail("this platform has no forkserver")
    os.kill(pid, signal.SIGKILL)
    second = ctx.Process(target=int)
    subprocesses.start_process(second)
    second.join(10)
    assert second.exitcode == 0
