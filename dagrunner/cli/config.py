"""`dagrunner config ...`: what settings are in force and where each came from."""

from __future__ import annotations

import click

from dagrunner.cli import render
from dagrunner.cli.context import CliContext, pass_cli
from dagrunner.cli.options import json_option


@click.group()
def config() -> None:
    """Inspect the effective configuration."""


@config.command("show")
@json_option("the settings")
@pass_cli
def show(cli: CliContext, as_json: bool) -> None:
    """Print every setting, its value and where it came from (default, dagrunner.toml, env, flag)."""
    rows = cli.settings.as_rows()
    if as_json:
        render.print_json({name: {"value": value, "source": source} for name, value, source in rows})
        return
    render.table("Effective settings", ["setting", "value", "source"], rows)
