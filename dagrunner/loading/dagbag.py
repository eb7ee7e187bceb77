"""The DagBag: what the DAG folder defines right now, re-importing only the files whose content changed.

It owns two rules the rest of the system relies on:
- one file's failure never removes or changes another file's DAGs;
- a dag_id belongs to one file. When a second file defines it too, that second file gets an import error
  naming both places, and the owner keeps the DAG. The owner is the file that had it before (so adding a
  copy elsewhere never steals a running DAG), else the first file in path order.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from dagrunner.errors import DagNotFoundError
from dagrunner.loading.discovery import DagFileScanner, Stamp
from dagrunner.loading.isolated_import import FileImport, ImportFailure, file_hash, import_files
from dagrunner.loading.plugins import load_plugins
from dagrunner.loading.serialization import SerializedDag, declared_assets


@dataclass(frozen=True)
class ParsedFile:
    """One DAG file as last parsed: every DAG it defines (serialized dicts) and its import failure, if any."""

    path: str
    content_hash: str
    mtime: float
    dags: tuple[dict[str, Any], ...]
    failures: tuple[ImportFailure, ...]
    parsed_at: datetime
    duration_s: float = 0.0
    output: str = ""  # the end of what the import printed, for `dags errors --verbose`

    @property
    def dag_ids(self) -> list[str]:
        return [d["dag_id"] for d in self.dags]


@dataclass
class RefreshReport:
    """What one refresh did, for the scheduler's log line and the benchmarks."""

    parsed: list[str] = field(default_factory=list)
    unchanged: list[str] = field(default_factory=list)
    removed: list[str] = field(default_factory=list)

    @property
    def changed(self) -> bool:
        return bool(self.parsed or self.removed)


