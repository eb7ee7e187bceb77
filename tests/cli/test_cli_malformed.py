"""Malformed input and contradictory settings get one line naming the value and what to do, a non-zero
exit code, and no traceback unless --verbose; `dags errors --verbose` shows what an import printed."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

import dagrunner.persistence.views as views


def _one_line(result, *words: str) -> None:
    lines = result.output.strip().splitlines()
    assert result.exit_code not in (0, None), result.output
    assert len(lines) == 1 and "Traceback" not in result.output, result.output[:2000]
    for word in words:
        assert word in lines[0], lines[0]


def test_clear_with_a_regex_that_does_not_compile(run_cli) -> None:
    _one_line(run_cli("tasks", "clear", "etl_daily_sales", "-t", "([a-z", "--yes"),
              "--task-regex", "'([a-z'", "not a valid regular expression")  # fmt: skip


def test_audit_since_a_span_too_long(run_cli) -> None:
    _one_line(run_cli("audit", "--since", "99999999d"), "--since", "'99999999d'", "before year 1")


@pytest.mark.parametrize(
    ("conf", "words"),
    [
        ('{"x": NaN}', ["NaN", "not a JSON number"]),
        ('{"x": Infinity}', ["Infinity", "not a JSON number"]),
        ('{"x": 1e400}', ["1e400", "too large"]),
        ('{"x": ' + "[" * 50_000 + "]" * 50_000 + "}", ["nested 50001 levels deep", "at most 64"]),
    ],
    ids=["nan", "infinity", "overflowing-float", "deep"],
)
def test_trigger_refuses_conf_that_is_not_plain_json(run_cli, conf: str, words: list[str]) -> None:
    _one_line(run_cli("dags", "trigger", "etl_daily_sales", "--conf", conf), "--conf", *words)
    assert json.loads(run_cli("runs", "list", "--json").output) == []


def test_logs_of_an_unknown_dag_or_task_says_so(run_cli) -> None:
    _one_line(run_cli("tasks", "logs", "nosuchdag", "x", "y"), "no DAG with id 'nosuchdag'", "etl_daily_sales")
    _one_line(run_cli("tasks", "logs", "etl_daily_sales", "nosuchtask", "y"), "no task 'nosuchtask'")


def test_contradictory_settings_are_refused_at_start(run_cli, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DAGRUNNER_SCHEDULER_HEARTBEAT_SEC", "600")
    monkeypatch.setenv("DAGRUNNER_ZOMBIE_THRESHOLD_SEC", "5")
    monkeypatch.setenv("DAGRUNNER_SCHEDULER_ADOPT_AFTER_SEC", "1200")  # its own rule (#13 F) holds: one line
    _one_line(run_cli("dags", "list"), "zombie_threshold_sec=5.0 (from env DAGRUNNER_ZOMBIE_THRESHOLD_SEC)",
              "scheduler_heartbeat_sec=600.0", "raise zombie_threshold_sec to 1200")  # fmt: skip


def test_an_unexpected_error_is_one_line_and_the_traceback_is_one_flag_away(
    run_cli, monkeypatch: pytest.MonkeyPatch
) -> None:
    def broken(*_args: object, **_kwargs: object) -> None:
        raise ZeroDivisionError("division by zero\nsecond line")

    monkeypatch.setattr(views, "audit_trail", broken)
    _one_line(run_cli("audit"), "unexpected ZeroDivisionError: division by zero", "run with --verbose")
    verbose = run_cli("--verbose", "audit")
    assert verbose.exit_code == 1 and "Traceback" in verbose.output


def test_dags_errors_verbose_shows_what_an_import_printed(run_cli, project: Path) -> None:
    (project / "dags" / "noisy.py").write_text(
        "import sys\nfrom dagrunner import DAG\n\nprint('checking the warehouse...')\n"
        "print('warehouse unreachable', file=sys.stderr)\nraise RuntimeError('no warehouse')\n"
    )
    plain = run_cli("dags", "errors")
    assert plain.exit_code == 1 and "no warehouse" in plain.output and "checking" not in plain.output
    verbose = run_cli("dags", "errors", "--verbose")  # from the stored parse result: not imported again
    assert verbose.exit_code == 1
    assert "checking the warehouse...\nwarehouse unreachable" in verbose.output
    assert "Traceback" in verbose.output and "RuntimeError: no warehouse" in verbose.output
    rows = json.loads(run_cli("dags", "errors", "--json").output)
    assert rows[0]["output"] == "checking the warehouse...\nwarehouse unreachable\n"
