"""The asset events a try reads when it starts (`attempt.begin`, in the transaction that starts it):
what triggered its asset-triggered run, and its inlets' events. Imported only when a try needs it."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any, cast

from sqlalchemy import Connection, Table, select

from dagrunner.execution.asset_context import AssetEventsRead, AssetEventView
from dagrunner.persistence.models import Asset as AssetRow
from dagrunner.persistence.models import AssetEvent, DagRun, DagRunAssetEvent
from dagrunner.timetables.assets import Asset

#: An inlet's newest events a try is handed (older ones stay in the database).
INLET_EVENTS_LIMIT = 1000

_EVENT_T = cast(Table, AssetEvent.__table__)
_ASSET_T = cast(Table, AssetRow.__table__)
_COLUMNS = (
    _EVENT_T.c.id, _ASSET_T.c.name, _ASSET_T.c.uri, _ASSET_T.c.group, _EVENT_T.c.extra, _EVENT_T.c.timestamp,
    _EVENT_T.c.source_dag_id, _EVENT_T.c.source_task_id, _EVENT_T.c.source_run_id, _EVENT_T.c.source_map_index,
    _EVENT_T.c.source,
)  # fmt: skip


def read_for_try(
    conn: Connection, dag_id: str, run_id: str, *, triggered: bool, inlets: Sequence[str]
) -> AssetEventsRead:
    triggering = _triggering(conn, dag_id, run_id) if triggered else {}
    return AssetEventsRead(triggering=triggering, inlets={name: _inlet(conn, name) for name in inlets})


def _triggering(conn: Connection, dag_id: str, run_id: str) -> dict[str, tuple[AssetEventView, ...]]:
    run_pk = select(DagRun.id).where(DagRun.dag_id == dag_id, DagRun.run_id == run_id).scalar_subquery()
    query = (
        select(*_COLUMNS)
        .join(_ASSET_T, _ASSET_T.c.id == _EVENT_T.c.asset_id)
        .join(DagRunAssetEvent, DagRunAssetEvent.event_id == _EVENT_T.c.id)
        .where(DagRunAssetEvent.run_pk == run_pk)
        .order_by(_EVENT_T.c.id)
    )
    return _grouped(conn.execute(query))


def _inlet(conn: Connection, name: str) -> tuple[AssetEventView, ...]:
    query = (
        select(*_COLUMNS)
        .join(_ASSET_T, _ASSET_T.c.id == _EVENT_T.c.asset_id)
        .where(_ASSET_T.c.name == name)
        .order_by(_EVENT_T.c.id.desc())
        .limit(INLET_EVENTS_LIMIT)
    )
    return tuple(reversed([_view(row) for row in conn.execute(query)]))


def _grouped(rows: Iterable[Any]) -> dict[str, tuple[AssetEventView, ...]]:
    found: dict[str, list[AssetEventView]] = {}
    for row in rows:
        view = _view(row)
        found.setdefault(view.name, []).append(view)
    return {name: tuple(events) for name, events in found.items()}


def _view(row: Any) -> AssetEventView:
    event_id, name, uri, group, extra, timestamp, dag_id, task_id, run_id, map_index, source = row
    return AssetEventView(
        id=event_id, asset=Asset(name, uri, group=group), extra=dict(extra or {}), timestamp=timestamp,
        source_dag_id=dag_id, source_task_id=task_id, source_run_id=run_id, source_map_index=map_index,
        source=dict(source or {}),
    )  # fmt: skip
