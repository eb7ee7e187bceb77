"""`dagrunner jobs list [--json] [--all]`: running jobs and those ended in the last hour, newest first."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

from click.testing import Result

from dagrunner.persistence.engine import make_engine, session_scope
from dagrunner.persistence.models import JobState, JobType, SchedulerJob
from dagrunner.persistence.schema import init_db


def _add_jobs(project: Path) -> dict[str, int]:
    now = datetime.now(UTC)
    engine = make_engine(f"sqlite:///{project / '.dagrunner' / 'dagrunner.db'}")
    (project / ".dagrunner").mkdir(exist_ok=True)
    init_db(engine)
    jobs = {
        "scheduler": SchedulerJob(job_type=JobType.SCHEDULER, host="sched-1", pid=101, started_at=now - timedelta(hours=3),
                                  latest_heartbeat=now - timedelta(seconds=2), state=JobState.RUNNING),
        "triggerer": SchedulerJob(job_type=JobType.TRIGGERER, host="sched-2", pid=102, started_at=now,
                                  latest_heartbeat=now, state=JobState.RUNNING),
        "recent": SchedulerJob(job_type=JobType.BACKFILL, host="sched-1", pid=103, started_at=now - timedelta(minutes=20),
                               latest_heartbeat=now - timedelta(minutes=10), ended_at=now - timedelta(minutes=10),
                               state=JobState.FAILED),
        "old": SchedulerJob(job_type=JobType.DAGS_TEST, host="laptop", pid=104, started_at=now - timedelta(days=1),
                            latest_heartbeat=now - timedelta(days=1), ended_at=now - timedelta(days=1),
                            state=JobState.SUCCESS),
    }  # fmt: skip
    with session_scope(engine) as s:
        s.add_all(jobs.values())
        s.flush()
        ids = {name: job.id for name, job in jobs.items()}
    engine.dispose()
    return ids


def test_jobs_list_shows_running_and_recently_ended_jobs(project: Path, run_cli: Callable[..., Result]) -> None:
    ids = _add_jobs(project)
    result = run_cli("jobs", "list", "--json")
    assert result.exit_code == 0, result.output
    rows = json.loads(result.output)
    assert [r["id"] for r in rows] == [ids["recent"], ids["triggerer"], ids["scheduler"]]  # newest first
    scheduler = rows[-1]
    assert scheduler["type"] == "scheduler" and scheduler["host"] == "sched-1" and scheduler["pid"] == 101
    assert scheduler["state"] == "running" and scheduler["ended_at"] is None
    assert 1 <= scheduler["heartbeat_age_s"] < 60
    assert rows[0]["state"] == "failed" and rows[0]["heartbeat_age_s"] is None and rows[0]["ended_at"]

    everything = json.loads(run_cli("jobs", "list", "--all", "--json").output)
    assert [r["id"] for r in everything] == sorted(ids.values(), reverse=True)

    table = run_cli("jobs", "list")
    assert table.exit_code == 0, table.output
    for word in ("scheduler", "triggerer", "backfill", "sched-1", "running", "failed", "last heartbeat"):
        assert word in table.output, table.output
    assert "dags_test" not in table.output and "laptop" not in table.output
