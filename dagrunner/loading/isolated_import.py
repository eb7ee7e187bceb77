"""Import DAG files in child processes, so that no DAG file can hurt the process that loads it.

A DAG file is user code: it may raise, call `sys.exit()`, loop forever or allocate without end. Each file
is imported in its own child process, forked from a forkserver that has already imported dagrunner and its
heavy dependencies, so a child costs milliseconds rather than an interpreter start. The child sends back
the serialized DAGs (plain JSON-able dicts) or an import error with the line in the file where it happened.

Each child leads a process group of its own, and the parent kills that whole group (SIGKILL) once the
child has answered or overrun its time, so processes a DAG file forks at import die with the import. A
child's address space is capped (`RLIMIT_AS`) at what it had when forked plus `dagbag_import_memory_mb`,
so a file that allocates without end gets a MemoryError naming the setting instead of the machine's
memory. What the import writes to stdout/stderr (fd 1 and 2, so subprocess output too) goes through a
pipe the parent reads, keeping the last `OUTPUT_LIMIT` bytes, stored with the parse result and shown
by `dagrunner dags errors --verbose`.

Timeouts are enforced twice: inside the child a SIGALRM raises `DagImportTimeout` in the Python code that
is running, so the error can name the line of the loop; the parent kills the child outright a little later
in case it is stuck in C code that never returns to the interpreter.
"""

from __future__ import annotations

import contextlib
import hashlib
import importlib.util
import io
import os
import signal
import sys
import time
import traceback
from collections.abc import Iterable
from dataclasses import dataclass, field
from multiprocessing.connection import Connection, wait
from multiprocessing.process import BaseProcess
from pathlib import Path
from typing import Any

from dagrunner.subprocesses import preloaded_context, start_process

#: Extra time the parent grants beyond the timeout before it kills a child that ignored SIGALRM.
_KILL_GRACE_S = 2.0
#: How much of an import's stdout/stderr is kept (the end of it: where the error usually is).
OUTPUT_LIMIT = 64 * 1024
#: Signals a C extension dies of when an allocation fails under the memory cap.
_ALLOCATION_SIGNALS = {signal.SIGSEGV, signal.SIGABRT, signal.SIGBUS}


@dataclass(frozen=True)
class ImportFailure:
    """Why one file failed to import: the one-line message, the line in the file (if known), the traceback."""

    kind: str  # syntax | exception | exit | timeout | memory | crash | duplicate
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
    output: str = ""  # the end of what the import printed (stdout and stderr together)


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
    memory_mb: int | None = None,
) -> list[FileImport]:
    """Import each file in its own child process, at most `parallelism` at once; results in input order.

    `env` is the DAGRUNNER_* environment the child must see: the forkserver was started with the
    environment of its first use, so the child is brought up to date explicitly. `memory_mb` caps what
    each import may allocate (None: no cap).
    """
    ctx = preloaded_context()
    extra_path = [str(p) for p in sys_path]
    ordered = list(paths)
    pending = list(ordered)
    results: dict[str, FileImport] = {}
    running: dict[Connection, _Child] = {}
    try:
        while pending or running:
            while pending and len(running) < max(1, parallelism):
                path = pending.pop(0)
                try:
                    stat = path.stat()
                    digest = file_hash(path, salt)
                except OSError as exc:
                    failure = ImportFailure("exception", f"cannot read file: {exc}", None)
                    results[str(path)] = FileImport(str(path), "", 0.0, (), failure, 0.0)
                    continue
                recv, send = ctx.Pipe(duplex=False)
                out_recv, out_send = ctx.Pipe(duplex=False)
                limits = _Limits(timeout_s, memory_mb)
                proc = ctx.Process(
                    target=_child_main, args=(str(path), extra_path, limits, env or {}, send, out_send), daemon=True
                )
                start_process(proc)
                send.close()
                out_send.close()
                running[recv] = _Child(path, proc, time.monotonic(), digest, stat.st_mtime, limits, out_recv)
            _collect(running, results)
    finally:
        for child in running.values():  # interrupted (Ctrl-C): no import may outlive the caller
            _end_group(child)
    return [results[str(p)] for p in ordered]


