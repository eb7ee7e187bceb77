"""Backfill plans (cron, timedelta, data intervals, DST), reprocess behaviours, order, max_active_runs."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner
from sqlalchemy import select

from dagrunner.cli.main import cli
from dagrunner.errors import SchedulingError
from dagrunner.persistence.engine import make_engine, session_scope
from dagrunner.persistence.models import AuditLog, DagRun

DAG_TEMPLATE = """
import pendulum
from datetime import timedelta
from pathlib import Path
from dagrunner import DAG, task
from dagrunner.timetables import CronDataIntervalTimetable

LEDGER = Path(__file__).parent.parent / "ledger.txt"
BROKEN = Path(__file__).parent.parent / "broken.txt"

with DAG("{dag_id}", schedule={schedule}, start_date=pendulum.datetime(2026, 1, 1, tz="{tz}"), max_active_runs=16):
    @task(depends_on_past={past})
    def one(ds=None, run_id=None):
        with LEDGER.open("a") as fh:
            fh.write(f"one {{ds}} {{run_id}}\\n")
        if BROKEN.exists() and ds in BROKEN.read_text().split():
            raise RuntimeError("broken day " + ds)

    @task
    def two(ds=None):
        with LEDGER.open("a") as fh:
            fh.write(f"two {{ds}}\\n")

    one() >> two()
