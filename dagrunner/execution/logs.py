"""Where each try's log lives, and reading it back.

One file per try: `{logs}/dag_id=X/run_id=Y/task_id=Z/[map_index=M/]attempt=N.log` (Airflow's layout), so
`(task instance, try_number)` names a log forever. Run ids come from outside (the CLI, later an API), so
the path is resolved and refused when it would leave the log root (DESIGN section 8).
"""

from __future__ import annotations

import os
from pathlib import Path

from dagrunner.errors import ExecutionError, NotFoundError
from dagrunner.execution.base import TaskKey


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
