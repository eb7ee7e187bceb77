"""Response shapes of the DAG, run and task-instance endpoints, so /api/v1/openapi.json documents them.

The endpoints build plain dicts (the same shapes `--json` prints in the CLI); these models only describe
and check them. Times are ISO-8601 strings with an offset; states are the lowercase `dagrunner.states` values.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, Field


class Page(BaseModel):
    total: int
    limit: int
    offset: int


class RecentRun(BaseModel):
    run_id: str
    state: str
    logical_date: str


class ImportErrorItem(BaseModel):
    file: str
    line: int | None
    kind: str
    error: str


class ImportErrorPage(Page):
    items: list[ImportErrorItem]


class DagItem(BaseModel):
    dag_id: str
    display_name: str
    file: str
    schedule: str | None
    next_run: str | None
    paused: bool
    is_active: bool
    tags: list[str]
    owner: str | None
    recent_runs: list[RecentRun]
    import_error: ImportErrorItem | None


class DagPage(Page):
    items: list[DagItem]


class ParamForm(BaseModel):
    """One field of the trigger form: its default (redacted), help text and JSON Schema."""

    default: Any = None
    description: str | None
    schema_: dict[str, Any] = Field(alias="schema")
    title: str


class DagTask(BaseModel):
    task_id: str
    operator: str
    upstream: list[str]
    downstream: list[str]
    trigger_rule: str
    pool: str
    queue: str
    retries: int
    is_mapped: bool
    group: str | None
    doc_md: str | None
    is_setup: bool
    is_teardown: bool


class DagDetail(DagItem):
    description: str | None
    doc_md: str | None
    params: dict[str, ParamForm]
    tasks: list[DagTask]
    max_active_runs: int


class GraphNode(BaseModel):
    id: str
    label: str
    operator: str
    layer: int
    order: int
    group: str | None
    is_mapped: bool
    state: str | None


class GraphEdge(BaseModel):
    source: str
    target: str
    label: str | None


class Graph(BaseModel):
    nodes: list[GraphNode]
    edges: list[GraphEdge]


class Run(BaseModel):
    dag_id: str
    run_id: str
    run_type: str
    state: str
    logical_date: str
    data_interval_start: str | None
    data_interval_end: str | None
    start_date: str | None
    end_date: str | None
    duration_s: float | None
    conf: dict[str, Any]
    backfill_id: int | None
    needs_attention: bool
    needs_attention_reason: str | None


class RunPage(Page):
    items: list[Run]


class GridTask(BaseModel):
    task_id: str
    label: str
    group: str | None
    is_mapped: bool


class GridCell(BaseModel):
    state: str
    try_number: int
    #: How many mapped instances (the state is then their summary); null for a task that is not mapped.
    map_count: int | None


class Grid(BaseModel):
    dag_id: str
    tasks: list[GridTask]
    runs: list[Run]
    cells: dict[str, dict[str, GridCell]]


class TaskInstance(BaseModel):
    dag_id: str
    run_id: str
    task_id: str
    map_index: int
    label: str
    state: str
    try_number: int
    max_tries: int
    queued_at: str | None
    start_date: str | None
    end_date: str | None
    duration_s: float | None
    next_try_at: str | None
    operator: str | None
    pool: str
    pool_slots: int
    queue: str
    priority_weight: int
    hostname: str | None
    pid: int | None


class RunDetail(Run):
    tasks: list[TaskInstance]


class Try(BaseModel):
    try_number: int
    state: str
    queued_at: str | None
    start_date: str | None
    end_date: str | None
    duration_s: float | None
    hostname: str | None
    pid: int | None
    exit_code: int | None
    exit_reason: str | None
    interrupted: bool


class TaskInstanceDetail(TaskInstance):
    tries: list[Try]


class LogChunk(BaseModel):
    try_number: int
    content: str
    offset: int
    finished: bool


class Check(BaseModel):
    rule: str
    passed: bool
    reason: str


class Why(BaseModel):
    state: str
    checks: list[Check]


class Move(BaseModel):
    task_id: str
    map_index: int
    old: str
    new: str


class LeftAlone(BaseModel):
    task_id: str
    map_index: int
    state: str
    why: str


class StateChange(BaseModel):
    old: str
    new: str


class Override(BaseModel):
    """What a set-state changed (`OverridePlan.to_json`, as `--json` of the CLI's set-state)."""

    dag_id: str
    run_id: str
    changed: list[Move]
    cleared: list[Move]
    left: list[LeftAlone]
    run: StateChange


class ClearedInstance(BaseModel):
    run_id: str
    task_id: str
    map_index: int
    state: str


class ClearOutcome(BaseModel):
    dag_id: str
    dry_run: bool
    cleared: list[ClearedInstance]
    left_running: list[ClearedInstance]
    runs_requeued: list[str]
