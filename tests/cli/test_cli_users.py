"""`dagrunner users ...` through the real click tree, on a project's own SQLite database."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

from click.testing import Result
from sqlalchemy import select

from dagrunner.persistence.engine import make_engine, session_scope
from dagrunner.persistence.models import AuditLog
from dagrunner.persistence.users import user_for_token, verify_password


def _engine(project: Path):  # type: ignore[no-untyped-def]
    return make_engine(f"sqlite:///{project / '.dagrunner' / 'dagrunner.db'}")


def _password_ok(project: Path, username: str, password: str) -> bool:
    from datetime import UTC, datetime

    engine = _engine(project)
    try:
        with session_scope(engine) as s:
            return verify_password(s, username, password, when=datetime.now(UTC)) is not None
    finally:
        engine.dispose()


def test_create_with_password_on_stdin_then_list(run_cli: Callable[..., Result], project: Path) -> None:
    result = run_cli("users", "create", "olga", "--role", "operator", "--password-stdin", input="s3cret-pass\n")
    assert result.exit_code == 0, result.output
    assert "user olga created (operator)" in result.output
    assert "s3cret-pass" not in result.output

    listed = run_cli("users", "list", "--json")
    assert listed.exit_code == 0
    (row,) = json.loads(listed.output)
    assert row["username"] == "olga" and row["role"] == "operator" and row["last_login"] is None
    table = run_cli("users", "list")
    assert "olga" in table.output and "operator" in table.output

    engine = _engine(project)
    with session_scope(engine, readonly=True) as s:
        actor = s.scalar(select(AuditLog.actor).where(AuditLog.event == "user.created"))
    engine.dispose()
    assert actor is not None and actor.endswith("dagrunner users create olga --role operator --password-stdin")
    assert _password_ok(project, "olga", "s3cret-pass")


def test_create_prompts_twice_hidden(run_cli: Callable[..., Result], project: Path) -> None:
    result = run_cli("users", "create", "vic", "--role", "viewer", input="first-try-1\nfirst-try-1\n")
    assert result.exit_code == 0, result.output
    assert "first-try-1" not in result.output  # hidden input is not echoed
    assert _password_ok(project, "vic", "first-try-1")


def test_create_generates_and_prints_the_password_once(run_cli: Callable[..., Result], project: Path) -> None:
    result = run_cli("users", "create", "ada", "--role", "admin", "--generate")
    assert result.exit_code == 0, result.output
    password = result.output.split("password: ")[1].split()[0]
    assert len(password) >= 16 and _password_ok(project, "ada", password)


def test_create_refuses_bad_input_in_one_line(run_cli: Callable[..., Result]) -> None:
    short = run_cli("users", "create", "sam", "--role", "viewer", "--password-stdin", input="short\n")
    assert short.exit_code == 1 and "at least 8 characters" in short.output
    bad_role = run_cli("users", "create", "sam", "--role", "king", "--password-stdin", input="long enough\n")
    assert bad_role.exit_code == 2
    run_cli("users", "create", "sam", "--role", "viewer", "--password-stdin", input="long enough\n")
    again = run_cli("users", "create", "sam", "--role", "viewer", "--password-stdin", input="long enough\n")
    assert again.exit_code == 1 and "exists" in again.output
    both = run_cli("users", "create", "tom", "--role", "viewer", "--password-stdin", "--generate", input="x\n")
    assert both.exit_code == 2


def test_token_is_printed_once_and_identifies_the_user(run_cli: Callable[..., Result], project: Path) -> None:
    run_cli("users", "create", "bot", "--role", "operator", "--password-stdin", input="long enough\n")
    result = run_cli("users", "token", "bot", "--name", "ci")
    assert result.exit_code == 0, result.output
    token = result.output.strip()
    assert token.startswith("drt_") and "\n" not in token
    engine = _engine(project)
    with session_scope(engine, readonly=True) as s:
        user = user_for_token(s, token)
        detail = s.scalar(select(AuditLog.detail).where(AuditLog.event == "token.created"))
    engine.dispose()
    assert user is not None and user.username == "bot"
    assert token not in json.dumps(detail)  # the audit log names the token, never holds it
    missing = run_cli("users", "token", "nobody")
    assert missing.exit_code == 1 and "no user 'nobody'" in missing.output


def test_delete_asks_unless_yes(run_cli: Callable[..., Result]) -> None:
    run_cli("users", "create", "eve", "--role", "viewer", "--password-stdin", input="long enough\n")
    declined = run_cli("users", "delete", "eve", input="n\n")
    assert declined.exit_code == 1
    assert "eve" in run_cli("users", "list").output
    assert run_cli("users", "delete", "eve", "--yes").exit_code == 0
    assert json.loads(run_cli("users", "list", "--json").output) == []
    missing = run_cli("users", "delete", "eve", "--yes")
    assert missing.exit_code == 1 and "no user 'eve'" in missing.output
