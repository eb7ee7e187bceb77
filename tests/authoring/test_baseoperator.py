"""BaseOperator: every argument validated, default_args precedence, unknown/missing args, dependencies."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from authoring_helpers import next_line

from dagrunner import DAG, BaseOperator, TaskGroup, TriggerRule, chain, cross_downstream, task
from dagrunner.authoring.trigger_rule import WeightRule
from dagrunner.errors import AuthoringError, InvalidArgumentError
from dagrunner.operators import BashOperator, EmptyOperator, PythonOperator


def noop() -> None:
    return None


BAD_TASK_ARGS: list[tuple[str, Any, str]] = [
    ("retries", -1, "integer >= 0"),
    ("retries", 1.5, "integer >= 0"),
    ("retries", True, "integer >= 0"),
    ("retry_delay", -1, "timedelta or a number of seconds >= 0"),
    ("retry_delay", "5m", "timedelta or a number of seconds >= 0"),
    ("retry_delay", timedelta(seconds=-3), "timedelta or a number of seconds >= 0"),
    ("retry_exponential_backoff", -2.0, "True, False, or a base"),
    ("retry_exponential_backoff", "yes", "True, False, or a base"),
    ("max_retry_delay", -1, "timedelta or a number of seconds >= 0"),
    ("execution_timeout", 0, "timedelta or a number of seconds > 0"),
    ("execution_timeout", float("inf"), "timedelta or a number of seconds > 0"),
    ("trigger_rule", "all_sucess", "one of all_success, all_failed"),
    ("trigger_rule", None, "one of all_success"),
    ("depends_on_past", "false", "True or False"),
    ("pool", "", "a non-empty string"),
    ("pool", 3, "a non-empty string"),
    ("pool_slots", 0, "integer >= 1"),
    ("pool_slots", 1.0, "integer >= 1"),
    ("priority_weight", "high", "an integer"),
    ("priority_weight", 2**40, "an integer between"),
    ("weight_rule", "sideways", "one of downstream, upstream, absolute"),
    ("queue", "", "a non-empty string"),
    ("do_xcom_push", None, "True or False"),
    ("on_success_callback", "email", "a callable"),
    ("on_failure_callback", [noop, 3], "a callable"),
    ("on_retry_callback", 5, "a callable"),
    ("on_execute_callback", object(), "a callable"),
    ("doc_md", 3, "a string or None"),
    ("params", {"k": {1, 2}}, "JSON value"),
    ("params", "x", "dict with string keys"),
    ("task_id", "has space", "letters, digits"),
    ("task_id", "", "letters, digits"),
    ("task_id", "x" * 251, "letters, digits"),
]


@pytest.mark.parametrize(("arg", "value", "accepted"), BAD_TASK_ARGS)
def test_bad_task_argument_names_task_arg_value_line_and_accepted(arg: str, value: Any, accepted: str) -> None:
    kwargs: dict[str, Any] = {"task_id": "load", arg: value}
    with DAG("etl"), pytest.raises(InvalidArgumentError) as info:
        where = next_line()
        EmptyOperator(**kwargs)
    message = str(info.value)
    assert "EmptyOperator" in message and "DAG 'etl'" in message
    assert f"{arg}=" in message or f"{arg}[" in message
    assert repr(value)[:30] in message or arg == "params"
    assert f"{__file__}:{where}" in message
    assert accepted in message


def test_defaults_match_airflow() -> None:
    with DAG("etl"):
        t = EmptyOperator(task_id="t")
    assert t.retries == 0 and t.retry_delay == timedelta(seconds=300)
    assert t.retry_exponential_backoff == 0.0 and t.max_retry_delay is None and t.execution_timeout is None
    assert t.trigger_rule is TriggerRule.ALL_SUCCESS and t.depends_on_past is False
    assert (t.pool, t.pool_slots, t.priority_weight, t.weight_rule, t.queue) == (
        "default_pool",
        1,
        1,
        WeightRule.DOWNSTREAM,
        "default",
    )
    assert t.on_failure_callback == [] and t.params == {} and t.do_xcom_push is True


@pytest.mark.parametrize(
    ("arg", "value", "attribute", "expected"),
    [
        ("retry_delay", 30, "retry_delay", timedelta(seconds=30)),
        ("retry_delay", 1.5, "retry_delay", timedelta(seconds=1.5)),
        ("max_retry_delay", timedelta(hours=1), "max_retry_delay", timedelta(hours=1)),
        ("execution_timeout", 60, "execution_timeout", timedelta(minutes=1)),
        ("retry_exponential_backoff", True, "retry_exponential_backoff", 2.0),
        ("retry_exponential_backoff", 3, "retry_exponential_backoff", 3.0),
        ("trigger_rule", "one_failed", "trigger_rule", TriggerRule.ONE_FAILED),
        ("weight_rule", "absolute", "weight_rule", WeightRule.ABSOLUTE),
        ("on_success_callback", noop, "on_success_callback", [noop]),
        ("on_success_callback", [noop, noop], "on_success_callback", [noop, noop]),
    ],
)
def test_accepted_forms_are_normalized(arg: str, value: Any, attribute: str, expected: Any) -> None:
    with DAG("etl"):
        t = EmptyOperator(task_id="t", **{arg: value})
    assert getattr(t, attribute) == expected


@pytest.mark.parametrize("rule", list(TriggerRule))
def test_all_13_trigger_rules_are_accepted(rule: TriggerRule) -> None:
    with DAG("etl"):
        assert EmptyOperator(task_id="t", trigger_rule=rule.value).trigger_rule is rule
    assert len(TriggerRule) == 13


# --- default_args -----------------------------------------------------------------------------------


def test_default_args_precedence_explicit_over_group_over_dag_over_class() -> None:
    with DAG("etl", default_args={"retries": 1, "pool": "dag_pool", "queue": "dag_q"}):
        from_dag = EmptyOperator(task_id="from_dag")
        with TaskGroup("g", default_args={"retries": 2, "pool": "group_pool"}):
            from_group = EmptyOperator(task_id="from_group")
            explicit = EmptyOperator(task_id="explicit", retries=3)
            with TaskGroup("inner", default_args={"retries": 4}):
                inner = EmptyOperator(task_id="inner")
    assert (from_dag.retries, from_dag.pool, from_dag.queue) == (1, "dag_pool", "dag_q")
    assert (from_group.retries, from_group.pool, from_group.queue) == (2, "group_pool", "dag_q")
    assert (explicit.retries, explicit.pool) == (3, "group_pool")
    assert (inner.retries, inner.pool) == (4, "group_pool")
    assert from_dag.priority_weight == 1  # untouched: the class default


def test_default_args_reach_subclass_arguments_and_ignore_unknown_keys() -> None:
    with DAG("etl", default_args={"cwd": "/tmp", "owner": "airflow", "email": ["x@y"], "retries": 2}):
        bash = BashOperator(task_id="b", bash_command="true")
        empty = EmptyOperator(task_id="e")
    assert bash.cwd == "/tmp" and bash.retries == 2
    assert empty.retries == 2 and not hasattr(empty, "cwd")


def test_bad_default_arg_names_where_it_came_from() -> None:
    with DAG("etl", default_args={"retries": -1}), pytest.raises(InvalidArgumentError) as info:
        where = next_line()
        EmptyOperator(task_id="t")
    assert "retries=-1 (from the DAG's default_args)" in str(info.value)
    assert f"{__file__}:{where}" in str(info.value)


def test_bad_group_default_arg_names_the_group() -> None:
    with (
        DAG("etl"),
        TaskGroup("g", default_args={"pool_slots": 0}),
        pytest.raises(InvalidArgumentError) as info,
    ):
        EmptyOperator(task_id="t")
    assert "pool_slots=0 (from TaskGroup 'g' default_args)" in str(info.value)


def test_default_args_never_set_task_id() -> None:
    with DAG("etl", default_args={"task_id": "x"}):
        assert EmptyOperator(task_id="t").task_id == "t"


# --- unknown and missing arguments ------------------------------------------------------------------


def test_unknown_argument_is_refused_with_a_suggestion() -> None:
    with DAG("etl"), pytest.raises(InvalidArgumentError) as info:
        where = next_line()
        EmptyOperator(task_id="t", retires=3)
    message = str(info.value)
    assert "unknown argument(s) 'retires' (did you mean 'retries'?)" in message
    assert f"{__file__}:{where}" in message


def test_missing_required_argument() -> None:
    with (
        DAG("etl"),
        pytest.raises(InvalidArgumentError, match="missing required argument\\(s\\) bash_command"),
    ):
        BashOperator(task_id="t")
    with DAG("etl2"), pytest.raises(InvalidArgumentError, match="missing required argument\\(s\\) task_id"):
        EmptyOperator()


def test_custom_operator_declares_template_fields_and_execute() -> None:
    class Greet(BaseOperator):
        template_fields = ("name",)

        def __init__(self, *, name: str, **kwargs: Any) -> None:
            super().__init__(**kwargs)
            self.name = name

        def execute(self, context: Any) -> str:
            return f"hello {self.name}"

    with DAG("etl", default_args={"retries": 5}) as d:
        greet = Greet(task_id="greet", name="{{ ds }}")
    greet.render_template_fields({"ds": "2026-01-05"})
    assert greet.execute({}) == "hello 2026-01-05"
    assert greet.retries == 5 and d.get_task("greet") is greet
    assert repr(greet) == "<Task(Greet): greet>"


def test_template_field_without_attribute_is_an_operator_bug() -> None:
    class Broken(BaseOperator):
        template_fields = ("missing",)

    with DAG("etl"), pytest.raises(AuthoringError, match="'missing' in template_fields"):
        Broken(task_id="b")


def test_base_operator_execute_must_be_implemented() -> None:
    with DAG("etl"):
        t = BaseOperator(task_id="t")
    with pytest.raises(NotImplementedError):
        t.execute({})


# --- dependencies ----------------------------------------------------------------------------------


def edges(d: DAG) -> list[tuple[str, str]]:
    return sorted(d.graph.edges)


def test_shift_operators_and_their_return_values() -> None:
    with DAG("etl") as d:
        a, b, c, e, f = (EmptyOperator(task_id=x) for x in "abcef")
        result = a >> b
        assert result is b
        assert (c << b) is b
        assert ([e, f] << c) is c  # list << task: the task comes back, as in Airflow
        assert ([a, b] >> f) is f
        assert (f << [a]) == [a]
    assert edges(d) == [("a", "b"), ("a", "f"), ("b", "c"), ("b", "f"), ("c", "e"), ("c", "f")]


def test_set_upstream_and_downstream_accept_lists() -> None:
    with DAG("etl") as d:
        a, b, c = (EmptyOperator(task_id=x) for x in "abc")
        a.set_downstream([b, c])
        c.set_upstream(b)
    assert edges(d) == [("a", "b"), ("a", "c"), ("b", "c")]


def test_rlshift_for_lists() -> None:
    with DAG("etl") as d:
        a, b, c = (EmptyOperator(task_id=x) for x in "abc")
        [a, b] << c
    assert edges(d) == [("c", "a"), ("c", "b")]


def test_chain_single_lists_and_pairwise_lists() -> None:
    with DAG("etl") as d:
        t = {x: EmptyOperator(task_id=x) for x in "abcdefg"}
        chain(t["a"], [t["b"], t["c"]], [t["d"], t["e"]], t["f"], t["g"])
    assert edges(d) == [
        ("a", "b"),
        ("a", "c"),
        ("b", "d"),
        ("c", "e"),
        ("d", "f"),
        ("e", "f"),
        ("f", "g"),
    ]


def test_chain_lists_of_different_length() -> None:
    with DAG("etl"):
        t = {x: EmptyOperator(task_id=x) for x in "abc"}
        with pytest.raises(InvalidArgumentError, match="same length.*got 2 and 1"):
            chain([t["a"], t["b"]], [t["c"]])


def test_cross_downstream() -> None:
    with DAG("etl") as d:
        t = {x: EmptyOperator(task_id=x) for x in "abcd"}
        cross_downstream([t["a"], t["b"]], [t["c"], t["d"]])
    assert edges(d) == [("a", "c"), ("a", "d"), ("b", "c"), ("b", "d")]


def test_chain_with_xcom_args_and_groups() -> None:
    @task
    def make() -> int:
        return 1

    with DAG("etl") as d:
        start = EmptyOperator(task_id="start")
        with TaskGroup("g") as g:
            EmptyOperator(task_id="x") >> EmptyOperator(task_id="y")
        chain(start, make(), g)
    assert edges(d) == [("g.x", "g.y"), ("make", "g.x"), ("start", "make")]


@pytest.mark.parametrize("operand", [5, "task_b", [1, 2], None])
def test_bad_dependency_operand(operand: Any) -> None:
    with DAG("etl"):
        a = EmptyOperator(task_id="a")
        with pytest.raises(InvalidArgumentError) as info:
            where = next_line()
            a >> operand
    assert "cannot set a dependency on" in str(info.value) and f"{__file__}:{where}" in str(info.value)


def test_python_operator_templated_xcom_arg_adds_edge() -> None:
    @task
    def produce() -> list[int]:
        return [1]

    with DAG("etl") as d:
        value = produce()
        PythonOperator(task_id="consume", python_callable=noop, op_kwargs={"nested": {"v": [value]}})
    assert edges(d) == [("produce", "consume")]


def test_output_property_is_an_xcom_arg() -> None:
    with DAG("etl") as d:
        a = EmptyOperator(task_id="a")
        b = EmptyOperator(task_id="b")
        a.output >> b
    assert edges(d) == [("a", "b")]