class DagBag:
    """Parse results for one DAG folder, kept between refreshes so unchanged files are not re-imported."""

    def __init__(
        self,
        dags_folder: Path,
        *,
        plugins_folder: Path | None = None,
        timeout_s: float = 30.0,
        parallelism: int = 2,
        env: dict[str, str] | None = None,
        salt: str = "",
        memory_mb: int | None = None,
    ) -> None:
        """`env`: the DAGRUNNER_* variables DAG imports must see; `salt`: a fingerprint of everything
        besides a file's content that shapes its parse, so a settings change re-imports every file;
        `memory_mb`: what one import may allocate (None: no cap)."""
        self.dags_folder = dags_folder.resolve()
        self.plugins_folder = plugins_folder.resolve() if plugins_folder else None
        self.timeout_s = timeout_s
        self.parallelism = parallelism
        self.env = dict(env or {})
        self.salt = salt
        self.memory_mb = memory_mb
        self._scanner = DagFileScanner(self.dags_folder)
        self._stamps: dict[str, Stamp] = {}  # path -> (mtime_ns, size) when its content hash last matched
        self.files: dict[str, ParsedFile] = {}
        self._serialized: dict[str, SerializedDag] = {}
        self._owner: dict[str, str] = {}  # dag_id -> the one file it belongs to
        self._duplicates: dict[str, list[ImportFailure]] = {}  # path -> duplicate-id errors
        #: Assets (#12): name -> (owning file, uri) and uri -> (owning file, name); (path, dag_id) refused.
        self._asset_names: dict[str, tuple[str, str]] = {}
        self._asset_uris: dict[str, tuple[str, str]] = {}
        self._asset_refused: set[tuple[str, str]] = set()

    # --- refresh -------------------------------------------------------------------------------------

    def seed(self, files: Iterable[ParsedFile]) -> None:
        """Start from results stored earlier (e.g. in the metadata DB) so unchanged files are not imported."""
        for parsed in files:
            self.files[parsed.path] = parsed
        self._settle_duplicates(self._owners())
        self._settle_assets()
        self._serialized.clear()

    def refresh(self, now: datetime | None = None) -> RefreshReport:
        """Discover files, import new or changed ones, drop removed ones, and settle dag_id ownership."""
        now = now or datetime.now(UTC)
        report = RefreshReport()
        load_plugins(self.plugins_folder)  # once per process: custom timetables, which serialized DAGs name
        found = self._scanner.scan()  # path -> stamp, in path order
        for gone in sorted(self.files.keys() - found.keys()):
            del self.files[gone]
            self._stamps.pop(gone, None)
            report.removed.append(gone)
        to_import: list[Path] = []
        for path, stamp in found.items():
            known = self.files.get(path)
            if known is not None and self._unchanged(path, stamp, known):
                report.unchanged.append(path)
            else:
                to_import.append(Path(path))
        if to_import:
            sys_path = [self.dags_folder] + ([self.plugins_folder] if self.plugins_folder else [])
            for result in import_files(
                to_import,
                timeout_s=self.timeout_s,
                parallelism=self.parallelism,
                sys_path=sys_path,
                env=self.env,
                salt=self.salt,
                memory_mb=self.memory_mb,
            ):
                self.files[result.path] = _parsed(result, now)
                report.parsed.append(result.path)
        if report.changed:  # rebuilding every SerializedDag is the costly part: only when a file changed
            self._settle_duplicates(self._owners())
            self._settle_assets()
            self._serialized.clear()
        return report

    def _unchanged(self, path: str, stamp: Stamp, known: ParsedFile) -> bool:
        """Same content and same salt. The content hash decides; a file this bag hashed itself and whose
        `stamp` (from this refresh's scan) has not moved since is taken as unchanged without reading it
        again (the daemon looks several times a second)."""
        if self._stamps.get(path) == stamp:
            return True
        try:
            same = file_hash(Path(path), self.salt) == known.content_hash
        except OSError:
            return False
        if same:
            self._stamps[path] = stamp
        return same

    def _owners(self) -> dict[str, str]:
        return dict(self._owner)

    def _settle_duplicates(self, previous_owners: dict[str, str]) -> None:
        """Give each dag_id to one file; every other file defining it gets an import error naming both."""
        claims: dict[str, list[str]] = {}
        for path in sorted(self.files):
            for data in self.files[path].dags:
                claims.setdefault(data["dag_id"], []).append(path)
        self._owner = {}
        self._duplicates = {}
        for dag_id, paths in claims.items():
            owner = previous_owners.get(dag_id)
            owner = owner if owner in paths else paths[0]
            self._owner[dag_id] = owner
            owner_line = _line_of(self.files[owner], dag_id)
            where = f"{owner}:{owner_line}" if owner_line else owner
            for path in paths:
                if path != owner:
                    failure = ImportFailure(
                        "duplicate",
                        f"dag_id '{dag_id}' is already defined in {where}; each dag_id must be defined "
                        "in one file, so rename one of them",
                        _line_of(self.files[path], dag_id),
                    )
                    self._duplicates.setdefault(path, []).append(failure)

    def _settle_assets(self) -> None:
        """An asset name means one URI (and a URI one name) across the folder. The file that declared it
        first (before this refresh, else in path order) keeps it; a DAG of another file that disagrees is
        left out, with an import error on its file naming the other file and both values."""
        names = {n: v for n, v in self._asset_names.items() if v[0] in self.files}
        uris = {u: v for u, v in self._asset_uris.items() if v[0] in self.files}
        claims = [
            (path, data["dag_id"], node)
            for path in sorted(self.files)
            for data in self.files[path].dags
            if self._owner.get(data["dag_id"]) == path
            for _, node in declared_assets(data)
            if node.get("type") == "asset"
        ]
        still = {(p, n["name"], n["uri"]) for p, _, n in claims}
        names = {n: v for n, v in names.items() if (v[0], n, v[1]) in still}  # forget what its file dropped
        uris = {u: v for u, v in uris.items() if (v[0], v[1], u) in still}
        self._asset_refused = set()
        for path, dag_id, node in claims:
            name, uri = node["name"], node["uri"]
            problem = _asset_conflict(names.get(name), uris.get(uri), name, uri)
            if problem is None:
                names.setdefault(name, (path, uri))
                uris.setdefault(uri, (path, name))
            elif (path, dag_id) not in self._asset_refused:
                self._asset_refused.add((path, dag_id))
                line = _line_of(self.files[path], dag_id)
                failure = ImportFailure("asset", f"DAG '{dag_id}': {problem}", line)
                self._duplicates.setdefault(path, []).append(failure)
        self._asset_names, self._asset_uris = names, uris

    # --- views ---------------------------------------------------------------------------------------

    @property
    def dags(self) -> dict[str, SerializedDag]:
        if not self._serialized:
            for parsed in sorted(self.files.values(), key=lambda p: p.path):
                for data in parsed.dags:
                    refused = (parsed.path, data["dag_id"]) in self._asset_refused
                    if self._owner.get(data["dag_id"]) == parsed.path and not refused:
                        self._serialized[data["dag_id"]] = SerializedDag.from_dict(data)
        return self._serialized

    def get_dag(self, dag_id: str) -> SerializedDag:
        try:
            return self.dags[dag_id]
        except KeyError:
            hint = f"; known DAGs: {', '.join(sorted(self.dags))}" if self.dags else ""
            broken = [p for p, _ in self.failures if dag_id in Path(p).read_text(errors="replace")]
            if broken:
                hint += f". {broken[0]} mentions it but failed to import: see `dagrunner dags errors`"
            raise DagNotFoundError(f"no DAG with id {dag_id!r} in {self.dags_folder}{hint}") from None

    @property
    def failures(self) -> list[tuple[str, ImportFailure]]:
        return [(p, f) for p in sorted(self.files) for f in self.failures_of(p)]

    def failures_of(self, path: str) -> list[ImportFailure]:
        return list(self.files[path].failures) + self._duplicates.get(path, [])


def _parsed(result: FileImport, now: datetime) -> ParsedFile:
    failures = (result.failure,) if result.failure else ()
    return ParsedFile(
        result.path, result.content_hash, result.mtime, result.dags, failures, now, result.duration_s, result.output
    )


def _line_of(parsed: ParsedFile, dag_id: str) -> int | None:
    for data in parsed.dags:
        if data["dag_id"] == dag_id:
            return data.get("fileloc_line")
    return None


def _asset_conflict(by_name: tuple[str, str] | None, by_uri: tuple[str, str] | None, name: str, uri: str) -> str | None:
    """Why (name, uri) disagrees with what another file declared, or None."""
    if by_name is not None and by_name[1] != uri:
        return (
            f"asset {name!r} has uri {uri!r} here but {by_name[1]!r} in {by_name[0]}; an asset name means one "
            "uri across the DAG folder, so use the same uri or another name"
        )
    if by_uri is not None and by_uri[1] != name:
        return (
            f"asset uri {uri!r} is named {name!r} here but {by_uri[1]!r} in {by_uri[0]}; a uri has one name "
            "across the DAG folder, so use the same name or another uri"
        )
    return None
