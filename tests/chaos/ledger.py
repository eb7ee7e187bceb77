"""An external ledger written by task bodies, and the invariants the chaos tests check against it.

A DAG under test pastes `LEDGER_SNIPPET` and calls `note("start", ti, run_id)` / `note("end", ti, run_id)`
from its task bodies (an `@task` function receives `ti` and `run_id` when it names them); each call appends one line `event dag_id run_id task_id map_index try_number pid` to the file named by the
environment variable `DAGRUNNER_LEDGER` (O_APPEND writes of one short line are atomic). After the chaos,
`check_against_db` compares the ledger with `task_instance`, `task_try` and `audit_log`:

- every task instance finished (no `queued`/`running`/`scheduled` left) and every run finished;
- every body that ended did so once per try, and a try never ran twice (one `start` per try number);
- no two tries of one instance ran at the same time (their ledger intervals do not overlap);
- the audit chain of every instance is continuous: each `task.state` row's old state is the new state of
  the row before it, starting from `task.created`, ending in the instance's current state.
"""

from __future__ import annotations

import os
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import select

from dagrunner.persistence.engine import make_engine, session_scope
from dagrunner.persistence.models import AuditLog, DagRun, TaskInstance

ENV = "DAGRUNNER_LEDGER"

#: Paste into a DAG file: `note(event)` from inside a task body.
LEDGER_SNIPPET = """
import os as _os

def note(event, ti, run_id):
    line = f"{event} {ti.dag_id} {run_id} {ti.task_id} {ti.map_index} {ti.try_number} {_os.getpid()}\\n"
    fd = _os.open(_os.environ["DAGRUNNER_LEDGER"], _os.O_WRONLY | _os.O_APPEND | _os.O_CREAT, 0o644)
    try:
        _os.write(fd, line.encode())
    finally:
        _os.close(fd)
"""


@dataclass(frozen=True)
class Entry:
    event: str
    dag_id: str
    run_id: str
    task_id: str
    map_index: int
    try_number: int
    pid: int
    line: int

    @property
    def instance(self) -> tuple[str, str, str, int]:
        return (self.dag_id, self.run_id, self.task_id, self.map_index)


def read(path: Path) -> list[Entry]:
    if not path.exists():
        return []
    entries = []
    content = path.read_text()
    if not content.endswith("\n"):  # a line being appended as we read (a reader may see half of a write)
        content = content.rpartition("\n")[0]
    for number, text in enumerate(content.splitlines()):
        event, dag_id, run_id, task_id, map_index, try_number, pid = text.split()
        entries.append(Entry(event, dag_id, run_id, task_id, int(map_index), int(try_number), int(pid), number))
    return entries


def ledger_env(path: Path) -> dict[str, str]:
    return {**os.environ, ENV: str(path)}


def check_against_db(db_url: str, path: Path) -> list[str]:
    """Every invariant in the module docstring that does not hold, as one line each (empty: all hold)."""
    problems: list[str] = []
    entries = read(path)
    starts: dict[tuple[tuple[str, str, str, int], int], list[Entry]] = defaultdict(list)
    for entry in entries:
        if entry.event == "start":
            starts[(entry.instance, entry.try_number)].append(entry)
    for (instance, try_number), found in starts.items():
        if len(found) > 1:
            problems.append(f"{instance} try {try_number} started {len(found)} times (pids {[e.pid for e in found]})")
    problems += _overlaps(entries)
    engine = make_engine(db_url)
    try:
        with session_scope(engine, readonly=True) as session:
            problems += _unfinished(session)
            problems += _audit_gaps(session)
    finally:
        engine.dispose()
    return problems


def _overlaps(entries: list[Entry]) -> list[str]:
    """Two tries of one instance whose start..end spans in the ledger overlap."""
    spans: dict[tuple[str, str, str, int], list[tuple[int, int, int]]] = defaultdict(list)
    open_: dict[tuple[tuple[str, str, str, int], int], int] = {}
    for entry in entries:
        key = (entry.instance, entry.try_number)
        if entry.event == "start":
            open_[key] = entry.line
        elif entry.event == "end" and key in open_:
            spans[entry.instance].append((open_.pop(key), entry.line, entry.try_number))
    problems = []
    for instance, items in spans.items():
        items.sort()
        for (_, end_a, try_a), (start_b, _, try_b) in zip(items, items[1:], strict=False):
            if start_b < end_a:
                problems.append(f"{instance}: tries {try_a} and {try_b} ran at the same time")
    return problems


def _unfinished(session: object) -> list[str]:
    from sqlalchemy.orm import Session

    assert isinstance(session, Session)
    problems = []
    for run in session.scalars(select(DagRun)):
        if run.state.value not in ("success", "failed"):
            problems.append(f"run {run.dag_id}/{run.run_id} is {run.state.value}")
    for ti in session.scalars(select(TaskInstance)):
        if ti.state.value in ("queued", "running", "scheduled", "none", "up_for_retry"):
            problems.append(f"{ti.label()} is {ti.state.value}")
    return problems


def _audit_gaps(session: object) -> list[str]:
    from sqlalchemy.orm import Session

    assert isinstance(session, Session)
    states: dict[tuple[str | None, str | None, str | None, int | None], str | None] = {}
    problems = []
    events = ("task.created", "task.state", "task.expanded")
    for row in session.scalars(select(AuditLog).where(AuditLog.event.in_(events)).order_by(AuditLog.id)):
        key = (row.dag_id, row.run_id, row.task_id, row.map_index)
        if row.event == "task.created":
            states[key] = row.new_state
        elif row.event == "task.expanded":  # the placeholder (map index -1) became map index 0
            states[key] = states.pop((row.dag_id, row.run_id, row.task_id, -1), None)
        else:
            if states.get(key) != row.old_state:
                problems.append(f"{key}: audit says {row.old_state} -> {row.new_state} after {states.get(key)}")
            states[key] = row.new_state
    for ti in session.scalars(select(TaskInstance)):
        key = (ti.dag_id, ti.run_id, ti.task_id, ti.map_index)
        if states.get(key) != ti.state.value:
            problems.append(f"{key}: is {ti.state.value} but its audit chain ends at {states.get(key)}")
    return problems
