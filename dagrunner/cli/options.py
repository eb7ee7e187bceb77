"""Click options more than one command shares, defined once so every command spells them the same."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

import click

F = TypeVar("F", bound=Callable[..., Any])


def json_option(what: str = "the rows") -> Callable[[F], F]:
    """`--json` (passed as `as_json`): print `what` as JSON for scripts instead of the table or display.

    Every command that lists or reports offers it (STYLE: thin CLI); the shape of each kind of row is
    the `to_json` of its view in `persistence/views.py`.
    """
    return click.option(
        "--json", "as_json", is_flag=True, help=f"Print {what} as JSON (for scripts) instead of the table or display."
    )