"""


@pytest.fixture
def bf(tmp_path: Path, db_url: str, monkeypatch: pytest.MonkeyPatch):
    (tmp_path / "dags").mkdir()
    monkeypatch.setenv("DAGRUNNER_HOME", str(tmp_path))
    monkeypatch.setenv("DAGRUNNER_DB_URL", db_url)
    monkeypatch.setenv("DAGRUNNER_EXECUTOR", "inline")

    class Project:
        root = tmp_path

        def dag(self, dag_id: str, schedule: str = '"@daily"', tz: str = "UTC", past: bool = False) -> None:
            body = DAG_TEMPLATE.format(dag_id=dag_id, schedule=schedule, tz=tz, past=past)
            (tmp_path / "dags" / f"{dag_id}.py").write_text(body)

        def run(self, *args: str, input: str | None = None):
            return CliRunner().invoke(cli, list(args), input=input, catch_exceptions=False)

        def plan(self, *args: str) -> list[dict]:
            result = self.run("backfill", *args, "--dry-run", "--json")
            assert result.exit_code == 0, result.output
            return json.loads(result.output)["plan"]

        def ledger(self) -> list[str]:
            path = tmp_path / "ledger.txt"
            return path.read_text().splitlines() if path.exists() else []

        def runs(self, dag_id: str) -> list[DagRun]:
            engine = make_engine(db_url)
            with session_scope(engine, readonly=True) as s:
                runs = list(s.scalars(select(DagRun).where(DagRun.dag_id == dag_id).order_by(DagRun.logical_date)))
            engine.dispose()
            return runs

        def audit(self, event: str) -> list[AuditLog]:
            engine = make_engine(db_url)
            with session_scope(engine, readonly=True) as s:
                rows = list(s.scalars(select(AuditLog).where(AuditLog.event == event).order_by(AuditLog.id)))
            engine.dispose()
            return rows

    return Project()


def test_plan_for_a_daily_cron_across_the_amsterdam_dst_switch(bf) -> None:
    bf.dag("ams", tz="Europe/Amsterdam")
    rows = bf.plan("ams", "-s", "2026-03-28", "-e", "2026-03-30")
    assert [r["logical_date"] for r in rows] == [
        "2026-03-27T23:00:00+00:00",  # local midnight before the switch: UTC+1
        "2026-03-28T23:00:00+00:00",  # the night of the switch: still CET at midnight
        "2026-03-29T22:00:00+00:00",  # after: CEST, UTC+2
    ]
    assert {r["action"] for r in rows} == {"create"}
    assert rows[0]["run_id"] == "backfill__2026-03-27T23:00:00+00:00"


def test_plan_for_a_timedelta_schedule_and_a_data_interval_timetable(bf) -> None:
    bf.dag("every12h", schedule="timedelta(hours=12)")
    rows = bf.plan("every12h", "-s", "2026-01-02", "-e", "2026-01-03T00:00:00")
    assert [r["logical_date"] for r in rows] == [
        "2026-01-02T00:00:00+00:00", "2026-01-02T12:00:00+00:00", "2026-01-03T00:00:00+00:00",
    ]  # fmt: skip
    bf.dag("intervals", schedule='CronDataIntervalTimetable("0 0 * * *", "UTC")')
    rows = bf.plan("intervals", "-s", "2026-01-02", "-e", "2026-01-03")
    assert [(r["data_interval_start"], r["data_interval_end"]) for r in rows] == [
        ("2026-01-02T00:00:00+00:00", "2026-01-03T00:00:00+00:00"),
        ("2026-01-03T00:00:00+00:00", "2026-01-04T00:00:00+00:00"),
    ]


def test_dry_run_changes_nothing_and_backfill_runs_every_date(bf) -> None:
    bf.dag("daily")
    bf.plan("daily", "-s", "2026-01-01", "-e", "2026-01-03")
    assert bf.runs("daily") == []
    result = bf.run("backfill", "daily", "-s", "2026-01-01", "-e", "2026-01-03", "--json")
    assert result.exit_code == 0, result.output
    summary = json.loads(result.output)
    assert summary["state"] == "success" and summary["succeeded"] == 3
    runs = bf.runs("daily")
    assert [(r.run_type.value, r.state.value) for r in runs] == [("backfill", "success")] * 3
    assert sorted(bf.ledger()) == sorted(
        [f"one 2026-01-0{d} backfill__2026-01-0{d}T00:00:00+00:00" for d in (1, 2, 3)]
        + [f"two 2026-01-0{d}" for d in (1, 2, 3)]
    )
    started = bf.audit("backfill.started")
    assert len(started) == 1 and "dagrunner backfill daily -s 2026-01-01" in started[0].actor
    assert len(bf.audit("backfill.run_created")) == 3
    assert [(r.old_state, r.new_state) for r in bf.audit("backfill.state")] == [("running", "success")]


def test_reprocess_behaviours(bf) -> None:
    bf.dag("daily")
    (bf.root / "broken.txt").write_text("2026-01-02")
    first = bf.run("backfill", "daily", "-s", "2026-01-01", "-e", "2026-01-03", "--json")
    assert first.exit_code == 1 and json.loads(first.output)["failed"] == 1

    actions = {r["logical_date"][:10]: r["action"] for r in bf.plan("daily", "-s", "2026-01-01", "-e", "2026-01-04")}
    assert actions == {"2026-01-01": "skip", "2026-01-02": "skip", "2026-01-03": "skip", "2026-01-04": "create"}
    failed_plan = bf.plan("daily", "-s", "2026-01-01", "-e", "2026-01-03", "--reprocess-behavior", "failed")
    assert [r["action"] for r in failed_plan] == ["skip", "rerun", "skip"]
    completed_plan = bf.plan("daily", "-s", "2026-01-01", "-e", "2026-01-03", "--reprocess-behavior", "completed")
    assert [r["action"] for r in completed_plan] == ["rerun", "rerun", "rerun"]

    (bf.root / "broken.txt").write_text("")
    refused = bf.run("backfill", "daily", "-s", "2026-01-01", "-e", "2026-01-03", "--reprocess-behavior", "failed",
                     input="n\n")  # fmt: skip
    assert refused.exit_code == 1 and "Re-run 1 existing run(s)" in refused.output
    before = len(bf.ledger())
    again = bf.run("backfill", "daily", "-s", "2026-01-01", "-e", "2026-01-03", "--reprocess-behavior", "failed",
                   "--yes", "--json")  # fmt: skip
    assert again.exit_code == 0, again.output
    rerun_lines = bf.ledger()[before:]
    assert sorted(line.split()[0] + " " + line.split()[1] for line in rerun_lines) == [
        "one 2026-01-02", "two 2026-01-02",
    ]  # only the failed run's failed task and its downstream ran again  # fmt: skip
    assert {r.state.value for r in bf.runs("daily")} == {"success"}
    assert len(bf.runs("daily")) == 3  # re-run in place: no duplicate runs
    assert len(bf.audit("backfill.run_rerun")) == 1


def test_queued_or_running_runs_are_never_touched(bf) -> None:
    bf.dag("daily")
    assert bf.run("dags", "trigger", "daily", "--logical-date", "2026-01-02", "--run-id", "live").exit_code == 0
    plan = bf.plan("daily", "-s", "2026-01-01", "-e", "2026-01-03", "--reprocess-behavior", "completed")
    by_date = {r["logical_date"][:10]: r for r in plan}
    assert by_date["2026-01-02"]["action"] == "skip" and by_date["2026-01-02"]["existing_state"] == "queued"


def test_run_backwards_order_and_refusal_with_depends_on_past(bf) -> None:
    bf.dag("daily")
    rows = bf.plan("daily", "-s", "2026-01-01", "-e", "2026-01-03", "--run-backwards")
    assert [r["logical_date"][:10] for r in rows] == ["2026-01-03", "2026-01-02", "2026-01-01"]
    bf.dag("pasty", past=True)
    refused = bf.run("backfill", "pasty", "-s", "2026-01-01", "-e", "2026-01-03", "--run-backwards")
    assert refused.exit_code == 1 and "depends_on_past" in refused.output and "one" in refused.output


def test_max_active_runs_is_never_exceeded(bf) -> None:
    bf.dag("daily")
    result = bf.run("backfill", "daily", "-s", "2026-01-01", "-e", "2026-01-08", "--max-active-runs", "2", "--json")
    assert result.exit_code == 0, result.output
    # replay every run's queued->running->finished from the audit log and take the peak overlap
    active, peak = set(), 0
    for row in bf.audit("run.state"):
        if row.new_state == "running":
            active.add(row.run_id)
        elif row.new_state in ("success", "failed"):
            active.discard(row.run_id)
        peak = max(peak, len(active))
    assert peak == 2
    assert len(bf.runs("daily")) == 8


def test_bad_ranges_are_clear_errors(bf) -> None:
    bf.dag("daily")
    backwards = bf.run("backfill", "daily", "-s", "2026-01-05", "-e", "2026-01-01")
    assert backwards.exit_code == 2 and "is after" in backwards.output
    nothing = bf.run("backfill", "daily", "-s", "2025-01-01", "-e", "2025-01-05", "--json")
    assert json.loads(nothing.output)["state"] == "nothing_to_do"  # before the DAG's start_date


def test_check_request_names_the_depends_on_past_tasks() -> None:
    from types import SimpleNamespace

    from dagrunner.scheduling.backfill import check_request

    dag = SimpleNamespace(dag_id="d", tasks=[SimpleNamespace(task_id="a", depends_on_past=True)])
    with pytest.raises(SchedulingError, match="tasks a use depends_on_past"):
        check_request(dag, run_backwards=True)  # type: ignore[arg-type]
    check_request(dag, run_backwards=False)  # type: ignore[arg-type]


def test_a_resume_reruns_only_the_tries_a_shutdown_killed(migrated_engine) -> None:
    """Killed: the latest try's row says its executor's shutdown killed it (`interrupted`). A try that
    failed on its own stays as it is, also when an earlier try of the same instance was interrupted."""
    from datetime import UTC, datetime

    from dagrunner.persistence.models import DagRunType, TaskInstance, TaskTry
    from dagrunner.scheduling.backfill import interrupted_instances
    from dagrunner.states import DagRunState, TaskInstanceState, TryState

    t0 = datetime(2026, 1, 5, 6, 0, tzinfo=UTC)
    # task_id -> (state, the interrupted flag of each try, oldest first)
    cases = {
        "killed": (TaskInstanceState.FAILED, [True]),
        "retrying": (TaskInstanceState.UP_FOR_RETRY, [True]),
        "failed_on_its_own": (TaskInstanceState.FAILED, [False]),
        "killed_then_failed": (TaskInstanceState.FAILED, [True, False]),
        "succeeded_after_a_kill": (TaskInstanceState.SUCCESS, [True, False]),
    }
    with session_scope(migrated_engine) as s:
        s.add(DagRun(dag_id="d", run_id="r", run_type=DagRunType.BACKFILL, logical_date=t0, run_after=t0,
                     state=DagRunState.RUNNING, conf={}))  # fmt: skip
        for task_id, (state, flags) in cases.items():
            ti = TaskInstance(dag_id="d", run_id="r", task_id=task_id, state=state, try_number=len(flags))
            s.add(ti)
            s.flush()
            for number, interrupted in enumerate(flags, start=1):
                s.add(TaskTry(ti_id=ti.id, dag_id="d", run_id="r", task_id=task_id, map_index=-1, try_number=number,
                              state=TryState.FAILED, end_date=t0, interrupted=interrupted))  # fmt: skip
    with session_scope(migrated_engine, readonly=True) as s:
        assert sorted(ti.task_id for ti in interrupted_instances(s, "d", "r")) == ["killed", "retrying"]
        assert interrupted_instances(s, "d", "other-run") == []
