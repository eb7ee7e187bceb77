"""`dagrunner assets list|events|emit` and `dags list` on asset schedules, through the real CLI (#12 A)."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

from click.testing import Result

RunCli = Callable[..., Result]


def test_list_shows_the_example_asset_its_consumer_and_producer(run_cli: RunCli) -> None:
    result = run_cli("assets", "list", "--json")
    assert result.exit_code == 0, result.output
    [sales] = [a for a in json.loads(result.output) if a["name"] == "warehouse.daily_sales"]
    assert sales["consumers"] == ["asset_consumer"] and sales["producers"] == ["asset_producer.publish"]
    assert sales["events"] == 0 and sales["last_event"] is None
    table = run_cli("assets", "list")
    assert "warehouse.daily_sales" in table.output and "asset_consumer" in table.output


def test_dags_list_shows_the_asset_schedule_in_words(run_cli: RunCli) -> None:
    result = run_cli("dags", "list", "--json")
    [consumer] = [d for d in json.loads(result.output) if d["dag_id"] == "asset_consumer"]
    assert "when warehouse.daily_sales is updated" in json.dumps(consumer)


def test_emit_records_the_event_and_creates_the_consumers_run(run_cli: RunCli) -> None:
    result = run_cli("assets", "emit", "warehouse.daily_sales", "--extra", '{"rows": 7}')
    assert result.exit_code == 0, result.output
    assert "recorded event 1 of asset warehouse.daily_sales" in result.output
    assert "created run asset_triggered__" in result.output and "of asset_consumer" in result.output
    events = json.loads(run_cli("assets", "events", "warehouse.daily_sales", "--json").output)
    assert [(e["id"], e["extra"], e["source"], e["triggered_runs"]) for e in events] == [
        (1, {"rows": 7}, {"kind": "cli"}, 1)
    ]
    runs = json.loads(run_cli("runs", "list", "asset_consumer", "--json").output)
    assert [r["run_type"] for r in runs] == ["asset_triggered"]
    as_json = json.loads(run_cli("assets", "emit", "warehouse.daily_sales", "--json").output)
    assert as_json["id"] == 2 and as_json["created_runs"][0]["dag_id"] == "asset_consumer"
    table = run_cli("assets", "events", "--limit", "1")
    assert table.exit_code == 0 and "warehouse.daily_sales" in table.output


def test_emit_refuses_bad_json_and_unknown_assets(run_cli: RunCli) -> None:
    bad = run_cli("assets", "emit", "warehouse.daily_sales", "--extra", "{rows: 7")
    assert bad.exit_code == 2 and "--extra" in bad.output and "'{rows: 7'" in bad.output
    not_object = run_cli("assets", "emit", "warehouse.daily_sales", "--extra", "[1]")
    assert not_object.exit_code == 2 and "not a JSON object" in not_object.output
    unknown = run_cli("assets", "emit", "no.such.asset")
    assert unknown.exit_code == 1 and "'no.such.asset'" in unknown.output
    assert json.loads(run_cli("assets", "events", "--json").output) == []


def test_a_colliding_asset_is_an_import_error_of_the_file_that_disagrees(run_cli: RunCli, project: Path) -> None:
    (project / "dags" / "zz_collides.py").write_text(
        "from dagrunner import DAG, Asset\nfrom dagrunner.operators import EmptyOperator\n"
        "with DAG('collider', schedule=[Asset('warehouse.daily_sales', uri='s3://other/sales')]):\n"
        "    EmptyOperator(task_id='t')\n"
    )
    errors = run_cli("dags", "errors", "--json")
    assert errors.exit_code == 1
    [error] = json.loads(errors.output)
    text = json.dumps(error)
    assert "zz_collides.py" in text and "asset_consumer.py" in text  # the file that disagrees, and the other
    assert "s3://other/sales" in text and "'warehouse.daily_sales'" in text  # both values
    dags = [d["dag_id"] for d in json.loads(run_cli("dags", "list", "--json").output)]
    assert "collider" not in dags and "asset_consumer" in dags and "asset_producer" in dags
    [sales] = [
        a for a in json.loads(run_cli("assets", "list", "--json").output) if a["name"] == "warehouse.daily_sales"
    ]
    assert sales["uri"] == "warehouse.daily_sales"
