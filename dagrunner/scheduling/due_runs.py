"""When each DAG's next scheduled run is due, remembered between ticks.

Asking every DAG's timetable on every tick costs a query and a cron computation per DAG, which grows
with the number of DAGs rather than with the work at hand (1,000 DAGs: most of a tick). So the due time
of each DAG is computed once and only recomputed when something that moves it happens: a run of that DAG
was created or finished, its definition changed, or it was paused or blocked by max_active_runs.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime

from dagrunner.loading.serialization import SerializedDag
from dagrunner.timetables import DagRunInfo

#: Due now but held back (paused, or max_active_runs reached): not offered again until released.
HELD = "held"


@dataclass(frozen=True)
class DueLookups:
    """What DueRuns needs from the database, passed in so that it stays free of queries itself."""

    #: (dags, now) -> the run each DAG's timetable continues from: its latest scheduled run, moved past the
    #: dates right after it that already have a run (`dagruns.continue_from`); DAGs without one left out.
    continue_from: Callable[[Mapping[str, SerializedDag], datetime], Mapping[str, DagRunInfo]]
    #: dag_ids -> those of them that are paused.
    paused: Callable[[list[str]], set[str]]


class DueRuns:
    def __init__(self) -> None:
        self._due: dict[str, datetime | str | None] = {}
        self._keys: dict[str, str] = {}
        #: The definition each key was computed from: a DAG source hands out the same object until the
        #: DAG's file changes, so an unchanged DAG costs a lookup per tick, not a key.
        self._seen: dict[str, SerializedDag] = {}

    def forget(self, dag_ids: Iterable[str]) -> None:
        """Recompute these DAGs next time (a run of theirs was created or finished)."""
        for dag_id in dag_ids:
            self._due.pop(dag_id, None)

    def release_held(self) -> None:
        """Look again at DAGs held back by pause or max_active_runs (on the scheduler's full scan)."""
        for dag_id in [d for d, when in self._due.items() if when == HELD]:
            del self._due[dag_id]

    def due_now(
        self, dags: Mapping[str, SerializedDag], now: datetime, lookups: DueLookups
    ) -> dict[str, SerializedDag]:
        """The schedulable, unpaused DAGs whose next run is due at `now`."""
        self._drop_changed(dags)
        unknown = [d for d, dag in dags.items() if d not in self._due and dag.timetable.can_be_scheduled]
        if unknown:
            last = lookups.continue_from({d: dags[d] for d in unknown}, now)
            for dag_id in unknown:
                dag = dags[dag_id]
                info = dag.timetable.next_dagrun_info(
                    last=last.get(dag_id), start_date=dag.start_date, end_date=dag.end_date, catchup=dag.catchup,
                    now=now,
                )  # fmt: skip
                self._due[dag_id] = info.run_after if info else None
        due = [d for d, when in self._due.items() if isinstance(when, datetime) and when <= now and d in dags]
        if not due:
            return {}
        paused = lookups.paused(due)
        for dag_id in paused:
            self._due[dag_id] = HELD
        return {d: dags[d] for d in due if d not in paused}

    def hold(self, dag_ids: Iterable[str]) -> None:
        for dag_id in dag_ids:
            self._due[dag_id] = HELD

    def earliest(self) -> datetime | None:
        times = [when for when in self._due.values() if isinstance(when, datetime)]
        return min(times) if times else None

    def _drop_changed(self, dags: Mapping[str, SerializedDag]) -> None:
        """Forget DAGs whose schedule-relevant definition changed (or that are gone)."""
        for dag_id in [d for d in self._due if d not in dags]:
            del self._due[dag_id]
            self._keys.pop(dag_id, None)
            self._seen.pop(dag_id, None)
        for dag_id, dag in dags.items():
            if self._seen.get(dag_id) is dag:
                continue
            self._seen[dag_id] = dag
            key = json.dumps(
                [dag.timetable_data, str(dag.start_date), str(dag.end_date), dag.catchup, dag.max_active_runs],
                sort_keys=True, default=str,
            )  # fmt: skip
            if self._keys.get(dag_id) != key:
                self._keys[dag_id] = key
                self._due.pop(dag_id, None)
