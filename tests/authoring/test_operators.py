"""Operators: BashOperator in a real subprocess, determine_kwargs, branch and short-circuit skip sets."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest

from dagrunner import DAG, SkipTask, TaskGroup, task
from dagrunner.errors import InvalidArgumentError, InvalidBranchError
from dagrunner.operators import (
    BashCommandError,
    BashOperator,
    BranchPythonOperator,
    EmptyOperator,
    PythonOperator,
    ShortCircuitOperator,
    determine_kwargs,
)

# --- BashOperator -----------------------------------------------------------------------------------


def bash(**kwargs: Any) -> BashOperator:
    with DAG("etl"):
        return BashOperator(task_id="run", **kwargs)


def test_bash_exit_0_returns_the_last_line_and_streams_output(capsys: pytest.CaptureFixture[str]) -> None:
    op = bash(bash_command="echo first; echo second >&2; echo last")
    assert op.execute({}) == "last"
    assert capsys.readouterr().out.splitlines() == ["first", "second", "last"]


def test_bash_no_output_returns_empty_string() -> None:
    assert bash(bash_command="true").execute({}) == ""


def test_bash_exit_1_raises_naming_the_exit_code() -> None:
    with pytest.raises(BashCommandError, match="task 'run': bash command failed with exit code 1") as info:
        bash(bash_command="echo oops; exit 1").execute({})
    assert info.value.exit_code == 1


def test_bash_exit_99_skips() -> None:
    with pytest.raises(SkipTask, match="exited with 99"):
        bash(bash_command="exit 99").execute({})


@pytest.mark.parametrize(("codes", "exit_code", "skips"), [([3, 4], 4, True), (None, 99, False), (5, 5, True)])
def test_bash_skip_on_exit_code_variants(codes: Any, exit_code: int, skips: bool) -> None:
    op = bash(bash_command=f"exit {exit_code}", skip_on_exit_code=codes)
    with pytest.raises(SkipTask if skips else BashCommandError):
        op.execute({})


def test_bash_templated_command_renders_with_ds() -> None:
    op = bash(bash_command="echo day={{ ds }} nodash={{ ds_nodash }}")
    op.render_template_fields({"ds": "2026-01-05", "ds_nodash": "20260105"})
    assert op.bash_command == "echo day=2026-01-05 nodash=20260105"
    assert op.execute({}) == "day=2026-01-05 nodash=20260105"


def test_bash_env_cwd_and_append_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FROM_WORKER", "worker")
    only = bash(bash_command='echo "$MINE-${FROM_WORKER:-unset}-$(pwd)"', env={"MINE": "x"}, cwd=str(tmp_path))
    assert only.execute({}) == f"x-unset-{tmp_path}"
    both = bash(bash_command='echo "$MINE-$FROM_WORKER"', env={"MINE": "x"}, append_env=True)
    assert both.execute({}) == "x-worker"
    inherit = bash(bash_command='echo "$FROM_WORKER"')
    assert inherit.execute({}) == "worker"


def test_bash_missing_cwd_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(BashCommandError, match="is not an existing directory"):
        bash(bash_command="true", cwd=str(tmp_path / "nope")).execute({})


def test_bash_runs_in_its_own_process_group() -> None:
    own_group = bash(bash_command="read -r -a stat < /proc/$$/stat; echo ${stat[4]}").execute({}).strip()
    assert own_group and int(own_group) != os.getpgrp()


def test_bash_output_encoding_replaces_bad_bytes() -> None:
    assert bash(bash_command="printf 'caf\\xe9\\n'").execute({}) == "caf\\xe9"


@pytest.mark.parametrize(
    ("arg", "value"),
    [
        ("bash_command", ""),
        ("bash_command", 5),
        ("env", {"A": 1}),
        ("env", ["A=1"]),
        ("append_env", "yes"),
        ("cwd", 3),
        ("skip_on_exit_code", "99"),
        ("skip_on_exit_code", [300]),
        ("output_encoding", "klingon"),
    ],
)
def test_bash_argument_validation(arg: str, value: Any) -> None:
    kwargs = {"bash_command": "true", arg: value}
    with pytest.raises(InvalidArgumentError, match=f"{arg}="):
        bash(**kwargs)


# --- PythonOperator / determine_kwargs ---------------------------------------------------------------


def takes_ds(ds: str) -> str:
    return ds


def takes_kwargs(x: int, **context: Any) -> dict[str, Any]:
    return context


def takes_positional(a: int, b: int, ds: str | None = None) -> tuple[int, int, str | None]:
    return a, b, ds


CONTEXT = {"ds": "2026-01-05", "ti": "TI", "run_id": "manual__1"}


@pytest.mark.parametrize(
    ("function", "args", "kwargs", "expected"),
    [
        (takes_ds, [], {}, {"ds": "2026-01-05"}),
        (takes_ds, [], {"ds": "override"}, {"ds": "override"}),  # op_kwargs win over the context
        (takes_kwargs, [1], {}, CONTEXT),  # **context: everything, minus what was given by position
        (takes_kwargs, [], {"x": 1}, {**CONTEXT, "x": 1}),
        (takes_positional, [1, 2], {}, {"ds": "2026-01-05"}),
        (takes_positional, [1], {"b": 2}, {"b": 2, "ds": "2026-01-05"}),
        (lambda: None, [], {}, {}),
        (lambda ds, *args: ds, ["a", "b"], {}, {}),  # ds filled by position: not passed again
    ],
)
def test_determine_kwargs(function: Any, args: list[Any], kwargs: dict[str, Any], expected: dict[str, Any]) -> None:
    assert determine_kwargs(function, args, kwargs, CONTEXT) == expected


def test_determine_kwargs_errors() -> None:
    with pytest.raises(InvalidArgumentError, match="a given both by position"):
        determine_kwargs(takes_positional, [1], {"a": 1}, {})
    with pytest.raises(InvalidArgumentError, match="takes no parameter\\(s\\) nope"):
        determine_kwargs(takes_ds, [], {"nope": 1}, {})


def test_python_operator_calls_with_args_kwargs_context_and_templates_dict() -> None:
    def load(table: str, *, limit: int, ds: str, templates_dict: dict[str, Any]) -> str:
        return f"{table}:{limit}:{ds}:{templates_dict['query']}"

    with DAG("etl"):
        op = PythonOperator(
            task_id="load",
            python_callable=load,
            op_args=["{{ params.table }}"],
            op_kwargs={"limit": 5},
            templates_dict={"query": "select {{ ds }}"},
        )
    op.render_template_fields({"ds": "2026-01-05", "params": {"table": "sales"}})
    assert op.execute({"ds": "2026-01-05"}) == "sales:5:2026-01-05:select 2026-01-05"


@pytest.mark.parametrize(
    ("arg", "value"),
    [("python_callable", "load"), ("op_args", "abc"), ("op_kwargs", [1]), ("templates_dict", 1)],
)
def test_python_operator_argument_validation(arg: str, value: Any) -> None:
    kwargs = {"python_callable": print, arg: value}
    with DAG("etl"), pytest.raises(InvalidArgumentError, match=f"{arg}="):
        PythonOperator(task_id="p", **kwargs)


def test_empty_operator() -> None:
    with DAG("etl"):
        assert EmptyOperator(task_id="e").execute({}) is None


# --- branching ---------------------------------------------------------------------------------------


def branch_dag(choice: Any) -> tuple[DAG, BranchPythonOperator]:
    """branch -> a -> a2 -> join; branch -> b; branch -> grp(g1 -> g2); branch -> join."""
    with DAG("etl") as d:
        branch = BranchPythonOperator(task_id="branch", python_callable=lambda: choice)
        a, a2, b, join = (EmptyOperator(task_id=x) for x in ("a", "a2", "b", "join"))
        with TaskGroup("grp") as grp:
            EmptyOperator(task_id="g1") >> EmptyOperator(task_id="g2")
        branch >> [a, b, grp, join]
        a >> a2 >> join
    return d, branch


@pytest.mark.parametrize(
    ("choice", "returned", "skipped"),
    [
        ("a", ["a"], {"b", "grp.g1"}),  # join is downstream of a: followed, not skipped (Airflow)
        (["a", "b"], ["a", "b"], {"grp.g1"}),
        ("b", ["b"], {"a", "grp.g1", "join"}),
        ("grp", ["grp"], {"a", "b", "join"}),  # a group id chooses its roots
        ("join", ["join"], {"a", "b", "grp.g1"}),
        (None, [], {"a", "b", "grp.g1", "join"}),
        ({"b", "a"}, ["a", "b"], {"grp.g1"}),
    ],
)
def test_branch_returns_choice_and_skip_set(choice: Any, returned: list[str], skipped: set[str]) -> None:
    _, branch = branch_dag(choice)
    assert branch.execute({}) == returned
    assert branch.branches_to_skip(returned) == skipped


@pytest.mark.parametrize("choice", ["a2", "nope", ["a", "grp.g2"], 5, [1]])
def test_branch_choice_must_be_direct_downstream(choice: Any) -> None:
    _, branch = branch_dag(choice)
    with pytest.raises(InvalidBranchError):
        branch.execute({})


def test_branch_error_lists_the_valid_choices() -> None:
    _, branch = branch_dag("a2")
    with pytest.raises(InvalidBranchError, match="choose among: a, b, grp, grp.g1, join"):
        branch.execute({})


def test_task_branch_decorator_uses_the_same_rule() -> None:
    @task.branch
    def pick(ds: str | None = None) -> str:
        return "left"

    with DAG("etl"):
        chooser = pick().operator
        chooser >> [EmptyOperator(task_id="left"), EmptyOperator(task_id="right")]
    chosen = chooser.execute({"ds": "x"})
    assert chosen == ["left"] and chooser.branches_to_skip(chosen) == {"right"}


def short_circuit_dag(result: Any, ignore: bool) -> ShortCircuitOperator:
    """check -> a -> b ; check -> c"""
    with DAG("etl"):
        check = ShortCircuitOperator(
            task_id="check", python_callable=lambda: result, ignore_downstream_trigger_rules=ignore
        )
        a, b, c = (EmptyOperator(task_id=x) for x in "abc")
        check >> [a, c]
        a >> b
    return check


@pytest.mark.parametrize(
    ("result", "ignore", "decision", "skipped"),
    [
        (True, True, True, set()),
        ([1], True, True, set()),
        (0, True, False, {"a", "b", "c"}),
        ([], False, False, {"a", "c"}),
        (None, False, False, {"a", "c"}),
    ],
)
def test_short_circuit(result: Any, ignore: bool, decision: bool, skipped: set[str]) -> None:
    check = short_circuit_dag(result, ignore)
    assert check.execute({}) is decision
    assert check.tasks_to_skip(decision) == skipped


def test_short_circuit_argument_validation() -> None:
    with DAG("etl"), pytest.raises(InvalidArgumentError, match="ignore_downstream_trigger_rules='no'"):
        ShortCircuitOperator(task_id="s", python_callable=print, ignore_downstream_trigger_rules="no")
