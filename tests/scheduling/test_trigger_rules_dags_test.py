"""Every trigger rule x every combination of 1-3 upstream states, run through `dagrunner dags test --json`.

One generated DAG holds all combinations: for each, upstream tasks are forced into the wanted states
(success; failed by raising; skipped by raising SkipTask; upstream_failed below a failing task) and one
task per rule sits downstream of them. The states `dags test` reports are compared with the table.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from dagrunner.cli.main import cli

from .trigger_rule_table import RULES, combos, expected

HEADER = """
import pendulum
from dagrunner import DAG, SkipTask
from dagrunner.operators import EmptyOperator, PythonOperator


def fail():
    raise RuntimeError("forced failure")


def skip():
    raise SkipTask("forced skip")


with DAG("rules", schedule=None, start_date=pendulum.datetime(2026, 1, 1, tz="UTC")):
    def upstream(name, state):
        if state == "success":
            return EmptyOperator(task_id=name)
        if state == "failed":
            return PythonOperator(task_id=name, python_callable=fail)
        if state == "skipped":
            return PythonOperator(task_id=name, python_callable=skip)
        root = PythonOperator(task_id=name + "_root", python_callable=fail)
        child = EmptyOperator(task_id=name)  # all_success below a failure: upstream_failed
        root >> child
        return child
"""


def _dag_source() -> str:
    lines = [HEADER]
    for i, combo in enumerate(combos()):
        ups = ", ".join(f'upstream("c{i}_u{j}", "{state}")' for j, state in enumerate(combo))
        lines.append(f"    ups = [{ups}]")
        for rule in RULES:
            lines.append(f'    ups >> EmptyOperator(task_id="c{i}_{rule}", trigger_rule="{rule}")')
    return "\n".join(lines) + "\n"


@pytest.mark.slow
def test_dags_test_json_gives_airflows_outcome_for_every_rule_and_combination(
    tmp_path: Path, db_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "dags").mkdir()
    (tmp_path / "dags" / "rules.py").write_text(_dag_source())
    monkeypatch.setenv("DAGRUNNER_HOME", str(tmp_path))
    monkeypatch.setenv("DAGRUNNER_DB_URL", db_url)
    result = CliRunner().invoke(cli, ["dags", "test", "rules", "2026-01-02", "--json"], catch_exceptions=False)
    data = json.loads(result.output)
    assert result.exit_code == 1 and data["state"] == "failed"  # the forced failures are leaves
    mismatches = []
    for i, combo in enumerate(combos()):
        for rule in RULES:
            got = data["tasks"][f"c{i}_{rule}"]
            want = expected(rule, combo)
            if got != want:
                mismatches.append(f"{rule} with upstream {'+'.join(combo)}: got {got}, want {want}")
    assert mismatches == []
    assert len(combos()) * len(RULES) == 442
