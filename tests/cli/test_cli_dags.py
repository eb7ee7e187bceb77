"""The `dags`, `tasks list`, `config` and `version` commands against the example DAGs on SQLite."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

from dagrunner.persistence.engine import make_engine, session_scope
from dagrunner.persistence.queries import audit_rows, dag_rows

ZOO = Path(__file__).resolve().parents[1] / "fixtures" / "zoo"
EXAMPLES = {
    "etl_daily_sales", "taskflow_branching", "bash_templating", "order_processing", "loan_approval",
    "asset_producer", "asset_consumer", "order_shipping", "order_analytics",
}  # fmt: skip


def test_dags_list_shows_the_examples(run_cli) -> None:
    result = run_cli("dags", "list", "--json")
    assert result.exit_code == 0, result.output
    rows = {r["dag_id"]: r for r in json.loads(result.output)}
    assert set(rows) == EXAMPLES
    etl = rows["etl_daily_sales"]
    assert etl["file"] == "etl_daily_sales.py"
    assert etl["schedule"] == "every day at 00:00"
    assert etl["paused"] is False and etl["tags"] == ["example", "etl"]
    assert etl["next_run"].endswith("T00:00:00+00:00")

    table = run_cli("dags", "list")
    assert table.exit_code == 0
    for dag_id in EXAMPLES:
        assert dag_id in table.output


def test_dags_errors_lists_every_zoo_file_with_its_reason(run_cli, project: Path) -> None:
    assert run_cli("dags", "errors").output.strip() == "No import errors."
    for src in [*ZOO.glob("zoo_*.py"), ZOO / "good_simple.py"]:
        if src.name != "zoo_infinite_loop.py":  # covered by the loader tests; keeps this test quick
            shutil.copy(src, project / "dags" / src.name)
    result = run_cli("dags", "errors", "--json")
    assert result.exit_code == 1  # errors exist: usable as a CI gate
    rows = {Path(r["file"]).name: r for r in json.loads(result.output)}
    assert set(rows) == {p.name for p in ZOO.glob("zoo_*.py")} - {"zoo_infinite_loop.py"}
    assert rows["zoo_cycle.py"]["line"] == 9 and "a -> b -> c -> a" in rows["zoo_cycle.py"]["error"]
    assert "61 * * * *" in rows["zoo_invalid_cron.py"]["error"]
    # the examples are untouched by the broken neighbours
    listed = {r["dag_id"] for r in json.loads(run_cli("dags", "list", "--json").output)}
    assert listed == EXAMPLES | {"good_simple", "zoo_unique_here"}


def test_pause_and_unpause_are_audited(run_cli, project: Path) -> None:
    assert run_cli("dags", "pause", "etl_daily_sales").output.strip() == "etl_daily_sales paused"
    assert "already paused" in run_cli("dags", "pause", "etl_daily_sales").output
    assert run_cli("dags", "unpause", "etl_daily_sales").exit_code == 0
    engine = make_engine(f"sqlite:///{project / '.dagrunner' / 'dagrunner.db'}")
    with session_scope(engine, readonly=True) as session:
        events = [(r.event, r.old_state, r.new_state) for r in audit_rows(session, dag_id="etl_daily_sales")]
        paused = {r.dag_id: r.is_paused for r in dag_rows(session)}
    assert ("dag.paused", "unpaused", "paused") in events
    assert ("dag.unpaused", "paused", "unpaused") in events
    assert sum(1 for e in events if e[0] == "dag.paused") == 1  # the no-op pause wrote nothing
    assert paused["etl_daily_sales"] is False
    engine.dispose()
    exact = json.loads(run_cli("audit", "--event", "dag.paused", "--json").output)
    assert [(r["event"], r["dag_id"]) for r in exact] == [("dag.paused", "etl_daily_sales")]
    family = {r["event"] for r in json.loads(run_cli("audit", "--event", "dag.", "--json").output)}
    assert {"dag.paused", "dag.unpaused"} <= family and all(e.startswith("dag.") for e in family)
    assert json.loads(run_cli("audit", "--event", "dag", "--json").output) == []  # no dot: the exact name only


def test_show_draws_layers_and_dot(run_cli) -> None:
    drawn = run_cli("dags", "show", "etl_daily_sales").output
    assert "layer 1" in drawn and "extract ──▶ validate" in drawn
    dot = run_cli("dags", "show", "etl_daily_sales", "--dot").output
    assert dot.startswith('digraph "etl_daily_sales"')
    assert '"load" -> "check_loaded";' in dot


def test_tasks_list_plain_tree_and_json(run_cli) -> None:
    plain = run_cli("tasks", "list", "etl_daily_sales").output.split()
    assert plain == ["extract", "validate", "transform", "load", "check_loaded", "report"]
    tree = run_cli("tasks", "list", "taskflow_branching", "--tree").output
    assert "choose" in tree and "shown above" in tree  # `done` is reached through two branches
    data = json.loads(run_cli("tasks", "list", "taskflow_branching", "--json").output)
    done = next(t for t in data if t["task_id"] == "done")
    assert done["trigger_rule"] == "none_failed_min_one_success"
    assert sorted(done["upstream"]) == ["alert", "all_good"]


def test_next_runs_json_has_exactly_the_documented_keys(run_cli) -> None:
    result = run_cli("dags", "next-runs", "etl_daily_sales", "-n", "3", "--from", "2026-03-27", "--json")
    runs = json.loads(result.output)
    assert [set(r) for r in runs] == [
        {"run_id", "logical_date", "data_interval_start", "data_interval_end", "run_after"}
    ] * 3
    assert [r["logical_date"] for r in runs] == [
        "2026-03-27T00:00:00+00:00",
        "2026-03-28T00:00:00+00:00",
        "2026-03-29T00:00:00+00:00",
    ]
    assert runs[0]["run_id"] == "scheduled__2026-03-27T00:00:00+00:00"


def test_next_runs_flags_dst_rows_in_the_table(run_cli) -> None:
    out = run_cli("dags", "next-runs", "taskflow_branching", "--from", "2026-03-26", "--to", "2026-04-01").output
    lines = [line for line in out.splitlines() if "2026-03-30" in line]
    assert lines and "DST" in lines[0]  # Monday after the Amsterdam switch: local 06:00 is now 04:00 UTC
    assert "2026-03-30T04:00:00+00:00" in out and "2026-03-27T05:00:00+00:00" in out


def test_next_runs_with_data_intervals_from_the_setting(run_cli, monkeypatch) -> None:
    monkeypatch.setenv("DAGRUNNER_CREATE_CRON_DATA_INTERVALS", "true")
    runs = json.loads(
        run_cli("dags", "next-runs", "etl_daily_sales", "-n", "1", "--from", "2026-02-01", "--json").output
    )
    assert runs[0]["data_interval_start"] == "2026-02-01T00:00:00+00:00"
    assert runs[0]["data_interval_end"] == "2026-02-02T00:00:00+00:00"
    assert runs[0]["run_after"] == "2026-02-02T00:00:00+00:00"


def test_user_errors_are_one_line_and_non_zero(project: Path) -> None:
    env = {"DAGRUNNER_HOME": str(project), "PATH": "/usr/bin:/bin"}
    exe = [sys.executable, "-m", "dagrunner"]
    bad = subprocess.run([*exe, "dags", "show", "nope"], capture_output=True, text=True, env=env, timeout=120)
    assert bad.returncode == 1
    assert bad.stderr.strip().splitlines() == [
        f"Error: no DAG with id 'nope' in {project / 'dags'}; known DAGs: {', '.join(sorted(EXAMPLES))}"
    ]
    assert "Traceback" not in bad.stderr
    verbose = subprocess.run([*exe, "--verbose", "dags", "show", "nope"], capture_output=True, text=True, env=env)
    assert "Traceback" in verbose.stderr
    date = subprocess.run([*exe, "dags", "next-runs", "etl_daily_sales", "--from", "soon"], capture_output=True,
                          text=True, env=env)  # fmt: skip
    assert date.returncode == 2 and "'soon' is not a date" in date.stderr


def test_config_show_names_sources(run_cli, project: Path, monkeypatch) -> None:
    (project / "dagrunner.toml").write_text("parallelism = 3\n")
    monkeypatch.setenv("DAGRUNNER_EXECUTOR", "inline")
    data = json.loads(run_cli("config", "show", "--json").output)
    assert data["parallelism"] == {"value": "3", "source": str(project / "dagrunner.toml")}
    assert data["executor"] == {"value": "inline", "source": "env DAGRUNNER_EXECUTOR"}
    assert data["dags_folder"]["source"] == "default"


def test_bad_config_is_a_clear_error(run_cli, project: Path) -> None:
    (project / "dagrunner.toml").write_text("parallelism = 'lots'\n")
    result = run_cli("config", "show")
    assert result.exit_code == 1
    assert "parallelism='lots'" in result.output and "dagrunner.toml" in result.output


def test_version(run_cli) -> None:
    assert run_cli("version").output.startswith("dagrunner ")


def test_unusable_databases_are_one_clear_line(run_cli, project: Path, monkeypatch) -> None:
    garbage = project / "garbage.db"
    garbage.write_text("this is not a database")
    monkeypatch.setenv("DAGRUNNER_DB_URL", f"sqlite:///{garbage}")
    result = run_cli("runs", "list")
    assert result.exit_code == 1
    assert "is not a usable SQLite database" in result.output and "dagrunner db init" in result.output
    assert garbage.read_text() == "this is not a database"  # nothing overwritten
    monkeypatch.setenv("DAGRUNNER_DB_URL", "postgresql+psycopg://nobody:secret@127.0.0.1:1/x")
    result = run_cli("runs", "list")
    assert result.exit_code == 1 and "cannot reach the metadata database" in result.output
    assert "secret" not in result.output  # the password is masked
