"""A try's log in pieces, for a page that tails it: read from a byte offset, say where to go on from.

The file is named only by the try's ids as the database has them (`logs.log_path`), never by a path from
the request: the ids come from the try row the request matched, and `log_path` refuses a path that would
leave the logs folder once resolved (so a symlink planted in the folder that leads out is refused too).
The file is then opened with O_NOFOLLOW, so a symlink swapped in after that check is not followed either.
A try that ran on a Celery worker on another host is read from that worker's log server, as
`dagrunner tasks logs` does.
"""

from __future__ import annotations

import errno
import os
import socket
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from dagrunner.errors import NotFoundError
from dagrunner.execution.base import TaskKey
from dagrunner.execution.logs import log_path
from dagrunner.persistence.views import TryView
from dagrunner.states import TryState

#: The most bytes one request returns; the page asks again from the returned offset for the rest.
MAX_CHUNK = 1024 * 1024
#: How long to wait for a remote worker's log server.
REMOTE_TIMEOUT_S = 5.0


@dataclass(frozen=True)
class LogChunk:
    try_number: int
    content: str
    #: Where the next read starts (bytes into the file).
    offset: int
    #: The try has ended and every byte of its log has been returned.
    finished: bool

    def to_json(self) -> dict[str, Any]:
        return {"try_number": self.try_number, "content": self.content, "offset": self.offset,
                "finished": self.finished}  # fmt: skip


def read_chunk(logs_folder: Path, key: TaskKey, attempt: TryView, offset: int, *, log_server_port: int) -> LogChunk:
    """The log of `attempt` from byte `offset` (at most MAX_CHUNK bytes, never ending inside a character)."""
    ended = attempt.state != TryState.RUNNING.value
    path = log_path(logs_folder, key, attempt.try_number)
    try:
        data, size = _read_local(path, offset)
    except FileNotFoundError:
        if attempt.hostname and attempt.hostname != socket.gethostname():
            data, size = _read_remote(key, attempt, offset, log_server_port)
        elif ended:
            raise NotFoundError(
                f"try {attempt.try_number} of {key.label()} wrote no log (it ended before it started, or its "
                "log was deleted)"
            ) from None
        else:
            return LogChunk(attempt.try_number, "", offset, False)  # queued: no log yet
    start = min(offset, size)
    end = start + len(data)
    if end < size or not ended:
        cut = _complete_utf8(data)  # leave a character split by the chunk (or by a writer) for the next read
        end -= len(data) - cut
        data = data[:cut]
    return LogChunk(attempt.try_number, data.decode("utf-8", errors="replace"), end, ended and end >= size)


def _read_local(path: Path, offset: int) -> tuple[bytes, int]:
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW)
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            raise NotFoundError(f"the log at {path} is a symbolic link; it is not followed") from None
        raise
    with os.fdopen(fd, "rb") as handle:
        size = os.fstat(handle.fileno()).st_size
        handle.seek(min(offset, size))
        return handle.read(MAX_CHUNK), size


def _read_remote(key: TaskKey, attempt: TryView, offset: int, port: int) -> tuple[bytes, int]:
    from dagrunner.execution.celery.logserver import fetch_log

    assert attempt.hostname is not None
    whole = fetch_log(attempt.hostname, port, key, attempt.try_number, timeout_s=REMOTE_TIMEOUT_S).encode("utf-8")
    start = min(offset, len(whole))
    return whole[start : start + MAX_CHUNK], len(whole)


def _complete_utf8(data: bytes) -> int:
    """The length of `data` without a trailing, incomplete UTF-8 sequence."""
    for back in range(1, min(4, len(data)) + 1):
        byte = data[-back]
        if byte & 0xC0 != 0x80:  # the lead byte of the last sequence (or ASCII)
            need = 1 if byte < 0x80 else 2 if byte >= 0xC0 and byte < 0xE0 else 3 if byte < 0xF0 else 4
            return len(data) if need <= back else len(data) - back
    return len(data)
