"""`dagrunner dags check-airflow FILE`: Airflow imports and names, found or not, read without importing FILE."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

from click.testing import Result

from dagrunner.cli.airflow_check import MODULES, RENAMES, check_source, rewrite_imports

AIRFLOW_DAG = """\
import pendulum
from airflow.sdk import DAG, task, chain
from airflow.providers.standard.operators.bash import BashOperator as Bash
from airflow.exceptions import AirflowSkipException
from airflow.utils.trigger_rule import TriggerRule

with DAG("ported", schedule=None, start_date=pendulum.datetime(2026, 1, 1)):
    @task.bash
    def hello() -> str:
        return "echo hello"

    @task
    def maybe_skip() -> None:
        raise AirflowSkipException("nothing to do")

    chain(hello(), maybe_skip(), Bash(task_id="after", bash_command="true", trigger_rule=TriggerRule.ALL_DONE))
"""

UNKNOWN = """\
from airflow.sdk import DAG
from airflow.providers.amazon.aws.operators.s3 import S3CreateBucketOperator
import airflow.utils.dates
"""


def test_names_dagrunner_has_come_with_the_import_line_to_use() -> None:
    findings = {f.airflow: f for f in check_source(AIRFLOW_DAG)}
    assert findings["airflow.sdk.DAG"].import_line() == "from dagrunner import DAG"
    bash = findings["airflow.providers.standard.operators.bash.BashOperator"]
    assert bash.import_line() == "from dagrunner.operators import BashOperator as Bash"
    # our own spelling when dagrunner has no object of that name: imported `as` the Airflow name
    skip = findings["airflow.exceptions.AirflowSkipException"].import_line()
    assert skip in {
        "from dagrunner import AirflowSkipException",
        "from dagrunner import SkipTask as AirflowSkipException",
    }
    assert findings["task.bash"].found and findings["TriggerRule.ALL_DONE"].found
    assert all(f.found for f in findings.values())


def test_names_it_lacks_are_reported_not_guessed() -> None:
    findings = {f.airflow: f for f in check_source(UNKNOWN)}
    assert findings["airflow.sdk.DAG"].found
    s3 = findings["airflow.providers.amazon.aws.operators.s3.S3CreateBucketOperator"]
    assert not s3.found and s3.import_line() is None and s3.line == 2
    assert not findings["airflow.utils.dates"].found  # a module import cannot be rewritten name by name


def test_an_unknown_attribute_of_a_known_name_is_missing() -> None:
    findings = {
        f.airflow: f for f in check_source("from airflow.sdk import task\n@task.no_such_flavour\ndef f(): ...\n")
    }
    assert not findings["task.no_such_flavour"].found


def test_rewrite_replaces_only_the_import_lines_and_the_result_runs(tmp_path: Path) -> None:
    ported = rewrite_imports(AIRFLOW_DAG)
    old, new = AIRFLOW_DAG.splitlines(), ported.splitlines()
    assert [line for line in new if "airflow" in line] == []
    assert old[5:] == new[5:] and old[0] == new[0]  # the DAG's body is byte for byte the same
    namespace: dict[str, object] = {}
    exec(compile(ported, "ported.py", "exec"), namespace)  # noqa: S102 - our own fixture text
    assert "DAG" in namespace


def test_cli_reports_and_exits_1_when_something_is_missing(tmp_path: Path, run_cli: Callable[..., Result]) -> None:
    good, bad = tmp_path / "good.py", tmp_path / "bad.py"
    good.write_text(AIRFLOW_DAG)
    bad.write_text(UNKNOWN)
    result = run_cli("dags", "check-airflow", str(good))
    assert result.exit_code == 0, result.output
    assert "from dagrunner.operators import BashOperator as Bash" in result.output
    result = run_cli("dags", "check-airflow", str(bad), "--json")
    assert result.exit_code == 1
    rows = json.loads(result.output)
    assert [r["airflow"] for r in rows if not r["found"]] == [
        "airflow.providers.amazon.aws.operators.s3.S3CreateBucketOperator",
        "airflow.utils.dates",
    ]
    result = run_cli("dags", "check-airflow", str(bad), "--rewrite")
    assert result.exit_code == 1 and "S3CreateBucketOperator (line 2)" in result.output


def test_a_file_that_is_not_python_is_one_line(tmp_path: Path, run_cli: Callable[..., Result]) -> None:
    broken = tmp_path / "broken.py"
    broken.write_text("from airflow.sdk import DAG\nwith DAG(:\n")
    result = run_cli("dags", "check-airflow", str(broken))
    assert result.exit_code == 1
    assert "broken.py:2: not valid Python" in result.output and "Traceback" not in result.output


def test_the_table_points_at_modules_that_exist() -> None:
    import importlib

    for _pattern, targets in MODULES:
        for module in targets:
            importlib.import_module(module)
    for module, name in RENAMES.values():
        assert hasattr(importlib.import_module(module), name), (module, name)


def test_a_custom_timetable_gets_the_authoring_interface_not_the_engines() -> None:
    source = (
        "from airflow.timetables.base import Timetable, DagRunInfo\nfrom airflow.plugins_manager import AirflowPlugin\n"
    )
    lines = {f.airflow: f.import_line() for f in check_source(source)}
    assert lines["airflow.timetables.base.Timetable"] == "from dagrunner.timetables.custom import Timetable"
    assert lines["airflow.plugins_manager.AirflowPlugin"] == "from dagrunner.loading.plugins import AirflowPlugin"
