"""The DAG list's next run is the one the scheduler will create next, after the runs that exist (issue #15,
item 4): the same answer as `dagrunner dags list`."""

from __future__ import annotations

from datetime import UTC, datetime

from dagrunner.persistence.engine import session_scope
from dagrunner.persistence.models import DagRunType
from dagrunner.scheduling.dagruns import create_run

from .conftest import WebProject
from .dag_runs import dag_source


def test_next_run_comes_after_the_scheduled_run_that_exists(web: WebProject) -> None:
    web.dag_file("a.py", dag_source("alpha", schedule="@daily"))
    dag = web.parse().dags["alpha"]
    now = datetime.now(UTC)
    due = dag.timetable.next_dagrun_info(
        last=None, start_date=dag.start_date, end_date=dag.end_date, catchup=dag.catchup, now=now
    )
    assert due is not None and due.run_after <= now, "a daily DAG that started in January has a run due"
    with session_scope(web.engine) as session:
        create_run(session, dag, due, run_type=DagRunType.SCHEDULED, actor="test", now=now)
    after = dag.timetable.next_dagrun_info(
        last=due, start_date=dag.start_date, end_date=dag.end_date, catchup=dag.catchup, now=now
    )
    assert after is not None

    client = web.client("viewer")
    assert client.get("/api/v1/dags/alpha").json()["next_run"] == after.run_after.isoformat()
    listed = client.get("/api/v1/dags").json()["items"]
    assert [d["next_run"] for d in listed] == [after.run_after.isoformat()]
