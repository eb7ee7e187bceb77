"""Where each try's log lives, and reading it back.

One file per try: `{logs}/dag_id=X/run_id=Y/task_id=Z/[map_index=M/]attempt=N.log` (Airflow's layout), so
`(task instance, try_number)` names a log forever. Run ids come from outside (the CLI, later an API), so
the path is resolved and refused when it would leave the log root (DESIGN section 8).
"""

from __future__ import annotations

import array
import contextlib
import fcntl
import logging
import os
import select
import sys
import termios
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TextIO

from dagrunner.errors import ExecutionError, NotFoundError
from dagrunner.execution.base import TaskKey
from dagrunner.execution.masking import MaskedStream, SecretMasker

#: How log lines written through Python's logging look in a try's log.
LOG_FORMAT = "[%(asctime)s] %(levelname)s %(name)s: %(message)s"


def log_path(logs_folder: Path | str, key: TaskKey, try_number: int) -> Path:
    """The log file of try `try_number` of `key` (not created here); ExecutionError if it escapes the root."""
    root = Path(logs_folder).resolve()
    parts = [f"dag_id={key.dag_id}", f"run_id={key.run_id}", f"task_id={key.task_id}"]
    if key.map_index >= 0:
        parts.append(f"map_index={key.map_index}")
    parts.append(f"attempt={int(try_number)}.log")
    for part in parts:
        if "/" in part or "\\" in part or "\0" in part:
            raise ExecutionError(
                f"log path component {part!r} of {key.label()} contains a path separator; "
                "dag, run and task ids must not contain '/', '\\' or NUL"
            )
    path = root.joinpath(*parts).resolve()
    if not path.is_relative_to(root):
        raise ExecutionError(
            f"log path {path} of {key.label()} try {try_number} leaves the log root {root}; refusing it"
        )
    return path


def open_log(path: Path) -> int:
    """An O_APPEND file descriptor on `path` (folders created); the caller closes it."""
    path.parent.mkdir(parents=True, exist_ok=True)
    return os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)


def read_log(logs_folder: Path | str, key: TaskKey, try_number: int, *, tail_bytes: int | None = None) -> str:
    """The text of a try's log (undecodable bytes replaced); the last `tail_bytes` only when given.

    NotFoundError names the path when the try wrote no log (it never started, or ran on another host).
    """
    path = log_path(logs_folder, key, try_number)
    try:
        with path.open("rb") as handle:
            if tail_bytes is not None:
                size = handle.seek(0, os.SEEK_END)
                handle.seek(max(0, size - tail_bytes))
            data = handle.read()
    except FileNotFoundError:
        raise NotFoundError(
            f"no log for try {try_number} of {key.label()} at {path}; the try may not have started yet, "
            "or it ran on another machine"
        ) from None
    return data.decode("utf-8", errors="replace")


def write_line(fd: int, text: str) -> None:
    """Append one line of ours (a header, the recorded outcome) to an open log."""
    os.write(fd, (text.rstrip("\n") + "\n").encode("utf-8", errors="backslashreplace"))


def point_output_at(fd: int, masker: SecretMasker | None = None) -> Callable[[], None]:
    """Send fd 1 and 2, `sys.stdout` / `sys.stderr` and the root logger (at INFO) into the log `fd`.

    Python's output (print, logging, tracebacks) goes through one line-buffered, masked stream straight
    to the log, so a crash loses at most a partial line. With a `masker`, fds 1 and 2 become a `LogPump`
    that masks what subprocesses and `os.write` send there; without one (nothing to mask) they point at
    `fd` itself. Returns a function that drains the output, undoes all of it and stops the pump.
    """
    return OutputRedirect(masker).attach(fd)


