"""`dagrunner pools list|set|delete|reset`, the `[pools.NAME]` config tables, and `tasks set-state` /
`runs set-state` through the real click tree: output, --json, the audit trail, and bad input (one line,
non-zero exit, nothing changed)."""

from __future__ import annotations

import json
from pathlib import Path

from dagrunner.settings import Settings, parse_duration

FAILING = """
import pendulum
from dagrunner import DAG, task

with DAG("wobbly", schedule=None, start_date=pendulum.datetime(2026, 1, 1, tz="UTC")):
    @task(pool="api")
    def load():
        raise RuntimeError("the service is down")

    @task
    def report():
        return "done"

    load() >> report()
"""


def _pools(run_cli) -> dict[str, dict]:
    result = run_cli("pools", "list", "--json")
    assert result.exit_code == 0, result.output
    return {p["name"]: p for p in json.loads(result.output)}


def test_pools_set_list_reset_delete(run_cli) -> None:
    created = run_cli("pools", "set", "api", "--slots", "3", "--breaker-failures", "2", "--breaker-cooldown", "5m",
                      "--description", "payments API")  # fmt: skip
    assert created.exit_code == 0 and created.output.strip().startswith("pool api created: slots=3")
    pools = _pools(run_cli)
    assert pools["api"]["slots"] == 3 and pools["api"]["description"] == "payments API"
    assert pools["api"]["breaker"] == {"state": "closed", "consecutive_failures": 0, "threshold": 2,
                                       "cooldown_s": 300.0, "open_until": None}  # fmt: skip
    assert pools["default_pool"]["breaker"] is None and pools["default_pool"]["open_slots"] == 128
    table = run_cli("pools", "list").output
    assert "api" in table and "0/2" in table and "closed" in table

    changed = json.loads(run_cli("pools", "set", "api", "--slots", "5", "--json").output)
    assert changed == {"pool": "api", "created": False, "changed": {"slots": {"old": 3, "new": 5}}}
    assert "unchanged" in run_cli("pools", "set", "api", "--slots", "5").output

    reset = run_cli("pools", "reset", "api")
    assert reset.exit_code == 0 and "circuit already closed" in reset.output
    removed = run_cli("pools", "set", "api", "--no-breaker")
    assert removed.exit_code == 0 and _pools(run_cli)["api"]["breaker"] is None

    assert run_cli("pools", "delete", "api").exit_code == 0
    assert "api" not in _pools(run_cli)
    audit = json.loads(run_cli("audit", "--json").output)
    events = [a["event"] for a in audit if a["event"].startswith("pool.")]
    assert events == ["pool.created", "pool.updated", "pool.updated", "pool.deleted"]
    assert all("dagrunner pools" in a["actor"] for a in audit if a["event"].startswith("pool."))


def test_bad_pool_input_is_one_line_and_changes_nothing(run_cli) -> None:
    assert run_cli("pools", "set", "api", "--slots", "2", "--breaker-failures", "3").exit_code == 0
    before = _pools(run_cli)
    cases = {
        ("pools", "set", "api", "--slots", "0"): "--slots must be a positive whole number, not 0",
        ("pools", "set", "api", "--breaker-failures", "0"): "--breaker-failures must be a positive whole number, not 0",
        ("pools", "set", "api", "--breaker-failures", "-2"): "--breaker-failures must be a positive whole number",
        ("pools", "set", "api", "--breaker-cooldown", "5 minutes"): "'5 minutes' is not a duration",
        ("pools", "set", "api", "--breaker-cooldown", "0s"): "must be positive",
        ("pools", "set", "ghost", "--breaker-failures", "2"): "no pool 'ghost' yet; give --slots N to create it",
        ("pools", "set", "bad name", "--slots", "1"): "pool name 'bad name' must be",
        ("pools", "reset", "ghost"): "no pool 'ghost'",
        ("pools", "reset", "default_pool"): "pool 'default_pool' has no circuit breaker",
        ("pools", "delete", "ghost"): "no pool 'ghost'",
        ("pools", "delete", "default_pool"): "default_pool cannot be deleted",
    }
    for args, message in cases.items():
        result = run_cli(*args)
        assert result.exit_code != 0, args
        assert message in result.output, (args, result.output)
        assert len(result.output.strip().splitlines()) == 1, result.output
    assert _pools(run_cli) == before


def test_durations() -> None:
    assert [parse_duration(v) for v in ("30s", "5m", "1h", "1h30m", "2d", "90", 45)] == [
        30, 300, 3600, 5400, 172800, 90, 45,
    ]  # fmt: skip


def test_config_pools_are_applied_at_scheduler_start(run_cli, project: Path) -> None:
    (project / "dagrunner.toml").write_text(
        '[pools.api]\nslots = 4\nbreaker_failures = 3\nbreaker_cooldown = "2m"\n\n[pools.batch]\nslots = 2\n'
    )
    shown = run_cli("config", "show").output
    assert "api: 4 slots, breaker after 3 failures, cool-down 120s" in shown
    assert run_cli("pools", "set", "api", "--slots", "9").exit_code == 0  # applied first: the pool exists
    started = run_cli("scheduler", "--once")
    assert started.exit_code == 0, started.output
    assert "pool api changed: slots 9 -> 4" in started.output and "pool batch created: slots=2" in started.output
    pools = _pools(run_cli)
    assert pools["api"]["slots"] == 4 and pools["api"]["breaker"]["cooldown_s"] == 120.0
    assert pools["batch"]["slots"] == 2 and pools["batch"]["breaker"] is None
    audit = json.loads(run_cli("audit", "--json").output)
    (update,) = [a for a in audit if a["event"] == "pool.updated"]
    assert update["detail"]["old"] == {"slots": 9, "breaker_failures": None, "breaker_cooldown_s": 300.0}
    assert update["detail"]["source"].endswith("dagrunner.toml")


