"""`dagrunner db ...`: create, migrate, check and reset the metadata database."""

from __future__ import annotations

import click

from dagrunner.cli import render
from dagrunner.cli.context import CliContext, pass_cli
from dagrunner.cli.options import json_option
from dagrunner.settings import mask_url


@click.group()
def db() -> None:
    """Manage the metadata database (SQLite by default, PostgreSQL with DAGRUNNER_DB_URL)."""


@db.command("init")
@pass_cli
def init(cli: CliContext) -> None:
    """Create the schema in an empty database (a no-op when it is already current)."""
    from dagrunner.persistence.schema import init_db

    init_db(cli.raw_engine())
    render.info(f"database ready: {mask_url(cli.settings.db_url)}")


@db.command("upgrade")
@pass_cli
def upgrade(cli: CliContext) -> None:
    """Apply pending migrations so the schema matches this dagrunner version."""
    from dagrunner.persistence.schema import check_db, upgrade_db

    before = check_db(cli.raw_engine()).current
    upgrade_db(cli.raw_engine())
    after = check_db(cli.raw_engine()).current
    render.info(f"schema {before or 'empty'} -> {after}" if before != after else f"schema already at {after}")


@db.command("check")
@json_option("the status")
@pass_cli
def check(cli: CliContext, as_json: bool) -> None:
    """Exit 0 when the schema is current, 1 when it is missing or needs `dagrunner db upgrade`."""
    from dagrunner.persistence.schema import check_db

    status = check_db(cli.raw_engine())
    if as_json:
        render.print_json({"current": status.current, "head": status.head, "is_current": status.is_current})
    elif status.is_current:
        render.info(f"schema is current ({status.head}) in {mask_url(cli.settings.db_url)}")
    elif status.current is None:
        render.error(f"{mask_url(cli.settings.db_url)} has no dagrunner schema; run `dagrunner db init`")
    else:
        render.error(
            f"schema is at {status.current} but this dagrunner needs {status.head}; run `dagrunner db upgrade`"
        )
    if not status.is_current:
        raise click.exceptions.Exit(1)


@db.command("reset")
@click.option("--yes", is_flag=True, help="Do not ask for confirmation.")
@pass_cli
def reset(cli: CliContext, yes: bool) -> None:
    """Drop every dagrunner table (runs, history, audit log) and create an empty schema."""
    from dagrunner.persistence.schema import reset_db

    url = mask_url(cli.settings.db_url)
    if not yes:
        click.confirm(f"This deletes every run, task and audit record in {url}. Continue?", abort=True)
    reset_db(cli.raw_engine())
    render.info(f"database reset: {url}")
