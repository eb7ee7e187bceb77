"""DAG files imported in a worker, kept while unchanged, so a try finds its task without an import.

The same rules as the loader (`loading.isolated_import`): the dags and plugins folders are on sys.path,
each file is imported as its own uniquely named module, a SIGALRM bounds the import, and what the file
prints while it is imported is discarded. A file is imported
again when its (mtime_ns, size) changes. An import failure is raised as an ExecutionError naming the
file, the line and the exception, so the try fails with it and the worker carries on; failures are not
cached, so a transient one (a network share, a half-written file) heals on the next try.
"""

from __future__ import annotations

import contextlib
import hashlib
import importlib.util
import os
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from dagrunner.errors import ExecutionError
from dagrunner.execution.logs import output_discarded
from dagrunner.execution.runner import alarm
from dagrunner.loading.isolated_import import DagImportTimeout, describe_failure

if TYPE_CHECKING:
    from dagrunner.authoring.baseoperator import BaseOperator
    from dagrunner.authoring.dag import DAG


@dataclass(frozen=True)
class _Entry:
    stamp: tuple[int, int]  # (mtime_ns, size)
    dags: dict[str, DAG]


class DagCache:
    """`get_task(fileloc, dag_id, task_id)`: the live task object, importing its file only when needed."""

    def __init__(
        self, *, dags_folder: Path | str | None, plugins_folder: Path | str | None, import_timeout_s: float = 30.0
    ) -> None:
        self.extra_path = [str(Path(p).resolve()) for p in (dags_folder, plugins_folder) if p is not None]
        self.import_timeout_s = import_timeout_s
        self._entries: dict[str, _Entry] = {}
        self.imports = 0  # how many times a file was (re-)imported: tests and stats read it

    def get_dag(self, fileloc: str, dag_id: str) -> DAG:
        entry = self._entry(fileloc)
        dag = entry.dags.get(dag_id)
        if dag is None:
            defined = ", ".join(sorted(entry.dags)) or "no DAGs"
            raise ExecutionError(f"DAG file {fileloc} does not define DAG {dag_id!r} (any more); it defines: {defined}")
        return dag

    def dags_in(self, fileloc: str) -> dict[str, DAG]:
        """Every DAG the file defines (imported when not cached or changed); its module is then
        `sys.modules[module_name(abspath)]`."""
        return self._entry(fileloc).dags

    def get_task(self, fileloc: str, dag_id: str, task_id: str) -> BaseOperator:
        return self.get_dag(fileloc, dag_id).get_task(task_id)

    def cached_task(self, fileloc: str, dag_id: str, task_id: str) -> tuple[BaseOperator, tuple[int, int]] | None:
        """The task and its file's (mtime_ns, size) if the file is imported and unchanged since; never
        imports. None otherwise (not imported yet, changed, or no such DAG or task)."""
        path = os.path.abspath(fileloc)
        entry = self._entries.get(path)
        try:
            stat = os.stat(path)
        except OSError:
            return None
        if entry is None or entry.stamp != (stat.st_mtime_ns, stat.st_size):
            return None
        dag = entry.dags.get(dag_id)
        task = dag.task_dict.get(task_id) if dag is not None else None
        return (task, entry.stamp) if task is not None else None

    def _entry(self, fileloc: str) -> _Entry:
        path = os.path.abspath(fileloc)
        try:
            stat = os.stat(path)
        except OSError as exc:
            raise ExecutionError(f"cannot read DAG file {path}: {exc.strerror or exc}") from None
        stamp = (stat.st_mtime_ns, stat.st_size)
        entry = self._entries.get(path)
        if entry is None or entry.stamp != stamp:
            entry = _Entry(stamp, self._import(path))
            self._entries[path] = entry
        return entry

    def _import(self, path: str) -> dict[str, DAG]:
        from dagrunner.authoring.dag import collected_dags, reset_collected_dags

        for entry in reversed(self.extra_path):
            if entry not in sys.path:
                sys.path.insert(0, entry)
        self._entries.pop(path, None)
        reset_collected_dags()
        timeout = self.import_timeout_s
        try:
            with output_discarded(), alarm(timeout, lambda: DagImportTimeout(_timeout_message(timeout))):
                _exec_module(path)
        except BaseException as exc:  # noqa: BLE001 - whatever the file raises (SystemExit too) fails the try
            failure = describe_failure(exc, path)
            line = f" at line {failure.line}" if failure.line else ""
            raise ExecutionError(f"importing DAG file {path} failed{line}: {failure.message}") from exc
        finally:
            found = collected_dags()
            reset_collected_dags()
        self.imports += 1
        for dag in found:  # built once here, not in every forked child that renders a template
            with contextlib.suppress(Exception):
                dag.get_template_env()
        return {dag.dag_id: dag for dag in found}


def module_name(path: str) -> str:
    """The module name a DAG file is imported under (one per path, as the loader names it)."""
    return "dagrunner_dagfile_" + hashlib.sha1(path.encode()).hexdigest()[:16]


def _timeout_message(seconds: float) -> str:
    return (
        f"import did not finish within dagbag_import_timeout={seconds:g}s; move slow work from the file's "
        "top level into tasks, or raise the setting"
    )


def _exec_module(path: str) -> None:
    name = module_name(path)
    spec = importlib.util.spec_from_file_location(name, path)
    if spec is None or spec.loader is None:
        raise ImportError(f"{path} cannot be imported as a Python module")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    try:
        spec.loader.exec_module(module)
    except BaseException:
        sys.modules.pop(name, None)
        raise
