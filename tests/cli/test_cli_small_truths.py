"""The small truths users rely on (issue #15, item 4): `dags list` shows the next run after the runs that
exist, `dags next-runs` starts from now unless --from, `tasks render` renders mapped tasks.

These commands read the real clock, so the DAG here starts a few days before today."""

from __future__ import annotations

import json
import textwrap
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from click.testing import Result

RECENT = """
import pendulum
from dagrunner import DAG, task
from dagrunner.operators import BashOperator, EmptyOperator

START = pendulum.today("UTC").subtract(days=3)

with DAG("recent_daily", schedule="@daily", start_date=START, catchup=True):
    EmptyOperator(task_id="a")

with DAG("mapped_render", schedule=None, start_date=START):
    BashOperator.partial(task_id="say").expand(
        bash_command=["echo one {{ ds }}", "echo two {{ task_instance_key_str }}"]
    )

    @task
    def numbers():
        return [1, 2]

    @task
    def show(x):
        return x

    show.expand(x=numbers())
"""

Cli = Callable[..., Result]


def _midnight(days: int) -> datetime:
    today = datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    return today + timedelta(days=days)


@pytest.fixture
def cli(run_cli: Cli, project: Path) -> Cli:
    (project / "dags" / "recent.py").write_text(textwrap.dedent(RECENT))
    return run_cli


def _next_run(cli: Cli, dag_id: str) -> str | None:
    rows = json.loads(cli("dags", "list", "--json").output)
    (row,) = [r for r in rows if r["dag_id"] == dag_id]
    return row["next_run"]


def test_dags_list_shows_the_next_run_after_the_runs_that_exist(cli: Cli) -> None:
    assert _next_run(cli, "recent_daily") == _midnight(-3).isoformat(), "no run yet: the first one is due"
    first, last = _midnight(-3).date().isoformat(), _midnight(-1).date().isoformat()
    done = cli("backfill", "recent_daily", "-s", first, "-e", last, "--executor", "inline", "--yes")
    assert done.exit_code == 0, done.output
    assert _next_run(cli, "recent_daily") == _midnight(0).isoformat(), "past the three dates that have a run"


def test_next_runs_start_from_now_unless_from_is_given(cli: Cli, monkeypatch: pytest.MonkeyPatch) -> None:
    runs = json.loads(cli("dags", "next-runs", "recent_daily", "-n", "2", "--json").output)
    assert [r["run_after"] for r in runs] == [_midnight(1).isoformat(), _midnight(2).isoformat()]
    assert [r["logical_date"] for r in runs] == [_midnight(1).isoformat(), _midnight(2).isoformat()]
    start = _midnight(-3).date().isoformat()
    since = json.loads(cli("dags", "next-runs", "recent_daily", "-n", "1", "--from", start, "--json").output)
    assert since[0]["logical_date"] == _midnight(-3).isoformat()

    monkeypatch.setenv("DAGRUNNER_CREATE_CRON_DATA_INTERVALS", "true")
    (interval,) = json.loads(cli("dags", "next-runs", "recent_daily", "-n", "1", "--json").output)
    # the data-interval run still to come covers today and runs at midnight tonight
    assert interval["data_interval_start"] == _midnight(0).isoformat()
    assert interval["run_after"] == _midnight(1).isoformat()


def test_tasks_render_renders_each_instance_of_a_mapped_task(cli: Cli) -> None:
    when = _midnight(-1)
    ds, ds_nodash = when.date().isoformat(), when.strftime("%Y%m%d")
    every = cli("tasks", "render", "mapped_render", "say", ds)
    assert every.exit_code == 0, every.output
    assert f"echo one {ds}" in every.output
    assert f"echo two mapped_render__say__{ds_nodash}" in every.output
    assert "map_index 0" in every.output and "map_index 1" in every.output

    second = cli("tasks", "render", "mapped_render", "say", ds, "--map-index", "1")
    assert second.exit_code == 0 and "echo one" not in second.output and "echo two" in second.output

    unmapped = cli("tasks", "render", "recent_daily", "a", ds, "--map-index", "0")
    assert unmapped.exit_code != 0 and "not mapped" in unmapped.output


def test_tasks_render_of_a_task_mapped_over_an_xcom_without_a_run_is_one_clear_line(cli: Cli) -> None:
    result = cli("tasks", "render", "mapped_render", "show", _midnight(-1).date().isoformat())
    assert result.exit_code == 1
    assert "run the upstream tasks for that date first" in result.output
    assert "Traceback" not in result.output
