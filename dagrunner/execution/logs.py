"""Where each try's log lives, and reading it back.

One file per try: `{logs}/dag_id=X/run_id=Y/task_id=Z/[map_index=M/]attempt=N.log` (Airflow's layout), so
`(task instance, try_number)` names a log forever. Run ids come from outside (the CLI, later an API), so
the path is resolved and refused when it would leave the log root (DESIGN section 8).
"""

from __future__ import annotations

import contextlib
import logging
import os
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

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

    What Python code writes goes through one line-buffered, masked stream (so a crash loses at most a
    partial line, and print and traceback stay in order); subprocesses inherit fds 1 and 2 and write to
    the file directly, so no pipe can fill up and block them. Returns a function that undoes all of it.
    """
    return OutputRedirect(masker).attach(fd)


class OutputRedirect:
    """`point_output_at` in two steps, for a process that gets ready before it knows its log.

    Building the stream and the logging handler is most of the work; it is done here, on a descriptor
    that points at /dev/null until `attach(fd)` points it, and fds 1 and 2, at the log."""

    def __init__(self, masker: SecretMasker | None = None) -> None:
        self._slot = os.open(os.devnull, os.O_WRONLY)  # the stream's own descriptor (closed with it)
        text = open(self._slot, "w", buffering=1, encoding="utf-8", errors="backslashreplace")  # noqa: SIM115
        self._text = text
        self.stream = MaskedStream(text, masker or SecretMasker())
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

        return restore

    def _attach(self, fd: int) -> Callable[[], None]:
        for stream in (sys.stdout, sys.stderr):
            with contextlib.suppress(Exception):
                stream.flush()
        saved = (os.dup(1), os.dup(2))
        old_streams = (sys.stdout, sys.stderr)
        os.dup2(fd, self._slot)
        os.dup2(fd, 1)
        os.dup2(fd, 2)
        sys.stdout = sys.stderr = self.stream  # type: ignore[assignment]
        root = logging.getLogger()
        old_level = root.level
        root.addHandler(self._handler)
        root.setLevel(logging.INFO)

        def detach() -> None:
            root.removeHandler(self._handler)
            root.setLevel(old_level)
            with contextlib.suppress(Exception):
                self._text.flush()
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
