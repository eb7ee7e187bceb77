"""The DAGs as the api-server knows them: read from the parse results in the metadata DB, never imported.

The scheduler (or any CLI command) parses the DAG folder and stores each file's serialized DAGs in its
`dag_file` row. The api-server reads those rows back as `SerializedDag`s, the same read model the scheduler
plans with, so a DAG file's code never runs in the web process. Turning stored JSON into a `SerializedDag`
costs far more than the query, so each file's DAGs are kept per (path, content hash): a page load then asks
the database only for the hashes, and parses again just the files that changed since.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Collection, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import pendulum
from sqlalchemy import select
from sqlalchemy.orm import Session

from dagrunner.errors import DagNotFoundError, DagRunnerError
from dagrunner.loading.serialization import SerializedDag
from dagrunner.persistence.models import Dag, DagFile
from dagrunner.timetables import Timetable

#: Ask for at most this many files' JSON in one query (SQLite's bound-parameter limit is far above it).
_CHUNK = 500


@dataclass(frozen=True)
class ImportErrorView:
    """Why a DAG file failed to import, as `dagrunner dags errors --json` shows it (without the output)."""

    file: str
    line: int | None
    kind: str
    error: str

    def to_json(self) -> dict[str, Any]:
        return {"file": self.file, "line": self.line, "kind": self.kind, "error": self.error}

    @classmethod
    def parse(cls, path: str, stored: str | None) -> ImportErrorView:
        try:
            data = json.loads(stored or "{}")
        except ValueError:
            data = {"message": stored}
        if not isinstance(data, dict):
            data = {"message": str(data)}
        line = data.get("line")
        return cls(path, line if isinstance(line, int) else None, str(data.get("kind") or "exception"),
                   str(data.get("message") or ""))  # fmt: skip


@dataclass
class _Entry:
    """One DAG's stored JSON, and what was derived from it so far (each at most once per file hash)."""

    data: Mapping[str, Any]
    dag: SerializedDag | None = None
    #: (next run, when that answer may change): valid until the run is due, else for `NEXT_RUN_TTL`.
    next_run: tuple[datetime | None, datetime] | None = None


class DagCatalog:
    """The stored DAGs per (path, file hash), parsed on first use; safe across threads (a race parses twice)."""

    def __init__(self) -> None:
        self._files: dict[tuple[str, str], dict[str, _Entry]] = {}
        self._lock = threading.Lock()

    def next_runs(self, session: Session, dag_ids: Collection[str], now: datetime) -> dict[str, datetime | None]:
        """dag_id -> when the scheduler would next create a run (as `dags list` shows it), for those of
        `dag_ids` a parsed file defines. Only the files defining them are read: a page of a list of
        thousands loads its own DAGs' JSON, not everyone's."""
        entries = self._entries(session, dag_ids)
        found: dict[str, datetime | None] = {}
        stale: dict[str, _Entry] = {}
        for dag_id in dag_ids:
            entry = entries.get(dag_id)
            if entry is None:
                continue
            if entry.next_run is not None and now < entry.next_run[1]:
                found[dag_id] = entry.next_run[0]
            else:
                stale[dag_id] = entry
        if stale:
            found.update(_next_runs(session, stale, now))
        return found

    def dag(self, session: Session, dag_id: str) -> SerializedDag:
        """One DAG, from the file its `dag` row points at; DagNotFoundError when no parsed file defines it."""
        fileloc = session.scalar(select(Dag.fileloc).where(Dag.dag_id == dag_id))
        if fileloc is None:
            raise DagNotFoundError(f"no DAG {dag_id!r}; GET /api/v1/dags lists the known ones")
        digest = session.scalar(select(DagFile.file_hash).where(DagFile.path == fileloc))
        if digest is not None:
            self._load(session, [(fileloc, digest)])
            entry = self._files.get((fileloc, digest), {}).get(dag_id)
            dag = _parsed(entry) if entry is not None else None
            if dag is not None:
                return dag
        raise DagNotFoundError(
            f"DAG {dag_id!r} is not defined by any parsed DAG file now (its file {fileloc} was removed or fails to "
            "import: GET /api/v1/import-errors); the scheduler parses the DAG folder"
        )

    def _entries(self, session: Session, dag_ids: Collection[str]) -> dict[str, _Entry]:
        """The stored DAGs of the files that define `dag_ids` (their current versions)."""
        current: dict[str, str] = {
            path: digest for path, digest in session.execute(select(DagFile.path, DagFile.file_hash))
        }
        wanted: set[str] = set()
        ids = list(dag_ids)
        for start in range(0, len(ids), _CHUNK):
            chunk = ids[start : start + _CHUNK]
            wanted.update(session.scalars(select(Dag.fileloc).where(Dag.dag_id.in_(chunk))))
        files = [(path, current[path]) for path in sorted(wanted) if path in current]
        self._load(session, [key for key in files if key not in self._files])
        with self._lock:
            for key in [k for k in self._files if current.get(k[0]) != k[1]]:  # changed or gone: forget
                del self._files[key]
            found: dict[str, _Entry] = {}
            for key in files:
                found.update(self._files.get(key, {}))
        return found

    def _load(self, session: Session, keys: list[tuple[str, str]]) -> None:
        for start in range(0, len(keys), _CHUNK):
            wanted = dict(keys[start : start + _CHUNK])
            query = select(DagFile.path, DagFile.file_hash, DagFile.serialized).where(DagFile.path.in_(list(wanted)))
            for path, digest, serialized in session.execute(query):
                entries = {dag_id: _Entry(data) for dag_id, data in (serialized or {}).items()}
                with self._lock:
                    self._files[(path, digest)] = entries


