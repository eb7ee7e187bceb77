"""The transactional outbox: published events written with their audit rows, and the relay's reads and writes.

Writing (`outbox_rows`, `INSERT_OUTBOX`) is called by `persistence.audit` only: every audit row of a
published event (`task.state`, `run.state`, `run.created`, `asset.event`) gets one outbox row in the same
multi-row INSERT, so the change, its audit row and its event commit together or not at all. The hot path
pays one extra INSERT per audit insert that has published rows, and a UUID per row; no SELECT.

Reading and delivery state (`pending`, `take_lease`, `advance`, `prune`, ...) serve the relay
(`scheduling.outbox_relay`) and `dagrunner events outbox`. A row becomes a CloudEvent with `cloud_event`.

Delivery order is outbox id order. On PostgreSQL ids are taken at INSERT but become visible at COMMIT,
so a row with a lower id can appear after a higher one was read; the relay therefore only delivers rows
up to a *settled* id: the highest id visible at a moment after which every transaction then in flight
has ended (`settle_probe`). SQLite has one writer at a time, so every visible row is settled.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, cast

from sqlalchemy import Connection, Table, delete, func, insert, or_, select, text, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from dagrunner.persistence.models import Outbox, OutboxSink

Db = Session | Connection

OUTBOX_T = cast(Table, Outbox.__table__)
SINK_T = cast(Table, OutboxSink.__table__)
INSERT_OUTBOX = insert(OUTBOX_T)
TYPE_PREFIX = "dagrunner."
#: The pseudo-sink whose progress is the listener plugins'.
LISTENERS = "@listeners"

#: Audit events that are published, each as one outbox row.
PUBLISHED = frozenset({"task.state", "run.state", "run.created", "asset.event"})

#: A task instance's new state -> the verb of its CloudEvent type (`dagrunner.task_instance.<verb>`).
TASK_VERBS: Mapping[str, str] = {
    "none": "cleared", "scheduled": "scheduled", "queued": "queued", "running": "running",
    "success": "succeeded", "failed": "failed", "up_for_retry": "up_for_retry",
    "up_for_reschedule": "up_for_reschedule", "upstream_failed": "upstream_failed", "skipped": "skipped",
    "removed": "removed", "restarting": "restarting", "deferred": "deferred",
}  # fmt: skip
#: A run's new state -> the verb of its CloudEvent type (`dagrunner.dag_run.<verb>`).
RUN_VERBS: Mapping[str, str] = {"queued": "queued", "running": "running", "success": "succeeded", "failed": "failed"}
#: Every CloudEvent type dagrunner publishes (without the `dagrunner.` prefix), for docs and filters.
ALL_TYPES: tuple[str, ...] = (
    *(f"task_instance.{verb}" for verb in TASK_VERBS.values()),
    *(f"dag_run.{verb}" for verb in RUN_VERBS.values()),
    "asset.updated",
)

_USERINFO = re.compile(r"(://[^/:@\s]*:)[^@/\s]*@")


def mask_userinfo(value: Any) -> Any:
    """A URL with its password replaced by `***` (anything else as it is): asset URIs and broker URLs."""
    return _USERINFO.sub(r"\1***@", value) if isinstance(value, str) else value


# --- writing: one outbox row per published audit row --------------------------------------------------


def outbox_rows(audit_rows: Iterable[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """The outbox rows of the published audit rows among `audit_rows` (in the same order)."""
    return [_row(a) for a in audit_rows if a["event"] in PUBLISHED]


def _row(a: Mapping[str, Any]) -> dict[str, Any]:
    event, dag_id, run_id = a["event"], a["dag_id"], a["run_id"]
    old, new = a["old_state"], a["new_state"]
    if event == "asset.event":
        detail = a["detail"] or {}
        source = detail.get("source")
        data: dict[str, Any] = {
            "asset": detail.get("asset"), "uri": mask_userinfo(detail.get("uri")), "extra": detail.get("extra"),
            "asset_event_id": detail.get("event_id"),
            "source": {k: mask_userinfo(v) for k, v in source.items()} if isinstance(source, dict) else source,
        }  # fmt: skip
        kind, subject = "asset.updated", str(detail.get("asset") or "")
    else:
        task_id, map_index = a["task_id"], a["map_index"]
        data = {"dag_id": dag_id, "run_id": run_id}
        if event == "task.state":
            kind = f"task_instance.{TASK_VERBS.get(new, new)}"
            data.update(task_id=task_id, map_index=map_index, try_number=a["try_number"])
            subject = f"{dag_id}/{run_id}/{task_id}" + (
                f"/{map_index}" if map_index is not None and map_index >= 0 else ""
            )
        else:
            kind, subject = f"dag_run.{RUN_VERBS.get(new, new)}", f"{dag_id}/{run_id}"
        data.update(old_state=old, new_state=new, reason=a["reason"])
    return {"event_id": str(uuid.uuid4()), "type": kind, "subject": subject, "created_at": a["ts"],
            "dag_id": dag_id, "run_id": run_id, "data": data}  # fmt: skip


# --- a row as a CloudEvent -----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class OutboxEvent:
    """One pending outbox row, as the relay hands it to sinks and listeners."""

    id: int
    event_id: str
    type: str  # with the `dagrunner.` prefix
    subject: str
    time: datetime
    dag_id: str | None
    run_id: str | None
    data: Mapping[str, Any]

    @property
    def verb(self) -> str:
        """The last word of the type: `succeeded`, `queued`, `updated`."""
        return self.type.rsplit(".", 1)[-1]

    def cloud_event(self, source: str) -> dict[str, Any]:
        """The CloudEvents 1.0 structured-mode JSON object of this event."""
        return {
            "specversion": "1.0", "id": self.event_id, "source": source, "type": self.type,
            "subject": self.subject, "time": _rfc3339(self.time), "datacontenttype": "application/json",
            "data": dict(self.data),
        }  # fmt: skip


def _rfc3339(when: datetime) -> str:
    return when.isoformat(timespec="microseconds").replace("+00:00", "Z")


_PENDING_COLUMNS = (OUTBOX_T.c.id, OUTBOX_T.c.event_id, OUTBOX_T.c.type, OUTBOX_T.c.subject, OUTBOX_T.c.created_at,
                    OUTBOX_T.c.dag_id, OUTBOX_T.c.run_id, OUTBOX_T.c.data)  # fmt: skip


def pending(db: Db, after: int, through: int | None, limit: int) -> list[OutboxEvent]:
    """Up to `limit` rows with `after < id <= through` (no upper bound when None), in id order."""
    query = select(*_PENDING_COLUMNS).where(OUTBOX_T.c.id > after)
    if through is not None:
        query = query.where(OUTBOX_T.c.id <= through)
    rows = db.execute(query.order_by(OUTBOX_T.c.id).limit(limit))
    return [OutboxEvent(r.id, r.event_id, TYPE_PREFIX + r.type, r.subject, r.created_at, r.dag_id, r.run_id, r.data)
            for r in rows]  # fmt: skip


# --- what is settled (see the module docstring) ------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Probe:
    """The highest visible id, and (PostgreSQL) the transaction horizon that must pass before it is settled."""

    max_id: int
    xmax: int | None  # None: settled now (SQLite, or no transaction was in flight)


def settle_probe(db: Db) -> Probe:
    """The highest outbox id visible now and what must end before every lower id is known."""
    bind = db.get_bind() if isinstance(db, Session) else db
    if bind.dialect.name != "postgresql":
        return Probe(int(db.execute(select(func.coalesce(func.max(OUTBOX_T.c.id), 0))).scalar_one()), None)
    row = db.execute(text(
        "SELECT pg_snapshot_xmin(pg_current_snapshot())::text::bigint AS xmin, "
        "pg_snapshot_xmax(pg_current_snapshot())::text::bigint AS xmax, "
        "(SELECT coalesce(max(id), 0) FROM outbox) AS max_id"
    )).one()  # fmt: skip
    return Probe(int(row.max_id), None if row.xmin >= row.xmax else int(row.xmax))


def horizon_passed(db: Db, xmax: int) -> bool:
    """Every transaction in flight when `xmax` was read has ended (PostgreSQL)."""
    xmin = db.execute(text("SELECT pg_snapshot_xmin(pg_current_snapshot())::text::bigint")).scalar_one()
    return int(xmin) >= xmax


# --- per-sink delivery state ------------------------------------------------------------------------------


def ensure_sinks(db: Db, names: Sequence[str]) -> None:
    """Create the state rows of sinks seen for the first time (a new sink starts at the oldest pending row)."""
    known = set(db.execute(select(SINK_T.c.name).where(SINK_T.c.name.in_(names))).scalars())
    for name in names:
        if name in known:
            continue
        try:
            with db.begin_nested():
                db.execute(insert(SINK_T).values(name=name, delivered_through=0, delivered_count=0, attempts=0))
        except IntegrityError:
            pass  # another relay created it meanwhile


def take_lease(db: Db, name: str, owner: str, now: datetime, lease: timedelta) -> bool:
    """Hold (or renew) the sink's lease until `now + lease`; False when another live relay holds it."""
    held = SINK_T.c.owner == owner
    free = or_(SINK_T.c.owner.is_(None), SINK_T.c.lease_until.is_(None), SINK_T.c.lease_until < now)
    done = db.execute(
        update(SINK_T).where(SINK_T.c.name == name, or_(held, free)).values(owner=owner, lease_until=now + lease)
    )
    return bool(getattr(done, "rowcount", 0))


