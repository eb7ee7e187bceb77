"""All terminal output goes through here: rich tables for people, JSON for scripts, one-line errors."""

from __future__ import annotations

import json
import sys
from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import Any

from rich.console import Console
from rich.table import Table


def _width(stream: object) -> int | None:
    """Full terminal width on a terminal; a wide page when piped, so tables are not cut at 80 columns."""
    return None if getattr(stream, "isatty", lambda: False)() else 200


console = Console(highlight=False, width=_width(sys.stdout))
err_console = Console(stderr=True, highlight=False, width=_width(sys.stderr))


def print_json(data: Any) -> None:
    """Write JSON to stdout exactly (no rich markup or wrapping), so scripts can parse it."""
    sys.stdout.write(json.dumps(data, indent=2, default=_json_default) + "\n")
    sys.stdout.flush()


def _json_default(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.isoformat()
    return str(value)


def table(title: str | None, columns: Sequence[str], rows: Iterable[Sequence[Any]], *, overflow: str = "fold") -> None:
    """A table whose long cells wrap (`fold`) rather than lose their ends: ids must stay readable."""
    t = Table(title=title, title_justify="left")
    for col in columns:
        t.add_column(col, overflow=overflow)  # type: ignore[arg-type]
    for row in rows:
        t.add_row(*[_cell(v) for v in row])
    console.print(t)


def _cell(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, datetime):
        return fmt_time(value)
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, (list, tuple)):
        return ", ".join(str(v) for v in value)
    return str(value)


def fmt_time(value: datetime | None) -> str:
    if value is None:
        return "-"
    return value.isoformat(timespec="seconds")


def fmt_duration(seconds: float | None) -> str | None:
    """`12.34s`, or None (shown as `-`) while a run or try has not finished."""
    return f"{seconds:.2f}s" if seconds is not None else None


def error(message: str) -> None:
    err_console.print(f"[bold red]Error:[/] {message}", markup=True)


def info(message: str) -> None:
    console.print(message)
