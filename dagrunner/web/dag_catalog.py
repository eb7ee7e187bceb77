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
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from dagrunner.errors import DagNotFoundError, DagRunnerError
from dagrunner.loading.serialization import SerializedDag
from dagrunner.persistence.models import Dag, DagFile

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


class DagCatalog:
    """`SerializedDag`s of the parsed DAG files, parsed once per (path, file hash); safe across threads."""

    def __init__(self) -> None:
        self._parsed: dict[tuple[str, str], dict[str, SerializedDag]] = {}
        self._lock = threading.Lock()

    def dags(self, session: Session) -> dict[str, SerializedDag]:
        """dag_id -> its DAG, for every DAG a stored parse result defines (2 queries, 1 once warm)."""
        files = [(path, digest) for path, digest in session.execute(select(DagFile.path, DagFile.file_hash))]
        self._load(session, [(p, h) for p, h in files if (p, h) not in self._parsed])
        with self._lock:
            for key in set(self._parsed) - set(files):  # files changed or gone: forget their old parse
                del self._parsed[key]
            found: dict[str, SerializedDag] = {}
            for key in files:
                found.update(self._parsed.get(key, {}))
        return found

    def dag(self, session: Session, dag_id: str) -> SerializedDag:
        """One DAG, from the file its `dag` row points at; DagNotFoundError when no parsed file defines it."""
        fileloc = session.scalar(select(Dag.fileloc).where(Dag.dag_id == dag_id))
        if fileloc is None:
            raise DagNotFoundError(f"no DAG {dag_id!r}; GET /api/v1/dags lists the known ones")
        digest = session.scalar(select(DagFile.file_hash).where(DagFile.path == fileloc))
        if digest is not None:
            self._load(session, [(fileloc, digest)])
            dag = self._parsed.get((fileloc, digest), {}).get(dag_id)
            if dag is not None:
                return dag
        raise DagNotFoundError(
            f"DAG {dag_id!r} is not defined by any parsed DAG file now (its file {fileloc} was removed or fails to "
            "import: GET /api/v1/import-errors); the scheduler parses the DAG folder"
        )

    def _load(self, session: Session, keys: list[tuple[str, str]]) -> None:
        for start in range(0, len(keys), _CHUNK):
            wanted = dict(keys[start : start + _CHUNK])
            query = select(DagFile.path, DagFile.file_hash, DagFile.serialized).where(DagFile.path.in_(list(wanted)))
            for path, digest, serialized in session.execute(query):
                parsed = _parse_file(serialized or {})
                with self._lock:
                    self._parsed[(path, digest)] = parsed


def _parse_file(serialized: Mapping[str, Any]) -> dict[str, SerializedDag]:
    """The file's DAGs; one stored by an older dagrunner (another format) is left out until it is parsed again."""
    parsed: dict[str, SerializedDag] = {}
    for dag_id, data in serialized.items():
        try:
            parsed[dag_id] = SerializedDag.from_dict(data)
        except (DagRunnerError, KeyError, TypeError, ValueError):
            continue
    return parsed


def import_errors(session: Session) -> list[ImportErrorView]:
    """Every file whose last parse failed, by path."""
    query = select(DagFile.path, DagFile.import_error).where(DagFile.import_error.is_not(None)).order_by(DagFile.path)
    return [ImportErrorView.parse(path, stored) for path, stored in session.execute(query)]


def next_run_after(dag: SerializedDag, now: datetime) -> datetime | None:
    """When the scheduler would next create a run of the DAG, ignoring existing runs (as `dags list`)."""
    info = dag.timetable.next_dagrun_info(
        last=None, start_date=dag.start_date, end_date=dag.end_date, catchup=dag.catchup, now=now
    )
    return info.run_after if info else None


def catalog_of(state: Any) -> DagCatalog:
    """The app's one catalog, kept on its `WebState` (made on first use)."""
    found = getattr(state, "dag_catalog", None)
    if not isinstance(found, DagCatalog):
        found = DagCatalog()
        state.dag_catalog = found
    return found
