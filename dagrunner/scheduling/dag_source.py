"""Where the scheduler gets its DAGs from: the DAG folder (re-parsed as files change) or a fixed set."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime, timedelta
from typing import Protocol

from sqlalchemy.engine import Engine

from dagrunner.loading.dagbag import DagBag
from dagrunner.loading.serialization import SerializedDag
from dagrunner.loading.sync import make_dagbag, stored_files, write_parse_results
from dagrunner.persistence.engine import session_scope
from dagrunner.settings import Settings


class DagSource(Protocol):
    def dags(self) -> Mapping[str, SerializedDag]: ...

    def refresh(self, now: datetime) -> bool:
        """Pick up changed DAG files if it is time to look; True when the set of DAGs changed."""
        ...


class FixedDagSource:
    """A given set of DAGs that never changes (`dags test`, tests)."""

    def __init__(self, dags: Mapping[str, SerializedDag]) -> None:
        self._dags = dict(dags)

    def dags(self) -> Mapping[str, SerializedDag]:
        return self._dags

    def refresh(self, now: datetime) -> bool:
        return False


class FolderDagSource:
    """The DAG folder: files are re-imported (in child processes) only when their content changed.

    Looking costs one stat and, for changed files only, one hash per file; it happens at most every
    `interval_s`, and the results are written to the DB for the CLI and other schedulers.
    """

    def __init__(self, settings: Settings, engine: Engine, *, actor: str, interval_s: float = 0.25) -> None:
        self.engine = engine
        self.actor = actor
        self.interval = timedelta(seconds=interval_s)
        self.bag: DagBag = make_dagbag(settings)
        self._next_look: datetime | None = None
        with session_scope(engine, readonly=True) as session:
            self.bag.seed(stored_files(session, self.bag))

    def dags(self) -> Mapping[str, SerializedDag]:
        return self.bag.dags

    def refresh(self, now: datetime) -> bool:
        if self._next_look is not None and now < self._next_look:
            return False
        first = self._next_look is None
        self._next_look = now + self.interval
        report = self.bag.refresh(now)
        if report.changed or first:
            with session_scope(self.engine) as session:
                write_parse_results(session, self.bag, report, actor=self.actor, now=now)
        return report.changed

    @property
    def next_look(self) -> datetime | None:
        return self._next_look
