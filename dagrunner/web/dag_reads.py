"""What the DAG pages show, read in a fixed, small number of queries however many DAGs, runs or tasks.

The DAG list is one query for the `dag` rows, one for the files' hashes and import errors, and one for the
last runs of the DAGs on the page (a window function, not a query per DAG). The grid is one query for the
runs and one for their task instances. The DAG structure comes from the catalog (`dag_catalog`), so nothing
here imports a DAG file.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from dagrunner.errors import DagNotFoundError
from dagrunner.loading.serialization import SerializedDag, TaskSpec
from dagrunner.persistence.models import Dag, DagFile, DagRun, TaskInstance
from dagrunner.web.dag_catalog import DagCatalog, ImportErrorView
from dagrunner.web.graph_layout import layout
from dagrunner.web.redact import redact
from dagrunner.web.run_reads import run_json, summary_state

#: How many of its latest runs a DAG list item shows.
RECENT_RUNS = 5


@dataclass(frozen=True)
class DagFilter:
    """The DAG list's filters: a case-insensitive part of the id or a tag, paused or not, one tag."""

    search: str | None = None
    paused: bool | None = None
    tag: str | None = None
    include_inactive: bool = False

    def keeps(self, dag_id: str, is_paused: bool, is_active: bool, tags: Collection[str]) -> bool:
        if not is_active and not self.include_inactive:
            return False
        if self.paused is not None and is_paused != self.paused:
            return False
        if self.tag is not None and self.tag not in tags:
            return False
        if self.search:
            needle = self.search.casefold()
            return needle in dag_id.casefold() or any(needle in t.casefold() for t in tags)
        return True


def list_dags(
    session: Session, catalog: DagCatalog, now: datetime, where: DagFilter, *, limit: int, offset: int
) -> tuple[list[dict[str, Any]], int]:
    """One page of DAG list items by dag_id, and how many DAGs pass the filter."""
    columns = (Dag.dag_id, Dag.fileloc, Dag.is_paused, Dag.is_active, Dag.schedule_description, Dag.tags)
    rows = [
        r for r in session.execute(select(*columns).order_by(Dag.dag_id)) if where.keeps(r[0], r[2], r[3], r[5] or [])
    ]
    page = rows[offset : offset + limit]
    if not page:
        return [], len(rows)
    next_runs = catalog.next_runs(session, [r.dag_id for r in page if r.is_active], now)
    errors = _file_errors(session, {r.fileloc for r in page})
    recent = recent_runs(session, [r.dag_id for r in page])
    items = [
        _item(
            r.dag_id,
            r.fileloc,
            bool(r.is_paused),
            bool(r.is_active),
            r.schedule_description,
            r.tags or [],
            next_runs.get(r.dag_id),
            recent.get(r.dag_id, []),
            errors.get(r.fileloc),
        )  # fmt: skip
        for r in page
    ]
    return items, len(rows)


def dag_item(session: Session, catalog: DagCatalog, dag_id: str, now: datetime) -> dict[str, Any]:
    """The list item of one DAG (DagNotFoundError when the database has never seen it)."""
    row = session.get(Dag, dag_id)
    if row is None:
        raise DagNotFoundError(f"no DAG {dag_id!r}; GET /api/v1/dags lists the known ones")
    nxt = catalog.next_runs(session, [dag_id], now).get(dag_id) if row.is_active else None
    error = _file_errors(session, {row.fileloc}).get(row.fileloc)
    return _item(dag_id, row.fileloc, bool(row.is_paused), bool(row.is_active), row.schedule_description,
                 row.tags or [], nxt, recent_runs(session, [dag_id]).get(dag_id, []), error)  # fmt: skip


def _item(
    dag_id: str, fileloc: str, paused: bool, active: bool, schedule: str | None, tags: list[str],
    nxt: datetime | None, recent: list[dict[str, Any]], error: ImportErrorView | None,
) -> dict[str, Any]:  # fmt: skip
    return {
        "dag_id": dag_id,
        "display_name": dag_id,
        "file": fileloc,
        "schedule": schedule,
        "next_run": nxt.isoformat() if nxt is not None else None,
        "paused": paused,
        "is_active": active,
        "tags": list(tags),
        "owner": None,
        "recent_runs": recent,
        "import_error": error.to_json() if error is not None else None,
    }


