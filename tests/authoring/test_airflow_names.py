"""Airflow 3's authoring names at definition time (#15): the edges `Label` and `chain_linear` make, what
`ParamsDict` holds, the naming arguments, and what is ignored or still refused. Running them is covered by
tests/cli/test_cli_airflow_names.py."""

from __future__ import annotations

import threading

import pendulum
import pytest

from dagrunner import (
    DAG,
    AirflowException,
    AirflowFailException,
    AirflowSensorTimeout,
    AirflowSkipException,
    FailTask,
    Label,
    Param,
    ParamsDict,
    SkipTask,
    TaskGroup,
    chain_linear,
    get_current_context,
)
from dagrunner.authoring.current_context import running_context
from dagrunner.errors import InvalidArgumentError, ParamValidationError
from dagrunner.loading.serialization import SerializedDag
from dagrunner.operators import EmptyOperator

START = pendulum.datetime(2026, 1, 1, tz="UTC")


def edges(dag: DAG) -> set[tuple[str, str]]:
    return set(dag.graph.edges)


def test_exception_names_are_ours_with_airflows_hierarchy() -> None:
    assert AirflowSkipException is SkipTask and AirflowFailException is FailTask
    for name in (AirflowSkipException, AirflowFailException, AirflowSensorTimeout):
        assert issubclass(name, AirflowException)
    assert issubclass(AirflowSensorTimeout, AirflowFailException)  # fails without retries, as in Airflow
    from dagrunner.exceptions import AirflowException as same

    assert same is AirflowException


def test_label_in_every_direction_and_across_lists_and_groups() -> None:
    with DAG("labels", schedule=None, start_date=START) as dag:
        a, b, c, d = (EmptyOperator(task_id=t) for t in "abcd")
        with TaskGroup("g") as group:
            g1 = EmptyOperator(task_id="one")
            g2 = EmptyOperator(task_id="two")
            g1 >> g2
        a >> Label("fan out") >> [b, c]
        d << Label("back") << b
        [c, d] >> Label("into group") >> group
    assert edges(dag) == {("a", "b"), ("a", "c"), ("b", "d"), ("c", "g.one"), ("d", "g.one"), ("g.one", "g.two")}
    assert dag.get_edge_info("a", "c") == {"label": "fan out"}
    assert dag.get_edge_info("b", "d") == {"label": "back"}
    assert dag.get_edge_info("d", "g.one") == {"label": "into group"}
    assert dag.get_edge_info("g.one", "g.two") == {}
    serialized = SerializedDag.from_dict(SerializedDag.from_dag(dag).to_dict())
    assert ("a", "b", "fan out") in serialized.edge_labels and len(serialized.edge_labels) == 5


def test_chain_linear_wires_every_task_of_one_element_to_every_task_of_the_next() -> None:
    with DAG("linear", schedule=None, start_date=START) as dag:
        op = {t: EmptyOperator(task_id=t) for t in ("op1", "op2", "op3", "op4", "op5", "op6", "op7")}
        chain_linear(op["op1"], [op["op2"], op["op3"]], [op["op4"], op["op5"], op["op6"]], op["op7"])
    assert edges(dag) == {
        ("op1", "op2"), ("op1", "op3"),
        *{(up, down) for up in ("op2", "op3") for down in ("op4", "op5", "op6")},
        ("op4", "op7"), ("op5", "op7"), ("op6", "op7"),
    }  # fmt: skip


def test_chain_linear_refuses_what_airflow_refuses() -> None:
    with DAG("linear_bad", schedule=None, start_date=START):
        a, b = EmptyOperator(task_id="a"), EmptyOperator(task_id="b")
        with pytest.raises(InvalidArgumentError, match="no dependencies were set"):
            chain_linear([a, b])
        with pytest.raises(InvalidArgumentError, match="labels are not supported"):
            chain_linear(a, Label("x"), b)
        with pytest.raises(InvalidArgumentError, match="no tasks given"):
            chain_linear()


