"""`Param`: a value with a small JSON-schema (Airflow's `Param`), used for the forms people fill in.

A human-in-the-loop task's `params` are a form: each answer's values are checked against these schemas
before anything is written. The subset of JSON schema we check: `type` (one or a list of string,
integer, number, boolean, array, object, null), `enum`, `minimum`/`maximum`, `minLength`/`maxLength`,
`pattern`. Checking is a pure function of a stored schema (`check_value`), so the CLI side checks an
answer without importing the DAG file.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from dagrunner.errors import ParamValidationError

__all__ = ["Param", "check_params", "check_value", "form_schema", "param_values"]

_NOTSET: Any = object()
_TYPES: dict[str, tuple[type, ...]] = {
    "string": (str,),
    "integer": (int,),
    "number": (int, float),
    "boolean": (bool,),
    "array": (list,),
    "object": (dict,),
    "null": (type(None),),
}
_KEYWORDS = ("description", "title", "enum", "minimum", "maximum", "minLength", "maxLength", "pattern")


class Param:
    """A form field: `Param(5, type="integer", minimum=1)`. The default is checked when given."""

    def __init__(self, default: Any = _NOTSET, description: str | None = None, **schema: Any) -> None:
        unknown = set(schema) - {"type", *_KEYWORDS}
        if unknown:
            raise ParamValidationError(
                f"Param got unknown schema keyword(s) {', '.join(sorted(unknown))}; use type, " + ", ".join(_KEYWORDS)
            )
        types = schema.get("type")
        for name in [types] if isinstance(types, str) else types or []:
            if name not in _TYPES:
                raise ParamValidationError(f"Param type {name!r} is not one of {', '.join(_TYPES)}")
        self.schema_: dict[str, Any] = dict(schema)
        if description is not None:
            self.schema_["description"] = description
        self.default = default
        if default is not _NOTSET:
            check_value(self.schema(), default, name="default")

    @property
    def has_default(self) -> bool:
        return self.default is not _NOTSET

    def schema(self) -> dict[str, Any]:
        """The JSON stored with a request: the schema, plus `default` when there is one."""
        return {**self.schema_, **({"default": self.default} if self.has_default else {})}

    def __repr__(self) -> str:
        return f"Param({self.schema()!r})"


def form_schema(params: Mapping[str, Any]) -> dict[str, dict[str, Any]]:
    """name -> schema for a form given as Params or plain values (a plain value is a default of any type)."""
    return {name: (value if isinstance(value, Param) else Param(value)).schema() for name, value in params.items()}


def param_values(params: Mapping[str, Any]) -> dict[str, Any]:
    """A DAG's or task's params as a run sees them: each Param replaced by its default (one without a
    default is left out: the run's conf must give it, `check_params` makes sure of that at trigger)."""
    values: dict[str, Any] = {}
    for name, value in params.items():
        if not isinstance(value, Param):
            values[name] = value
        elif value.has_default:
            values[name] = value.default
    return values


def check_params(schemas: Mapping[str, Mapping[str, Any]], conf: Mapping[str, Any]) -> None:
    """A trigger's conf against the DAG's Params (name -> `Param.schema()`): every value it gives for a
    Param must fit the Param's schema, and a Param without a default must be given; else
    ParamValidationError naming the param."""
    for name, schema in schemas.items():
        if name in conf:
            check_value(schema, conf[name], name=name)
        elif "default" not in schema:
            raise ParamValidationError(f"param {name!r} has no default; give it in the run's conf")


def check_value(schema: Mapping[str, Any], value: Any, *, name: str) -> Any:
    """`value` when it fits `schema`, else ParamValidationError naming the field, the value and the rule."""
    types = schema.get("type")
    if types is not None:
        names = [types] if isinstance(types, str) else list(types)
        if not any(_is_type(value, t) for t in names):
            _fail(name, value, f"must be of type {' or '.join(names)}")
    if "enum" in schema and value not in schema["enum"]:
        _fail(name, value, f"must be one of {', '.join(repr(v) for v in schema['enum'])}")
    if isinstance(value, int | float) and not isinstance(value, bool):
        if "minimum" in schema and value < schema["minimum"]:
            _fail(name, value, f"must be at least {schema['minimum']}")
        if "maximum" in schema and value > schema["maximum"]:
            _fail(name, value, f"must be at most {schema['maximum']}")
    if isinstance(value, str):
        if "minLength" in schema and len(value) < schema["minLength"]:
            _fail(name, value, f"must be at least {schema['minLength']} characters long")
        if "maxLength" in schema and len(value) > schema["maxLength"]:
            _fail(name, value, f"must be at most {schema['maxLength']} characters long")
        if "pattern" in schema and re.search(schema["pattern"], value) is None:
            _fail(name, value, f"must match the pattern {schema['pattern']!r}")
    return value


def _is_type(value: Any, name: str) -> bool:
    if name in ("integer", "number") and isinstance(value, bool):
        return False
    if name == "integer" and isinstance(value, float):
        return value.is_integer()
    return isinstance(value, _TYPES[name])


def _fail(name: str, value: Any, rule: str) -> None:
    raise ParamValidationError(f"form value {name}={value!r} {rule}")
