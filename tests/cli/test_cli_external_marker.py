"""ExternalTaskSensor under `dags test`, and ExternalTaskMarker: `tasks clear` on the parent clears the child."""

from __future__ import annotations

import json
from pathlib import Path

PARENT_CHILD = """
import pendulum
from dagrunner import DAG
from dagrunner.operators import EmptyOperator
from dagrunner.sensors import ExternalTaskMarker, ExternalTaskSensor

START = pendulum.datetime(2026, 1, 1, tz="UTC")

with DAG("parent_dag", schedule=None, start_date=START):
    EmptyOperator(task_id="parent_task") >> ExternalTaskMarker(
        task_id="mark_child", external_dag_id="child_dag", external_task_id="child_task1",
        recursion_depth={depth})

with DAG("child_dag", schedule=None, start_date=START):
    wait = ExternalTaskSensor(task_id="child_task1", external_dag_id="parent_dag", external_task_id="parent_task",
                              poke_interval=1, timeout=30)
    wait >> EmptyOperator(task_id="child_task2") >> ExternalTaskMarker(
        task_id="mark_grandchild", external_dag_id="grandchild_dag", external_task_id="work")

with DAG("grandchild_dag", schedule=None, start_date=START):
    EmptyOperator(task_id="work")
"""


def _states(run_cli, dag_id: str) -> dict[str, str]:
    (run,) = json.loads(run_cli("runs", "list", dag_id, "--json").output)
    return dict(json.loads(run_cli("tasks", "states", dag_id, run["run_id"], "--json").output))


def _run_all(run_cli, project: Path, depth: int) -> None:
    (project / "dags" / "parent_child.py").write_text(PARENT_CHILD.format(depth=depth))
    for dag_id in ("parent_dag", "child_dag", "grandchild_dag"):  # the child's sensor finds the parent's task
        result = run_cli("dags", "test", dag_id, "2026-02-03")
        assert result.exit_code == 0, result.output


def test_clearing_the_parent_clears_the_child_task_and_its_downstream_through_the_markers(run_cli, project) -> None:
    _run_all(run_cli, project, depth=10)
    assert set(_states(run_cli, "child_dag").values()) == {"success"}
    cleared = run_cli("tasks", "clear", "parent_dag", "-t", "^parent_task$", "--downstream", "--yes")
    assert cleared.exit_code == 0, cleared.output
    # parent_task, mark_child; child_task1, child_task2, mark_grandchild; work: three runs queued again.
    assert "cleared 6 task instance(s); 3 run(s) queued again" in cleared.output
    assert set(_states(run_cli, "parent_dag").values()) == {"none"}
    assert set(_states(run_cli, "child_dag").values()) == {"none"}
    assert _states(run_cli, "grandchild_dag") == {"work": "none"}


def test_the_confirmation_lists_the_external_instances(run_cli, project) -> None:
    _run_all(run_cli, project, depth=10)
    refused = run_cli("tasks", "clear", "parent_dag", "-t", "^mark_child$", input="n\n")
    assert refused.exit_code == 1 and "Clear these 5 task instance(s)?" in refused.output
    assert "child_dag manual__2026-02-03T00:00:00+00:00 child_task1 (success)" in refused.output
    assert set(_states(run_cli, "child_dag").values()) == {"success"}


def test_markers_deeper_than_recursion_depth_are_one_clear_error(run_cli, project) -> None:
    _run_all(run_cli, project, depth=1)
    refused = run_cli("tasks", "clear", "parent_dag", "--yes")
    assert refused.exit_code == 1
    assert "maximum recursion depth 1 reached for ExternalTaskMarker 'mark_grandchild'" in refused.output
    assert set(_states(run_cli, "child_dag").values()) == {"success"}  # nothing was cleared


TRIGGERING = """
import pendulum
from dagrunner import DAG
from dagrunner.operators import TriggerDagRunOperator

with DAG("kicker", schedule=None, start_date=pendulum.datetime(2026, 1, 1, tz="UTC")):
    TriggerDagRunOperator(task_id="kick", trigger_dag_id="grandchild_dag")
"""


def test_tasks_test_reads_other_dags_runs_but_triggers_nothing(run_cli, project) -> None:
    _run_all(run_cli, project, depth=10)
    sensed = run_cli("tasks", "test", "child_dag", "child_task1", "2026-02-03")
    assert sensed.exit_code == 0 and "success" in sensed.output, sensed.output
    (project / "dags" / "kicker.py").write_text(TRIGGERING)
    kicked = run_cli("tasks", "test", "kicker", "kick", "2026-02-03")
    assert "changes nothing, so it creates no run of another DAG" in kicked.output, kicked.output
    assert len(json.loads(run_cli("runs", "list", "grandchild_dag", "--json").output)) == 1