#: How long a next run that is already due (a DAG without catchup) is reused before it is computed again.
NEXT_RUN_TTL = timedelta(seconds=30)


def _parsed(entry: _Entry) -> SerializedDag | None:
    """The entry's DAG; None for one stored by an older dagrunner (another format) until it is parsed again."""
    if entry.dag is None:
        try:
            entry.dag = SerializedDag.from_dict(entry.data)
        except (DagRunnerError, KeyError, TypeError, ValueError):
            return None
    return entry.dag


def _next_runs(session: Session, entries: Mapping[str, _Entry], now: datetime) -> dict[str, datetime | None]:
    """`next_run_after` (after the runs that exist, as `dags list`) for these DAGs, remembered on each entry
    until it may change: computing it walks the schedule (milliseconds a DAG, too slow for a list of a
    thousand on every poll). It moves when the scheduler creates that run, which it does once it is due."""
    from dagrunner.scheduling.dagruns import next_run_after

    schedules = {dag_id: found for dag_id, entry in entries.items() if (found := _schedule(entry.data)) is not None}
    values = next_run_after(session, schedules, now) if schedules else {}
    answers: dict[str, datetime | None] = {}
    for dag_id, entry in entries.items():
        value = values.get(dag_id)
        until = value if value is not None and value > now else now + NEXT_RUN_TTL
        entry.next_run = (value, min(until, now + NEXT_RUN_TTL * 20))
        answers[dag_id] = value
    return answers


def import_errors(session: Session) -> list[ImportErrorView]:
    """Every file whose last parse failed, by path."""
    query = select(DagFile.path, DagFile.import_error).where(DagFile.import_error.is_not(None)).order_by(DagFile.path)
    return [ImportErrorView.parse(path, stored) for path, stored in session.execute(query)]


@dataclass(frozen=True)
class _Schedule:
    """A stored DAG's schedule, all `next_run_after` reads of it."""

    timetable: Timetable
    start_date: datetime | None
    end_date: datetime | None
    catchup: bool


def _schedule(data: Mapping[str, Any]) -> _Schedule | None:
    """The stored DAG's timetable and dates, read without parsing its tasks (`SerializedDag.from_dict` reads
    the dates the same way); None for one stored by another dagrunner version (shown without a next run
    until it is parsed again)."""
    from dagrunner.timetables import deserialize_timetable

    try:
        timetable = deserialize_timetable(dict(data["timetable"]))
        zone = data["timezone"]
        start, end = (
            pendulum.instance(datetime.fromisoformat(data[k])).in_timezone(zone) if data.get(k) else None
            for k in ("start_date", "end_date")
        )
        return _Schedule(timetable, start, end, bool(data["catchup"]))
    except (DagRunnerError, KeyError, TypeError, ValueError):
        return None


def catalog_of(state: Any) -> DagCatalog:
    """The app's one catalog, kept on its `WebState` (made on first use)."""
    found = getattr(state, "dag_catalog", None)
    if not isinstance(found, DagCatalog):
        found = DagCatalog()
        state.dag_catalog = found
    return found
