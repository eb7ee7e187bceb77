"""Parsing of user-typed values shared by several commands (dates, JSON conf)."""

from __future__ import annotations

import re
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


class BadValue(click.ClickException):
    """A value typed on the command line that we cannot use: one line (`Error: --opt: why`), exit code 2
    like click's own usage errors, but without the usage text around it (the README promises one line)."""

    exit_code = 2

    def __init__(self, option: str, message: str) -> None:
        super().__init__(f"{option}: {message}")


def parse_conf(value: str | None) -> dict[str, Any]:
    """`--conf` must be a JSON object of finite numbers, not nested absurdly deep (see `run_conf`)."""
    from dagrunner.errors import InvalidConfError
    from dagrunner.scheduling.run_conf import parse_conf_json

    if value is None:
        return {}
    try:
        return parse_conf_json(value, source="the value")
    except InvalidConfError as exc:
        raise BadValue("--conf", str(exc)) from None


def parse_regex(value: str, option: str) -> re.Pattern[str]:
    """A regular expression from the command line, or a one-line error naming it and where it broke."""
    try:
        return re.compile(value)
    except re.error as exc:
        raise BadValue(option, f"{value!r} is not a valid regular expression ({exc}); quote it for the shell") from None
    except RecursionError:
        raise BadValue(option, "the regular expression nests too deeply; simplify it") from None
