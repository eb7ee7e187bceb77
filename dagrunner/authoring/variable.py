"""`Variable`: a named value shared by DAGs (Airflow's `airflow.sdk.Variable`).

`Variable.get(key)` reads `DAGRUNNER_VAR_<KEY>` first, then the metadata DB (see `_secrets`); a value whose
key looks secret is masked in the try's log from then on. `Variable.set` writes to the metadata DB and
works inside a running task (the CLI's `dagrunner variables set` everywhere).
"""

from __future__ import annotations

import json
from typing import Any

from dagrunner.authoring import _secrets
from dagrunner.errors import ExecutionError, VariableNotFoundError

_NOTSET: Any = object()


class Variable:
    """Airflow's class-level API: `Variable.get(...)`, `Variable.set(...)`."""

    @staticmethod
    def get(key: str, default: Any = _NOTSET, deserialize_json: bool = False) -> Any:
        """The value of `key` (parsed as JSON with `deserialize_json`); `default` when it is not set,
        else `VariableNotFoundError` (a KeyError, as Airflow raises)."""
        raw, where = _secrets.variable_text(key)
        if raw is None:
            if default is _NOTSET:
                raise VariableNotFoundError(not_found_message(key))
            return default
        return parse_json(key, raw, where) if deserialize_json else raw

    @staticmethod
    def set(key: str, value: Any, description: str | None = None, serialize_json: bool = False) -> None:
        """Store `value` under `key` in the metadata DB (JSON-encoded with `serialize_json`; otherwise
        its `str`, as Airflow stores it)."""
        text = json.dumps(value, indent=2) if serialize_json else str(value)
        _secrets.set_variable(key, text, description)


def not_found_message(key: str) -> str:
    env = _secrets.env_name(_secrets.VAR_ENV_PREFIX, key)
    where = "" if _secrets.backend_installed() else " (outside a running task only the environment is read)"
    return (
        f"variable {key!r} is not set: `dagrunner variables set {key} VALUE`, or set the environment variable "
        f"{env}{where}; or pass a default"
    )


def parse_json(key: str, raw: str, where: str) -> Any:
    try:
        return json.loads(raw)
    except json.JSONDecodeError as exc:
        raise ExecutionError(f"variable {key!r} ({where}) is not valid JSON: {exc}") from None
