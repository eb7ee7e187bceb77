"""One `dagrunner scheduler` per SQLite database: a second is refused at start, naming the one running.

Why: SQLite serializes every writer, so a second daemon adds no throughput, only lock waits, and two
daemons would each take over what they think the other left behind. PostgreSQL allows several
schedulers (runs are locked per tick, queueing under an advisory lock). `backfill` and `dags test` are
not daemons: they run their own runs with private schedulers and may run beside this one.

The lock is a POSIX record lock (`fcntl.lockf`) on `<database file>.scheduler.lock`, so the kernel
releases it when the process ends, however it ends (kill -9 included): nothing stale to clean up, unlike
a PID file. Not `flock`: an flock is shared with every child forked while it is held, and the local
executor's workers, forked by the scheduler, outlive a killed scheduler on purpose; a record lock belongs
to the process alone. The file's content (pid, host, start time) only serves the refusal message.
"""

from __future__ import annotations

import fcntl
import os
import socket
from datetime import datetime
from pathlib import Path

from sqlalchemy import make_url

from dagrunner.errors import SchedulerAlreadyRunningError

LOCK_SUFFIX = ".scheduler.lock"


def sqlite_lock_path(db_url: str) -> Path | None:
    """The lock file for a SQLite database file; None for other databases and in-memory SQLite."""
    url = make_url(db_url)
    if url.get_backend_name() != "sqlite" or not url.database or url.database == ":memory:":
        return None
    return Path(url.database).expanduser().resolve().with_name(Path(url.database).name + LOCK_SUFFIX)


class SchedulerLock:
    """Held by the running scheduler for its whole life; `acquire` refuses when another process holds it."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._fd: int | None = None

    def acquire(self, now: datetime) -> None:
        """Take the lock and record who holds it, or raise SchedulerAlreadyRunningError naming the holder."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.lockf(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            holder = os.read(fd, 1024).decode(errors="replace").strip() or "an unknown process"
            os.close(fd)
            raise SchedulerAlreadyRunningError(
                f"another scheduler already runs on this SQLite database: {holder} (lock {self.path}). "
                "Only one `dagrunner scheduler` may run on a SQLite file; stop that one first, or use "
                "PostgreSQL for several schedulers (`backfill` and `dags test` may run beside it)"
            ) from None
        os.ftruncate(fd, 0)
        os.write(fd, f"pid {os.getpid()} on host {socket.gethostname()}, since {now.isoformat()}\n".encode())
        self._fd = fd

    def release(self) -> None:
        """Give the lock up (a process that ends without calling this gives it up all the same)."""
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None
