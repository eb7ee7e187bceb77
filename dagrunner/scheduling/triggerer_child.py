"""`dagrunner scheduler` runs `dagrunner triggerer` as a child process (setting `triggerer_in_scheduler`).

So DAG-file code that asset watchers need is never imported into the scheduler, and the scheduler's loop
knows nothing of brokers. The child reports over a pipe when a message created runs; each report calls
`on_runs_created` (the scheduler's `nudge()`), so those runs start at once. A child that dies is started
again after a capped exponential backoff; `stop()` ends it with SIGTERM (SIGKILL after a grace period).
"""

from __future__ import annotations

import contextlib
import logging
import os
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Mapping

from dagrunner.subprocesses import stop_child

log = logging.getLogger(__name__)
#: One byte per report: "runs were created, look now".
RUNS_CREATED = b"r"


class TriggererChild:
    def __init__(
        self,
        env: Mapping[str, str],
        on_runs_created: Callable[[], None],
        *,
        first_backoff_s: float = 1.0,
        max_backoff_s: float = 30.0,
    ) -> None:
        """`env`: the child's environment (DAGRUNNER_* settings of the scheduler, so both agree)."""
        self.env = dict(env)
        self.on_runs_created = on_runs_created
        self.first_backoff_s = first_backoff_s
        self.max_backoff_s = max_backoff_s
        self.process: subprocess.Popen[bytes] | None = None
        self.starts = 0
        self._stopping = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        self._thread = threading.Thread(target=self._supervise, name="triggerer-supervisor", daemon=True)
        self._thread.start()

    def _supervise(self) -> None:
        failures = 0
        while not self._stopping.is_set():
            code = self._run_once()
            if self._stopping.is_set():
                return
            failures += 1
            delay = min(self.max_backoff_s, self.first_backoff_s * 2 ** (failures - 1))
            log.warning("the triggerer child exited (code %s); starting it again in %gs", code, delay)
            self._stopping.wait(delay)

    def _run_once(self) -> int | None:
        read_fd, write_fd = os.pipe()
        try:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "dagrunner", "triggerer", "--report-fd", str(write_fd),
                 "--parent-pid", str(os.getpid())],
                env=self.env, pass_fds=(write_fd,), stdin=subprocess.DEVNULL,
            )  # fmt: skip
            self.starts += 1
            if self._stopping.is_set():  # stop() came while we were starting it
                self.process.terminate()
        except OSError as exc:
            log.warning("could not start the triggerer child: %s", exc)
            os.close(read_fd)
            return None
        finally:
            os.close(write_fd)  # only the child holds it now: its exit ends our reads
        with os.fdopen(read_fd, "rb", buffering=0) as reports:
            while chunk := reports.read(4096):
                if RUNS_CREATED in chunk:
                    self.on_runs_created()
        return self.process.wait()

    def stop(self, timeout_s: float = 15.0) -> None:
        self._stopping.set()
        stop_child(self.process, timeout_s)
        if self._thread is not None:
            self._thread.join(5.0)


def stop_when_orphaned(on_orphaned: Callable[[], None], *, parent: int, every_s: float = 0.5) -> threading.Thread:
    """The child's side of the life line: when the scheduler that started it (pid `parent`, passed by it:
    it may have died before this process got this far) dies, kill -9 included, the child is re-parented,
    and `on_orphaned` stops it, so no triggerer outlives its scheduler (the next scheduler starts its own).
    Polls the parent pid from a daemon thread."""

    def watch() -> None:
        while os.getppid() == parent:
            time.sleep(every_s)
        log.warning("the scheduler that started this triggerer (pid %s) is gone: stopping", parent)
        on_orphaned()

    thread = threading.Thread(target=watch, name="triggerer-life-line", daemon=True)
    thread.start()
    return thread


def report_runs_created(fd: int) -> Callable[[tuple[tuple[str, str], ...]], None]:
    """The triggerer's side of the pipe: one byte per message that created runs."""

    def report(_runs: tuple[tuple[str, str], ...]) -> None:
        with contextlib.suppress(OSError):  # the scheduler went away: it will find the runs itself
            os.write(fd, RUNS_CREATED)

    return report
