"""Airflow's TaskFlow and timetable names run by the scheduler: expand_kwargs, custom timetables via a plugin."""

from __future__ import annotations

import textwrap
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select

from dagrunner.persistence.engine import session_scope
from dagrunner.persistence.models import XCom
from dagrunner.scheduling.operations import trigger_run
from dagrunner.scheduling.scheduler import Scheduler

from .harness import Harness

EXPAND_KWARGS = """
import pendulum
from dagrunner import DAG, task
from dagrunner.operators import BashOperator

with DAG("ek", schedule=None, start_date=pendulum.datetime(2026, 1, 1, tz="UTC")):
    @task
    def pairs():
        return [{"x": 1, "y": "{{ ds }}"}, {"x": 2, "y": "b"}]

    @task
    def show(x, y, z=0):
        return f"{x}-{y}-{z}"

    show.partial(z=9).expand_kwargs(pairs())
    show.override(task_id="literal").expand_kwargs([{"x": 5, "y": "{{ ds }}"}])
    BashOperator.partial(task_id="bash").expand_kwargs(
        [{"bash_command": "echo $A", "env": {"A": "one"}}, {"bash_command": "echo two"}]
    )
    @task
    def bad():
        return [{"nope": 1}]
    show.override(task_id="wrong").expand_kwargs(bad())
"""


def _xcoms(h: Harness, dag_id: str) -> dict[str, object]:
    with session_scope(h.engine, readonly=True) as s:
        rows = s.scalars(select(XCom).where(XCom.dag_id == dag_id, XCom.key == "return_value")).all()
        return {f"{x.task_id}[{x.map_index}]": x.value for x in rows}


def test_expand_kwargs_maps_over_dicts_of_arguments(h: Harness) -> None:
    h.write_dag("ek.py", EXPAND_KWARGS)
    sched = h.start()
    _trigger(h, sched, "ek")
    h.tick()
    states = h.states("ek")
    assert states["show[0]"] == states["show[1]"] == "success"
    assert states["literal[0]"] == states["bash[0]"] == states["bash[1]"] == "success"
    assert states["wrong[0]"] == "failed"  # a dict naming an argument the function does not take
    xcoms = _xcoms(h, "ek")
    # Literal values are templates like any argument; values from XCom are data, never rendered (Airflow).
    assert xcoms["show[0]"] == "1-{{ ds }}-9" and xcoms["show[1]"] == "2-b-9"
    assert xcoms["literal[0]"] == "5-2026-01-05-0"
    assert xcoms["bash[0]"] == "one" and xcoms["bash[1]"] == "two"


def test_expand_kwargs_refuses_bad_literals_at_import() -> None:
    import pendulum

    from dagrunner import DAG, task
    from dagrunner.errors import InvalidArgumentError
    from dagrunner.operators import BashOperator

    @task
    def f(x: int) -> int:
        return x

    with DAG("bad", schedule=None, start_date=pendulum.datetime(2026, 1, 1, tz="UTC")):
        with pytest.raises(InvalidArgumentError, match="unknown argument"):
            f.expand_kwargs([{"y": 1}])
        with pytest.raises(InvalidArgumentError, match="each element to be a dict"):
            f.expand_kwargs([1])
        with pytest.raises(InvalidArgumentError, match="missing argument"):
            f.expand_kwargs([{}])
        with pytest.raises(InvalidArgumentError, match="go in partial"):
            BashOperator.partial(task_id="b").expand_kwargs([{"bash_command": "true", "retries": 2}])


WORKDAY_PLUGIN = '''
from datetime import timedelta

from pendulum import UTC, DateTime, Time

from dagrunner.loading.plugins import AirflowPlugin
from dagrunner.timetables.custom import DagRunInfo, DataInterval, TimeRestriction, Timetable


def _midnight(when):
    return DateTime.combine(when.date(), Time.min).replace(tzinfo=UTC)


class AfterWorkdayTimetable(Timetable):
    """Airflow's how-to example: one run per workday, covering that day, run after it ends."""

    def infer_manual_data_interval(self, *, run_after):
        start = _midnight(run_after - timedelta(days=1))
        while start.weekday() >= 5:
            start -= timedelta(days=1)
        return DataInterval(start=start, end=start + timedelta(days=1))

    def next_dagrun_info(self, *, last_automated_data_interval, restriction: TimeRestriction):
        if last_automated_data_interval is not None:
            start = last_automated_data_interval.start.add(days=1)  # pendulum, as Airflow hands it over
        elif restriction.earliest is None:
            return None
        else:
            start = restriction.earliest.start_of("day")
        start = _midnight(start)
        while start.weekday() >= 5:
            start += timedelta(days=1)
        if restriction.latest is not None and start > restriction.latest:
            return None
        return DagRunInfo.interval(start=start, end=start + timedelta(days=1))


class WorkdayTimetablePlugin(AirflowPlugin):
    name = "workday_timetable_plugin"
    timetables = [AfterWorkdayTimetable]
'''

WORKDAY_DAG = """
import pendulum
from dagrunner import DAG, task
from workday import AfterWorkdayTimetable

with DAG("workday", schedule=AfterWorkdayTimetable(), start_date=pendulum.datetime(2026, 1, 1, tz="UTC")):
    @task
    def report(data_interval_start=None, data_interval_end=None):
        return f"{data_interval_start.date()}..{data_interval_end.date()}"
    report()
"""


