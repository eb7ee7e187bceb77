"""TaskFlow: @task calls create tasks, XComArgs create edges, ids fn__1, multiple_outputs inference."""

from __future__ import annotations

from typing import Any, TypedDict

import pytest
from authoring_helpers import next_line

from dagrunner import DAG, TaskGroup, XComArg, task
from dagrunner.authoring.taskflow import (
    BashDecoratedOperator,
    BranchPythonDecoratedOperator,
    PythonDecoratedOperator,
    ShortCircuitDecoratedOperator,
    infer_multiple_outputs,
)
from dagrunner.errors import InvalidArgumentError
from dagrunner.operators import BashCommandError, EmptyOperator


@task
def extract() -> list[int]:
    return [1, 2, 3]


@task(retries=3, pool="db")
def transform(rows: list[int], factor: int = 2, ds: str | None = None) -> int:
    return sum(rows) * factor


def test_call_creates_a_task_and_returns_its_xcom_arg() -> None:
    with DAG("etl") as d:
        rows = extract()
        total = transform(rows, factor=3)
    assert isinstance(rows, XComArg) and rows.key == "return_value"
    op = total.operator
    assert isinstance(op, PythonDecoratedOperator) and op.task_id == "transform"
    assert op.retries == 3 and op.pool == "db"
    assert op.op_args == [rows] and op.op_kwargs == {"factor": 3}
    assert sorted(d.graph.edges) == [("extract", "transform")]


def test_xcom_args_nested_in_lists_and_dicts_add_edges() -> None:
    @task
    def combine(payload: dict[str, Any]) -> None:
        return None

    with DAG("etl") as d:
        a, b = extract(), extract()
        combine({"first": [a], "second": {"deep": b["key"]}})
    assert sorted(d.graph.edges) == [("extract", "combine"), ("extract__1", "combine")]


def test_repeated_calls_get_airflow_suffixes_per_group() -> None:
    with DAG("etl") as d:
        ids = [extract().operator.task_id for _ in range(3)]
        with TaskGroup("g"):
            grouped = [extract().operator.task_id for _ in range(2)]
    assert ids == ["extract", "extract__1", "extract__2"]
    assert grouped == ["g.extract", "g.extract__1"]
    assert len(d.tasks) == 5


def test_override_changes_task_arguments() -> None:
    with DAG("etl"):
        first = extract.override(task_id="pull", retries=7)()
        again = extract.override(task_id="pull")()
    assert (first.operator.task_id, first.operator.retries) == ("pull", 7)
    assert again.operator.task_id == "pull__1"


def test_xcom_arg_shift_operators_and_item_access() -> None:
    with DAG("etl") as d:
        start = EmptyOperator(task_id="start")
        rows = extract()
        start >> rows >> EmptyOperator(task_id="end")
        item = rows["total"]
    assert sorted(d.graph.edges) == [("extract", "end"), ("start", "extract")]
    assert item.operator is rows.operator and item.key == "total"
    assert str(item) == "{{ ti.xcom_pull(task_ids='extract', key='total') }}"
    assert rows == XComArg(rows.operator) and rows != item


def test_xcom_arg_cannot_be_iterated_at_definition_time() -> None:
    with DAG("etl"):
        rows = extract()
        with pytest.raises(TypeError, match="not known until it runs"):
            list(rows)


class Totals(TypedDict):
    total: int


def returns_dict() -> dict[str, int]:
    return {}


def returns_bare_dict() -> dict:  # type: ignore[type-arg]
    return {}


def returns_typed_dict() -> Totals:
    return {"total": 1}


def returns_int() -> int:
    return 1


def no_annotation():  # type: ignore[no-untyped-def]
    return {}


def bad_forward_ref() -> NotDefinedAnywhere:  # type: ignore[name-defined]  # noqa: F821
    return {}


@pytest.mark.parametrize(
    ("function", "expected"),
    [
        (returns_dict, True),
        (returns_bare_dict, True),
        (returns_typed_dict, True),
        (returns_int, False),
        (no_annotation, False),
        (bad_forward_ref, False),
    ],
)
def test_multiple_outputs_inference(function: Any, expected: bool) -> None:
    assert infer_multiple_outputs(function) is expected
    with DAG("etl"):
        assert task(function)().operator.multiple_outputs is expected


def test_explicit_multiple_outputs_wins() -> None:
    with DAG("etl"):
        assert task(multiple_outputs=False)(returns_dict)().operator.multiple_outputs is False
        assert task(multiple_outputs=True)(returns_int)().operator.multiple_outputs is True


def test_context_parameters_are_optional_but_others_are_not() -> None:
    @task
    def uses_context(x: int, ti: Any, ds: str) -> None:
        return None

    with DAG("etl"):
        uses_context(1)
        with pytest.raises(InvalidArgumentError) as info:
            where = next_line()
            uses_context()
    assert "missing argument(s) x" in str(info.value) and f"{__file__}:{where}" in str(info.value)


def test_too_many_arguments() -> None:
    with DAG("etl"), pytest.raises(InvalidArgumentError, match="@task 'extract' called at .*too many"):
        extract(1)


def test_bad_operator_argument_in_decorator() -> None:
    with pytest.raises(InvalidArgumentError, match="unknown argument\\(s\\) 'retriez'"):

        @task(retriez=1)
        def f() -> None:
            return None

    with pytest.raises(InvalidArgumentError, match="@task sets it"):

        @task(op_kwargs={"x": 1})
        def g() -> None:
            return None


def test_task_validation_happens_at_call_with_call_line() -> None:
    @task(retries=-1)
    def f() -> None:
        return None

    with DAG("etl"), pytest.raises(InvalidArgumentError) as info:
        where = next_line()
        f()
    assert "retries=-1" in str(info.value) and f"{__file__}:{where}" in str(info.value)


def test_decorated_task_executes_with_context_by_name() -> None:
    with DAG("etl"):
        op = transform([1, 2], factor=10).operator
    assert op.execute({"ds": "2026-01-05", "ti": None}) == 30


def test_flavours_create_their_operator_classes() -> None:
    @task.branch
    def choose() -> str:
        return "a"

    @task.short_circuit(ignore_downstream_trigger_rules=False)
    def check() -> bool:
        return False

    @task.bash
    def command(name: str) -> str:
        return "echo " + name

    @task.python
    def plain() -> int:
        return 1

    with DAG("etl"):
        assert isinstance(choose().operator, BranchPythonDecoratedOperator)
        sc = check().operator
        assert isinstance(sc, ShortCircuitDecoratedOperator) and sc.ignore_downstream_trigger_rules is False
        assert isinstance(command("x").operator, BashDecoratedOperator)
        assert isinstance(plain().operator, PythonDecoratedOperator)


def test_task_bash_runs_the_returned_command_rendered(capsys: pytest.CaptureFixture[str]) -> None:
    @task.bash
    def greet(name: str) -> str:
        return "echo hello " + name + " {{ ds }}"

    @task.bash
    def nothing() -> Any:
        return None

    with DAG("etl"):
        op = greet("world").operator
        empty = nothing().operator
    assert op.execute({"ds": "2026-01-05"}) == "hello world 2026-01-05"
    assert "hello world 2026-01-05" in capsys.readouterr().out
    with pytest.raises(BashCommandError, match="must return a non-empty bash command"):
        empty.execute({})
