"""Import DAG files in child processes, so that no DAG file can hurt the process that loads it.

A DAG file is user code: it may raise, call `sys.exit()`, loop forever or allocate without end. Each file
is imported in its own child process, forked from a forkserver that has already imported dagrunner and its
heavy dependencies, so a child costs milliseconds rather than an interpreter start. The child sends back
the serialized DAGs (plain JSON-able dicts) or an import error with the line in the file where it happened.

Timeouts are enforced twice: inside the child a SIGALRM raises `DagImportTimeout` in the Python code that
is running, so the error can name the line of the loop; the parent kills the child outright a little later
in case it is stuck in C code that never returns to the interpreter.
"""

from __future__ import annotations

import hashlib
import importlib.util
import os
import signal
import sys
import time
import traceback
from collections.abc import Iterable
from dataclasses import dataclass
from multiprocessing.connection import Connection, wait
from multiprocessing.process import BaseProcess
from pathlib import Path
from typing import Any

from dagrunner.subprocesses import preloaded_context, start_process

#: Modules the forkserver imports once, so each child starts with them warm.
#: Extra time the parent grants beyond the timeout before it kills a child that ignored SIGALRM.
_KILL_GRACE_S = 2.0


@dataclass(frozen=True)
class ImportFailure:
    """Why one file failed to import: the one-line message, the line in the file (if known), the traceback."""

    kind: str  # syntax | exception | exit | timeout | crash | duplicate
    message: str
    line: int | None
    traceback: str = ""

    def to_dict(self) -> dict[str, Any]:
        return {"kind": self.kind, "message": self.message, "line": self.line, "traceback": self.traceback}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ImportFailure:
        return cls(data["kind"], data["message"], data.get("line"), data.get("traceback", ""))


@dataclass(frozen=True)
class FileImport:
    """The outcome of importing one DAG file: its serialized DAGs, or the failure (or both, see dagbag)."""

    path: str
    content_hash: str
    mtime: float
    dags: tuple[dict[str, Any], ...]
    failure: ImportFailure | None
    duration_s: float


class DagImportTimeout(Exception):  # noqa: N818 - raised inside user code; the name reads in a traceback
    """Raised in the child when the import runs past `dagbag_import_timeout`."""


def file_hash(path: Path, salt: str = "") -> str:
    """The file's content hash, salted with what else shapes its parse (settings, dagrunner version)."""
    return hashlib.sha1(path.read_bytes() + b"\0" + salt.encode()).hexdigest()


def import_files(
    paths: Iterable[Path],
    *,
    timeout_s: float,
    parallelism: int,
    sys_path: Iterable[Path] = (),
    env: dict[str, str] | None = None,
    salt: str = "",
) -> list[FileImport]:
    """Import each file in its own child process, at most `parallelism` at once; results in input order.

    `env` is the DAGRUNNER_* environment the child must see: the forkserver was started with the
    environment of its first use, so the child is brought up to date explicitly.
    """
    ctx = preloaded_context()
    extra_path = [str(p) for p in sys_path]
    ordered = list(paths)
    pending = list(ordered)
    results: dict[str, FileImport] = {}
    running: dict[Connection, _Child] = {}
    while pending or running:
        while pending and len(running) < max(1, parallelism):
            path = pending.pop(0)
            try:
                stat = path.stat()
                digest = file_hash(path, salt)
            except OSError as exc:
                results[str(path)] = FileImport(
                    str(path), "", 0.0, (), ImportFailure("exception", f"cannot read file: {exc}", None), 0.0
                )
                continue
            recv, send = ctx.Pipe(duplex=False)
            proc = ctx.Process(
                target=_child_main, args=(str(path), extra_path, timeout_s, env or {}, send), daemon=True
            )
            start_process(proc)
            send.close()
            running[recv] = _Child(path, proc, time.monotonic(), digest, stat.st_mtime)
        _collect(running, results, timeout_s)
    return [results[str(p)] for p in ordered]


@dataclass(frozen=True)
class _Child:
    """One import in flight: the file, its process, when it started, and the file's hash and mtime then."""

    path: Path
    process: BaseProcess
    started: float
    digest: str
    mtime: float


def _collect(running: dict[Connection, _Child], results: dict[str, FileImport], timeout_s: float) -> None:
    """Wait for any child to answer (or to overrun its time) and record its outcome."""
    now = time.monotonic()
    deadline = min(child.started + timeout_s + _KILL_GRACE_S for child in running.values())
    answered = set(wait(list(running), timeout=max(0.0, deadline - now)))
    for conn in [c for c in running if c in answered]:
        child = running.pop(conn)
        try:
            status, payload = conn.recv()
        except (EOFError, OSError):
            child.process.join(1.0)
            status, payload = "error", _crash_failure(child.process.exitcode).to_dict()
        conn.close()
        child.process.join(1.0)
        results[str(child.path)] = _result(child, status, payload, time.monotonic() - child.started)
    now = time.monotonic()
    for conn, child in list(running.items()):
        if now - child.started >= timeout_s + _KILL_GRACE_S:
            child.process.kill()
            child.process.join(1.0)
            conn.close()
            running.pop(conn)
            failure = ImportFailure(
                "timeout",
                f"import did not finish within dagbag_import_timeout={timeout_s:g}s and was killed; "
                "move slow work from the file's top level into tasks, or raise the setting",
                None,
            )
            results[str(child.path)] = FileImport(
                str(child.path), child.digest, child.mtime, (), failure, now - child.started
            )


