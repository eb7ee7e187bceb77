"""Templating: strings and nested values render against a context; errors name task, field and template."""

from __future__ import annotations

from pathlib import Path
from typing import Any, NamedTuple

import pytest

from dagrunner import DAG
from dagrunner.authoring.templating import build_template_env, render_value
from dagrunner.authoring.xcom_arg import DagParam
from dagrunner.errors import TemplateRenderError
from dagrunner.operators import BashOperator, PythonOperator

CONTEXT = {"ds": "2026-01-05", "params": {"table": "sales"}, "n": 3}


class Pair(NamedTuple):
    left: str
    right: int


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("load {{ ds }}", "load 2026-01-05"),
        ("{{ params.table }}_{{ n + 1 }}", "sales_4"),
        (["{{ ds }}", 1, None], ["2026-01-05", 1, None]),
        (("{{ ds }}", "x"), ("2026-01-05", "x")),
        (
            {"{{ ds }}": "{{ ds }}", "nested": [{"t": "{{ params.table }}"}]},
            {"{{ ds }}": "2026-01-05", "nested": [{"t": "sales"}]},
        ),
        ({"{{ n }}"}, {"3"}),
        (Pair("{{ ds }}", 2), Pair("2026-01-05", 2)),
        (42, 42),
        (None, None),
        ("no template here", "no template here"),
        ("trailing newline\n", "trailing newline\n"),
    ],
)
def test_render_value(value: Any, expected: Any) -> None:
    assert render_value(value, CONTEXT, build_template_env(), what="test") == expected


def test_native_rendering_gives_python_objects() -> None:
    env = build_template_env(native=True)
    assert render_value("{{ n * 2 }}", CONTEXT, env, what="test") == 6
    assert render_value("{{ [n, n] }}", CONTEXT, env, what="test") == [3, 3]


def test_user_defined_macros() -> None:
    env = build_template_env(macros={"shout": lambda s: s.upper()})
    assert render_value("{{ shout(params.table) }}", CONTEXT, env, what="test") == "SALES"


def test_undefined_variable_names_task_field_template_and_available() -> None:
    with DAG("etl"):
        op = BashOperator(task_id="extract", bash_command="fetch {{ dss }}")
    with pytest.raises(TemplateRenderError) as info:
        op.render_template_fields(CONTEXT)
    message = str(info.value)
    assert "task 'extract' field 'bash_command'" in message
    assert "'dss' is undefined" in message and "'fetch {{ dss }}'" in message
    assert "available variables: ds, n, params" in message


def test_undefined_attribute_is_an_error_too() -> None:
    with pytest.raises(TemplateRenderError, match="has no attribute 'nope'"):
        render_value("{{ params.nope }}", CONTEXT, build_template_env(), what="x")


def test_syntax_error_names_line() -> None:
    with pytest.raises(TemplateRenderError, match="template syntax error on line 1"):
        render_value("{{ ds ", CONTEXT, build_template_env(), what="task 't' field 'f'")


def test_macro_failure_is_wrapped_with_its_cause() -> None:
    def boom() -> str:
        raise RuntimeError("no")

    env = build_template_env(macros={"boom": boom})
    with pytest.raises(TemplateRenderError, match="RuntimeError: no") as info:
        render_value("{{ boom() }}", CONTEXT, env, what="x")
    assert isinstance(info.value.__cause__, RuntimeError)


def test_template_file_by_extension_from_dag_folder_and_searchpath(tmp_path: Path) -> None:
    (tmp_path / "run.sh").write_text("echo {{ ds }}\n")
    with DAG("etl", template_searchpath=str(tmp_path)):
        from_file = BashOperator(task_id="file", bash_command="run.sh")
        as_is = BashOperator(task_id="as_is", bash_command="run.sh ")  # trailing space: not a file
        missing = BashOperator(task_id="missing", bash_command="missing.sh")
    from_file.render_template_fields(CONTEXT)
    as_is.render_template_fields(CONTEXT)
    assert from_file.bash_command == "echo 2026-01-05\n"
    assert as_is.bash_command == "run.sh "
    with pytest.raises(TemplateRenderError, match="template file 'missing.sh' not found"):
        missing.render_template_fields(CONTEXT)


def test_dag_render_template_as_native_obj() -> None:
    with DAG("etl", render_template_as_native_obj=True, user_defined_macros={"base": 10}):
        op = PythonOperator(task_id="p", python_callable=print, op_args=["{{ base + n }}"])
    op.render_template_fields(CONTEXT)
    assert op.op_args == [13]


def test_xcom_args_resolve_while_rendering_and_are_never_rendered_again() -> None:
    from dagrunner import task

    @task
    def produce() -> str:
        return "x"

    with DAG("etl"):
        upstream = produce()
        op = PythonOperator(
            task_id="p",
            python_callable=print,
            op_args=[upstream, "{{ ds }}"],
            op_kwargs={"k": upstream["key"]},
        )
    pulled: list[tuple[str, str]] = []

    def pull(task_id: str, key: str) -> str:
        pulled.append((task_id, key))
        return "{{ ds }} stays data"  # an XCom value that looks like a template

    copy = op.prepare_for_execution()
    copy.render_template_fields(CONTEXT, pull=pull)
    assert copy.op_args == ["{{ ds }} stays data", "2026-01-05"]
    assert copy.op_kwargs == {"k": "{{ ds }} stays data"}
    assert pulled == [("produce", "return_value"), ("produce", "key")]
    assert op.op_args == [upstream, "{{ ds }}"]  # the definition is untouched


def test_xcom_arg_without_pull_is_a_clear_error() -> None:
    from dagrunner import task

    @task
    def produce() -> str:
        return "x"

    with DAG("etl"):
        op = PythonOperator(task_id="p", python_callable=print, op_args=[produce()])
    with pytest.raises(TemplateRenderError, match="task 'p' field 'op_args' holds XComArg\\(task_id='produce'"):
        op.prepare_for_execution().render_template_fields(CONTEXT)


def test_dag_params_resolve_from_the_run_params() -> None:
    from dagrunner import dag, task

    @task
    def use(limit: int, name: str) -> None:
        return None

    @dag
    def etl(limit: int = 5, name: Any = None) -> None:
        use(limit, name)

    op = etl().get_task("use")
    ready = op.prepare_for_execution()
    ready.render_template_fields({"params": {"name": "{{ ds }}"}})
    assert ready.op_args == [5, "{{ ds }}"]  # default for limit; a conf value is data, not a template


def test_dag_param_without_default_or_run_value_is_a_clear_error() -> None:
    with DAG("etl"):
        op = PythonOperator(task_id="p", python_callable=print, op_args=[DagParam("name")])
    with pytest.raises(TemplateRenderError, match="task 'p' field 'op_args': DAG param 'name' has no default"):
        op.prepare_for_execution().render_template_fields({"params": {}})
