"""The operating commands: trigger, runs list, tasks states/logs/clear/why/render/test, audit, scheduler --once."""

from __future__ import annotations

import json
from pathlib import Path

import click
import pytest

from dagrunner.cli.main import cli as root


def _all_commands(group: click.Group, prefix: tuple[str, ...] = ()) -> list[tuple[str, ...]]:
    found = []
    for name, command in group.commands.items():
        path = (*prefix, name)
        found.append(path)
        if isinstance(command, click.Group):
            found.extend(_all_commands(command, path))
    return found


@pytest.mark.parametrize("path", _all_commands(root), ids=" ".join)
def test_every_command_has_help_text(run_cli, path: tuple[str, ...]) -> None:
    result = run_cli(*path, "--help")
    assert result.exit_code == 0, result.output
    assert "Usage: " in result.output
    lines = [line for line in result.output.splitlines() if line.strip()]
    assert len(lines) >= 3  # usage, a sentence of help, options


def test_trigger_validates_conf_run_id_and_duplicates(run_cli) -> None:
    bad_json = run_cli("dags", "trigger", "etl_daily_sales", "--conf", "{not json")
    assert bad_json.exit_code == 2 and "is not valid JSON" in bad_json.output
    not_object = run_cli("dags", "trigger", "etl_daily_sales", "--conf", "[1, 2]")
    assert not_object.exit_code == 2 and "must be a JSON object" in not_object.output
    bad_id = run_cli("dags", "trigger", "etl_daily_sales", "--run-id", "no spaces please")
    assert bad_id.exit_code == 1 and "no spaces please" in bad_id.output
    ok = run_cli("dags", "trigger", "etl_daily_sales", "--run-id", "mine", "--conf", '{"full": true}', "--json")
    assert ok.exit_code == 0, ok.output
    data = json.loads(ok.output)
    assert data["run_id"] == "mine" and data["conf"] == {"full": True} and data["state"] == "queued"
    again = run_cli("dags", "trigger", "etl_daily_sales", "--run-id", "mine")
    assert again.exit_code == 1 and "already has a run 'mine'" in again.output
    listed = json.loads(run_cli("runs", "list", "etl_daily_sales", "--json").output)
    assert [r["run_id"] for r in listed] == ["mine"]
    assert json.loads(run_cli("runs", "list", "--state", "success", "--json").output) == []


FAILING = """
import pendulum
from dagrunner import DAG, task

with DAG("wobbly", schedule=None, start_date=pendulum.datetime(2026, 1, 1, tz="UTC")):
    @task
    def load(ds=None):
        print(f"loading {ds}")
        raise RuntimeError("disk full")

    @task
    def report():
        return "done"

    load() >> report()
"""


def test_failed_run_inspection_clear_and_audit(run_cli, project: Path) -> None:
    (project / "dags" / "wobbly.py").write_text(FAILING)
    result = run_cli("dags", "test", "wobbly", "2026-02-03", "--json")
    assert result.exit_code == 1
    data = json.loads(result.output)
    assert data["state"] == "failed" and data["tasks"] == {"load": "failed", "report": "upstream_failed"}
    run_id = data["run_id"]
    assert run_id == "manual__2026-02-03T00:00:00+00:00"

    states = json.loads(run_cli("tasks", "states", "wobbly", run_id, "--json").output)
    assert states == {"load": "failed", "report": "upstream_failed"}
    log = run_cli("tasks", "logs", "wobbly", "load", run_id).output
    assert "loading 2026-02-03" in log and "disk full" in log
    why = json.loads(run_cli("tasks", "why", "wobbly", "report", run_id, "--json").output)
    assert why["state"] == "upstream_failed"
    assert any(c["rule"] == "trigger_rule" and not c["passed"] for c in why["checks"])

    cleared = run_cli("tasks", "clear", "wobbly", "-t", "^load$", "--downstream", "--yes")
    assert "cleared 2 task instance(s); 1 run(s) queued again" in cleared.output
    states = json.loads(run_cli("tasks", "states", "wobbly", run_id, "--json").output)
    assert states == {"load": "none", "report": "none"}
    assert json.loads(run_cli("runs", "list", "wobbly", "--json").output)[0]["state"] == "queued"

    audit = json.loads(run_cli("audit", "--dag", "wobbly", "--run", run_id, "--json").output)
    changes = [(a["task_id"], a["old_state"], a["new_state"]) for a in audit if a["event"] == "task.state"]
    assert ("load", "failed", "none") in changes and ("report", "upstream_failed", "none") in changes
    assert all(a["actor"].endswith("dagrunner dags test wobbly 2026-02-03 --json") for a in audit
               if a["event"] == "run.created")  # fmt: skip
    everything = json.loads(run_cli("audit", "--dag", "wobbly", "--json").output)
    assert any(a["event"] == "tasks.cleared" and "dagrunner tasks clear wobbly -t" in a["actor"] for a in everything)
    assert json.loads(run_cli("audit", "--dag", "wobbly", "--since", "1d", "--json").output)
    bad_since = run_cli("audit", "--since", "yesterday-ish")
    assert bad_since.exit_code == 2


