"""Serialization: JSON round-trip to equal specs, priorities per weight rule, mapped/sensor/group specs."""

from __future__ import annotations

import json
from datetime import datetime, timedelta
from typing import Any

import pendulum
import pytest

from dagrunner import DAG, TaskGroup, TriggerRule, task
from dagrunner.authoring.priority import effective_priorities
from dagrunner.errors import InvalidArgumentError, LoadingError, TaskNotFoundError
from dagrunner.loading.serialization import MappedArgSpec, SerializedDag, TaskGroupSpec, serialize_dag
from dagrunner.operators import (
    BashOperator,
    BranchPythonOperator,
    EmptyOperator,
    PythonOperator,
    ShortCircuitOperator,
)
from dagrunner.sensors import FileSensor
from dagrunner.timetables import CronTriggerTimetable

START = pendulum.datetime(2026, 1, 1, tz="Europe/Amsterdam")


def notify(context: Any) -> None:
    return None


def rows() -> list[int]:
    return [1]


def build_full_dag() -> DAG:
    with DAG(
        "daily_sales",
        schedule="0 6 * * *",
        start_date=START,
        end_date=START + timedelta(days=30),
        catchup=True,
        default_args={"retries": 2, "retry_delay": timedelta(minutes=5)},
        max_active_runs=1,
        max_active_tasks=8,
        tags=["sales", "daily"],
        params={"full": False, "since": datetime(2026, 1, 1), "tables": ("a", "b")},
        description="sales",
        doc_md="# Sales",
        dagrun_timeout=timedelta(hours=2),
        is_paused_upon_creation=True,
        on_failure_callback=notify,
    ) as d:
        extract = BashOperator(
            task_id="extract",
            bash_command="echo {{ ds }}",
            execution_timeout=60,
            retry_exponential_backoff=True,
            max_retry_delay=600,
            on_retry_callback=notify,
            priority_weight=5,
            pool="db",
            pool_slots=2,
            queue="io",
            doc_md="pull",
            params={"limit": 10},
        )
        with TaskGroup("load", tooltip="loading"):
            stage = PythonOperator(task_id="stage", python_callable=rows, weight_rule="upstream")
            with TaskGroup("final"):
                commit = EmptyOperator(task_id="commit", trigger_rule=TriggerRule.NONE_FAILED, depends_on_past=True)
            stage >> commit
        branch = BranchPythonOperator(task_id="branch", python_callable=lambda: "load.stage")
        check = ShortCircuitOperator(task_id="check", python_callable=rows, ignore_downstream_trigger_rules=False)
        wait = FileSensor(
            task_id="wait", filepath="/in", poke_interval=30, timeout=600, mode="reschedule", soft_fail=True
        )

        @task(multiple_outputs=True)
        def split(x: int, y: int) -> dict[str, int]:
            return {"x": x}

        mapped = split.partial(y=1).expand(x=[1, 2, 3])
        mapped_xcom = PythonOperator.partial(task_id="per_row", python_callable=rows).expand(op_args=mapped["x"])
        extract >> branch >> [stage, check]
        wait >> extract
        mapped_xcom >> check
    return d


def roundtrip(d: DAG) -> SerializedDag:
    return SerializedDag.from_dict(json.loads(json.dumps(serialize_dag(d))))


def test_json_roundtrip_gives_equal_specs() -> None:
    d = build_full_dag()
    direct = SerializedDag.from_dag(d)
    back = roundtrip(d)
    assert back == direct
    assert back.to_dict() == direct.to_dict()
    assert json.dumps(back.to_dict()) == json.dumps(serialize_dag(d))  # stable key order


