"""Untrusted input the API takes, checked before it reaches the database, so no value can turn into a 500.

Two things the databases refuse that HTTP happily carries: PostgreSQL cannot store a NUL character in a text
or JSONB value (psycopg raises), and a time near year 1 or 9999 with an offset overflows when moved to UTC.
Query parameters declare `NO_NUL` as their pattern (it shows in the OpenAPI document, so clients and the
fuzz know it); bodies call `check_json` on free-form JSON; times go through `utc`. Their refusals are 400s
with a `detail` string (a 422 is FastAPI's own validation error, whose `detail` is a list).
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from fastapi import HTTPException

#: The pattern of every free-text query parameter: anything but NUL.
NO_NUL = r"^[^\x00]*$"
#: The longest free-text filter we accept (ids are 250 characters at most in the DB).
MAX_TEXT = 1000
#: How deep and how big a JSON document a body may hold (an asset event's extra, a form's answers).
MAX_DEPTH = 20
MAX_ITEMS = 10_000


def check_json(value: Any, where: str) -> Any:
    """`value` unchanged when the DB can store it; 400 naming `where` for NUL characters, too deep or too big."""
    count = 0
    stack: list[tuple[Any, int]] = [(value, 0)]
    while stack:
        item, depth = stack.pop()
        count += 1
        if depth > MAX_DEPTH or count > MAX_ITEMS:
            raise HTTPException(400, f"{where} is too deep or too big (at most {MAX_DEPTH} levels, {MAX_ITEMS} values)")
        if isinstance(item, str) and "\x00" in item:
            raise HTTPException(400, f"{where} holds a NUL character, which cannot be stored; remove it")
        if isinstance(item, dict):
            stack.extend((k, depth + 1) for k in item)
            stack.extend((v, depth + 1) for v in item.values())
        elif isinstance(item, list):
            stack.extend((v, depth + 1) for v in item)
        elif isinstance(item, float) and item != item or item in (float("inf"), float("-inf")):
            raise HTTPException(400, f"{where} holds NaN or Infinity, which JSON cannot carry")
    return value


def utc(value: datetime | None, name: str) -> datetime | None:
    """`value` as an aware UTC time (a naive one is taken as UTC, as the CLI does); 400 when it cannot be one."""
    if value is None:
        return None
    try:
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)
    except (OverflowError, ValueError):
        raise HTTPException(400, f"{name}={value.isoformat()} is out of range once moved to UTC") from None