def test_paramsdict_reads_values_and_keeps_schemas() -> None:
    params = ParamsDict({"rows": Param(5, type="integer", minimum=1), "name": "x"})
    assert dict(params) == {"rows": 5, "name": "x"}
    params["rows"] = 9
    assert params["rows"] == 9 and params.get_param("rows").schema()["minimum"] == 1
    with pytest.raises(ParamValidationError, match="at least 1"):
        params["rows"] = 0
    assert params["rows"] == 9
    params["missing"] = Param(type="string")
    with pytest.raises(ParamValidationError, match="'missing'"):
        params.validate()
    assert params.dump() == {"rows": 9, "name": "x", "missing": None}
    lenient = ParamsDict({"rows": Param(5, type="integer")}, suppress_exception=True)
    lenient["rows"] = "many"  # refused quietly: the old value stays
    assert lenient["rows"] == 5
    with DAG("pd", schedule=None, start_date=START, params=params) as dag:
        pass
    assert isinstance(dag.params["rows"], Param) and dag.params["rows"].default == 9


def test_naming_and_documentation_arguments() -> None:
    with DAG("named", schedule=None, start_date=START, dag_display_name="Nice name",
             default_args={"owner": "ana"}) as dag:  # fmt: skip
        a = EmptyOperator(task_id="a", task_display_name="Step A", doc="d", doc_json="{}", doc_yaml="k: v",
                          doc_rst="r", email="x@example.com; y@example.com", email_on_retry=False)  # fmt: skip
        b = EmptyOperator(task_id="b", owner="bo")
    assert dag.dag_display_name == "Nice name" and a.task_display_name == "Step A" and b.task_display_name == "b"
    assert (a.doc, a.doc_json, a.doc_yaml, a.doc_rst) == ("d", "{}", "k: v", "r")
    assert a.email == ["x@example.com", "y@example.com"] and a.email_on_failure and not a.email_on_retry
    assert a.owner == "ana" and dag.owner == "ana, bo"
    spec = SerializedDag.from_dag(dag)
    assert spec.dag_display_name == "Nice name" and spec.task("a").task_display_name == "Step A"
    assert spec.task("b").owner == "bo"
    with DAG("unnamed", schedule=None, start_date=START) as plain:
        EmptyOperator(task_id="t")
    assert plain.dag_display_name == "unnamed" and plain.owner == "airflow"


def test_arguments_with_behaviour_we_lack_are_still_refused() -> None:
    with pytest.raises(InvalidArgumentError, match="unknown argument.*'fail_fast'"):
        DAG("ff", schedule=None, start_date=START, fail_fast=True)
    with DAG("tis", schedule=None, start_date=START), pytest.raises(InvalidArgumentError, match="max_active_tis"):
        EmptyOperator(task_id="a", max_active_tis_per_dag=1)


def test_bad_filter_is_refused_at_definition() -> None:
    with pytest.raises(InvalidArgumentError, match="user_defined_filters"):
        DAG("f", schedule=None, start_date=START, user_defined_filters={"x": "not callable"})


def test_get_current_context_only_inside_a_try() -> None:
    with pytest.raises(RuntimeError, match="outside a running task"):
        get_current_context()
    with running_context({"ds": "2026-02-03"}):
        assert get_current_context()["ds"] == "2026-02-03"
    with pytest.raises(RuntimeError):
        get_current_context()


def test_a_thread_the_task_starts_sees_the_one_running_try_but_never_guesses_between_two() -> None:
    seen: list[object] = []

    def look() -> None:
        try:
            seen.append(get_current_context()["ds"])
        except RuntimeError:
            seen.append(None)

    def in_thread() -> None:
        thread = threading.Thread(target=look)
        thread.start()
        thread.join()

    with running_context({"ds": "one"}):
        in_thread()  # as in Airflow: a thread pool inside a task still finds the task's context
        barrier, release = threading.Event(), threading.Event()

        def second_try() -> None:
            with running_context({"ds": "two"}):
                assert get_current_context()["ds"] == "two"
                barrier.set()
                release.wait(5)

        other = threading.Thread(target=second_try)
        other.start()
        barrier.wait(5)
        in_thread()  # two tries running: no guess
        assert get_current_context()["ds"] == "one"  # each try still sees its own
        release.set()
        other.join()
    assert seen == ["one", None]
