"""Every template context key a scheduled try sees, compared with what Airflow 3 gives (issue #15, item 3).

A daily and an hourly DAG, each written with a cron preset and with a timedelta, run by the scheduler with
catchup in both timetable families: the trigger family (our default, and Airflow 3's: `CronTriggerTimetable` /
`DeltaTriggerTimetable` with a zero interval) and the data-interval family (`create_cron_data_intervals`:
`CronDataIntervalTimetable` / `DeltaDataIntervalTimetable`). A probe task returns what it saw; the table
below is what Airflow 3 would have given the last run of each DAG. Where the table comes from:

- the keys and how they are derived: Airflow 3's task runner, `RuntimeTaskInstance.get_template_context`
  (task-sdk/src/airflow/sdk/execution_time/task_runner.py): `ds` = logical_date "%Y-%m-%d", `ts` = its
  isoformat, `ts_nodash` = "%Y%m%dT%H%M%S", `ts_nodash_with_tz` = `ts` without "-" and ":",
  `task_instance_key_str` = f"{dag_id}__{task_id}__{ds_nodash}", `prev_*_success` from the DAG's latest
  successful run with an earlier logical date; the `Context` TypedDict in
  task-sdk/src/airflow/sdk/definitions/context.py for the key list;
- `expanded_ti_count`: airflow-core's TaskInstance context (`get_mapped_ti_count`): the number of a mapped
  task's instances, None for a task that is not mapped;
- the dates: the templates reference (docs/apache-airflow/templates-ref.rst) and the timetables page
  (authoring-and-scheduling/timetable.rst): a trigger timetable's run has logical_date = data_interval_start
  = data_interval_end = its trigger time; a data-interval run's logical_date is its interval's start and it
  runs after the interval's end;
- run ids: `Timetable.generate_run_id` / `DagRun.generate_run_id`: "scheduled__" + run_after.isoformat().
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import pendulum
import pytest
from sqlalchemy import select
from sqlalchemy.engine import Engine

from dagrunner.authoring._settings import get_settings
from dagrunner.clock import FakeClock
from dagrunner.persistence.engine import session_scope
from dagrunner.persistence.models import XCom
from dagrunner.settings import Settings

from .harness import PARALLELISM, START, Harness

PROBE_DAGS = """
import pendulum
from datetime import datetime, timedelta
from dagrunner import DAG, task
from dagrunner.operators import PythonOperator

SCALARS = (
    "ds", "ds_nodash", "ts", "ts_nodash", "ts_nodash_with_tz", "logical_date", "data_interval_start",
    "data_interval_end", "prev_data_interval_start_success", "prev_data_interval_end_success",
    "prev_start_date_success", "prev_end_date_success", "run_id", "task_instance_key_str",
    "task_reschedule_count", "expanded_ti_count", "map_index_template", "triggering_asset_events", "params",
    "inlets", "outlets", "templates_dict",
)


def plain(value):
    return value.isoformat() if isinstance(value, datetime) else value


def probe(**context):
    seen = {name: plain(context[name]) for name in SCALARS}
    ti, run, macros = context["ti"], context["dag_run"], context["macros"]
    seen["dag"] = context["dag"].dag_id
    seen["task"] = context["task"].task_id
    seen["ti"] = [ti.dag_id, ti.run_id, ti.task_id, ti.map_index, ti.try_number]
    seen["task_instance"] = context["task_instance"] is ti
    seen["dag_run"] = [run.run_id, run.run_type, plain(run.logical_date), plain(run.data_interval_start),
                       plain(run.data_interval_end), plain(run.run_after)]
    seen["macros"] = [macros.ds_add(context["ds"], 1), macros.ds_format(context["ds"], "%Y-%m-%d", "%d.%m.%Y"),
                      plain(context["logical_date"] + macros.dateutil.relativedelta.relativedelta(months=1))]
    seen["keys"] = sorted(context)
    return seen


@task
def sizes():
    return [10, 20, 30]


@task
def fan(size, expanded_ti_count=None, ti=None):
    return [expanded_ti_count, ti.map_index, size]


for dag_id, schedule, start in [
    ("cron_daily", "@daily", pendulum.datetime(2026, 1, 3, tz="UTC")),
    ("delta_daily", timedelta(days=1), pendulum.datetime(2026, 1, 3, tz="UTC")),
    ("cron_hourly", "@hourly", pendulum.datetime(2026, 1, 5, 9, tz="UTC")),
    ("delta_hourly", timedelta(hours=1), pendulum.datetime(2026, 1, 5, 9, tz="UTC")),
]:
    with DAG(dag_id, schedule=schedule, start_date=start, catchup=True, max_active_runs=1, params={"p": 1}):
        PythonOperator(task_id="probe", python_callable=probe,
                       templates_dict={"key": "{{ task_instance_key_str }}", "prev_end": "{{ prev_end_date_success }}"})
        fan.expand(size=sizes())
