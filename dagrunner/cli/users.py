"""`dagrunner users ...`: the api-server's users (viewer, operator, admin) and their API tokens.

The same library calls as the REST API's /users endpoints (persistence.users), audited with the command as
the actor. Passwords are never echoed and never accepted as an argument (shell history, `ps`): they are
typed twice at a hidden prompt, read from stdin, or generated and printed once.
"""

from __future__ import annotations

import secrets
import sys
from datetime import UTC, datetime

import click

from dagrunner.cli import render
from dagrunner.cli.context import CliContext, pass_cli
from dagrunner.cli.options import json_option
from dagrunner.roles import Role


@click.group()
def users() -> None:
    """Create, list and delete the api-server's users; issue API tokens."""


@users.command("create")
@click.argument("username")
@click.option("--role", type=click.Choice([r.value for r in Role]), required=True,
              help="viewer: reads; operator: also triggers, clears, marks, pauses; admin: also manages users.")  # fmt: skip
@click.option("--password-stdin", is_flag=True, help="Read the password from the first line of stdin (scripts).")
@click.option("--generate", is_flag=True, help="Generate a random password and print it once.")
@pass_cli
def create(cli: CliContext, username: str, role: str, password_stdin: bool, generate: bool) -> None:
    """Add user USERNAME with ROLE (audited). Without --password-stdin or --generate, asks for the password
    twice at a hidden prompt."""
    from dagrunner.persistence.users import create_user

    if password_stdin and generate:
        raise click.UsageError("give --password-stdin or --generate, not both")
    if generate:
        password = secrets.token_urlsafe(18)
    elif password_stdin:
        password = sys.stdin.readline().rstrip("\r\n")
    else:
        password = click.prompt("Password", hide_input=True, confirmation_prompt=True)
    with cli.session() as session:
        user = create_user(session, username, role, password, actor=cli.actor, when=datetime.now(UTC))
    render.info(f"user {user.username} created ({user.role.value})")
    if generate:
        render.info(f"password: {password}  (shown only now)")


@users.command("list")
@json_option("the users")
@pass_cli
def list_users(cli: CliContext, as_json: bool) -> None:
    """Every user: role, when created, last login."""
    from dagrunner.persistence.users import list_users as users_in_db

    with cli.read_session() as session:
        rows = users_in_db(session)
    if as_json:
        render.print_json([u.to_json() for u in rows])
        return
    render.table("users", ["user", "role", "created", "last login"],
                 [(u.username, u.role.value, render.fmt_time(u.created_at), render.fmt_time(u.last_login))
                  for u in rows])  # fmt: skip


@users.command("delete")
@click.argument("username")
@click.option("--yes", is_flag=True, help="Do not ask for confirmation.")
@pass_cli
def delete(cli: CliContext, username: str, yes: bool) -> None:
    """Delete user USERNAME with their API tokens and sessions (audited)."""
    from dagrunner.persistence.users import delete_user, get_user

    with cli.read_session() as session:
        get_user(session, username)  # a typo fails before the question
    if not yes:
        click.confirm(f"Delete user {username} and their tokens?", abort=True)
    with cli.session() as session:
        delete_user(session, username, actor=cli.actor, when=datetime.now(UTC))
    render.info(f"user {username} deleted")


@users.command("token")
@click.argument("username")
@click.option("--name", default="cli", show_default=True, help="What the token is for (shown in the audit log).")
@pass_cli
def token(cli: CliContext, username: str, name: str) -> None:
    """Issue an API token for USERNAME and print it once (send it as `Authorization: Bearer <token>`)."""
    from dagrunner.persistence.users import create_token

    with cli.session() as session:
        issued = create_token(session, username, name, actor=cli.actor, when=datetime.now(UTC))
    click.echo(issued)