def release_lease(db: Db, name: str, owner: str) -> None:
    db.execute(
        update(SINK_T).where(SINK_T.c.name == name, SINK_T.c.owner == owner).values(owner=None, lease_until=None)
    )


@dataclass(frozen=True, slots=True)
class SinkState:
    name: str
    delivered_through: int
    delivered_count: int
    last_delivered_at: datetime | None
    owner: str | None
    lease_until: datetime | None
    failing_since: datetime | None
    attempts: int
    last_error: str | None
    last_error_at: datetime | None
    next_retry_at: datetime | None


def sink_state(db: Db, name: str) -> SinkState | None:
    row = db.execute(select(SINK_T).where(SINK_T.c.name == name)).first()
    return None if row is None else SinkState(**row._mapping)


def advance(db: Db, name: str, owner: str, *, through: int, delivered: int, now: datetime) -> bool:
    """Record that the sink has every row up to `through` (`delivered` of them were sent, the rest filtered
    out), and that it works: any failure episode ends. False when the lease was lost meanwhile."""
    values: dict[str, Any] = {"delivered_through": through, "delivered_count": SINK_T.c.delivered_count + delivered,
                              "failing_since": None, "attempts": 0, "next_retry_at": None}  # fmt: skip
    if delivered:
        values["last_delivered_at"] = now
    done = db.execute(update(SINK_T).where(SINK_T.c.name == name, SINK_T.c.owner == owner).values(values))
    return bool(getattr(done, "rowcount", 0))


