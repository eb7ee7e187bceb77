"""Argument checks shared by DAG, BaseOperator, TaskGroup and the operators.

Every bad argument becomes one `InvalidArgumentError` whose message has the same four parts: what was
being defined (and where), the argument and its value, where the value came from when it was not written
in the call (default_args), and what would have been accepted. One checker object per definition keeps
the call sites short: `check.integer("retries", retries, minimum=0)`.
"""

from __future__ import annotations

import difflib
import logging
import math
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Any, NoReturn

from dagrunner.authoring.location import Location
from dagrunner.errors import InvalidArgumentError

#: Ids of DAGs and tasks (a task's full id adds its groups' prefixes).
ID_PATTERN = re.compile(r"^[A-Za-z0-9_.-]{1,250}$")
#: Group ids: no dots, since the dot separates a group from its children.
GROUP_ID_PATTERN = re.compile(r"^[A-Za-z0-9_-]{1,200}$")

_MAX_PRIORITY = 2**31 - 1

log = logging.getLogger("dagrunner.authoring")
_ANNOUNCED: set[tuple[str, str]] = set()


def _show(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 200 else text[:197] + "..."


@dataclass(frozen=True)
class ArgChecker:
    """Validates the arguments of one definition (a DAG, a task, a group) and raises precise errors."""

    subject: str
    where: Location
    sources: Mapping[str, str] = field(default_factory=dict)

    def fail(self, arg: str, value: Any, accepted: str) -> NoReturn:
        source = f" (from {self.sources[arg]})" if arg in self.sources else ""
        raise InvalidArgumentError(
            f"{self.subject} at {self.where}: {arg}={_show(value)}{source} is invalid; expected {accepted}"
        )

    def unknown(self, names: Iterable[str], accepted: Iterable[str]) -> NoReturn:
        accepted = sorted(accepted)
        parts = []
        for name in sorted(names):
            close = difflib.get_close_matches(name, accepted, n=1)
            parts.append(f"{name!r}" + (f" (did you mean {close[0]!r}?)" if close else ""))
        raise InvalidArgumentError(
            f"{self.subject} at {self.where}: unknown argument(s) {', '.join(parts)}; accepted: {', '.join(accepted)}"
        )

    def missing(self, names: Iterable[str]) -> NoReturn:
        raise InvalidArgumentError(
            f"{self.subject} at {self.where}: missing required argument(s) {', '.join(sorted(names))}"
        )

    def ignore(self, kwargs: dict[str, Any], ignored: Mapping[str, str]) -> dict[str, Any]:
        """`kwargs` without the Airflow arguments that mean nothing here (`ignored`: name -> why), each
        announced once per subject in the log instead of refusing the definition."""
        kept = dict(kwargs)
        for name in [n for n in kwargs if n in ignored]:
            del kept[name]
            if (self.subject, name) not in _ANNOUNCED:
                _ANNOUNCED.add((self.subject, name))
                log.warning("%s at %s: %s= is ignored (%s)", self.subject, self.where, name, ignored[name])
        return kept

    # --- scalar checks ------------------------------------------------------------------------------

    def boolean(self, arg: str, value: Any) -> bool:
        if not isinstance(value, bool):
            self.fail(arg, value, "True or False")
        return value

    def integer(self, arg: str, value: Any, *, minimum: int | None = None) -> int:
        if isinstance(value, bool) or not isinstance(value, int):
            self.fail(arg, value, "an integer" + (f" >= {minimum}" if minimum is not None else ""))
        if minimum is not None and value < minimum:
            self.fail(arg, value, f"an integer >= {minimum}")
        return value

    def priority(self, arg: str, value: Any) -> int:
        number = self.integer(arg, value)
        if abs(number) > _MAX_PRIORITY:
            self.fail(arg, value, f"an integer between {-_MAX_PRIORITY} and {_MAX_PRIORITY}")
        return number

    def number(self, arg: str, value: Any, *, minimum: float = 0.0) -> float:
        if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
            self.fail(arg, value, f"a number >= {minimum:g}")
        if value < minimum:
            self.fail(arg, value, f"a number >= {minimum:g}")
        return float(value)

    def duration(self, arg: str, value: Any, *, positive: bool = False) -> timedelta:
        """A timedelta or a number of seconds, >= 0 (or > 0 when `positive`)."""
        accepted = f"a timedelta or a number of seconds {'> 0' if positive else '>= 0'}"
        if isinstance(value, timedelta):
            seconds = value.total_seconds()
        elif not isinstance(value, bool) and isinstance(value, int | float) and math.isfinite(value):
            seconds = float(value)
        else:
            self.fail(arg, value, accepted)
        if seconds < 0 or (positive and seconds == 0):
            self.fail(arg, value, accepted)
        return value if isinstance(value, timedelta) else timedelta(seconds=seconds)

    def optional_duration(self, arg: str, value: Any, *, positive: bool = False) -> timedelta | None:
        return None if value is None else self.duration(arg, value, positive=positive)

    def string(self, arg: str, value: Any, *, pattern: re.Pattern[str] | None = None, what: str = "") -> str:
        accepted = what or "a non-empty string"
        if not isinstance(value, str) or not value:
            self.fail(arg, value, accepted)
        if pattern is not None and not pattern.match(value):
            self.fail(arg, value, accepted)
        return value

    def optional_string(self, arg: str, value: Any) -> str | None:
        if value is not None and not isinstance(value, str):
            self.fail(arg, value, "a string or None")
        return value

    def choice(self, arg: str, value: Any, choices: Iterable[str]) -> str:
        options = list(choices)
        if not isinstance(value, str) or value not in options:
            self.fail(arg, value, "one of " + ", ".join(options))
        return value

    def callable_(self, arg: str, value: Any) -> Callable[..., Any]:
        if not callable(value):
            self.fail(arg, value, "a callable (a function)")
        function: Callable[..., Any] = value
        return function

    # --- composite checks ---------------------------------------------------------------------------

    def callbacks(self, arg: str, value: Any) -> list[Callable[..., Any]]:
        """None, a callable, or a list of callables (Airflow accepts both) -> a list."""
        if value is None:
            return []
        items = list(value) if isinstance(value, list | tuple) else [value]
        if not all(callable(item) for item in items):
            self.fail(arg, value, "a callable, a list of callables, or None")
        return items

    def mapping(self, arg: str, value: Any) -> dict[str, Any]:
        """None or a dict with string keys -> a new dict."""
        if value is None:
            return {}
        if not isinstance(value, Mapping) or not all(isinstance(k, str) for k in value):
            self.fail(arg, value, "a dict with string keys, or None")
        return dict(value)

    def string_list(self, arg: str, value: Any) -> list[str]:
        """None, or a list/tuple/set of non-empty strings -> a de-duplicated list in the given order."""
        if value is None:
            return []
        if isinstance(value, str) or not isinstance(value, list | tuple | set | frozenset):
            self.fail(arg, value, "a list of strings")
        items = sorted(value) if isinstance(value, set | frozenset) else list(value)
        if not all(isinstance(item, str) and item for item in items):
            self.fail(arg, value, "a list of non-empty strings")
        return list(dict.fromkeys(items))

    def params(self, arg: str, value: Any) -> dict[str, Any]:
        """A params dict whose values survive JSON (datetimes are allowed and stored as ISO strings)."""
        from dagrunner.authoring.params import Param, ParamsDict

        if isinstance(value, ParamsDict):  # keep the Params, not the values a ParamsDict reads as
            value = {key: value.get_param(key) for key in value}
        params = self.mapping(arg, value)
        for key, item in params.items():
            if isinstance(item, Param):  # its schema was checked when it was made; its default must be JSON
                item = item.default if item.has_default else None
            problem = json_problem(item)
            if problem is not None:
                self.fail(
                    f"{arg}[{key!r}]",
                    item,
                    f"a JSON value (str, int, float, bool, None, list, dict with str keys, datetime); found {problem}",
                )
        return params


def json_problem(value: Any) -> str | None:
    """Why `value` cannot become JSON (see `to_json_value`), or None when it can."""
    if value is None or isinstance(value, str | bool | int | date):
        return None
    if isinstance(value, float):
        return None if math.isfinite(value) else f"the non-finite float {value!r}"
    if isinstance(value, list | tuple):
        return next((p for p in map(json_problem, value) if p is not None), None)
    if isinstance(value, Mapping):
        for key, item in value.items():
            if not isinstance(key, str):
                return f"the non-string key {key!r}"
            problem = json_problem(item)
            if problem is not None:
                return problem
        return None
    return f"a value of type {type(value).__name__}"


def to_json_value(value: Any) -> Any:
    """The JSON form of a value that passed `json_problem`: tuples become lists, datetimes ISO strings."""
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, list | tuple):
        return [to_json_value(item) for item in value]
    if isinstance(value, Mapping):
        return {key: to_json_value(item) for key, item in value.items()}
    return value
