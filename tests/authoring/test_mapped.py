"""Dynamic task mapping, declaration side: .partial()/.expand() for @task and classic operators."""

from __future__ import annotations

from typing import Any

import pytest
from authoring_helpers import next_line

from dagrunner import DAG, task
from dagrunner.authoring.mapped import MappedOperator
from dagrunner.errors import InvalidArgumentError
from dagrunner.operators import BashOperator, PythonOperator


def double(x: int) -> int:
    return 2 * x


@task
def numbers() -> list[int]:
    return [1, 2, 3]


@task(retries=2)
def add(x: int, y: int) -> int:
    return x + y


def test_task_expand_over_a_literal_list() -> None:
    with DAG("etl") as d:
        result = add.partial(y=10).expand(x=[1, 2, 3])
    op = result.operator
    assert isinstance(op, MappedOperator) and op.is_mapped
    assert op.task_id == "add" and op.retries == 2
    assert op.expand_input == {"x": [1, 2, 3]} and op.expand_target == "op_kwargs"
    assert op.partial_kwargs["op_kwargs"] == {"y": 10}
    assert op.operator_name == "PythonDecoratedOperator"
    assert d.get_task("add") is op


def test_task_expand_over_an_upstream_output_adds_the_edge() -> None:
    with DAG("etl") as d:
        mapped = add.partial(y=1).expand(x=numbers())
    assert sorted(d.graph.edges) == [("numbers", "add")]
    source = mapped.operator.expand_input["x"]
    assert source.operator.task_id == "numbers"


def test_expand_without_partial_and_repeated_ids() -> None:
    with DAG("etl"):
        first = add.expand(x=[1], y=[2])
        second = add.expand(x=[1], y=(2, 3))
    assert first.operator.task_id == "add" and second.operator.task_id == "add__1"
    assert second.operator.expand_input["y"] == [2, 3]


def test_unmap_builds_the_concrete_task_for_one_index() -> None:
    with DAG("etl") as d:
        op = add.partial(y=10).expand(x=[1, 2]).operator
    concrete = op.unmap({"x": 2})
    assert concrete.execute({}) == 12
    assert concrete.task_id == "add" and concrete.retries == 2
    assert d.get_task("add") is op  # unmapping never registers a second task


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda: add.expand(z=[1]), "unknown argument\\(s\\) 'z'"),
        (lambda: add.partial(y=1).expand(x=5), "expand\\(x=...\\)=5 is invalid; expected a list or tuple"),
        (lambda: add.partial(y=1).expand(x="abc"), "expected a list or tuple"),
        (lambda: add.partial(y=1).expand(x={"a": 1}), "expected a list or tuple"),
        (lambda: add.partial(y=1).expand(y=[1]), "not already given to partial"),
        (lambda: add.partial(y=1).expand(), "at least one keyword argument"),
        (lambda: add.expand(y=[1]), "missing argument\\(s\\) x"),
        (lambda: add.partial(q=1), "unexpected keyword argument 'q'"),
    ],
)
def test_task_expand_errors(call: Any, message: str) -> None:
    with DAG("etl"), pytest.raises(InvalidArgumentError, match=message):
        call()


def test_expand_error_names_the_users_line() -> None:
    with DAG("etl"), pytest.raises(InvalidArgumentError) as info:
        where = next_line()
        add.partial(y=1).expand(x=7)
    assert f"{__file__}:{where}" in str(info.value)


def test_classic_operator_partial_expand() -> None:
    with DAG("etl", default_args={"retries": 4}) as d:
        mapped = PythonOperator.partial(task_id="double", python_callable=double).expand(op_args=[[1], [2]])
    assert isinstance(mapped, MappedOperator)
    assert mapped.task_id == "double" and mapped.retries == 4
    assert mapped.operator_class is PythonOperator and mapped.expand_target == "init"
    assert mapped.template_fields == ("templates_dict", "op_args", "op_kwargs")
    assert mapped.unmap({"op_args": [5]}).execute({}) == 10
    assert d.task_ids == ["double"]


def test_classic_expand_over_xcom_and_operator_default_args() -> None:
    @task
    def commands() -> list[str]:
        return ["echo 1"]

    with DAG("etl", default_args={"cwd": "/tmp"}) as d:
        mapped = BashOperator.partial(task_id="run").expand(bash_command=commands())
    assert sorted(d.graph.edges) == [("commands", "run")]
    assert mapped.partial_kwargs["cwd"] == "/tmp"
    assert mapped.partial_value("output_encoding") == "utf-8"  # the class default


@pytest.mark.parametrize(
    ("build", "message"),
    [
        (lambda: PythonOperator.partial(python_callable=double), "missing required argument\\(s\\) task_id"),
        (
            lambda: PythonOperator.partial(task_id="x", python_calable=double),
            "did you mean 'python_callable'",
        ),
        (
            lambda: PythonOperator.partial(task_id="x", python_callable=double).expand(retries=[1, 2]),
            "scheduling arguments such as retries",
        ),
        (
            lambda: PythonOperator.partial(task_id="x", python_callable=double).expand(op_argz=[[1]]),
            "unknown argument\\(s\\) 'op_argz'",
        ),
        (
            lambda: PythonOperator.partial(task_id="x", python_callable=double).expand(op_args=3),
            "expected a list or tuple",
        ),
        (
            lambda: PythonOperator.partial(task_id="x", python_callable=double).expand(python_callable=[double]),
            "not already given to partial",
        ),
        # The first literal value is checked with the operator's own validation, at the user's line.
        (
            lambda: PythonOperator.partial(task_id="x", python_callable=5).expand(op_args=[[1]]),
            "python_callable=5",
        ),
        (lambda: BashOperator.partial(task_id="x").expand(bash_command=[""]), "bash_command=''"),
    ],
)
def test_classic_partial_expand_errors(build: Any, message: str) -> None:
    with DAG("etl"), pytest.raises(InvalidArgumentError, match=message):
        build()


def test_mapped_task_itself_is_not_executed_or_rendered() -> None:
    with DAG("etl"):
        op = add.expand(x=[1], y=[2]).operator
    with pytest.raises(NotImplementedError, match="unmap"):
        op.execute({})
    with pytest.raises(NotImplementedError, match="unmap"):
        op.render_template_fields({})
