"""/api/v1/jobs: the processes registered in the metadata DB, as `jobs list --json`, newest first."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from dagrunner.persistence.engine import session_scope
from dagrunner.persistence.models import JobState, JobType
from dagrunner.scheduling.jobs import end_job, register_job

from .conftest import WebProject


def test_running_and_recently_ended_jobs_and_all_with_the_flag(web: WebProject) -> None:
    now = datetime.now(UTC)
    with session_scope(web.engine) as session:
        old = register_job(session, JobType.BACKFILL, now - timedelta(days=2), actor="test").id
        end_job(session, old, now - timedelta(days=2), JobState.SUCCESS, actor="test", reason="done")
        ended = register_job(session, JobType.TRIGGERER, now - timedelta(minutes=30), actor="test").id
        end_job(session, ended, now - timedelta(minutes=10), JobState.FAILED, actor="test", reason="crashed")
        running = register_job(session, JobType.SCHEDULER, now - timedelta(seconds=5), actor="test").id
    client = web.client("viewer")
    page = client.get("/api/v1/jobs").json()
    assert [j["id"] for j in page["items"]] == [running, ended] and page["total"] == 2
    job = page["items"][0]
    assert set(job) == {"id", "type", "host", "pid", "state", "started_at", "latest_heartbeat", "heartbeat_age_s",
                        "ended_at"}  # fmt: skip
    assert (job["type"], job["state"], job["ended_at"]) == ("scheduler", "running", None)
    assert job["heartbeat_age_s"] >= 0 and page["items"][1]["heartbeat_age_s"] is None
    everything = client.get("/api/v1/jobs", params={"all": "true"}).json()
    assert [j["id"] for j in everything["items"]] == [running, ended, old]
    second = client.get("/api/v1/jobs", params={"all": "true", "limit": 1, "offset": 2}).json()
    assert [j["id"] for j in second["items"]] == [old] and second["total"] == 3
    assert web.client(None).get("/api/v1/jobs").status_code == 401
    assert web.client("viewer").post("/api/v1/jobs").status_code == 405