@dataclass(frozen=True)
class _Limits:
    """What one import may use: seconds, and megabytes beyond what the child had when forked (None: any)."""

    timeout_s: float
    memory_mb: int | None = None


@dataclass
class _Child:
    """One import in flight: the file, its process, when it started, the file's hash and mtime then, its
    limits, and the pipe its stdout/stderr come through (None once drained) with the tail read so far."""

    path: Path
    process: BaseProcess
    started: float
    digest: str
    mtime: float
    limits: _Limits
    out: Connection | None
    output: bytearray = field(default_factory=bytearray)

    def take_output(self, chunk: bytes) -> None:
        self.output += chunk
        del self.output[: max(0, len(self.output) - OUTPUT_LIMIT)]

    def output_text(self) -> str:
        return self.output.decode(errors="replace")


def _collect(running: dict[Connection, _Child], results: dict[str, FileImport]) -> None:
    """Wait for any child to answer, print, or overrun its time, and record the outcome of those done."""
    now = time.monotonic()
    deadline = min(child.started + child.limits.timeout_s + _KILL_GRACE_S for child in running.values())
    outputs = {child.out: child for child in running.values() if child.out is not None}
    ready = set(wait([*running, *outputs], timeout=max(0.0, deadline - now)))
    for out in [o for o in outputs if o in ready]:
        _read_output(outputs[out])
    for conn in [c for c in running if c in ready]:
        child = running.pop(conn)
        try:
            status, payload = conn.recv()
        except (EOFError, OSError):
            child.process.join(1.0)
            status, payload = "error", _crash_failure(child.process.exitcode, child.limits).to_dict()
        conn.close()
        _end_group(child)
        results[str(child.path)] = _result(child, status, payload, time.monotonic() - child.started)
    now = time.monotonic()
    for conn, child in list(running.items()):
        if now - child.started >= child.limits.timeout_s + _KILL_GRACE_S:
            conn.close()
            running.pop(conn)
            _end_group(child)
            failure = ImportFailure(
                "timeout",
                f"import did not finish within dagbag_import_timeout={child.limits.timeout_s:g}s and was killed; "
                "move slow work from the file's top level into tasks, or raise the setting",
                None,
            )
            results[str(child.path)] = FileImport(
                str(child.path), child.digest, child.mtime, (), failure, now - child.started, child.output_text()
            )


def _read_output(child: _Child) -> bool:
    """Take what is waiting in the child's output pipe; True if something was read. At end of file (every
    writer gone) the pipe is closed."""
    assert child.out is not None
    try:
        chunk = os.read(child.out.fileno(), OUTPUT_LIMIT)
    except BlockingIOError:
        return False
    except OSError:
        chunk = b""
    if not chunk:
        child.out.close()
        child.out = None
        return False
    child.take_output(chunk)
    return True


