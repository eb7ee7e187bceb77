"""Where the scheduler gets its DAGs from: the DAG folder (re-parsed as files change) or a fixed set.

The scheduler's tick asks a source for its DAGs and tells it the time (`refresh`); a source never makes
the tick wait for a DAG file's import, which is user code and may take up to `dagbag_import_timeout`.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Protocol

from sqlalchemy.engine import Engine

from dagrunner.loading.dagbag import DagBag
from dagrunner.loading.serialization import SerializedDag
from dagrunner.loading.sync import make_dagbag, stored_files, write_parse_results
from dagrunner.persistence.engine import session_scope
from dagrunner.settings import Settings

log = logging.getLogger(__name__)


class DagSource(Protocol):
    def dags(self) -> Mapping[str, SerializedDag]:
        """The DAGs as of the latest finished parse (the same objects until a file changes)."""
        ...

    def refresh(self, now: datetime) -> bool:
        """Take the result of a finished parse and start the next one if it is time; never waits for an
        import. True when the DAGs changed."""
        ...

    @property
    def parsing(self) -> bool:
        """A parse is under way (its DAGs are not in `dags()` yet)."""
        ...

    @property
    def next_look(self) -> datetime | None:
        """When `refresh` should next be called (None: never needed)."""
        ...

    def close(self) -> None:
        """Stop looking: a parse still under way is abandoned (its result is neither stored nor used)."""
        ...


class FixedDagSource:
    """A given set of DAGs that never changes (`dags test`, backfill, tests)."""

    parsing = False
    next_look = None

    def __init__(self, dags: Mapping[str, SerializedDag]) -> None:
        self._dags = dict(dags)

    def dags(self) -> Mapping[str, SerializedDag]:
        return self._dags

    def refresh(self, now: datetime) -> bool:  # noqa: ARG002 - the DagSource interface: a fixed set never changes
        return False

    def close(self) -> None:
        pass


@dataclass(frozen=True)
class _Parsed:
    """What a finished parse hands over to the tick: the new DAGs, or the error that stopped it."""

    dags: Mapping[str, SerializedDag]
    changed: bool
    error: BaseException | None = None


class FolderDagSource:
    """The DAG folder, parsed in a background thread: files are re-imported (in child processes) only
    when their content changed, and the tick never waits for one.

    `refresh(now)` takes the DAGs of a parse that finished since the last call, and when it is time to look
    again (every `interval_s`) and no parse is under way, starts one in a thread and returns at once. The
    thread alone touches the DagBag; it writes the parse results to the DB (for the CLI and other
    schedulers) before it hands the DAGs over, so a DAG the tick sees already has its `dag` row. A file
    that hangs at import therefore delays only the DAGs of that parse, never the scheduling of the others.
    Looking costs one stat and, for changed files only, one hash per file.

    `refresh_now(now)` parses in the caller's thread and waits for it (tests with a fake clock, and any
    caller that must have the folder's current DAGs before going on).
    """

    def __init__(self, settings: Settings, engine: Engine, *, actor: str, interval_s: float = 0.25) -> None:
        self.engine = engine
        self.actor = actor
        self.interval = timedelta(seconds=interval_s)
        self._bag: DagBag = make_dagbag(settings)
        self._next_look: datetime | None = None
        self._stored = False  # the parse results were written at least once by this source
        self._thread: threading.Thread | None = None
        self._handover: _Parsed | None = None
        self._closed = False
        with session_scope(engine, readonly=True) as session:
            self._bag.seed(stored_files(session, self._bag))
        self._dags: Mapping[str, SerializedDag] = dict(self._bag.dags)

    def dags(self) -> Mapping[str, SerializedDag]:
        return self._dags

    @property
    def parsing(self) -> bool:
        return self._thread is not None

    @property
    def next_look(self) -> datetime | None:
        return self._next_look

    def refresh(self, now: datetime) -> bool:
        changed = self._take_finished()
        if self._next_look is not None and now < self._next_look:
            return changed
        self._next_look = now + self.interval  # while a parse runs: when to look for its result
        if self._thread is None and not self._closed:
            self._thread = threading.Thread(target=self._parse_in_thread, args=(now,), name="dag-parser", daemon=True)
            self._thread.start()
        return changed

    def refresh_now(self, now: datetime) -> bool:
        """Parse the folder in this thread (after any parse under way) and take the result."""
        if self._thread is not None:
            self._thread.join()
        changed = self._take_finished()
        self._next_look = now + self.interval
        self._handover = self._parse(now)
        return self._take_finished() or changed

    def close(self) -> None:
        self._closed = True

    def _parse_in_thread(self, now: datetime) -> None:
        self._handover = self._parse(now)  # the thread's last act: `_take_finished` sees it, then joins

    def _parse(self, now: datetime) -> _Parsed:
        """Re-import changed files and store the results; the DAGs as a new mapping (the old one stays
        as it is for whoever still holds it)."""
        try:
            report = self._bag.refresh(now)
            if (report.changed or not self._stored) and not self._closed:
                with session_scope(self.engine) as session:
                    write_parse_results(session, self._bag, report, actor=self.actor, now=now)
                self._stored = True
            return _Parsed(dict(self._bag.dags), report.changed)
        except BaseException as exc:  # noqa: BLE001 - handed to the tick, which raises it as before
            return _Parsed(self._dags, False, exc)

    def _take_finished(self) -> bool:
        parsed = self._handover
        if parsed is None:
            return False
        if self._thread is not None:
            self._thread.join()
            self._thread = None
        self._handover = None
        if parsed.error is not None:
            raise parsed.error
        self._dags = parsed.dags
        return parsed.changed