def _file_errors(session: Session, paths: Iterable[str]) -> dict[str, ImportErrorView]:
    query = select(DagFile.path, DagFile.import_error).where(
        DagFile.path.in_(list(paths)), DagFile.import_error.is_not(None)
    )
    return {path: ImportErrorView.parse(path, stored) for path, stored in session.execute(query)}


def recent_runs(
    session: Session, dag_ids: Collection[str], per_dag: int = RECENT_RUNS
) -> dict[str, list[dict[str, Any]]]:
    """dag_id -> its latest `per_dag` runs ({"run_id", "state", "logical_date"}, newest first), in one query."""
    if not dag_ids:
        return {}
    rank = (
        func.row_number()
        .over(partition_by=DagRun.dag_id, order_by=(DagRun.logical_date.desc(), DagRun.id.desc()))
        .label("rank")
    )
    ranked = (
        select(DagRun.dag_id, DagRun.run_id, DagRun.state, DagRun.logical_date, rank)
        .where(DagRun.dag_id.in_(list(dag_ids)))
        .subquery()
    )
    query = select(ranked.c.dag_id, ranked.c.run_id, ranked.c.state, ranked.c.logical_date).where(
        ranked.c.rank <= per_dag
    )
    found: dict[str, list[tuple[datetime, dict[str, Any]]]] = {}
    for dag_id, run_id, state, logical_date in session.execute(query.order_by(ranked.c.dag_id, ranked.c.rank)):
        found.setdefault(dag_id, []).append(
            (logical_date, {"run_id": run_id, "state": state.value, "logical_date": logical_date.isoformat()})
        )
    return {dag_id: [run for _, run in runs] for dag_id, runs in found.items()}


# --- detail ------------------------------------------------------------------------------------------------


def dag_detail(session: Session, catalog: DagCatalog, dag_id: str, now: datetime) -> dict[str, Any]:
    """The list item plus what the DAG page shows: description, docs, the trigger form's params, the tasks."""
    item = dag_item(session, catalog, dag_id, now)
    dag = catalog.dag(session, dag_id)
    return {
        **item,
        "description": dag.description,
        "doc_md": dag.doc_md,
        "params": param_forms(dag),
        "tasks": [task_json(dag, dag.task(task_id)) for task_id in layout(dag).order],
        "max_active_runs": dag.max_active_runs,
    }


def param_forms(dag: SerializedDag) -> dict[str, dict[str, Any]]:
    """name -> {"default", "description", "schema", "title"}: the trigger form, defaults redacted."""
    forms: dict[str, dict[str, Any]] = {}
    for name, schema in dag_param_schemas(dag).items():
        shown = redact({name: schema.get("default")})[name]
        forms[name] = {
            "default": shown,
            "description": schema.get("description"),
            "schema": {**json_schema(schema), **({"default": shown} if "default" in schema else {})},
            "title": schema.get("title") or name,
        }
    return forms


def dag_param_schemas(dag: SerializedDag) -> dict[str, dict[str, Any]]:
    """name -> the Param's stored schema (with its "default" when it has one)."""
    stored: Mapping[str, Any] = dag.param_schemas
    if stored:
        return {name: dict(schema) for name, schema in stored.items()}
    return {name: {"default": value} for name, value in dag.params.items()}


_TYPE_OF = ((bool, "boolean"), (int, "integer"), (float, "number"), (str, "string"), (list, "array"), (dict, "object"))


def json_schema(schema: Mapping[str, Any]) -> dict[str, Any]:
    """The JSON Schema of a Param: its keywords; a plain default's type when the Param names none."""
    out = {k: v for k, v in schema.items() if k != "default"}
    if "type" not in out and schema.get("default") is not None:
        kind = next((name for cls, name in _TYPE_OF if isinstance(schema["default"], cls)), None)
        if kind is not None:
            out["type"] = kind
    return out


def task_json(dag: SerializedDag, spec: TaskSpec) -> dict[str, Any]:
    return {
        "task_id": spec.task_id,
        "operator": spec.operator,
        "upstream": sorted(dag.graph.predecessors(spec.task_id)),
        "downstream": sorted(dag.graph.successors(spec.task_id)),
        "trigger_rule": spec.trigger_rule.value,
        "pool": spec.pool,
        "queue": spec.queue,
        "retries": spec.retries,
        "is_mapped": spec.is_mapped,
        "group": spec.task_group_id,
        "doc_md": spec.doc_md,
        "is_setup": spec.is_setup,
        "is_teardown": spec.is_teardown,
    }