def test_bad_config_pools_are_refused_with_one_line(project: Path) -> None:
    import pytest

    from dagrunner.errors import ConfigError

    bad = {
        "[pools.api]\nslots = 0\n": "pool 'api': slots must be a positive whole number, not 0",
        "[pools.api]\nslots = 1\nbreaker_failures = 0\n": "breaker_failures must be a positive whole number",
        '[pools.api]\nslots = 1\nbreaker_cooldown = "soon"\n': "'soon' is not a duration",
        "[pools.api]\nbreaker_failures = 2\n": "needs slots = N",
        "[pools.api]\nslots = 1\nbreakers = 2\n": "unknown key(s) breakers",
    }
    for text, message in bad.items():
        (project / "dagrunner.toml").write_text(text)
        with pytest.raises(ConfigError, match="pool") as caught:
            Settings.load(environ={}, home=project)
        assert message in str(caught.value)
        assert "\n" not in str(caught.value)


def test_tasks_set_state_marks_audits_and_resumes(run_cli, project: Path) -> None:
    (project / "dags" / "wobbly.py").write_text(FAILING)
    assert run_cli("pools", "set", "api", "--slots", "1").exit_code == 0
    data = json.loads(run_cli("dags", "test", "wobbly", "2026-02-03", "--json").output)
    run_id = data["run_id"]
    assert data["tasks"] == {"load": "failed", "report": "upstream_failed"}

    declined = run_cli(
        "tasks", "set-state", "wobbly", "load", run_id, "success", "--reason", "done by hand", input="n\n"
    )
    assert declined.exit_code != 0 and "load: failed -> success" in declined.output
    assert json.loads(run_cli("tasks", "states", "wobbly", run_id, "--json").output)["load"] == "failed"

    marked = run_cli("tasks", "set-state", "wobbly", "load", run_id, "success", "--reason", "done by hand",
                     "--as", "carol", "--yes", "--json")  # fmt: skip
    assert marked.exit_code == 0, marked.output
    out = json.loads(marked.output)
    assert out["changed"] == [{"task_id": "load", "map_index": -1, "old": "failed", "new": "success"}]
    assert out["cleared"] == [{"task_id": "report", "map_index": -1, "old": "upstream_failed", "new": "none"}]
    assert out["run"] == {"old": "failed", "new": "queued"}
    states = json.loads(run_cli("tasks", "states", "wobbly", run_id, "--json").output)
    assert states == {"load": "success", "report": "none"}
    audit = json.loads(run_cli("audit", "--dag", "wobbly", "--run", run_id, "--json").output)
    (row,) = [a for a in audit if a["event"] == "task.state" and a["new_state"] == "success"]
    assert row["actor"].startswith("carol (via ") and "tasks set-state wobbly load" in row["actor"]
    assert row["reason"] == "marked by hand: done by hand"

    again = run_cli("tasks", "set-state", "wobbly", "load", run_id, "success", "--reason", "x", "--yes")
    assert again.exit_code == 1 and "is success already; nothing to change" in again.output
    for args, message in {
        ("tasks", "set-state", "wobbly", "load", "nope", "failed", "--reason", "x", "--yes"): "has no run 'nope'",
        ("tasks", "set-state", "wobbly", "ghost", run_id, "failed", "--reason", "x", "--yes"): "ghost",
        ("tasks", "set-state", "wobbly", "load", run_id, "failed", "--reason", " ", "--yes"): "--reason is empty",
        ("runs", "set-state", "wobbly", "nope", "failed", "--reason", "x", "--yes"): "has no run 'nope'",
    }.items():
        result = run_cli(*args)
        assert result.exit_code == 1 and message in result.output, (args, result.output)
    assert run_cli("tasks", "set-state", "wobbly", "load", run_id, "running", "--reason", "x").exit_code == 2
    assert run_cli("tasks", "set-state", "wobbly", "load", run_id, "failed", "--yes").exit_code == 2  # no --reason
    assert json.loads(run_cli("tasks", "states", "wobbly", run_id, "--json").output) == states


def test_runs_set_state(run_cli, project: Path) -> None:
    (project / "dags" / "wobbly.py").write_text(FAILING)
    assert run_cli("pools", "set", "api", "--slots", "1").exit_code == 0
    run_id = json.loads(run_cli("dags", "trigger", "wobbly", "--json").output)["run_id"]
    failed = run_cli("runs", "set-state", "wobbly", run_id, "failed", "--reason", "bad input file", "--yes")
    assert failed.exit_code == 0, failed.output
    assert f"run {run_id}: queued -> failed" in failed.output
    assert json.loads(run_cli("tasks", "states", "wobbly", run_id, "--json").output) == {
        "load": "skipped", "report": "skipped",
    }  # fmt: skip
    ok = json.loads(run_cli("runs", "set-state", "wobbly", run_id, "success", "--reason", "fine after all", "--yes",
                            "--json").output)  # fmt: skip
    assert ok["run"] == {"old": "failed", "new": "success"} and ok["changed"] == []
    assert json.loads(run_cli("runs", "list", "wobbly", "--json").output)[0]["state"] == "success"
    same = run_cli("runs", "set-state", "wobbly", run_id, "success", "--reason", "x", "--yes")
    assert same.exit_code == 1 and "is success already" in same.output