class LogPump:
    """A pipe whose read end a thread copies into a log descriptor, masking secrets on the way: what the
    try's fds 1 and 2 are, so `os.write(1, ...)` and a subprocess writing to its inherited descriptor are
    masked too (docs/security.md); Python's own output goes straight to the log (`_LogStream`).

    The thread masks whole lines, so a read never cuts a secret in two; a partial line waits for its end,
    for `drain`, or for `_QUIET_S` without output (a prompt or a progress bar still shows up). `drain()`
    returns once everything written before it is in the log: the try's end is reported only after that.
    What a process killed outright leaves in the pipe (its last raw writes, milliseconds' worth) is lost
    with it. The descriptor the thread writes to points at /dev/null until `point_at`.
    """

    _QUIET_S = 0.2
    _MAX_PARTIAL = 1 << 16

    def __init__(self, masker: SecretMasker) -> None:
        self._masker = masker
        self.read_fd, self.write_fd = os.pipe()
        self._target = os.open(os.devnull, os.O_WRONLY | os.O_CLOEXEC)
        self._token = b"\0dagrunner-log-" + os.urandom(8).hex().encode() + b":"
        self._drained = threading.Event()
        self._lock = threading.Lock()
        #: The thread has output in hand that is not in the log yet (read, or a partial line held).
        self._holding = False
        self._thread = threading.Thread(target=self._copy, name="dagrunner-log-pump", daemon=True)
        self._thread.start()

    def point_at(self, fd: int) -> None:
        """Write into `fd` (the caller may close its copy) from now on."""
        os.dup2(fd, self._target, inheritable=False)

    def busy(self) -> bool:
        """Whether output written to the pipe is not in the log yet (cheap: no round trip)."""
        if self._holding:
            return True
        waiting = array.array("i", [0])
        with contextlib.suppress(OSError):
            fcntl.ioctl(self.read_fd, termios.FIONREAD, waiting)
        return waiting[0] > 0

    def drain(self, timeout_s: float = 10.0) -> bool:
        """Wait until what was written to the pipe so far is in the log (False: the thread did not answer)."""
        return self._mark(b"D", timeout_s)

    def close(self, timeout_s: float = 10.0) -> None:
        """Copy what is left, stop the thread and close the pipe and the log descriptor."""
        if self._mark(b"S", timeout_s):
            self._thread.join(timeout_s)
        for fd in (self.write_fd, self.read_fd, self._target):
            with contextlib.suppress(OSError):
                os.close(fd)

    def _mark(self, kind: bytes, timeout_s: float) -> bool:
        """Put a drain (D) or stop (S) mark in the pipe and wait until the thread has copied up to it."""
        with self._lock:
            if not self._thread.is_alive():
                return False
            self._drained.clear()
            try:
                os.write(self.write_fd, self._token + kind + b"\0")  # one write under PIPE_BUF: atomic
            except OSError:
                return False
            return self._drained.wait(timeout_s)

    def _copy(self) -> None:
        try:
            self._copy_until_stopped()
        finally:
            self._drained.set()  # nobody waits for a thread that is gone

    def _copy_until_stopped(self) -> None:
        pending = b""
        while True:
            readable, _, _ = select.select([self.read_fd], [], [], self._QUIET_S if pending else None)
            if not readable:
                self._write(pending)
                pending = b""
                self._holding = False
                continue
            self._holding = True
            try:
                data = os.read(self.read_fd, 1 << 16)
            except OSError:
                data = b""
            if not data:
                self._write(pending)
                return
            pending, stop = self._consume(pending + data)
            self._holding = bool(pending)
            if stop:
                return

    def _consume(self, buffer: bytes) -> tuple[bytes, bool]:
        """Write the complete lines and marks in `buffer`; (what is left, whether a stop mark came)."""
        size = len(self._token) + 2
        while (at := buffer.find(self._token)) >= 0 and at + size <= len(buffer):
            self._write(buffer[:at])
            kind, buffer = buffer[at + size - 2 : at + size - 1], buffer[at + size :]
            if kind == b"S":
                self._write(buffer)
                self._drained.set()
                return b"", True
            self._drained.set()
        cut = buffer.rfind(b"\n") + 1
        if cut:
            self._write(buffer[:cut])
            buffer = buffer[cut:]
        if len(buffer) > self._MAX_PARTIAL:  # a huge line without an end: keep only what may be a mark
            self._write(buffer[:-size])
            buffer = buffer[-size:]
        return buffer, False

    def _write(self, data: bytes) -> None:
        view = memoryview(self._masker.mask_bytes(data))
        while view:
            try:
                written = os.write(self._target, view)
            except OSError:
                return  # the log cannot take it (disk full): keep draining the pipe so writers never block
            view = view[written:]


