"""Clearing across DAGs: the task instances that ExternalTaskMarkers among cleared ones reach (Airflow's rule).

A cleared `ExternalTaskMarker` clears its `external_task_id` and everything downstream of it in the run of
`external_dag_id` whose logical date is the marker's rendered `logical_date`; markers among those are
followed in turn, at most the first marker's `recursion_depth` DAGs deep (deeper is an error: too many
tasks, or markers that form a cycle). The template is rendered here, with the cleared run's values only:
`logical_date`, `ds`, `ds_nodash`, `ts`, `run_id`, `data_interval_start`, `data_interval_end`, `dag_run`.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Any

import pendulum
from sqlalchemy.orm import Session

from dagrunner.authoring.templating import build_template_env
from dagrunner.errors import SchedulingError
from dagrunner.loading.serialization import SerializedDag
from dagrunner.persistence.models import DagRun, TaskInstance
from dagrunner.persistence.queries import get_run
from dagrunner.scheduling.operations import select_for_clear


class MarkerRecursionError(SchedulingError):
    """ExternalTaskMarkers lead deeper than their recursion_depth allows."""


Reached = list[tuple[SerializedDag, list[TaskInstance]]]


def follow_markers(
    session: Session, dag: SerializedDag, tis: Sequence[TaskInstance], get_dag: Callable[[str], SerializedDag]
) -> Reached:
    """(DAG, its task instances to clear as well) for every DAG the markers among `tis` reach, in order."""
    seen = {(dag.dag_id, ti.run_id, ti.task_id, ti.map_index) for ti in tis}
    reached: Reached = []
    frontier: Reached = [(dag, list(tis))]
    depth, limit = 0, None
    while frontier:
        following: Reached = []
        for source, source_tis in frontier:
            for ti in source_tis:
                spec = source.task_dict.get(ti.task_id)
                marker = spec.external_marker if spec is not None else None
                if not marker:
                    continue
                limit = limit if limit is not None else int(marker["recursion_depth"])
                if depth >= limit:
                    raise MarkerRecursionError(
                        f"maximum recursion depth {limit} reached for ExternalTaskMarker {ti.task_id!r} of DAG "
                        f"{source.dag_id!r}: the markers clear too many tasks, or form a cycle"
                    )
                target = get_dag(marker["external_dag_id"])
                when = marker_date(marker["logical_date"], get_run(session, source.dag_id, ti.run_id))
                pattern = f"^{re.escape(marker['external_task_id'])}$"
                found = select_for_clear(session, target, task_regex=pattern, start=when, end=when, downstream=True)
                new = [t for t in found if (target.dag_id, t.run_id, t.task_id, t.map_index) not in seen]
                seen |= {(target.dag_id, t.run_id, t.task_id, t.map_index) for t in new}
                if new:
                    reached.append((target, new))
                    following.append((target, new))
        frontier, depth = following, depth + 1
    return reached


def marker_date(template: str, run: DagRun) -> datetime:
    """The marker's `logical_date` template rendered with `run`'s values, as an aware datetime."""
    logical = pendulum.instance(run.logical_date).in_timezone("UTC")
    context: dict[str, Any] = {
        "logical_date": logical,
        "ds": logical.strftime("%Y-%m-%d"),
        "ds_nodash": logical.strftime("%Y%m%d"),
        "ts": logical.isoformat(),
        "run_id": run.run_id,
        "data_interval_start": _utc(run.data_interval_start),
        "data_interval_end": _utc(run.data_interval_end),
        "dag_run": run,
    }
    text = build_template_env().from_string(template).render(context)
    parsed = pendulum.parse(text, tz="UTC")
    if not isinstance(parsed, datetime):
        raise SchedulingError(f"ExternalTaskMarker logical_date {template!r} rendered to {text!r}, not a date and time")
    return parsed


def _utc(value: datetime | None) -> pendulum.DateTime | None:
    return None if value is None else pendulum.instance(value).in_timezone("UTC")
