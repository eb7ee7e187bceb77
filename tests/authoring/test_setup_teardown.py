"""Declaring setups and teardowns: Airflow's API, what it serializes to, and the mistakes refused at import."""

from __future__ import annotations

import json
import textwrap
from pathlib import Path

import pendulum
import pytest
from authoring_helpers import next_line

from dagrunner import DAG, TriggerRule, setup, task, teardown
from dagrunner.authoring.operators.empty import EmptyOperator
from dagrunner.errors import SetupTeardownError
from dagrunner.loading.dagbag import DagBag
from dagrunner.loading.serialization import SerializedDag, serialize_dag

START = pendulum.datetime(2026, 1, 1, tz="UTC")


def _dag(dag_id: str = "st") -> DAG:
    return DAG(dag_id, schedule=None, start_date=START)


def _serialized(dag: DAG) -> SerializedDag:
    back = SerializedDag.from_dict(json.loads(json.dumps(serialize_dag(dag))))
    assert back == SerializedDag.from_dag(dag)
    return back


def test_as_setup_and_as_teardown_mark_wire_and_serialize() -> None:
    with _dag() as dag:
        create = EmptyOperator(task_id="create")
        query = EmptyOperator(task_id="query")
        delete = EmptyOperator(task_id="delete")
        assert create.as_setup() is create
        create >> query >> delete.as_teardown(setups=create)
    assert (create.is_setup, delete.is_teardown, delete.on_failure_fail_dagrun) == (True, True, False)
    assert delete.trigger_rule == TriggerRule.ALL_DONE_SETUP_SUCCESS
    assert delete.upstream_task_ids == {"create", "query"}
    specs = _serialized(dag).task_dict
    assert (specs["create"].is_setup, specs["delete"].is_teardown) == (True, True)
    assert specs["delete"].setup_task_ids == ("create",)  # a teardown's own setups
    assert specs["query"].setup_task_ids == ("create",)  # the work runs within it
    assert specs["create"].setup_task_ids == ()


def test_setups_given_to_as_teardown_become_setups_upstream_of_it() -> None:
    with _dag() as dag:
        a, b = EmptyOperator(task_id="a"), EmptyOperator(task_id="b")
        down = EmptyOperator(task_id="down").as_teardown(setups=[a, b], on_failure_fail_dagrun=True)
    assert a.is_setup and b.is_setup and down.on_failure_fail_dagrun
    assert _serialized(dag).task_dict["down"].setup_task_ids == ("a", "b")


def test_taskflow_outputs_and_decorators() -> None:
    with _dag() as dag:

        @setup
        def make_bucket() -> str:
            return "bucket-1"

        @teardown(on_failure_fail_dagrun=True)
        def drop_bucket(name: str) -> None: ...

        @task
        def upload(name: str) -> None: ...

        @teardown
        @task(retries=3)
        def also_cleanup() -> None: ...

        bucket = make_bucket()
        upload(bucket) >> drop_bucket(bucket)
        other = task(lambda: 1).override(task_id="other")()
        tidy = also_cleanup()
        assert other.as_setup() is other
        other >> tidy
    tasks = dag.task_dict
    assert tasks["make_bucket"].is_setup and not tasks["upload"].is_setup
    assert tasks["drop_bucket"].is_teardown and tasks["drop_bucket"].on_failure_fail_dagrun
    assert tasks["also_cleanup"].is_teardown and tasks["also_cleanup"].retries == 3
    assert not tasks["also_cleanup"].on_failure_fail_dagrun
    assert tasks["other"].is_setup
    specs = _serialized(dag).task_dict
    assert specs["drop_bucket"].setup_task_ids == ("make_bucket",)
    assert specs["also_cleanup"].setup_task_ids == ("other",)


def test_xcomarg_as_teardown_and_mapped_setup() -> None:
    with _dag() as dag:

        @task
        def start(n: int) -> int:
            return n

        @task
        def stop() -> None: ...

        starts = start.expand(n=[1, 2]).as_setup()
        stopped = stop().as_teardown(setups=starts)
    assert dag.task_dict["start"].is_setup and dag.task_dict["start"].is_mapped
    assert stopped.operator.is_teardown and stopped.operator.upstream_task_ids == {"start"}


def test_with_block_puts_its_tasks_between_setup_and_teardown() -> None:
    with _dag() as dag:
        create = EmptyOperator(task_id="create")
        delete = EmptyOperator(task_id="delete")
        before = EmptyOperator(task_id="before")
        with delete.as_teardown(setups=create):
            q1, q2 = EmptyOperator(task_id="q1"), EmptyOperator(task_id="q2")
            q1 >> q2
            EmptyOperator(task_id="alone")
        after = EmptyOperator(task_id="after")
    assert q1.upstream_task_ids == {"create"} and q2.upstream_task_ids == {"q1"}
    assert delete.upstream_task_ids == {"create", "q2", "alone"}
    assert dag.task_dict["alone"].upstream_task_ids == {"create"}
    assert before.upstream_task_ids == set() and after.upstream_task_ids == set()


