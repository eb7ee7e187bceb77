"""`Param`: a value with a small JSON-schema (Airflow's `Param`), used for the forms people fill in.

A human-in-the-loop task's `params` are a form: each answer's values are checked against these schemas
before anything is written. The subset of JSON schema we check: `type` (one or a list of string,
integer, number, boolean, array, object, null), `enum`, `minimum`/`maximum`, `minLength`/`maxLength`,
`pattern`. Checking is a pure function of a stored schema (`check_value`), so the CLI side checks an
answer without importing the DAG file.
"""

from __future__ import annotations

import copy
import re
from collections.abc import Iterator, Mapping, MutableMapping
from typing import Any

from dagrunner.errors import ParamValidationError

__all__ = ["Param", "ParamsDict", "check_params", "check_value", "form_schema", "param_values"]

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

    @property
    def value(self) -> Any:
        """Airflow's `Param.value`: the default (None when there is none)."""
        return self.default if self.has_default else None

    def resolve(self, value: Any = _NOTSET, suppress_exception: bool = False) -> Any:
        """`value` (else the default) checked against the schema, as Airflow's `Param.resolve`; without
        either, or when it does not fit, ParamValidationError, or None with `suppress_exception`.
        Unlike Airflow's, it does not store `value` in the Param (ParamsDict keeps set values)."""
        chosen = self.default if value is _NOTSET else value
        try:
            if chosen is _NOTSET:
                raise ParamValidationError("no value given and the Param has no default")
            return check_value(self.schema(), chosen, name="value")
        except ParamValidationError:
            if suppress_exception:
                return None
            raise

    def __repr__(self) -> str:
        return f"Param({self.schema()!r})"


class ParamsDict(MutableMapping[str, Any]):
    """Params by name, read as their values (Airflow's `ParamsDict`): `d["x"]` is the value of Param "x",
    `d.get_param("x")` the Param itself. Setting a name that holds a Param checks the new value against
    its schema; a plain value becomes a Param with that default. `DAG(params=ParamsDict(...))` and a plain
    dict of Params mean the same.
    """

    def __init__(self, dict_obj: Mapping[str, Any] | None = None, suppress_exception: bool = False) -> None:
        self._params: dict[str, Param] = {}
        self.suppress_exception = suppress_exception
        for key, value in (dict_obj or {}).items():
            self[key] = value

    def __setitem__(self, key: str, value: Any) -> None:
        if isinstance(value, Param):
            self._params[key] = value
            return
        current = self._params.get(key)
        if current is None:
            self._params[key] = Param(value)
            return
        try:
            check_value(current.schema(), value, name=key)
        except ParamValidationError:
            if self.suppress_exception:
                return
            raise
        updated = copy.copy(current)
        updated.default = value
        self._params[key] = updated

    def __getitem__(self, key: str) -> Any:
        try:
            return self._params[key].resolve(suppress_exception=self.suppress_exception)
        except ParamValidationError as exc:
            raise ParamValidationError(f"param {key!r}: {exc}") from None

    def __delitem__(self, key: str) -> None:
        del self._params[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self._params)

    def __len__(self) -> int:
        return len(self._params)

    def __repr__(self) -> str:
        return f"ParamsDict({self._params!r})"

    def get_param(self, key: str) -> Param:
        """The Param stored under `key` (KeyError when there is none)."""
        return self._params[key]

    def validate(self) -> dict[str, Any]:
        """Every value, checked against its schema (ParamValidationError naming the first that fails)."""
        return {key: self[key] for key in self._params}

    def dump(self) -> dict[str, Any]:
        """Every value, unchecked where it would fail (None for a Param with no value)."""
        return {key: param.resolve(suppress_exception=True) for key, param in self._params.items()}


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
