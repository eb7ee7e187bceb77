"""`AirflowPlugin`: how a module of the plugins folder registers custom timetables, as in Airflow.

    # plugins/workday.py
    from dagrunner.loading.plugins import AirflowPlugin
    from dagrunner.timetables.custom import Timetable

    class AfterWorkdayTimetable(Timetable): ...

    class WorkdayTimetablePlugin(AirflowPlugin):
        name = "workday_timetable_plugin"
        timetables = [AfterWorkdayTimetable]

Defining the subclass registers its timetables. A process that rebuilds a DAG from its serialized form
without having imported the DAG file (the scheduler, the CLI, the web) imports the plugin modules of the
plugins folder once, by module name with the folder on `sys.path` (as DAG files see them), so a class gets
the same import path in every process.

Deliberate difference from Airflow: only `timetables` is read. Other plugin attributes (macros, operators,
flask blueprints, ...) are accepted and ignored, with one log line; operators and hooks in plugins/ are
imported by DAG files directly, and listener modules are found by their hook functions
(`scheduling.listeners`).
"""

from __future__ import annotations

import ast
import importlib
import logging
import sys
from pathlib import Path
from typing import Any, ClassVar

from dagrunner.errors import LoadingError
from dagrunner.timetables.custom import register_timetable, registered_timetable

log = logging.getLogger(__name__)

_READ = frozenset({"name", "timetables"})
_loaded_folders: set[Path] = set()


class AirflowPlugin:
    """Subclass it in a module of the plugins folder; its `timetables` become usable as DAG schedules."""

    name: ClassVar[str] = ""
    timetables: ClassVar[list[type]] = []

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        for timetable in cls.timetables:
            register_timetable(timetable)
        ignored = sorted(
            k for k, v in vars(cls).items() if not k.startswith("_") and k not in _READ and not callable(v) and v
        )
        if ignored:
            log.info("plugin %r: %s ignored (dagrunner reads only `timetables`)", cls.name or cls.__name__, ignored)


def load_plugins(folder: Path | None) -> list[str]:
    """Import, once per process, each module of `folder` that defines an AirflowPlugin subclass.

    Returns one line per module that failed to import (the others are still loaded).
    """
    if folder is None:
        return []
    folder = folder.resolve()
    if folder in _loaded_folders or not folder.is_dir():
        return []
    _loaded_folders.add(folder)
    if str(folder) not in sys.path:
        sys.path.insert(0, str(folder))  # as for DAG files: a plugin module may import its neighbours
    failures = []
    for path in sorted(folder.glob("*.py")):
        if path.name.startswith("_") or not _defines_a_plugin(path):
            continue
        try:
            importlib.import_module(path.stem)
        except Exception as exc:  # noqa: BLE001 - a broken plugin is reported, the others still work
            failures.append(f"{path}: import failed: {type(exc).__name__}: {exc}")
    for line in failures:
        log.warning("%s", line)
    return failures


def require_timetable(path: str, folder: Path | None) -> None:
    """Make sure the custom timetable class `path` is registered, loading the plugins when it is not yet."""
    if registered_timetable(path) is None:
        failures = load_plugins(folder)
        if registered_timetable(path) is None:
            why = f" ({'; '.join(failures)})" if failures else ""
            raise LoadingError(
                f"timetable class {path!r} is not registered by a plugin{why}: define it in a module of the "
                f"plugins folder ({folder}) and list it in an AirflowPlugin subclass's `timetables`"
            )


def _defines_a_plugin(path: Path) -> bool:
    """Read, not import: only modules with a class deriving from AirflowPlugin are imported."""
    try:
        tree = ast.parse(path.read_text(), str(path))
    except (SyntaxError, OSError, UnicodeDecodeError):
        return "AirflowPlugin" in path.read_text(errors="replace")  # import it to report the error
    for node in tree.body:
        if isinstance(node, ast.ClassDef):
            for base in node.bases:
                name = base.attr if isinstance(base, ast.Attribute) else getattr(base, "id", "")
                if name == "AirflowPlugin":
                    return True
    return False