def _end_group(child: _Child) -> None:
    """Kill the child's whole process group (it and whatever it forked), reap it, and drain its output.

    Safe against pid reuse: the group id is the child's pid, which the kernel does not hand out again
    while the group has a member."""
    pid = child.process.pid
    if pid:  # never 0: killpg(0) would be our own group
        try:
            os.killpg(pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            child.process.kill()  # it never got as far as making its own group
    child.process.join(2.0)
    if child.out is not None:
        os.set_blocking(child.out.fileno(), False)
        while child.out is not None and _read_output(child):
            pass  # until end of file, or until nothing comes without blocking (a writer left the group)
        if child.out is not None:
            child.out.close()
            child.out = None


def _result(child: _Child, status: str, payload: Any, took: float) -> FileImport:
    """What a child sent back: ("ok", [serialized dags]) or ("error", an ImportFailure as a dict)."""
    output = child.output_text()
    if status == "ok":
        return FileImport(str(child.path), child.digest, child.mtime, tuple(payload), None, took, output)
    failure = ImportFailure.from_dict(payload)
    return FileImport(str(child.path), child.digest, child.mtime, (), failure, took, output)


def _crash_failure(exitcode: int | None, limits: _Limits) -> ImportFailure:
    if exitcode is not None and exitcode < 0:
        name = signal.Signals(-exitcode).name
        why = f"the import process died from signal {name}"
        if limits.memory_mb is not None and -exitcode in _ALLOCATION_SIGNALS:
            why += f" (perhaps an allocation over dagbag_import_memory_mb={limits.memory_mb} failed in C code)"
    else:
        why = f"the import process exited with code {exitcode} without reporting (os._exit at import?)"
    return ImportFailure("crash", why + "; run the file with python to see why", None)


# --- the child side ------------------------------------------------------------------------------------


def _child_main(
    path: str, extra_path: list[str], limits: _Limits, env: dict[str, str], conn: Connection, out: Connection
) -> None:
    """Import one file and send ("ok", [serialized dags]) or ("error", failure dict) back."""
    os.setpgid(0, 0)  # a group of our own, which the parent kills whole: no child of the import outlives it
    _adopt_env(env)
    os.dup2(out.fileno(), 1)  # a DAG file's prints go to the parent (kept for `dags errors --verbose`),
    os.dup2(out.fileno(), 2)  # never over the CLI's own output
    out.close()
    for stream in (sys.stdout, sys.stderr):  # line by line, so prints and subprocess output keep their order
        if isinstance(stream, io.TextIOWrapper):
            stream.reconfigure(line_buffering=True)
    for entry in reversed(extra_path):
        if entry not in sys.path:
            sys.path.insert(0, entry)
    if limits.memory_mb is not None:
        _cap_memory(limits.memory_mb)
    message: tuple[str, Any]
    try:
        message = ("ok", _import_and_serialize(path, limits.timeout_s))
    except BaseException as exc:  # noqa: BLE001 - anything a DAG file raises, SystemExit included
        message = ("error", describe_failure(exc, path, memory_mb=limits.memory_mb).to_dict())
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(OSError, ValueError):  # a stream the DAG file closed or replaced
            stream.flush()  # before the answer: the parent stops reading soon after it
    try:
        conn.send(message)
    except Exception as exc:  # noqa: BLE001 - e.g. a value that cannot be pickled
        conn.send(("error", ImportFailure("exception", f"cannot send the parsed DAGs back: {exc}", None).to_dict()))
    conn.close()


def _cap_memory(memory_mb: int) -> None:
    """Let this process map at most `memory_mb` more than it has now (the forkserver's preloaded modules
    are already here and are not the DAG file's doing). Where the size cannot be read, nothing is capped."""
    import resource

    try:
        with open("/proc/self/statm") as statm:
            current = int(statm.read().split()[0]) * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError, IndexError):
        return
    cap = current + memory_mb * 1024 * 1024
    _soft, hard = resource.getrlimit(resource.RLIMIT_AS)
    if hard != resource.RLIM_INFINITY:
        cap = min(cap, hard)
    resource.setrlimit(resource.RLIMIT_AS, (cap, cap))


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


def describe_failure(exc: BaseException, path: str, *, memory_mb: int | None = None) -> ImportFailure:
    """Turn what a DAG file raised into a one-line message with the line in that file where it happened."""
    if isinstance(exc, MemoryError) and memory_mb is not None:
        return ImportFailure(
            "memory",
            f"MemoryError: the file used more than dagbag_import_memory_mb={memory_mb} MB at import; load big "
            "data inside tasks (at run time), not at the file's top level, or raise the setting",
            _line_in_file(exc, path),
            _format(exc),
        )
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