def test_custom_timetable_registered_by_a_plugin_schedules_runs(h: Harness) -> None:
    (h.root / "plugins").mkdir()
    (h.root / "plugins" / "workday.py").write_text(textwrap.dedent(WORKDAY_PLUGIN))
    h.write_dag("workday_dag.py", WORKDAY_DAG)
    sched = h.start()
    # 2026-01-01 is a Thursday: Thu and Fri are due by Wednesday the 7th 00:30, Sat/Sun are skipped, Mon and
    # Tue follow; the run covering Wednesday is not due yet.
    h.tick(datetime(2026, 1, 7, 0, 30, tzinfo=UTC))
    runs = h.runs("workday")
    assert [r.logical_date.date().isoformat() for r in runs] == ["2026-01-01", "2026-01-02", "2026-01-05", "2026-01-06"]
    assert all(r.state.value == "success" for r in runs)
    assert runs[2].data_interval_end - runs[2].data_interval_start == timedelta(days=1)
    values = sorted(str(v) for v in _xcoms_all(h, "workday"))
    assert values == [
        "2026-01-01..2026-01-02",
        "2026-01-02..2026-01-03",
        "2026-01-05..2026-01-06",
        "2026-01-06..2026-01-07",
    ]
    # A manual run: dated at its trigger time, covering what infer_manual_data_interval says.
    with session_scope(h.engine) as s:
        manual = trigger_run(s, sched.dag_source.dags()["workday"], actor="test", now=h.clock.now())
        interval = (manual.data_interval_start, manual.data_interval_end)
    assert interval == (datetime(2026, 1, 6, tzinfo=UTC), datetime(2026, 1, 7, tzinfo=UTC))


def _xcoms_all(h: Harness, dag_id: str) -> list[object]:
    with session_scope(h.engine, readonly=True) as s:
        return list(s.scalars(select(XCom.value).where(XCom.dag_id == dag_id, XCom.key == "return_value")))


def test_a_custom_timetable_outside_a_plugin_is_an_import_error(h: Harness) -> None:
    h.write_dag(
        "unregistered.py",
        """
        import pendulum
        from dagrunner import DAG
        from dagrunner.timetables.custom import DagRunInfo, DataInterval, Timetable

        class Mine(Timetable):
            def infer_manual_data_interval(self, *, run_after):
                return DataInterval.exact(run_after)

            def next_dagrun_info(self, *, last_automated_data_interval, restriction):
                return None

        DAG("unregistered", schedule=Mine(), start_date=pendulum.datetime(2026, 1, 1, tz="UTC"))
        """,
    )
    from dagrunner.loading.sync import load_dagbag

    bag = load_dagbag(h.settings, h.engine)
    (failure,) = bag.failures
    assert "is not registered by a plugin" in str(failure)


def _trigger(h: Harness, sched: Scheduler, dag_id: str) -> None:
    with session_scope(h.engine) as s:
        trigger_run(s, sched.dag_source.dags()[dag_id], actor="test", now=h.clock.now())


FLAVOURS = """
import pendulum
from dagrunner import DAG, TriggerRule, task
from dagrunner.operators import EmptyOperator

with DAG("flavours", schedule=None, start_date=pendulum.datetime(2026, 1, 1, tz="UTC")):
    @task.bash(env={"WHO": "world"})
    def greet(day):
        return "echo hello $WHO; echo " + day + " {{ ds_nodash }}"

    @task.bash
    def skip_me():
        return "exit 99"  # Airflow's default skip_on_exit_code

    @task.branch
    def choose(n):
        return ["small"] if n < 10 else "big"

    @task.short_circuit
    def stop_all():
        return 0

    @task.short_circuit(ignore_downstream_trigger_rules=False)
    def stop_next():
        return []

    greet("{{ ds }}") >> skip_me()
    choose(3) >> [EmptyOperator(task_id="small"), EmptyOperator(task_id="big")]
    stop_all() >> EmptyOperator(task_id="a1") >> EmptyOperator(task_id="a2", trigger_rule=TriggerRule.ALL_DONE)
    stop_next() >> EmptyOperator(task_id="b1") >> EmptyOperator(task_id="b2", trigger_rule=TriggerRule.ALL_DONE)
"""


def test_bash_branch_and_short_circuit_flavours_behave_as_airflow(h: Harness) -> None:
    h.write_dag("flavours.py", FLAVOURS)
    sched = h.start()
    _trigger(h, sched, "flavours")
    h.tick()
    assert h.states("flavours") == {
        "greet": "success",
        "skip_me": "skipped",
        "choose": "success",
        "small": "success",
        "big": "skipped",
        "stop_all": "success",
        "a1": "skipped",
        "a2": "skipped",  # ignore_downstream_trigger_rules=True: everything below is skipped
        "stop_next": "success",
        "b1": "skipped",
        "b2": "success",  # False: only the direct downstream; all_done still runs
    }
    xcoms = _xcoms(h, "flavours")
    assert xcoms["greet[-1]"] == "2026-01-05 20260105"  # the last line; the returned command is rendered
    assert xcoms["choose[-1]"] == ["small"]