def test_outcome_leaves_skip_teardowns_unless_they_fail_the_run() -> None:
    with _dag() as dag:
        create, work = EmptyOperator(task_id="create"), EmptyOperator(task_id="work")
        delete, loud = EmptyOperator(task_id="delete"), EmptyOperator(task_id="loud")
        create >> work >> [delete.as_teardown(setups=create), loud.as_teardown(setups=create,
                                                                               on_failure_fail_dagrun=True)]  # fmt: skip
        other = EmptyOperator(task_id="other")
    assert other.upstream_task_ids == set()
    assert _serialized(dag).outcome_leaf_ids == {"work", "loud", "other"}  # work counts, whatever loud says


# --- bad input --------------------------------------------------------------------------------------


def test_a_teardown_without_a_setup_is_refused_naming_it() -> None:
    with _dag() as dag:
        work = EmptyOperator(task_id="work")
        where = next_line()
        lonely = EmptyOperator(task_id="lonely").as_teardown()
        work >> lonely
    with pytest.raises(SetupTeardownError) as err:
        SerializedDag.from_dag(dag)
    message = str(err.value)
    assert "teardown 'lonely'" in message and f"test_setup_teardown.py:{where}" in message
    assert "no setup task directly upstream" in message and ".as_teardown(setups=" in message


def test_a_setup_only_further_up_is_not_enough() -> None:
    with _dag() as dag:
        create = EmptyOperator(task_id="create").as_setup()
        create >> EmptyOperator(task_id="work") >> EmptyOperator(task_id="delete").as_teardown()
    with pytest.raises(SetupTeardownError, match="teardown 'delete'"):
        SerializedDag.from_dag(dag)


def test_a_task_cannot_be_both_setup_and_teardown() -> None:
    with _dag():
        create = EmptyOperator(task_id="create")
        both = EmptyOperator(task_id="both").as_teardown(setups=create)
        with pytest.raises(SetupTeardownError, match="'both' .* is already a teardown and cannot also be a setup"):
            both.as_setup()
        with pytest.raises(SetupTeardownError, match="'create' .* is already a setup and cannot also be a teardown"):
            create.as_teardown(setups=EmptyOperator(task_id="x"))
        with pytest.raises(SetupTeardownError, match="'both' .* is already a teardown"):
            EmptyOperator(task_id="y").as_teardown(setups=both)

        @setup
        @teardown
        def confused() -> None: ...

        with pytest.raises(SetupTeardownError, match="'confused'"):
            confused()


def test_setups_of_another_dag_or_not_tasks_are_refused() -> None:
    with _dag("first"):
        theirs = EmptyOperator(task_id="theirs")
    with _dag("second"):
        mine = EmptyOperator(task_id="mine")
        with pytest.raises(SetupTeardownError, match="names task 'theirs' of DAG 'first'; a setup must be a task"):
            mine.as_teardown(setups=theirs)
        with pytest.raises(SetupTeardownError, match="setups='create' is invalid"):
            mine.as_teardown(setups="create")
    assert not theirs.is_setup and not mine.is_teardown  # nothing half-marked


def test_with_on_a_task_that_is_not_a_teardown_is_refused() -> None:
    with _dag():
        plain = EmptyOperator(task_id="plain")
        with pytest.raises(SetupTeardownError, match="only a teardown opens a setup/teardown block"), plain:
            pass


def test_a_teardown_without_setup_is_an_import_error_of_that_file_only(tmp_path: Path) -> None:
    header = "import pendulum\nfrom dagrunner import DAG\nfrom dagrunner.operators import EmptyOperator\n"
    (tmp_path / "bad.py").write_text(header + textwrap.dedent("""
        with DAG("bad", schedule=None, start_date=pendulum.datetime(2026, 1, 1, tz="UTC")):
            EmptyOperator(task_id="work") >> EmptyOperator(task_id="cleanup").as_teardown()
    """))  # fmt: skip
    (tmp_path / "good.py").write_text(header + textwrap.dedent("""
        with DAG("good", schedule=None, start_date=pendulum.datetime(2026, 1, 1, tz="UTC")):
            create = EmptyOperator(task_id="create")
            create >> EmptyOperator(task_id="cleanup").as_teardown(setups=create)
    """))  # fmt: skip
    bag = DagBag(tmp_path, timeout_s=10)
    bag.refresh()
    assert set(bag.dags) == {"good"}
    (failure,) = bag.failures_of(str(tmp_path / "bad.py"))
    assert "\n" not in failure.message
    assert "SetupTeardownError" in failure.message and "teardown 'cleanup'" in failure.message
    assert "bad.py:6" in failure.message


def test_a_groups_teardown_is_not_what_the_next_task_waits_for() -> None:
    from dagrunner import TaskGroup

    with _dag() as dag:
        with TaskGroup("cluster") as group:
            create = EmptyOperator(task_id="create")
            query = EmptyOperator(task_id="query")
            create >> query >> EmptyOperator(task_id="delete").as_teardown(setups=create)
        group >> EmptyOperator(task_id="publish")
    assert query.downstream_task_ids == {"cluster.delete", "publish"}
    assert dag.task_dict["publish"].upstream_task_ids == {"cluster.query"}