class _LogStream(MaskedStream):
    """What `sys.stdout` / `sys.stderr` are during a try: masked text written to the log file directly
    (so it survives even an `os._exit` right after it), but only once what the pump still holds has been
    copied, so a child's output and the prints around it stay in order."""

    def __init__(self, stream: TextIO, masker: SecretMasker, pump: LogPump | None) -> None:
        super().__init__(stream, masker)
        self._pump = pump

    def write(self, text: str) -> int:
        if self._pump is not None and self._pump.busy():
            self._pump.drain()
        return super().write(text)


class OutputRedirect:
    """`point_output_at` in two steps, for a process that gets ready before it knows its log.

    Building the stream, the logging handler and the pump is most of the work; it is done here, writing
    to /dev/null until `attach(fd)` points it, and fds 1 and 2, at the log."""

    def __init__(self, masker: SecretMasker | None = None) -> None:
        self._pump = LogPump(masker) if masker is not None else None
        self._slot = os.open(os.devnull, os.O_WRONLY)  # the stream's own descriptor (closed with it)
        text = open(self._slot, "w", buffering=1, encoding="utf-8", errors="backslashreplace")  # noqa: SIM115
        self._text = text
        self.stream = _LogStream(text, masker or SecretMasker(), self._pump)
        self._handler = logging.StreamHandler(self.stream)  # type: ignore[arg-type]
        self._handler.setFormatter(logging.Formatter(LOG_FORMAT))

    def attach(self, fd: int) -> Callable[[], None]:
        """Point the stream, fds 1 and 2, sys.stdout/stderr and the root logger at `fd` (which the caller
        may close afterwards); returns a function that undoes it and closes the stream."""
        detach = self._attach(fd)

        def restore() -> None:
            detach()
            with contextlib.suppress(Exception):
                self._text.close()
            if self._pump is not None:
                self._pump.close()

        return restore

    def drain(self) -> None:
        """Return once everything written so far (by this process and its children) is in the log.

        The round trip through the pump (a mark in the pipe, a thread hand-off) is made only when the pump
        has output that is not in the log yet: a try that wrote nothing to fds 1/2 pays nothing for it."""
        with contextlib.suppress(Exception):
            self._text.flush()
        if self._pump is not None and self._pump.busy():
            self._pump.drain()

    def _attach(self, fd: int) -> Callable[[], None]:
        for stream in (sys.stdout, sys.stderr):
            with contextlib.suppress(Exception):
                stream.flush()
        saved = (os.dup(1), os.dup(2))
        old_streams = (sys.stdout, sys.stderr)
        os.dup2(fd, self._slot)
        source = fd
        if self._pump is not None:
            self._pump.point_at(fd)
            source = self._pump.write_fd
        os.dup2(source, 1)
        os.dup2(source, 2)
        sys.stdout = sys.stderr = self.stream  # type: ignore[assignment]
        root = logging.getLogger()
        old_level = root.level
        root.addHandler(self._handler)
        root.setLevel(logging.INFO)

        def detach() -> None:
            root.removeHandler(self._handler)
            root.setLevel(old_level)
            self.drain()
            sys.stdout, sys.stderr = old_streams
            os.dup2(saved[0], 1)
            os.dup2(saved[1], 2)
            for copy in saved:
                os.close(copy)

        return detach


@contextlib.contextmanager
def output_to(fd: int, masker: SecretMasker | None = None) -> Iterator[None]:
    """`point_output_at` for the duration of a block."""
    restore = point_output_at(fd, masker)
    try:
        yield
    finally:
        restore()


@contextlib.contextmanager
def output_discarded() -> Iterator[None]:
    """Send what the block prints to /dev/null (a DAG file's top-level prints while it is imported)."""
    devnull = os.open(os.devnull, os.O_WRONLY)
    try:
        with output_to(devnull):
            yield
    finally:
        os.close(devnull)
