"""A run's conf as it arrives from outside (the CLI's `--conf` now, the web API and broker messages later).

A trigger is untrusted input, so its conf is checked once where it enters, before anything is written:
it must be a JSON object, nested at most `MAX_CONF_DEPTH` deep (deeper JSON crashes the parser with a
RecursionError, and every later reader of the stored value too), and hold only finite numbers. NaN and
Infinity are not JSON: Python's json module accepts them, SQLite stores them, PostgreSQL's jsonb refuses
them with a driver traceback, so they are refused here on every database alike.
"""

from __future__ import annotations

import json
import math
from typing import Any

from dagrunner.errors import InvalidConfError

#: Deeper than any real configuration; far below what json, SQLAlchemy and Jinja can walk without recursing out.
MAX_CONF_DEPTH = 64


def parse_conf_json(text: str, *, source: str = "conf") -> dict[str, Any]:
    """`text` as a run conf: a JSON object of finite numbers, at most MAX_CONF_DEPTH deep; else InvalidConfError.

    `source` names where the text came from (`--conf`, a request field) in the one-line error.
    """
    depth = _max_depth(text)
    if depth > MAX_CONF_DEPTH:
        raise InvalidConfError(
            f"{source} is nested {depth} levels deep; at most {MAX_CONF_DEPTH} are allowed: flatten the value"
        )
    try:
        data = json.loads(text, parse_constant=_refuse_constant, parse_float=_finite_float)
    except _NotFinite as exc:
        raise InvalidConfError(
            f"{source} contains {exc.args[0]}, which is not a JSON number; use a finite number, a string or null"
        ) from None
    except ValueError as exc:  # JSONDecodeError, and ints longer than Python converts
        raise InvalidConfError(f"{source} {_excerpt(text)} is not valid JSON ({_reason(exc)})") from None
    return check_conf(data, source=source)


def check_conf(data: Any, *, source: str = "conf") -> dict[str, Any]:
    """An already decoded conf (e.g. a web framework's parsed body): an object, finite numbers, not too deep."""
    if not isinstance(data, dict):
        raise InvalidConfError(f"{source} must be a JSON object like '{{\"full\": true}}', not a {_json_kind(data)}")
    stack: list[tuple[Any, int]] = [(data, 1)]
    while stack:  # iterative: a value nested deeper than the recursion limit must not crash the check
        value, depth = stack.pop()
        if depth > MAX_CONF_DEPTH:
            raise InvalidConfError(f"{source} is nested more than {MAX_CONF_DEPTH} levels deep: flatten the value")
        if isinstance(value, str) and "\x00" in value:
            raise InvalidConfError(f"{source} contains a NUL character (\\u0000), which no database stores; remove it")
        if isinstance(value, dict) and any(isinstance(k, str) and "\x00" in k for k in value):
            raise InvalidConfError(f"{source} has a key with a NUL character (\\u0000), which no database stores")
        if isinstance(value, float) and not math.isfinite(value):
            raise InvalidConfError(
                f"{source} contains {value!r}, which is not a JSON number; use a finite number, a string or null"
            )
        children = value.values() if isinstance(value, dict) else value if isinstance(value, list | tuple) else ()
        stack.extend((child, depth + 1) for child in children)
    return data


class _NotFinite(ValueError):
    """Raised from the JSON parser's hooks for NaN, Infinity and numbers too large for a float."""


def _refuse_constant(name: str) -> Any:
    raise _NotFinite(name)


def _finite_float(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise _NotFinite(f"{text} (too large for a float)")
    return value


def _max_depth(text: str) -> int:
    """How deep brackets nest in `text`, ignoring those inside strings: checked before parsing, because
    the parser itself recurses once per level."""
    depth = deepest = 0
    in_string = escaped = False
    for char in text:
        if in_string:
            if escaped:
                escaped = False
            elif char == "\\":
                escaped = True
            elif char == '"':
                in_string = False
        elif char == '"':
            in_string = True
        elif char in "[{":
            depth += 1
            deepest = max(deepest, depth)
        elif char in "]}":
            depth -= 1
    return deepest


def _reason(exc: ValueError) -> str:
    if isinstance(exc, json.JSONDecodeError):
        return f"{exc.msg} at column {exc.colno}"
    return str(exc).split("\n")[0]


def _json_kind(value: Any) -> str:
    kinds = {list: "JSON array", str: "JSON string", bool: "JSON boolean", type(None): "JSON null"}
    return kinds.get(type(value), "JSON number" if isinstance(value, int | float) else type(value).__name__)


def _excerpt(text: str, limit: int = 60) -> str:
    """The start of what a user typed, for an error line that stays one line however long the value."""
    return repr(text if len(text) <= limit else text[:limit] + "...")
