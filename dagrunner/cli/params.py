"""Parsing of user-typed values shared by several commands (dates, JSON conf)."""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

import click
import pendulum


def parse_date(value: str, tz: str, option: str) -> datetime:
    """A date (`2026-01-05`) or ISO datetime read in the DAG's timezone unless it carries an offset."""
    try:
        parsed = pendulum.parse(value, tz=tz, strict=False)
    except (ValueError, pendulum.parsing.exceptions.ParserError) as exc:
        raise click.BadParameter(
            f"{value!r} is not a date; use YYYY-MM-DD or an ISO datetime like 2026-01-05T06:00:00+01:00",
            param_hint=option,
        ) from exc
    if not isinstance(parsed, datetime):
        raise click.BadParameter(f"{value!r} is not a date or datetime", param_hint=option)
    return parsed


def parse_conf(value: str | None) -> dict[str, Any]:
    """`--conf` must be a JSON object; anything else is a clear error naming the value."""
    if value is None:
        return {}
    try:
        data = json.loads(value)
    except json.JSONDecodeError as exc:
        raise click.BadParameter(
            f"{value!r} is not valid JSON ({exc.msg} at column {exc.colno})", param_hint="--conf"
        ) from None
    if not isinstance(data, dict):
        raise click.BadParameter(f"{value!r} must be a JSON object like '{{\"full\": true}}'", param_hint="--conf")
    return data
