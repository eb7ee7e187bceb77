"""/api/v1 endpoints: DAGs (list, detail, pause, graph, grid) and the DAG files' import errors.

Everything here reads the DAGs the scheduler parsed into the database (`web.dag_catalog`); the api-server
never imports a DAG file. Pausing goes through `audit.set_paused`, as `dagrunner dags pause` does.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query
from pydantic import BaseModel, Field

from dagrunner.persistence.audit import set_paused
from dagrunner.web.dag_catalog import catalog_of, import_errors
from dagrunner.web.dag_reads import DagFilter, dag_detail, dag_item, graph_json, grid_json, list_dags, run_states
from dagrunner.web.deps import Operator, PageArgs, Viewer, Web
from dagrunner.web.schemas import DagDetail, DagItem, DagPage, Graph, Grid, ImportErrorPage
from dagrunner.web.validation import Id, IdFilter

router = APIRouter(tags=["dags"])


@router.get("/dags", response_model=DagPage)
def get_dags(
    state: Web,
    _user: Viewer,
    page: PageArgs,
    search: Annotated[str | None, Query(max_length=250, description="Part of the dag_id or a tag.")] = None,
    paused: Annotated[bool | None, Query(description="Only paused (true) or unpaused (false) DAGs.")] = None,
    tag: Annotated[str | None, Query(max_length=250, description="Only DAGs with this tag.")] = None,
    include_inactive: Annotated[bool, Query(description="Also DAGs no parsed file defines any more.")] = False,
) -> dict[str, Any]:
    """The DAGs by dag_id: schedule in words, next run, paused, tags, their latest runs, import error."""
    where = DagFilter(search=search or None, paused=paused, tag=tag or None, include_inactive=include_inactive)
    with state.read() as session:
        items, total = list_dags(session, catalog_of(state), state.now(), where, limit=page.limit,
                                 offset=page.offset)  # fmt: skip
    return page.page(items, total)


@router.get("/dags/{dag_id}", response_model=DagDetail)
def get_dag(dag_id: Id, state: Web, _user: Viewer) -> dict[str, Any]:
    """One DAG: its list item plus description, docs, the trigger form's params and its tasks."""
    with state.read() as session:
        return dag_detail(session, catalog_of(state), dag_id, state.now())


class DagPatch(BaseModel):
    is_paused: bool = Field(description="true pauses the DAG (no new runs), false unpauses it.")


@router.patch("/dags/{dag_id}", response_model=DagItem)
def patch_dag(dag_id: Id, body: DagPatch, state: Web, user: Operator) -> dict[str, Any]:
    """Pause or unpause the DAG (audited with the caller as actor, as `dagrunner dags pause`)."""
    with state.write() as session:
        set_paused(session, dag_id, body.is_paused, actor=user.actor, when=state.now())
    with state.read() as session:
        return dag_item(session, catalog_of(state), dag_id, state.now())


@router.get("/dags/{dag_id}/graph", response_model=Graph)
def get_graph(
    dag_id: Id,
    state: Web,
    _user: Viewer,
    run_id: IdFilter = None,
) -> dict[str, Any]:
    """The DAG's tasks with their layer and place in it, its edges, and (with run_id) each task's state."""
    with state.read() as session:
        dag = catalog_of(state).dag(session, dag_id)
        states = None
        if run_id is not None:
            from dagrunner.persistence.queries import get_run

            get_run(session, dag_id, run_id)
            states = run_states(session, dag_id, run_id)
        return graph_json(dag, states)


@router.get("/dags/{dag_id}/grid", response_model=Grid)
def get_grid(
    dag_id: Id,
    state: Web,
    _user: Viewer,
    limit: Annotated[int, Query(ge=1, le=365, description="The latest this many runs.")] = 25,
) -> dict[str, Any]:
    """Runs (oldest first) by tasks (upstream first); each cell the instance's state (mapped: summarized)."""
    with state.read() as session:
        return grid_json(session, catalog_of(state).dag(session, dag_id), limit)


@router.get("/import-errors", response_model=ImportErrorPage)
def get_import_errors(state: Web, _user: Viewer, page: PageArgs) -> dict[str, Any]:
    """DAG files whose last parse failed: file, line, kind and the error."""
    with state.read() as session:
        errors = import_errors(session)
    return page.page([e.to_json() for e in errors[page.offset : page.offset + page.limit]], len(errors))