"""

# Airflow 3's values for the last scheduled run of each DAG when the clock reads START (2026-01-05 12:00 UTC),
# by (family, period); the cron and the timedelta DAG of a period get the same values. `PREV_START` and
# `PREV_END` stand for the previous run's recorded start and end (read from the database).
PREV_START, PREV_END = "<previous run's start_date>", "<previous run's end_date>"
AIRFLOW_3: dict[tuple[str, str], dict[str, Any]] = {
    ("trigger", "daily"): {
        "ds": "2026-01-05", "ds_nodash": "20260105", "ts": "2026-01-05T00:00:00+00:00",
        "ts_nodash": "20260105T000000", "ts_nodash_with_tz": "20260105T000000+0000",
        "logical_date": "2026-01-05T00:00:00+00:00",
        "data_interval_start": "2026-01-05T00:00:00+00:00", "data_interval_end": "2026-01-05T00:00:00+00:00",
        "prev_data_interval_start_success": "2026-01-04T00:00:00+00:00",
        "prev_data_interval_end_success": "2026-01-04T00:00:00+00:00",
        "run_id": "scheduled__2026-01-05T00:00:00+00:00", "run_after": "2026-01-05T00:00:00+00:00",
    },
    ("trigger", "hourly"): {
        "ds": "2026-01-05", "ds_nodash": "20260105", "ts": "2026-01-05T12:00:00+00:00",
        "ts_nodash": "20260105T120000", "ts_nodash_with_tz": "20260105T120000+0000",
        "logical_date": "2026-01-05T12:00:00+00:00",
        "data_interval_start": "2026-01-05T12:00:00+00:00", "data_interval_end": "2026-01-05T12:00:00+00:00",
        "prev_data_interval_start_success": "2026-01-05T11:00:00+00:00",
        "prev_data_interval_end_success": "2026-01-05T11:00:00+00:00",
        "run_id": "scheduled__2026-01-05T12:00:00+00:00", "run_after": "2026-01-05T12:00:00+00:00",
    },
    ("data_interval", "daily"): {
        "ds": "2026-01-04", "ds_nodash": "20260104", "ts": "2026-01-04T00:00:00+00:00",
        "ts_nodash": "20260104T000000", "ts_nodash_with_tz": "20260104T000000+0000",
        "logical_date": "2026-01-04T00:00:00+00:00",
        "data_interval_start": "2026-01-04T00:00:00+00:00", "data_interval_end": "2026-01-05T00:00:00+00:00",
        "prev_data_interval_start_success": "2026-01-03T00:00:00+00:00",
        "prev_data_interval_end_success": "2026-01-04T00:00:00+00:00",
        "run_id": "scheduled__2026-01-05T00:00:00+00:00", "run_after": "2026-01-05T00:00:00+00:00",
    },
    ("data_interval", "hourly"): {
        "ds": "2026-01-05", "ds_nodash": "20260105", "ts": "2026-01-05T11:00:00+00:00",
        "ts_nodash": "20260105T110000", "ts_nodash_with_tz": "20260105T110000+0000",
        "logical_date": "2026-01-05T11:00:00+00:00",
        "data_interval_start": "2026-01-05T11:00:00+00:00", "data_interval_end": "2026-01-05T12:00:00+00:00",
        "prev_data_interval_start_success": "2026-01-05T10:00:00+00:00",
        "prev_data_interval_end_success": "2026-01-05T11:00:00+00:00",
        "run_id": "scheduled__2026-01-05T12:00:00+00:00", "run_after": "2026-01-05T12:00:00+00:00",
    },
}  # fmt: skip


def airflow_values(family: str, period: str, dag_id: str) -> dict[str, Any]:
    """The whole row: the dates above, and the keys whose values follow from them alone."""
    row = AIRFLOW_3[(family, period)]
    run_id = row["run_id"]
    return {
        **{k: v for k, v in row.items() if k != "run_after"},
        "prev_start_date_success": PREV_START,
        "prev_end_date_success": PREV_END,
        "task_instance_key_str": f"{dag_id}__probe__{row['ds_nodash']}",
        "task_reschedule_count": 0,
        "expanded_ti_count": None,  # probe is not mapped
        "map_index_template": None,  # none set
        "triggering_asset_events": {},  # not an asset-triggered run
        "params": {"p": 1},
        "inlets": [],
        "outlets": [],
        "templates_dict": {"key": f"{dag_id}__probe__{row['ds_nodash']}", "prev_end": PREV_END},
        "dag": dag_id,
        "task": "probe",
        "ti": [dag_id, run_id, "probe", -1, 1],
        "task_instance": True,  # the same object as ti
        "dag_run": [
            run_id,
            "scheduled",
            row["logical_date"],
            row["data_interval_start"],
            row["data_interval_end"],
            row["run_after"],
        ],  # fmt: skip
        "macros": [
            _ds_add_one(row["ds"]),
            ".".join(reversed(row["ds"].split("-"))),
            row["logical_date"].replace("-01-", "-02-", 1),
        ],  # fmt: skip
    }


def _ds_add_one(ds: str) -> str:
    return {"2026-01-05": "2026-01-06", "2026-01-04": "2026-01-05"}[ds]


#: Airflow 3's context keys at execution time (`get_template_context`; `expanded_ti_count` and `templates_dict`
#: added by airflow-core's context and the PythonOperator). `conn` joins with connections (issue #15, item 2).
AIRFLOW_3_KEYS = {
    "dag", "inlets", "map_index_template", "outlets", "run_id", "task", "task_instance", "ti", "outlet_events",
    "inlet_events", "macros", "params", "var", "dag_run", "triggering_asset_events", "task_instance_key_str",
    "task_reschedule_count", "prev_start_date_success", "prev_end_date_success", "logical_date", "ds",
    "ds_nodash", "ts", "ts_nodash", "ts_nodash_with_tz", "data_interval_end", "data_interval_start",
    "prev_data_interval_start_success", "prev_data_interval_end_success", "expanded_ti_count", "templates_dict",
}  # fmt: skip

CASES = [("trigger", "daily"), ("trigger", "hourly"), ("data_interval", "daily"), ("data_interval", "hourly")]


@pytest.fixture(params=[False, True], ids=["trigger", "data_interval"])
def ran(
    request: pytest.FixtureRequest, tmp_path: Path, db_url: str, migrated_engine: Engine,
    monkeypatch: pytest.MonkeyPatch,
) -> Iterator[tuple[str, Harness]]:  # fmt: skip
    """The probe DAGs run by the scheduler at START, in one timetable family."""
    data_intervals: bool = request.param
    monkeypatch.setenv("DAGRUNNER_CREATE_CRON_DATA_INTERVALS", "true" if data_intervals else "false")
    get_settings.cache_clear()  # DAG files read the family from the process-wide settings
    (tmp_path / "dags").mkdir()
    settings = Settings.load(
        {"db_url": db_url, "dagbag_import_timeout": 20, "parallelism": PARALLELISM,
         "create_cron_data_intervals": data_intervals},
        environ={}, home=tmp_path,
    )  # fmt: skip
    h = Harness(tmp_path, settings, migrated_engine, FakeClock(START))
    h.write_dag("probes.py", PROBE_DAGS)
    try:
        h.start()
        h.tick()
        yield ("data_interval" if data_intervals else "trigger"), h
    finally:
        if h.scheduler is not None:
            h.scheduler.shutdown(1.0)
        get_settings.cache_clear()


def _returned(h: Harness, dag_id: str, run_id: str, task_id: str) -> dict[int, Any]:
    with session_scope(h.engine, readonly=True) as s:
        rows = s.execute(
            select(XCom.map_index, XCom.value).where(
                XCom.dag_id == dag_id, XCom.run_id == run_id, XCom.task_id == task_id, XCom.key == "return_value"
            )
        ).all()
    return {m: (json.loads(v) if isinstance(v, str) else v) for m, v in rows}


def _utc(value: datetime | None) -> pendulum.DateTime:
    assert value is not None
    return pendulum.instance(value).in_timezone("UTC")


def _iso(value: datetime | None) -> str | None:
    return None if value is None else _utc(value).isoformat()


@pytest.mark.parametrize("period", ["daily", "hourly"])
@pytest.mark.parametrize("kind", ["cron", "delta"])
def test_every_key_has_airflow_3s_value(ran: tuple[str, Harness], kind: str, period: str) -> None:
    family, h = ran
    dag_id = f"{kind}_{period}"
    runs = h.runs(dag_id)
    assert {r.state.value for r in runs} == {"success"}, [(r.run_id, r.state) for r in runs]
    last, previous = runs[-1], runs[-2]
    seen = _returned(h, dag_id, last.run_id, "probe")[-1]
    keys = seen.pop("keys")
    expected = airflow_values(family, period, dag_id)
    prev = {PREV_START: _iso(previous.start_date), PREV_END: _iso(previous.end_date)}
    assert prev[PREV_START] is not None and prev[PREV_END] is not None
    expected = {k: prev.get(v, v) if isinstance(v, str) else v for k, v in expected.items()}
    # a template renders the DateTime with str(), as Jinja does in Airflow
    expected["templates_dict"] = {"key": expected["task_instance_key_str"], "prev_end": str(_utc(previous.end_date))}
    assert seen == expected
    assert AIRFLOW_3_KEYS - {"conn"} <= set(keys), sorted(AIRFLOW_3_KEYS - set(keys))


def test_first_run_has_no_previous_success_and_mapped_instances_know_their_count(ran: tuple[str, Harness]) -> None:
    _, h = ran
    first = h.runs("cron_daily")[0]
    seen = _returned(h, "cron_daily", first.run_id, "probe")[-1]
    assert [seen[k] for k in ("prev_data_interval_start_success", "prev_data_interval_end_success",
                              "prev_start_date_success", "prev_end_date_success")] == [None] * 4  # fmt: skip
    assert seen["templates_dict"]["prev_end"] == "None"
    assert _returned(h, "cron_daily", first.run_id, "fan") == {0: [3, 0, 10], 1: [3, 1, 20], 2: [3, 2, 30]}
