"""A temporary dagrunner project (DAGRUNNER_HOME) and the real `dagrunner` CLI and scheduler run inside it.

Every subprocess has a bounded timeout. A scheduler's output goes to a file (a pipe nobody reads
would fill up and stall it); its tail is quoted when something goes wrong.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from benchmarks.databases import fresh_database
from benchmarks.errors import BenchTimeout, CommandFailed
from benchmarks.procfs import descendants

CLI_TIMEOUT_S = 300.0
STOP_TIMEOUT_S = 60.0


class Project:
    def __init__(self, root: Path, db_url: str) -> None:
        self.root = root
        self.db_url = db_url
        self.dags = root / "dags"
        self.dags.mkdir(parents=True, exist_ok=True)
        self.env = {k: v for k, v in os.environ.items() if not k.startswith("DAGRUNNER_")}
        self.env.update(DAGRUNNER_HOME=str(root), DAGRUNNER_DB_URL=db_url)
        self._logs = 0

    def write_dag(self, name: str, source: str) -> Path:
        """Write a DAG file atomically (as editors do), so a scheduler never reads half of it."""
        path = self.dags / name
        tmp = path.with_suffix(".tmp")
        tmp.write_text(source)
        os.replace(tmp, path)
        return path

    def cli(self, *args: str, timeout: float = CLI_TIMEOUT_S) -> subprocess.CompletedProcess[str]:
        """Run `python -m dagrunner ARGS` to its end; CommandFailed when it exits non-zero."""
        try:
            proc = subprocess.run(
                [sys.executable, "-m", "dagrunner", *args],
                cwd=self.root, env=self.env, capture_output=True, text=True, timeout=timeout,
            )  # fmt: skip
        except subprocess.TimeoutExpired as exc:
            raise BenchTimeout(f"`dagrunner {' '.join(args)}` did not finish within {timeout:g}s") from exc
        if proc.returncode != 0:
            raise CommandFailed(
                f"`dagrunner {' '.join(args)}` exited {proc.returncode}:\n{_tail(proc.stdout + proc.stderr)}"
            )
        return proc

    def start_scheduler(self, *args: str) -> SchedulerProcess:
        self._logs += 1
        log = self.root / f"scheduler-{self._logs}.log"
        return SchedulerProcess(self, log, args)


class SchedulerProcess:
    """`dagrunner scheduler ARGS` running in the background."""

    def __init__(self, project: Project, log: Path, args: tuple[str, ...]) -> None:
        self.log = log
        self.args = args
        with log.open("w") as out:
            self.popen = subprocess.Popen(
                [sys.executable, "-m", "dagrunner", "scheduler", *args],
                cwd=project.root, env=project.env, stdout=out, stderr=subprocess.STDOUT,
            )  # fmt: skip
        self.started = time.monotonic()

    @property
    def pid(self) -> int:
        return self.popen.pid

    def alive(self) -> bool:
        return self.popen.poll() is None

    def check_alive(self) -> None:
        if not self.alive():
            raise CommandFailed(f"the scheduler exited early with code {self.popen.returncode}:\n{self.tail()}")

    def tail(self) -> str:
        return _tail(self.log.read_text(errors="replace")) if self.log.exists() else ""

    def wait(self, timeout: float) -> int:
        """Wait for it to exit on its own (--num-runs); BenchTimeout if it does not."""
        try:
            return self.popen.wait(timeout=timeout)
        except subprocess.TimeoutExpired as exc:
            raise BenchTimeout(f"the scheduler did not exit within {timeout:g}s:\n{self.tail()}") from exc

    def stop(self, timeout: float = STOP_TIMEOUT_S) -> int:
        """SIGTERM (a graceful stop) and wait; SIGKILL only if it does not exit in time."""
        if self.alive():
            self.popen.send_signal(signal.SIGTERM)
        try:
            return self.popen.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.popen.kill()
            self.popen.wait(timeout=10)
            raise BenchTimeout(
                f"the scheduler ignored SIGTERM for {timeout:g}s and was killed:\n{self.tail()}"
            ) from None

    def kill(self) -> None:
        """Last resort when a repetition is abandoned: never leave a scheduler (or its workers) behind."""
        if not self.alive():
            return
        children = descendants(self.pid)
        self.popen.kill()
        self.popen.wait(timeout=10)
        for pid in children:  # processes this scheduler started, by pid
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)


class WorkerProcess:
    """`dagrunner worker` (the celery executor's) running in the background, in a process group of its own."""

    def __init__(self, project: Project, index: int, concurrency: int) -> None:
        self.log = project.root / f"worker-{index}.log"
        with self.log.open("w") as out:
            self.popen = subprocess.Popen(
                [sys.executable, "-m", "dagrunner", "worker", "--concurrency", str(concurrency),
                 "--hostname", f"bench{index}@%h"],
                cwd=project.root, env=project.env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True,
            )  # fmt: skip

    def kill(self) -> None:
        """SIGTERM (tries in hand finish), then SIGKILL to its whole group (forkserver, warm workers)."""
        if self.popen.poll() is None:
            self.popen.send_signal(signal.SIGTERM)
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.popen.wait(timeout=10)
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.popen.pid, signal.SIGKILL)
        self.popen.wait(timeout=10)


@contextmanager
def project_with_db(db_kind: str, keep_on_error: bool = True) -> Iterator[Project]:
    """A fresh project folder with a fresh, empty database; both removed afterwards.

    On an error the folder is kept (its path is in the message) so the logs can be read.
    """
    root = Path(tempfile.mkdtemp(prefix="dagrunner-bench-"))
    failed = False
    try:
        with fresh_database(db_kind, root) as url:
            yield Project(root, url)
    except BaseException as exc:
        failed = True
        if keep_on_error:
            exc.add_note(f"project folder kept for inspection: {root}")
        raise
    finally:
        if not (failed and keep_on_error):
            shutil.rmtree(root, ignore_errors=True)


def _tail(text: str, lines: int = 25) -> str:
    return "\n".join(text.strip().splitlines()[-lines:])
