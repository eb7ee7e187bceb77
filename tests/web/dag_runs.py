"""Helpers for the DAG/run/task-instance API tests: example DAG files and a run driven to its end in-process.

`run_to_end` is `dagrunner dags test` through the real click tree against the web project's DB, so task
instances reach real states (and write real logs) without a scheduler running in the background.
"""

from __future__ import annotations

import json
from typing import Any

import pytest
from click.testing import CliRunner

from dagrunner.cli.main import cli

from .conftest import WebProject

#: extract -> transform (mapped over 3) -> load (fails, printing first) ; extract -> report (in a group).
PIPELINE = """
    from datetime import datetime
    from dagrunner import DAG, task, TaskGroup

    with DAG(dag_id="pipeline", schedule="@daily", start_date=datetime(2026, 1, 1), catchup=False,
             tags=["etl", "nightly"], params={"rows": 10, "api_token": "s3cret"}, description="An ETL",
             doc_md="# Pipeline"):

        @task
        def extract():
            return [1, 2, 3]

        @task
        def transform(n):
            return n * 2

        @task(retries=0)
        def load(values):
            print("loading the values")
            raise ValueError("the warehouse is gone")

        @task
        def report(values):
            return len(values)

        data = extract()
        doubled = transform.expand(n=data)
        load(doubled)
        with TaskGroup("reporting"):
            report(data)
    """


def dag_source(dag_id: str, *, tags: tuple[str, ...] = (), schedule: str | None = None) -> str:
    return f"""
    from datetime import datetime
    from dagrunner import DAG, task

    with DAG(dag_id={dag_id!r}, schedule={schedule!r}, start_date=datetime(2026, 1, 1), tags={list(tags)!r}):
        @task
        def only():
            return 1

        only()
    """


def run_to_end(
    web: WebProject, monkeypatch: pytest.MonkeyPatch, dag_id: str, *, conf: dict[str, Any] | None = None
) -> dict[str, Any]:
    """`dagrunner dags test DAG_ID --json` on the project: the finished run with its task states."""
    monkeypatch.setenv("DAGRUNNER_HOME", str(web.home))
    monkeypatch.setenv("DAGRUNNER_DB_URL", web.settings.db_url)
    monkeypatch.setenv("DAGRUNNER_DAGBAG_IMPORT_TIMEOUT", "10")
    args = ["dags", "test", dag_id, "--json"] + (["--conf", json.dumps(conf)] if conf else [])
    result = CliRunner().invoke(cli, args, catch_exceptions=False)
    assert result.exit_code in (0, 1), result.output
    data: dict[str, Any] = json.loads(result.stdout[result.stdout.index("{") :])
    return data
