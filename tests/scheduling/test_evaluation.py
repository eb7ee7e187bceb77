"""`plan_run` with a focus: only the tasks downstream of what changed are decided, and cascades still
reach as far as they must."""

from __future__ import annotations

from datetime import UTC, datetime

from dagrunner import DAG
from dagrunner.loading.serialization import SerializedDag
from dagrunner.operators import EmptyOperator
from dagrunner.persistence.audit import TIRow
from dagrunner.scheduling.evaluation import plan_run
from dagrunner.states import DagRunState, TaskInstanceState

NOW = datetime(2026, 1, 5, tzinfo=UTC)


def _chain(*task_ids: str, trigger_rule: str = "all_success") -> SerializedDag:
    with DAG("chain", schedule=None, start_date=NOW) as dag:
        tasks = [EmptyOperator(task_id=t, trigger_rule=trigger_rule) for t in task_ids]
        for up, down in zip(tasks, tasks[1:], strict=False):
            up >> down
    return SerializedDag.from_dag(dag)


def _rows(states: dict[str, TaskInstanceState]) -> list[TIRow]:
    return [
        TIRow(i, "chain", "r1", task_id, -1, state, 0, 1, None, "default_pool", 1, 1, "default", None)
        for i, (task_id, state) in enumerate(states.items())
    ]


def _decided(plan) -> dict[str, str]:  # type: ignore[no-untyped-def]
    out = {ti.task_id: "ready" for ti in plan.ready}
    out.update({ti.task_id: state.value for ti, state, _ in plan.doomed})
    return out


def test_focus_decides_only_the_named_tasks() -> None:
    dag = _chain("a", "b", "c")
    # a succeeded; c's upstream b has not run, so c is not ready either way. Without a focus b is ready.
    rows = _rows({"a": TaskInstanceState.SUCCESS, "b": TaskInstanceState.NONE, "c": TaskInstanceState.NONE})
    assert _decided(plan_run(dag, rows, now=NOW)) == {"b": "ready"}
    assert _decided(plan_run(dag, rows, now=NOW, focus={"a", "b"})) == {"b": "ready"}
    # a focus that leaves b out does not look at b at all
    assert _decided(plan_run(dag, rows, now=NOW, focus={"c"})) == {}


def test_a_doomed_task_carries_the_focus_down_the_whole_chain() -> None:
    dag = _chain("a", "b", "c", "d")
    rows = _rows(
        {
            "a": TaskInstanceState.FAILED,
            "b": TaskInstanceState.NONE,
            "c": TaskInstanceState.NONE,
            "d": TaskInstanceState.NONE,
        }
    )
    plan = plan_run(dag, rows, now=NOW, focus={"a", "b"})
    assert _decided(plan) == {"b": "upstream_failed", "c": "upstream_failed", "d": "upstream_failed"}
    assert plan.outcome == DagRunState.FAILED


def test_a_task_finished_by_someone_else_carries_the_focus() -> None:
    """A branch try marks its unchosen downstream `skipped` itself: what those feed must be decided."""
    dag = _chain("branch", "skipped_by_branch", "after")
    rows = _rows(
        {
            "branch": TaskInstanceState.SUCCESS,
            "skipped_by_branch": TaskInstanceState.SKIPPED,
            "after": TaskInstanceState.NONE,
        }
    )
    plan = plan_run(dag, rows, now=NOW, focus={"branch", "skipped_by_branch"})
    assert _decided(plan) == {"after": "skipped"}
    assert plan.outcome == DagRunState.SUCCESS


def test_the_outcome_looks_at_every_instance_whatever_the_focus() -> None:
    dag = _chain("a", "b")
    rows = _rows({"a": TaskInstanceState.SUCCESS, "b": TaskInstanceState.RUNNING})
    assert plan_run(dag, rows, now=NOW, focus={"a"}).outcome is None
    rows = _rows({"a": TaskInstanceState.SUCCESS, "b": TaskInstanceState.SUCCESS})
    assert plan_run(dag, rows, now=NOW, focus=set()).outcome == DagRunState.SUCCESS