def test_dag_level_fields() -> None:
    s = roundtrip(build_full_dag())
    assert s.dag_id == "daily_sales" and s.fileloc == __file__ and s.fileloc_line > 0
    assert s.timezone == "Europe/Amsterdam"
    assert s.start_date == START and s.end_date == START + timedelta(days=30)
    assert s.start_date is not None and s.start_date.utcoffset() == timedelta(hours=1)
    assert (s.catchup, s.max_active_runs, s.max_active_tasks, s.dagrun_timeout) == (True, 1, 8, 7200.0)
    assert s.tags == ("sales", "daily") and s.description == "sales" and s.doc_md == "# Sales"
    assert s.params == {"full": False, "since": "2026-01-01T00:00:00", "tables": ["a", "b"]}
    assert s.is_paused_upon_creation is True
    assert (s.has_on_success_callback, s.has_on_failure_callback) == (False, True)
    assert s.timetable_data == {"type": "cron_trigger", "cron": "0 6 * * *", "timezone": "Europe/Amsterdam"}
    assert s.timetable_description == "every day at 06:00 (Europe/Amsterdam)"
    assert isinstance(s.timetable, CronTriggerTimetable)


def test_task_fields() -> None:
    s = roundtrip(build_full_dag())
    extract = s.task("extract")
    assert (extract.operator, extract.module) == ("BashOperator", "dagrunner.authoring.operators.bash")
    assert extract.upstream_task_ids == ("wait",) and extract.downstream_task_ids == ("branch",)
    assert (extract.retries, extract.retry_delay, extract.retry_exponential_backoff) == (2, 300.0, 2.0)
    assert (extract.max_retry_delay, extract.execution_timeout) == (600.0, 60.0)
    assert (extract.pool, extract.pool_slots, extract.queue, extract.priority_weight) == ("db", 2, "io", 5)
    assert extract.template_fields == ("bash_command", "env", "cwd")
    assert extract.has_on_retry_callback and not extract.has_on_failure_callback
    assert extract.doc_md == "pull" and extract.params == {"limit": 10}
    assert extract.defined_at.startswith(f"{__file__}:")
    assert extract.task_group_id is None and not extract.is_mapped and extract.expand_input is None

    commit = s.task("load.final.commit")
    assert commit.trigger_rule is TriggerRule.NONE_FAILED and commit.depends_on_past
    assert commit.task_group_id == "load.final"

    assert s.task("branch").is_branch and not s.task("branch").is_short_circuit
    check = s.task("check")
    assert check.is_short_circuit and check.ignore_downstream_trigger_rules is False

    wait = s.task("wait")
    assert wait.is_sensor and (wait.sensor_mode, wait.poke_interval, wait.sensor_timeout, wait.soft_fail) == (
        "reschedule",
        30.0,
        600.0,
        True,
    )
    assert not extract.is_sensor and extract.sensor_mode is None and extract.poke_interval is None


def test_mapped_task_specs() -> None:
    s = roundtrip(build_full_dag())
    split = s.task("split")
    assert split.is_mapped and split.multiple_outputs and split.operator == "PythonDecoratedOperator"
    assert split.expand_input == {"x": MappedArgSpec("literal", length=3)}
    per_row = s.task("per_row")
    assert per_row.expand_input == {"op_args": MappedArgSpec("xcom", task_id="split", key="x")}
    assert per_row.upstream_task_ids == ("split",) and per_row.operator == "PythonOperator"
    assert serialize_dag(build_full_dag())["tasks"][-1]["expand_input"] == {
        "op_args": {"kind": "xcom", "task_id": "split", "key": "x"}
    }


def test_task_group_tree() -> None:
    s = roundtrip(build_full_dag())
    root = s.task_groups
    assert root.group_id is None
    load = next(c for c in root.children if isinstance(c, TaskGroupSpec))
    assert load == TaskGroupSpec(
        "load", "loading", ("load.stage", TaskGroupSpec("load.final", "", ("load.final.commit",)))
    )
    assert root.task_ids() == list(s.task_dict)
    assert s.group_roots == {"load": ["load.stage"], "load.final": ["load.final.commit"]}


def test_graph_roots_leaves_and_lookups() -> None:
    s = roundtrip(build_full_dag())
    assert sorted(s.graph.edges) == sorted(build_full_dag().graph.edges)
    assert {t.task_id for t in s.roots} == {"wait", "split"}
    assert {t.task_id for t in s.leaves} == {"load.final.commit", "check"}
    with pytest.raises(TaskNotFoundError, match="no task 'nope'"):
        s.task("nope")