def _result(child: _Child, status: str, payload: Any, took: float) -> FileImport:
    """What a child sent back: ("ok", [serialized dags]) or ("error", an ImportFailure as a dict)."""
    if status == "ok":
        return FileImport(str(child.path), child.digest, child.mtime, tuple(payload), None, took)
    return FileImport(str(child.path), child.digest, child.mtime, (), ImportFailure.from_dict(payload), took)


def _crash_failure(exitcode: int | None) -> ImportFailure:
    if exitcode is not None and exitcode < 0:
        name = signal.Signals(-exitcode).name
        why = f"the import process died from signal {name}"
    else:
        why = f"the import process exited with code {exitcode} without reporting (os._exit at import?)"
    return ImportFailure("crash", why + "; run the file with python to see why", None)


# --- the child side ------------------------------------------------------------------------------------


def _child_main(path: str, extra_path: list[str], timeout_s: float, env: dict[str, str], conn: Connection) -> None:
    """Import one file and send ("ok", [serialized dags]) or ("error", failure dict) back."""
    _adopt_env(env)
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, 1)  # a DAG file's prints must not scribble over the CLI's output
    os.dup2(devnull, 2)
    for entry in reversed(extra_path):
        if entry not in sys.path:
            sys.path.insert(0, entry)
    message: tuple[str, Any]
    try:
        message = ("ok", _import_and_serialize(path, timeout_s))
    except BaseException as exc:  # noqa: BLE001 - anything a DAG file raises, SystemExit included
        message = ("error", describe_failure(exc, path).to_dict())
    try:
        conn.send(message)
    except Exception as exc:  # noqa: BLE001 - e.g. a value that cannot be pickled
        conn.send(("error", ImportFailure("exception", f"cannot send the parsed DAGs back: {exc}", None).to_dict()))
    conn.close()


def _adopt_env(env: dict[str, str]) -> None:
    """Make the child's DAGRUNNER_* environment exactly the parent's, then forget cached settings."""
    from dagrunner.authoring._settings import get_settings

    for name in [n for n in os.environ if n.startswith("DAGRUNNER_")]:
        if name not in env:
            del os.environ[name]
    os.environ.update(env)
    get_settings.cache_clear()


def _import_and_serialize(path: str, timeout_s: float) -> list[dict[str, Any]]:
    from dagrunner.authoring.dag import collected_dags, reset_collected_dags
    from dagrunner.loading.serialization import serialize_dag

    def on_alarm(_signum: int, _frame: Any) -> None:
        raise DagImportTimeout(
            f"import did not finish within dagbag_import_timeout={timeout_s:g}s; "
            "move slow work from the file's top level into tasks, or raise the setting"
        )

    signal.signal(signal.SIGALRM, on_alarm)
    signal.setitimer(signal.ITIMER_REAL, timeout_s)
    reset_collected_dags()
    module_name = "dagrunner_dagfile_" + hashlib.sha1(path.encode()).hexdigest()[:16]
    spec = importlib.util.spec_from_file_location(module_name, path)
    if spec is None or spec.loader is None:
        raise ImportError(f"{path} cannot be imported as a Python module")
    module = importlib.util.module_from_spec(spec)
    sys.modules[module_name] = module
    spec.loader.exec_module(module)
    signal.setitimer(signal.ITIMER_REAL, 0)
    serialized = [serialize_dag(dag) for dag in collected_dags()]
    for data in serialized:
        data["fileloc"] = path  # a DAG built by a factory elsewhere still belongs to the file that made it
    return serialized


def describe_failure(exc: BaseException, path: str) -> ImportFailure:
    """Turn what a DAG file raised into a one-line message with the line in that file where it happened."""
    if isinstance(exc, SyntaxError) and exc.filename and Path(exc.filename).resolve() == Path(path).resolve():
        text = (exc.text or "").strip()
        detail = f" in {text!r}" if text else ""
        return ImportFailure("syntax", f"SyntaxError: {exc.msg}{detail}", exc.lineno, _format(exc))
    line = _line_in_file(exc, path)
    if isinstance(exc, SystemExit):
        return ImportFailure(
            "exit", f"sys.exit({exc.code!r}) was called while importing; a DAG file must not exit", line, _format(exc)
        )
    kind = "timeout" if isinstance(exc, DagImportTimeout) else "exception"
    name = "" if isinstance(exc, DagImportTimeout) else f"{type(exc).__name__}: "
    return ImportFailure(kind, f"{name}{exc}", line, _format(exc))


def _line_in_file(exc: BaseException, path: str) -> int | None:
    """The deepest traceback line that belongs to the DAG file itself (the user's line, not ours)."""
    target = os.path.realpath(path)
    line = None
    for frame in traceback.extract_tb(exc.__traceback__):
        if os.path.realpath(frame.filename) == target:
            line = frame.lineno
    if line is None and isinstance(exc, SyntaxError) and exc.lineno:
        return exc.lineno
    return line


def _format(exc: BaseException) -> str:
    return "".join(traceback.format_exception(type(exc), exc, exc.__traceback__))