def test_clear_asks_before_changing_anything(run_cli, project: Path) -> None:
    (project / "dags" / "wobbly.py").write_text(FAILING)
    run_id = json.loads(run_cli("dags", "test", "wobbly", "2026-02-03", "--json").output)["run_id"]
    refused = run_cli("tasks", "clear", "wobbly", input="n\n")
    assert refused.exit_code == 1 and "Clear these 2 task instance(s)?" in refused.output
    assert json.loads(run_cli("tasks", "states", "wobbly", run_id, "--json").output)["load"] == "failed"


def test_tasks_test_and_render_change_nothing(run_cli, project: Path) -> None:
    tested = run_cli("tasks", "test", "bash_templating", "prepare", "2026-03-04")
    assert tested.exit_code == 0, tested.output
    assert "success" in tested.output
    rendered = run_cli("tasks", "render", "bash_templating", "prepare", "2026-03-04").output
    assert "hello from 2026-03-04" in rendered and "20260304.txt" in rendered
    assert json.loads(run_cli("runs", "list", "--json").output) == []  # no run was created


def test_scheduler_once_runs_due_runs_and_exits(run_cli, project: Path, monkeypatch) -> None:
    monkeypatch.setenv("ETL_DATA_DIR", str(project / "data"))
    result = run_cli("scheduler", "--once", "--executor", "inline")
    assert result.exit_code == 0, result.output
    runs = json.loads(run_cli("runs", "list", "--json").output)
    assert {r["dag_id"] for r in runs} == {"etl_daily_sales", "taskflow_branching", "bash_templating"}
    assert {r["state"] for r in runs} == {"success"}
    assert "run created" in result.output


MAPPED = """
import pendulum
from dagrunner import DAG, task

with DAG("fanout", schedule=None, start_date=pendulum.datetime(2026, 1, 1, tz="UTC")):
    @task
    def double(x):
        return 2 * x

    double.expand(x=[1, 2])
"""


def test_mapped_instances_are_shown_with_their_index_zero_included(run_cli, project: Path) -> None:
    (project / "dags" / "fanout.py").write_text(MAPPED)
    result = json.loads(run_cli("dags", "test", "fanout", "2026-02-03", "--json").output)
    assert result["tasks"] == {"double[0]": "success", "double[1]": "success"}
    states = json.loads(run_cli("tasks", "states", "fanout", result["run_id"], "--json").output)
    assert states == result["tasks"]
    audit = json.loads(run_cli("audit", "--dag", "fanout", "--json").output)
    assert {a["map_index"] for a in audit if a["event"] == "task.state"} == {0, 1}
    table = run_cli("audit", "--dag", "fanout").output
    assert "double[0]" in table and "double[1]" in table


def test_every_run_is_printed_with_one_json_shape(run_cli, project: Path) -> None:
    (project / "dags" / "wobbly.py").write_text(FAILING)
    triggered = json.loads(run_cli("dags", "trigger", "wobbly", "--run-id", "later", "--json").output)
    tested = json.loads(run_cli("dags", "test", "wobbly", "2026-02-03", "--json").output)
    listed = json.loads(run_cli("runs", "list", "wobbly", "--json").output)
    keys = set(listed[0])
    assert keys >= {"dag_id", "run_id", "run_type", "state", "logical_date", "start_date", "end_date", "duration_s"}
    assert keys >= {"data_interval_start", "data_interval_end", "conf"}
    assert set(triggered) == keys and set(tested) == keys | {"tasks"}
    assert {r["run_id"] for r in listed} == {"later", tested["run_id"]}
