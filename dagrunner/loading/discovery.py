"""Find the DAG files in a folder: `*.py`, minus `.dagrunnerignore` matches, minus files that never say "dag".

The ignore files use gitignore syntax (via pathspec, the library git-style tools share), and one may sit in
any folder: its patterns apply to that folder and below, as `.gitignore` files do. Like Airflow's safe
mode, a file whose text never mentions "dag" is not imported at all, which keeps helper modules from running.
"""

from __future__ import annotations

import os
from collections.abc import Container
from pathlib import Path

import pathspec

IGNORE_FILE = ".dagrunnerignore"


def discover_dag_files(dags_folder: Path, known: Container[str] = ()) -> list[Path]:
    """Every candidate DAG file under `dags_folder`, sorted, as absolute paths.

    Paths in `known` (files the caller has seen unchanged since) are not read again for the "dag" check.
    """
    root = dags_folder.resolve()
    if not root.is_dir():
        return []
    found: list[Path] = []
    # (folder, spec) pairs from the root down to the folder being walked
    specs: dict[Path, list[tuple[Path, pathspec.PathSpec]]] = {}
    for dirpath, dirnames, filenames in os.walk(root):
        here = Path(dirpath)
        inherited = specs.get(here, [])
        own = _read_ignore(here / IGNORE_FILE)
        active = inherited + ([(here, own)] if own is not None else [])
        dirnames[:] = sorted(
            d for d in dirnames if not d.startswith((".", "__pycache__")) and not _ignored(here / d, active, True)
        )
        for d in dirnames:
            specs[here / d] = active
        for name in filenames:
            path = here / name
            candidate = name.endswith(".py") and not name.startswith(".")
            if candidate and not _ignored(path, active, False) and (str(path) in known or _mentions_dag(path)):
                found.append(path)
    return sorted(found)


def _read_ignore(path: Path) -> pathspec.PathSpec | None:
    if not path.is_file():
        return None
    lines = path.read_text(errors="replace").splitlines()
    return pathspec.GitIgnoreSpec.from_lines(lines)


def _ignored(path: Path, active: list[tuple[Path, pathspec.PathSpec]], is_dir: bool) -> bool:
    for base, spec in active:
        rel = path.relative_to(base).as_posix() + ("/" if is_dir else "")
        if spec.match_file(rel):
            return True
    return False


def _mentions_dag(path: Path) -> bool:
    try:
        return b"dag" in path.read_bytes().lower()
    except OSError:
        return False
