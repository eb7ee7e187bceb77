"""Find the DAG files in a folder: `*.py`, minus `.dagrunnerignore` matches, minus files that never say "dag".

The ignore files use gitignore syntax (via pathspec, the library git-style tools share), and one may sit in
any folder: its patterns apply to that folder and below, as `.gitignore` files do. Like Airflow's safe
mode, a file whose text never mentions "dag" is not imported at all, which keeps helper modules from running.

The scheduler looks several times a second, so a `DagFileScanner` remembers what it learnt between scans:
each file's "dag" answer until the file's stat moves, each compiled ignore file until that file's stat
moves, and each path's ignore decision until the ignore files above it change. An unchanged folder then
costs one listing per folder and one stat per `*.py` file, and no file is read.
"""

from __future__ import annotations

import bisect
import operator
import os
from collections.abc import Container
from dataclasses import dataclass, field
from pathlib import Path

import pathspec

IGNORE_FILE = ".dagrunnerignore"

#: (st_mtime_ns, st_size): while a file's stamp holds, it is taken as unchanged.
Stamp = tuple[int, int]
#: The ignore files in force in a folder, from the root down: (their folder with a trailing "/", spec).
_Active = tuple[tuple[str, pathspec.PathSpec], ...]
#: (st_mtime_ns, st_ctime_ns, st_size, st_ino) of an ignore file: ctime and inode also catch an edit
#: that keeps mtime and size, since a stale ignore file would import what the user meant to hide.
_IgnoreStamp = tuple[int, int, int, int]

_name = operator.attrgetter("name")


def discover_dag_files(dags_folder: Path, known: Container[str] = ()) -> list[Path]:
    """Every candidate DAG file under `dags_folder`, sorted, as absolute paths.

    Paths in `known` (files the caller has seen unchanged since) are not read again for the "dag" check.
    A caller that looks again and again should keep one `DagFileScanner` instead.
    """
    return [Path(p) for p in DagFileScanner(dags_folder).scan(known)]


class DagFileScanner:
    """Finds the DAG files of one folder, scan after scan, reading only files that are new or changed."""

    def __init__(self, dags_folder: Path) -> None:
        self.root = str(dags_folder.resolve())
        self._memory = _Memory()

    def scan(self, known: Container[str] = ()) -> dict[str, Stamp]:
        """Every candidate DAG file as absolute path -> stamp, in the order of sorted `Path`s.

        Paths in `known` are taken to mention "dag" without being read.
        """
        walk = _Walk(self._memory, known)
        walk.folder(self.root, ())
        self._memory = walk.memory
        return walk.found


@dataclass
class _Memory:
    """What one scan learnt, for the next. It holds only paths that scan saw, so removed ones are forgotten
    (but for a bounded few names in a folder's ignore decisions, see `_ignore_decisions`)."""

    mentions: dict[str, tuple[Stamp, bool]] = field(default_factory=dict)  # file -> (stamp, says "dag")
    specs: dict[str, tuple[_IgnoreStamp, pathspec.PathSpec]] = field(default_factory=dict)  # ignore file
    ignored: dict[str, tuple[_Active, dict[str, bool]]] = field(default_factory=dict)  # folder -> decisions


