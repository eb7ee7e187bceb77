"""DAG: argument validation, timezone and timetable, the graph, cycles, duplicates, registry, @dag."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pendulum
import pytest
from authoring_helpers import next_line

from dagrunner import DAG, dag, task
from dagrunner.authoring._settings import get_settings
from dagrunner.authoring.dag import collected_dags, reset_collected_dags
from dagrunner.authoring.xcom_arg import DagParam
from dagrunner.errors import (
    CycleError,
    DuplicateTaskIdError,
    InvalidArgumentError,
    InvalidScheduleError,
    InvalidTimezoneError,
    TaskNotFoundError,
)
from dagrunner.operators import EmptyOperator

START = pendulum.datetime(2026, 1, 1, tz="Europe/Amsterdam")


# --- argument validation --------------------------------------------------------------------------

BAD_DAG_ARGS: list[tuple[str, Any, str]] = [
    ("max_active_runs", 0, "integer >= 1"),
    ("max_active_runs", "2", "integer >= 1"),
    ("max_active_tasks", -1, "integer >= 1"),
    ("max_active_tasks", True, "integer"),
    ("catchup", "yes", "True or False"),
    ("start_date", "2026-01-01", "a datetime"),
    ("start_date", pendulum.date(2026, 1, 1), "a datetime"),
    ("end_date", 20260101, "a datetime"),
    ("tags", "sales", "list of strings"),
    ("tags", ["ok", 3], "list of non-empty strings"),
    ("params", {"when": object()}, "JSON value"),
    ("params", {1: "x"}, "dict with string keys"),
    ("params", ["full"], "dict with string keys"),
    ("default_args", ["retries"], "dict with string keys"),
    ("dagrun_timeout", -5, "timedelta or a number of seconds > 0"),
    ("dagrun_timeout", timedelta(0), "timedelta or a number of seconds > 0"),
    ("dagrun_timeout", "1h", "timedelta or a number of seconds > 0"),
    ("description", 5, "a string or None"),
    ("doc_md", ["x"], "a string or None"),
    ("is_paused_upon_creation", "no", "True or False"),
    ("on_success_callback", "notify", "a callable"),
    ("on_failure_callback", [print, "x"], "a callable"),
    ("render_template_as_native_obj", 1, "True or False"),
    ("template_searchpath", 5, "list of strings"),
    ("user_defined_macros", "x", "dict with string keys"),
]


@pytest.mark.parametrize(("arg", "value", "accepted"), BAD_DAG_ARGS)
def test_bad_dag_argument_names_dag_arg_value_line_and_what_is_accepted(arg: str, value: Any, accepted: str) -> None:
    with pytest.raises(InvalidArgumentError) as info:
        where = next_line()
        DAG("etl", **{arg: value})
    message = str(info.value)
    assert "DAG 'etl'" in message
    assert f"{arg}" in message
    assert repr(value)[:40] in message or (arg == "params" and "params[" in message)
    assert f"{__file__}:{where}" in message
    assert accepted in message


@pytest.mark.parametrize("dag_id", ["", "has space", "a/b", "x" * 251, 5, "ünïcode"])
def test_bad_dag_id(dag_id: Any) -> None:
    with pytest.raises(InvalidArgumentError, match="dag_id="):
        DAG(dag_id)


@pytest.mark.parametrize("dag_id", ["etl", "a.b-c_d", "X" * 250, "0"])
def test_good_dag_ids(dag_id: str) -> None:
    assert DAG(dag_id).dag_id == dag_id


def test_end_date_before_start_date() -> None:
    with pytest.raises(InvalidArgumentError, match="at or after start_date"):
        DAG("etl", start_date=START, end_date=START - timedelta(days=1))


@pytest.mark.parametrize(("old", "new"), [("schedule_interval", "schedule"), ("concurrency", "max_active_tasks")])
def test_airflow2_argument_names_get_a_hint(old: str, new: str) -> None:
    with pytest.raises(InvalidArgumentError, match=f"{old}= is the Airflow 2 spelling; use {new}="):
        DAG("etl", **{old: "@daily"})


def test_unknown_dag_argument_suggests_the_close_name() -> None:
    with pytest.raises(InvalidArgumentError, match="'max_active_run' \\(did you mean 'max_active_runs'\\?\\)"):
        DAG("etl", max_active_run=1)


def test_defaults_match_airflow() -> None:
    d = DAG("etl")
    assert (d.catchup, d.max_active_runs, d.max_active_tasks) == (False, 16, 16)
    assert d.tags == [] and d.params == {} and d.default_args == {}
    assert d.dagrun_timeout is None and d.is_paused_upon_creation is None
    assert d.start_date is None and d.timezone == "UTC"
    assert not d.timetable.can_be_scheduled  # schedule=None: manual only


def test_dagrun_timeout_accepts_seconds() -> None:
    assert DAG("etl", dagrun_timeout=90).dagrun_timeout == timedelta(seconds=90)


# --- timezone and timetable -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("start_date", "expected_tz"),
    [
        (pendulum.datetime(2026, 1, 1, tz="Europe/Amsterdam"), "Europe/Amsterdam"),
        (datetime(2026, 1, 1, tzinfo=UTC), "UTC"),
        (datetime(2026, 1, 1), "UTC"),  # naive: read in the default timezone
    ],
)
def test_dag_timezone_is_the_start_dates(start_date: datetime, expected_tz: str) -> None:
    d = DAG("etl", schedule="@daily", start_date=start_date)
    assert d.timezone == expected_tz
    assert d.timetable.timezone == expected_tz
    assert d.start_date is not None and d.start_date.tzinfo is not None


def test_naive_start_date_uses_default_timezone_setting(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DAGRUNNER_DEFAULT_TIMEZONE", "America/New_York")
    get_settings.cache_clear()
    d = DAG("etl", schedule="@daily", start_date=datetime(2026, 1, 1, 6))
    assert d.timezone == "America/New_York"
    assert d.start_date == pendulum.datetime(2026, 1, 1, 6, tz="America/New_York")


def test_bad_default_timezone_setting_is_named(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DAGRUNNER_DEFAULT_TIMEZONE", "Mars/Olympus")
    get_settings.cache_clear()
    with pytest.raises(InvalidTimezoneError, match="Mars/Olympus"):
        DAG("etl")


def test_start_date_from_default_args_like_airflow() -> None:
    d = DAG("etl", schedule="@daily", default_args={"start_date": START})
    assert d.start_date == START and d.timezone == "Europe/Amsterdam"


def test_invalid_schedule_names_value_dag_and_line() -> None:
    with pytest.raises(InvalidScheduleError) as info:
        where = next_line()
        DAG("etl", schedule="every day please", start_date=START)
    message = str(info.value)
    assert "every day please" in message and "DAG 'etl'" in message and f"{__file__}:{where}" in message


def test_schedule_of_wrong_type() -> None:
    with pytest.raises(InvalidScheduleError, match="42"):
        DAG("etl", schedule=42)


@pytest.mark.parametrize(
    ("schedule", "data_interval"),
    [("0 6 * * *", False), ("@daily", False), (timedelta(hours=1), False), ("@once", False), (None, False)],
)
def test_schedule_values_give_trigger_timetables_by_default(schedule: Any, data_interval: bool) -> None:
    d = DAG("etl", schedule=schedule, start_date=START)
    assert d.timetable.is_data_interval is data_interval


def test_create_cron_data_intervals_setting(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DAGRUNNER_CREATE_CRON_DATA_INTERVALS", "true")
    get_settings.cache_clear()
    d = DAG("etl", schedule="@daily", start_date=START)
    assert d.timetable.is_data_interval


def test_settings_are_cached_between_dags(monkeypatch: pytest.MonkeyPatch) -> None:
    DAG("first")
    monkeypatch.setenv("DAGRUNNER_CREATE_CRON_DATA_INTERVALS", "true")
    assert not DAG("second", schedule="@daily").timetable.is_data_interval  # loaded once per process


# --- context ----------------------------------------------------------------------------------------


def test_with_block_makes_dag_current_and_nesting_works() -> None:
    with DAG("outer") as outer:
        a = EmptyOperator(task_id="a")
        with DAG("inner") as inner:
            b = EmptyOperator(task_id="b")
        c = EmptyOperator(task_id="c")
    assert (a.dag, b.dag, c.dag) == (outer, inner, outer)
    assert outer.task_ids == ["a", "c"] and inner.task_ids == ["b"]


def test_task_outside_dag_is_a_clear_error() -> None:
    with pytest.raises(InvalidArgumentError) as info:
        where = next_line()
        EmptyOperator(task_id="lonely")
    assert "EmptyOperator 'lonely'" in str(info.value)
    assert "not in a DAG" in str(info.value) and f"{__file__}:{where}" in str(info.value)


def test_dag_argument_instead_of_context() -> None:
    d = DAG("etl")
    t = EmptyOperator(task_id="t", dag=d)
    assert d.get_task("t") is t


# --- graph --------------------------------------------------------------------------------------


def test_graph_views() -> None:
    with DAG("etl") as d:
        a, b, c, e = (EmptyOperator(task_id=x) for x in "abce")
        a >> [b, c] >> e
    assert sorted(d.graph.edges) == [("a", "b"), ("a", "c"), ("b", "e"), ("c", "e")]
    assert [t.task_id for t in d.roots] == ["a"]
    assert [t.task_id for t in d.leaves] == ["e"]
    assert [t.task_id for t in d.topological_order()] == ["a", "b", "c", "e"]
    assert d.tasks == [a, b, c, e] and d.task_dict["c"] is c
    assert e.upstream_task_ids == {"b", "c"} and a.downstream_task_ids == {"b", "c"}
    assert a.get_flat_relative_ids() == {"b", "c", "e"}
    assert e.get_flat_relative_ids(upstream=True) == {"a", "b", "c"}


def test_topological_order_is_stable_by_definition_order() -> None:
    with DAG("etl") as d:
        z, y, x = (EmptyOperator(task_id=i) for i in "zyx")
        x >> y
    assert [t.task_id for t in d.topological_order()] == ["z", "x", "y"]


def test_get_task_unknown_lists_the_tasks() -> None:
    with DAG("etl") as d:
        EmptyOperator(task_id="a")
    with pytest.raises(TaskNotFoundError, match="DAG 'etl' has no task 'b'; its tasks: a"):
        d.get_task("b")


@pytest.mark.parametrize(
    ("edges", "closing", "cycle"),
    [
        ([("a", "b"), ("b", "c")], ("c", "a"), "a -> b -> c -> a"),
        ([], ("a", "a"), "a -> a"),
        ([("a", "b")], ("b", "a"), "a -> b -> a"),
        ([("a", "b"), ("b", "c"), ("a", "c")], ("c", "b"), "b -> c -> b"),
    ],
)
def test_cycle_is_refused_by_the_edge_that_closes_it(
    edges: list[tuple[str, str]], closing: tuple[str, str], cycle: str
) -> None:
    with DAG("etl") as d:
        tasks = {x: EmptyOperator(task_id=x) for x in "abc"}
        for up, down in edges:
            tasks[up] >> tasks[down]
        with pytest.raises(CycleError) as info:
            where = next_line()
            tasks[closing[0]] >> tasks[closing[1]]
    assert cycle in str(info.value)
    assert f"{__file__}:{where}" in str(info.value)
    assert not d.graph.has_edge(*closing)


def test_cycle_through_chain_names_the_cycle() -> None:
    with DAG("etl"):
        a, b, c = (EmptyOperator(task_id=x) for x in "abc")
        with pytest.raises(CycleError, match="a -> b -> c -> a"):
            a >> b >> c >> a


def test_repeated_edge_is_harmless() -> None:
    with DAG("etl") as d:
        a, b = EmptyOperator(task_id="a"), EmptyOperator(task_id="b")
        a >> b
        a >> b
    assert d.graph.number_of_edges() == 1


def test_duplicate_task_id_names_both_definitions() -> None:
    with DAG("etl"):
        first = next_line()
        EmptyOperator(task_id="load")
        with pytest.raises(DuplicateTaskIdError) as info:
            second = next_line()
            EmptyOperator(task_id="load")
    message = str(info.value)
    assert "'load'" in message and "DAG 'etl'" in message
    assert f"{__file__}:{first}" in message and f"{__file__}:{second}" in message


def test_edges_across_dags_are_refused() -> None:
    with DAG("one"):
        a = EmptyOperator(task_id="a")
    with DAG("two"):
        b = EmptyOperator(task_id="b")
    with pytest.raises(InvalidArgumentError, match="different DAGs"):
        a >> b


# --- registry and fileloc ---------------------------------------------------------------------------


def test_every_constructed_dag_is_collected_in_order() -> None:
    one, two = DAG("one"), DAG("two")
    assert collected_dags() == [one, two]
    reset_collected_dags()
    assert collected_dags() == []


def test_fileloc_is_the_defining_file_and_line() -> None:
    where = next_line()
    d = DAG("etl")
    assert (d.fileloc, d.fileloc_line) == (__file__, where)


# --- @dag -----------------------------------------------------------------------------------------


def test_dag_decorator_builds_and_registers_the_dag() -> None:
    @dag(schedule="@daily", start_date=START, tags=["sales"])
    def daily_sales(full: bool = False, limit: int = 10) -> None:
        """Sales, every day."""

        @task
        def extract(full: Any) -> int:
            return 1

        extract(full)

    where = next_line()
    built = daily_sales(limit=5)
    assert isinstance(built, DAG) and built.dag_id == "daily_sales"
    assert built.params == {"full": False, "limit": 5}
    assert built.doc_md == "Sales, every day."
    assert built.tags == ["sales"] and built.task_ids == ["extract"]
    assert collected_dags() == [built]
    assert (built.fileloc, built.fileloc_line) == (__file__, where)
    passed = built.get_task("extract").op_args[0]
    assert isinstance(passed, DagParam) and passed.name == "full"
    assert passed.resolve({"full": True}) is True and passed.resolve({}) is False


def test_dag_decorator_bare_and_with_id() -> None:
    @dag
    def plain() -> None:
        pass

    @dag("custom_id", params={"x": 1})
    def named() -> None:
        pass

    assert plain().dag_id == "plain"
    built = named()
    assert built.dag_id == "custom_id" and built.params == {"x": 1}
    assert named().dag_id == "custom_id"  # calling again builds another DAG with the same arguments


def test_dag_decorator_bad_call() -> None:
    @dag
    def etl(a: int = 1) -> None:
        pass

    with pytest.raises(InvalidArgumentError, match="@dag function 'etl'"):
        etl(1, 2)


def test_dag_param_without_default_must_come_from_the_run() -> None:
    @dag
    def etl(needed: Any) -> None:
        @task
        def use(x: Any) -> None:
            pass

        use(needed)

    built = etl()
    assert built.params == {}
    param = built.get_task("use").op_args[0]
    with pytest.raises(KeyError, match="needed"):
        param.resolve({})
    assert str(param) == "{{ params['needed'] }}"