def test_serialized_skip_rules_match_the_live_operators() -> None:
    d = build_full_dag()
    s = roundtrip(d)
    live_branch = d.get_task("branch")
    assert s.branches_to_skip("branch", "load.stage") == live_branch.branches_to_skip("load.stage") == {"check"}
    assert s.branches_to_skip("branch", "load") == {"check"}
    assert s.tasks_to_skip("check", False) == d.get_task("check").tasks_to_skip(False) == set()


# --- priorities -------------------------------------------------------------------------------------


def diamond(rule: str, weights: dict[str, int]) -> DAG:
    """a -> b, a -> c, b -> d, c -> d (d counted once for a, not twice)."""
    with DAG("p") as d:
        t = {x: EmptyOperator(task_id=x, weight_rule=rule, priority_weight=weights.get(x, 1)) for x in "abcd"}
        t["a"] >> [t["b"], t["c"]] >> t["d"]
    return d


@pytest.mark.parametrize(
    ("rule", "weights", "expected"),
    [
        ("downstream", {}, {"a": 4, "b": 2, "c": 2, "d": 1}),
        ("upstream", {}, {"a": 1, "b": 2, "c": 2, "d": 4}),
        ("absolute", {"a": 7}, {"a": 7, "b": 1, "c": 1, "d": 1}),
        ("downstream", {"a": 1, "b": 10, "c": 100, "d": 1000}, {"a": 1111, "b": 1010, "c": 1100, "d": 1000}),
        ("upstream", {"a": 1, "b": 10, "c": 100, "d": 1000}, {"a": 1, "b": 11, "c": 101, "d": 1111}),
        ("downstream", {"d": -5}, {"a": -2, "b": -4, "c": -4, "d": -5}),
    ],
)
def test_priorities_per_weight_rule(rule: str, weights: dict[str, int], expected: dict[str, int]) -> None:
    s = roundtrip(diamond(rule, weights))
    assert {t.task_id: t.priority for t in s.tasks} == expected


def test_priorities_of_a_long_chain_are_cheap() -> None:
    import networkx as nx

    graph = nx.path_graph(3000, create_using=nx.DiGraph)
    priorities = effective_priorities(graph, dict.fromkeys(graph, 1), dict.fromkeys(graph, "downstream"))
    assert priorities[0] == 3000 and priorities[2999] == 1


# --- errors ----------------------------------------------------------------------------------------


def test_params_changed_after_definition_to_a_non_json_value() -> None:
    with DAG("etl", params={"ok": 1}) as d:
        t = EmptyOperator(task_id="t")
    t.params["bad"] = object()
    with pytest.raises(InvalidArgumentError, match="task 't' of DAG 'etl': params\\['bad'\\]=.*cannot be serialized"):
        serialize_dag(d)
    d.params["worse"] = {1: 2}
    with pytest.raises(InvalidArgumentError, match="DAG 'etl': params\\['worse'\\]"):
        serialize_dag(d)


def test_unknown_format_version_and_missing_keys() -> None:
    data = serialize_dag(build_full_dag())
    with pytest.raises(LoadingError, match="format version 99"):
        SerializedDag.from_dict({**data, "format_version": 99})
    for key, shown in (("catchup", "catchup"), ("timetable", "timetable_data")):
        broken = dict(data)
        del broken[key]
        with pytest.raises(LoadingError, match=f"lacks {shown}"):
            SerializedDag.from_dict(broken)


def test_loader_may_overwrite_fileloc() -> None:
    d = DAG("etl")
    d.fileloc = "/dags/etl.py"
    assert SerializedDag.from_dag(d).fileloc == "/dags/etl.py"


def test_unscheduled_dag_serializes() -> None:
    s = roundtrip(DAG("manual"))
    assert s.start_date is None and s.timezone == "UTC" and s.tasks == ()
    assert not s.timetable.can_be_scheduled