class _Walk:
    """One scan: depth first and in name order, which yields the files already sorted as `Path`s sort."""

    def __init__(self, previous: _Memory, known: Container[str]) -> None:
        self.previous = previous
        self.memory = _Memory()
        self.known = known
        self.found: dict[str, Stamp] = {}

    def folder(self, path: str, active: _Active) -> None:
        """Collect the DAG files in `path` and below; `active`: the ignore files in force above it."""
        try:
            with os.scandir(path) as it:
                entries = sorted(it, key=_name)
        except OSError:  # gone or unreadable since its parent was listed: skipped, as os.walk does
            return
        active = self._with_own_ignore_file(path, entries, active)
        decisions = self._ignore_decisions(path, active, len(entries))
        for entry in entries:
            name = entry.name
            if name.startswith("."):  # hidden files and folders, the ignore file among them
                continue
            try:
                is_dir = entry.is_dir()
            except OSError:  # as os.walk: what cannot be told to be a folder counts as a file
                is_dir = False
            # `active and ...`: most folders have no ignore file in force, and this loop runs for every file
            if is_dir:
                # symlinked folders are not followed (as os.walk), so a link loop cannot trap the scan
                skip = name.startswith("__pycache__") or _is_link(entry)
                if not skip and not (active and self._ignored(entry, True, active, decisions)):
                    self.folder(entry.path, active)
            elif name.endswith(".py") and not (active and self._ignored(entry, False, active, decisions)):
                self._candidate(entry)

    def _with_own_ignore_file(self, folder: str, entries: list[os.DirEntry[str]], active: _Active) -> _Active:
        """`active` plus this folder's ignore file, if it has one; compiled again only when its stat moved."""
        i = bisect.bisect_left(entries, IGNORE_FILE, key=_name)
        if i == len(entries) or entries[i].name != IGNORE_FILE:
            return active
        entry = entries[i]
        try:
            if not entry.is_file():
                return active
            stat = entry.stat()
        except OSError:  # removed since the listing
            return active
        stamp = (stat.st_mtime_ns, stat.st_ctime_ns, stat.st_size, stat.st_ino)
        seen = self.previous.specs.get(entry.path)
        spec = seen[1] if seen is not None and seen[0] == stamp else _read_ignore(entry.path)
        self.memory.specs[entry.path] = (stamp, spec)
        return (*active, (os.path.join(folder, ""), spec))

    def _ignore_decisions(self, folder: str, active: _Active, entries: int) -> dict[str, bool]:
        """The folder's ignore decisions by entry name, kept from the last scan while the ignore files in force
        are equal (matching costs microseconds per path). Started afresh when names of removed entries could
        outnumber the folder's `entries`, so they cannot pile up."""
        seen = self.previous.ignored.get(folder)
        decisions = seen[1] if seen is not None and seen[0] == active and len(seen[1]) <= entries else {}
        if active:
            self.memory.ignored[folder] = (active, decisions)
        return decisions

    def _ignored(self, entry: os.DirEntry[str], is_dir: bool, active: _Active, decisions: dict[str, bool]) -> bool:
        """Whether an ignore file in force matches the entry (a folder's path ends in "/", as gitignore expects).
        Called only when `active` is not empty."""
        name, path = entry.name, entry.path
        if is_dir:  # the "/" also keeps apart the decisions for a file and a folder of the same name
            name, path = name + "/", path + "/"
        ignored = decisions.get(name)
        if ignored is None:
            ignored = decisions[name] = any(spec.match_file(path[len(base) :]) for base, spec in active)
        return ignored

    def _candidate(self, entry: os.DirEntry[str]) -> None:
        """Keep a `*.py` file that is not ignored if it mentions "dag", reading it only when new or changed."""
        path = entry.path
        try:
            stat = entry.stat()
        except OSError:  # removed since the listing, or a broken symlink
            return
        stamp = (stat.st_mtime_ns, stat.st_size)
        if path in self.known:
            mentions: bool | None = True
        else:
            seen = self.previous.mentions.get(path)
            if seen is not None and seen[0] == stamp:
                self.memory.mentions[path] = seen  # the same tuple: no allocation for an unchanged file
                mentions = seen[1]
            else:
                mentions = _mentions_dag(path)
                if mentions is not None:  # an unreadable file is tried again next scan (its mode may change)
                    self.memory.mentions[path] = (stamp, mentions)
        if mentions:
            self.found[path] = stamp


def _is_link(entry: os.DirEntry[str]) -> bool:
    try:
        return entry.is_symlink()
    except OSError:  # as os.path.islink
        return False


def _read_ignore(path: str) -> pathspec.PathSpec:
    with open(path, errors="replace") as f:
        return pathspec.GitIgnoreSpec.from_lines(f.read().splitlines())


def _mentions_dag(path: str) -> bool | None:
    """Whether the file's text says "dag" in any case; None when it cannot be read."""
    try:
        with open(path, "rb") as f:
            return b"dag" in f.read().lower()
    except OSError:
        return None
