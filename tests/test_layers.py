"""Imports point down the layers (docs/architecture.md, "Layers"): a module imports only what is below it.

    cli -> web -> scheduling -> execution -> loading -> authoring -> timetables

and every layer may use the shared modules and `persistence`, except `authoring` and `timetables`, which
never touch the database. Read from the source (function-level imports included), so a lazy import that
crosses a layer is caught too.
"""

from __future__ import annotations

import ast
from pathlib import Path

import dagrunner

PACKAGE = Path(dagrunner.__file__).parent
SHARED = {"errors", "states", "settings", "clock", "labels", "subprocesses", "roles"}
ORDER = ["timetables", "authoring", "loading", "execution", "scheduling", "web", "cli"]
NO_DATABASE = {"timetables", "authoring"}


def allowed(layer: str) -> set[str]:
    below = set(ORDER[: ORDER.index(layer) + 1]) | SHARED
    return below if layer in NO_DATABASE else below | {"persistence"}


def imported_layers(path: Path) -> set[tuple[str, int]]:
    """(top-level dagrunner package or module, line) of every dagrunner import in `path`."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        names = []
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names = [node.module]
        elif isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        for name in names:
            parts = name.split(".")
            if parts[0] == "dagrunner" and len(parts) > 1:
                found.add((parts[1], node.lineno))
    return found


def test_every_layer_imports_only_downwards() -> None:
    wrong = []
    for layer in ORDER:
        for path in sorted((PACKAGE / layer).rglob("*.py")):
            for target, line in imported_layers(path):
                if target not in allowed(layer):
                    wrong.append(f"{path.relative_to(PACKAGE)}:{line} imports dagrunner.{target}")
    persistence_allowed = SHARED | {"persistence"}
    for path in sorted((PACKAGE / "persistence").rglob("*.py")):
        wrong += [
            f"{path.relative_to(PACKAGE)}:{line} imports dagrunner.{target}"
            for target, line in imported_layers(path)
            if target not in persistence_allowed
        ]
    assert sorted(wrong) == []


def test_the_check_sees_a_crossing(tmp_path: Path) -> None:
    module = tmp_path / "m.py"
    module.write_text("import os\n\ndef f():\n    from dagrunner.scheduling.scheduler import Scheduler\n")
    assert imported_layers(module) == {("scheduling", 4)}
    assert "scheduling" not in allowed("execution")
    assert "persistence" not in allowed("authoring")
    assert "persistence" in allowed("loading")