# --- graph and grid ------------------------------------------------------------------------------------------


def graph_json(dag: SerializedDag, states: Mapping[str, str] | None) -> dict[str, Any]:
    """Nodes with their layer and place in it (the UI draws from these), edges, and the run's states."""
    placed = layout(dag)
    nodes = [
        {
            "id": task_id,
            "label": short_label(dag, task_id),
            "operator": dag.task(task_id).operator,
            "layer": placed.layer[task_id],
            "order": placed.position[task_id],
            "group": dag.task(task_id).task_group_id,
            "is_mapped": dag.task(task_id).is_mapped,
            "state": states.get(task_id) if states is not None else None,
        }
        for task_id in placed.order
    ]
    edges = [
        {"source": up, "target": task_id, "label": None}
        for task_id in placed.order
        for up in sorted(dag.graph.predecessors(task_id), key=placed.rank.__getitem__)
    ]
    return {"nodes": nodes, "edges": edges}


def run_states(session: Session, dag_id: str, run_id: str) -> dict[str, str]:
    """task_id -> its state in the run (mapped: the summary of its instances)."""
    query = select(TaskInstance.task_id, TaskInstance.state).where(
        TaskInstance.dag_id == dag_id, TaskInstance.run_id == run_id
    )
    by_task: dict[str, list[str]] = {}
    for task_id, state in session.execute(query):
        by_task.setdefault(task_id, []).append(state.value)
    return {task_id: summary_state(states) for task_id, states in by_task.items()}


def grid_json(session: Session, dag: SerializedDag, limit: int) -> dict[str, Any]:
    """The latest `limit` runs (oldest first) by the DAG's tasks (upstream first), one cell each."""
    runs = list(
        session.scalars(
            select(DagRun)
            .where(DagRun.dag_id == dag.dag_id)
            .order_by(DagRun.logical_date.desc(), DagRun.id.desc())
            .limit(limit)
        )
    )
    runs.reverse()
    cells: dict[str, dict[str, dict[str, Any]]] = {run.run_id: {} for run in runs}
    if runs:
        query = select(TaskInstance.run_id, TaskInstance.task_id, TaskInstance.map_index, TaskInstance.state,
                       TaskInstance.try_number).where(TaskInstance.dag_id == dag.dag_id,
                                                      TaskInstance.run_id.in_(list(cells)))  # fmt: skip
        found: dict[tuple[str, str], list[tuple[int, str, int]]] = {}
        for run_id, task_id, map_index, state, try_number in session.execute(query):
            found.setdefault((run_id, task_id), []).append((map_index, state.value, try_number))
        for (run_id, task_id), instances in found.items():
            cells[run_id][task_id] = _cell(instances)
    order = list(layout(dag).order)
    extra = sorted({task_id for row in cells.values() for task_id in row} - set(order))  # tasks since removed
    tasks = [
        {
            "task_id": t,
            "label": short_label(dag, t),
            "group": dag.task(t).task_group_id,
            "is_mapped": dag.task(t).is_mapped,
        }
        for t in order
    ] + [{"task_id": t, "label": t, "group": None, "is_mapped": False} for t in extra]
    return {"dag_id": dag.dag_id, "tasks": tasks, "runs": [redact_run(run_json(run)) for run in runs], "cells": cells}


def _cell(instances: list[tuple[int, str, int]]) -> dict[str, Any]:
    mapped = [i for i in instances if i[0] >= 0]
    if not mapped:
        _, state, try_number = instances[0]
        return {"state": state, "try_number": try_number, "map_count": None}
    return {
        "state": summary_state([s for _, s, _ in mapped]),
        "try_number": max(t for _, _, t in mapped),
        "map_count": len(mapped),
    }


def short_label(dag: SerializedDag, task_id: str) -> str:
    """A grouped task's id without its group's prefix (`extract.load` -> `load`): the group is shown beside it."""
    group = dag.task(task_id).task_group_id
    return task_id[len(group) + 1 :] if group and task_id.startswith(f"{group}.") else task_id


def redact_run(run: dict[str, Any]) -> dict[str, Any]:
    return {**run, "conf": redact(run.get("conf") or {})}