def record_failure(db: Db, name: str, owner: str, *, error: str, now: datetime, retry_at: datetime) -> None:
    """One more failed attempt of the sink's oldest pending row; it is tried again at `retry_at`."""
    db.execute(
        update(SINK_T)
        .where(SINK_T.c.name == name, SINK_T.c.owner == owner)
        .values(failing_since=func.coalesce(SINK_T.c.failing_since, now), attempts=SINK_T.c.attempts + 1,
                last_error=error[:2000], last_error_at=now, next_retry_at=retry_at)
    )  # fmt: skip


def prune(db: Db, through: int) -> int:
    """Delete the rows every sink has (`id <= through`); how many went."""
    return int(getattr(db.execute(delete(OUTBOX_T).where(OUTBOX_T.c.id <= through)), "rowcount", 0) or 0)


# --- `dagrunner events outbox` --------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class SinkLag:
    """One sink's lag as `events outbox` shows it."""

    name: str
    pending: int
    oldest_pending: datetime | None
    last_delivered_at: datetime | None
    delivered_count: int
    failing_since: datetime | None
    attempts: int
    last_error: str | None
    next_retry_at: datetime | None
    owner: str | None

    def to_json(self, now: datetime) -> dict[str, Any]:
        def iso(when: datetime | None) -> str | None:
            return None if when is None else when.isoformat()

        age = None if self.oldest_pending is None else max(0.0, (now - self.oldest_pending).total_seconds())
        return {
            "sink": self.name, "pending": self.pending, "oldest_pending_age_s": age,
            "last_delivered_at": iso(self.last_delivered_at), "delivered": self.delivered_count,
            "failing_since": iso(self.failing_since), "attempts": self.attempts, "last_error": self.last_error,
            "next_retry_at": iso(self.next_retry_at), "owner": self.owner,
        }  # fmt: skip


def sink_lags(db: Db, names: Sequence[str]) -> list[SinkLag]:
    """Pending rows (counted from each sink's progress; its filters are not applied), the oldest one's time,
    and the delivery state of every named sink and of every sink with a state row."""
    states = {row.name: row for row in db.execute(select(SINK_T))}
    out = []
    for name in dict.fromkeys([*names, *sorted(states)]):
        state = states.get(name)
        after = state.delivered_through if state is not None else 0
        count, oldest = db.execute(
            select(func.count(), func.min(OUTBOX_T.c.created_at)).where(OUTBOX_T.c.id > after)
        ).one()
        if state is None:
            out.append(SinkLag(name, int(count), oldest, None, 0, None, 0, None, None, None))
            continue
        out.append(SinkLag(
            name, int(count), oldest, state.last_delivered_at, state.delivered_count, state.failing_since,
            state.attempts, state.last_error, state.next_retry_at, state.owner,
        ))  # fmt: skip
    return out


def outbox_size(db: Db) -> tuple[int, datetime | None]:
    """Rows in the outbox and the oldest one's time."""
    count, oldest = db.execute(select(func.count(), func.min(OUTBOX_T.c.created_at))).one()
    return int(count), oldest
