"""Recording an asset event, and the asset-triggered runs it causes, in the caller's transaction.

One function, `record_asset_event`, is the way every event enters: a task's outlet (the worker, in the
transaction that records the try's success), a broker message (the watchers), `dagrunner assets emit`,
a dead letter's replay. It

1. finds the asset by name, then by URI (an event for a name no DAG declares: `UnknownAssetError`);
2. inserts the `asset_event` row; a `dedupe_key` seen before records nothing and returns None (a
   redelivered message), safe under concurrency: the unique index decides, inside a savepoint;
3. audits it (`asset.event`: part C's outbox publishes from that row);
4. queues it for every active DAG whose asset condition names the asset (or the alias it came through);
5. for each such unpaused DAG whose condition now holds over its queue, creates an `asset_triggered` run
   (logical date = the event's time, data interval [when, when], conf {}), links the events that
   triggered it (`dag_run_asset_event`: every queued asset's events since it was first queued) and
   clears that DAG's queue.

A paused DAG keeps its queue (Airflow's behaviour): once unpaused, the next event that makes its
condition hold creates the run. `max_active_runs` does not stop the run from being created: it waits
`queued` until the scheduler's admission lets it run. Consuming DAGs are locked (row lock, sorted by
dag_id) while their queue is read and changed, so two events committed at once on PostgreSQL cannot both
miss a condition they make true together.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any, cast

from sqlalchemy import Table, delete, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from dagrunner.errors import DuplicateRunError, UnknownAssetError
from dagrunner.execution.run_creation import create_run
from dagrunner.loading.serialization import SerializedDag
from dagrunner.persistence.audit import record_event
from dagrunner.persistence.models import (
    Asset,
    AssetAlias,
    AssetDagQueue,
    AssetEvent,
    Dag,
    DagFile,
    DagRunAssetEvent,
    DagRunType,
)
from dagrunner.timetables import DagRunInfo, make_run_id
from dagrunner.timetables.assets import ALIAS_PREFIX, AssetTriggeredTimetable

_QUEUE_T = cast(Table, AssetDagQueue.__table__)


@dataclass(frozen=True)
class RecordedAssetEvent:
    id: int  # asset_event.id
    asset: str  # asset name
    created_runs: tuple[tuple[str, str], ...]  # (dag_id, run_id) of asset-triggered runs it caused


def record_asset_event(
    session: Session,
    asset_name: str,
    *,
    extra: Mapping[str, Any] | None = None,
    source: Mapping[str, Any],
    dedupe_key: str | None = None,
    actor: str,
    when: datetime,
    alias: str | None = None,
) -> RecordedAssetEvent | None:
    """Record one event of `asset_name` (a name or a URI) and the runs it causes (module docstring).
    Nothing is committed: the caller's transaction holds it all. `alias`: the AssetAlias it was added
    through (`outlet_events[alias].add(...)`)."""
    asset = _find_asset(session, asset_name)
    event = AssetEvent(
        asset_id=asset.id,
        alias=alias,
        extra=dict(extra or {}),
        source=dict(source),
        source_dag_id=source.get("dag_id"),
        source_run_id=source.get("run_id"),
        source_task_id=source.get("task_id"),
        source_map_index=int(source.get("map_index", -1) or -1) if source.get("kind") == "task" else -1,
        dedupe_key=dedupe_key,
        timestamp=when,
        created_by=actor,
    )
    if not _insert_event(session, event):
        return None
    record_event(
        session, "asset.event", actor=actor, when=when,
        dag_id=source.get("dag_id"), run_id=source.get("run_id"), task_id=source.get("task_id"),
        reason=f"asset {asset.name} updated",
        detail={"asset": asset.name, "uri": asset.uri, "extra": event.extra, "event_id": event.id,
                "source": dict(source), **({"alias": alias} if alias else {})},
    )  # fmt: skip
    consumers = set(asset.consumers)
    if alias is not None:
        consumers |= set(_alias_consumers(session, alias))
    created = [
        found
        for dag_id in sorted(consumers)
        if (found := _queue_and_trigger(session, dag_id, asset, event, actor=actor, when=when)) is not None
    ]
    session.flush()
    return RecordedAssetEvent(event.id, asset.name, tuple(created))


def _find_asset(session: Session, name: str) -> Asset:
    asset = session.scalars(select(Asset).where(Asset.name == name, Asset.is_active)).first()
    if asset is None:
        asset = session.scalars(select(Asset).where(Asset.uri == name, Asset.is_active)).first()
    if asset is None:
        raise UnknownAssetError(
            f"no DAG declares an asset named {name!r} (nor one with that URI); declare it in a DAG file, e.g. "
            f"`schedule=[Asset({name!r})]` on a consumer or `outlets=[Asset({name!r})]` on a task, and let "
            "the DAG files be parsed again (`dagrunner dags list`), then send the event"
        )
    return asset


def _insert_event(session: Session, event: AssetEvent) -> bool:
    """Insert `event`; False when its dedupe_key was recorded before (also by a concurrent transaction)."""
    if event.dedupe_key is None:
        session.add(event)
        session.flush()
        return True
    if session.scalars(select(AssetEvent.id).where(AssetEvent.dedupe_key == event.dedupe_key)).first() is not None:
        return False
    try:
        with session.begin_nested():
            session.add(event)
            session.flush()
    except IntegrityError:
        session.expunge(event) if event in session else None
        return False
    return True


def _alias_consumers(session: Session, alias: str) -> list[str]:
    row = session.scalars(select(AssetAlias).where(AssetAlias.name == alias)).first()
    return list(row.consumers) if row is not None else []


def _queue_and_trigger(
    session: Session, dag_id: str, asset: Asset, event: AssetEvent, *, actor: str, when: datetime
) -> tuple[str, str] | None:
    """Queue `event` for `dag_id`; create its run when its condition now holds. (dag_id, run_id) or None."""
    dag = session.scalars(select(Dag).where(Dag.dag_id == dag_id).with_for_update()).first()
    if dag is None or not dag.is_active:
        return None
    _enqueue(session, asset.id, dag_id, event.id, when)
    if dag.is_paused:
        return None
    serialized = _serialized_dag(session, dag)
    if serialized is None or not isinstance(serialized.timetable, AssetTriggeredTimetable):
        return None
    queued = session.execute(
        select(AssetDagQueue.asset_id, AssetDagQueue.event_id, Asset.name)
        .join(Asset, Asset.id == AssetDagQueue.asset_id)
        .where(AssetDagQueue.dag_id == dag_id)
    ).all()
    satisfied = {name for _, _, name in queued}
    first_of = {asset_id: first for asset_id, first, _ in queued}
    aliases = session.scalars(
        select(AssetEvent.alias).where(AssetEvent.id.in_(list(first_of.values())), AssetEvent.alias.is_not(None))
    ).all()
    satisfied |= {ALIAS_PREFIX + a for a in aliases if a}
    if event.alias:
        satisfied.add(ALIAS_PREFIX + event.alias)
    if not serialized.timetable.condition.evaluate(satisfied):
        return None
    run = _create_asset_run(session, serialized, event, actor=actor, when=when)
    since = session.execute(select(AssetEvent.id, AssetEvent.asset_id).where(AssetEvent.asset_id.in_(list(first_of))))
    ids = sorted(event_id for event_id, asset_id in since if event_id >= first_of[asset_id])
    session.add_all(DagRunAssetEvent(run_pk=run.id, event_id=i) for i in ids)
    session.execute(delete(AssetDagQueue).where(AssetDagQueue.dag_id == dag_id))
    return dag_id, run.run_id


def _enqueue(session: Session, asset_id: int, dag_id: str, event_id: int, when: datetime) -> None:
    """One queue row per (asset, DAG), keeping the FIRST event queued since the DAG's last asset run (every
    later event of that asset is linked to the run too)."""
    values = {"asset_id": asset_id, "dag_id": dag_id, "event_id": event_id, "created_at": when}
    dialect = session.get_bind().dialect.name
    insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
    session.execute(insert(_QUEUE_T).values(**values).on_conflict_do_nothing(index_elements=["asset_id", "dag_id"]))


def _serialized_dag(session: Session, dag: Dag) -> SerializedDag | None:
    row = session.get(DagFile, dag.fileloc)
    data = (row.serialized or {}).get(dag.dag_id) if row is not None else None
    return SerializedDag.from_dict(data) if data else None


def _create_asset_run(session: Session, dag: SerializedDag, event: AssetEvent, *, actor: str, when: datetime) -> Any:
    info = DagRunInfo.at(when)
    run_id = make_run_id(DagRunType.ASSET_TRIGGERED.value, when)
    try:
        return create_run(session, dag, info, run_type=DagRunType.ASSET_TRIGGERED, actor=actor, now=when, run_id=run_id)
    except DuplicateRunError:  # two events of one instant: the event id keeps the ids apart
        return create_run(session, dag, info, run_type=DagRunType.ASSET_TRIGGERED, actor=actor, now=when,
                          run_id=f"{run_id}_{event.id}")  # fmt: skip
