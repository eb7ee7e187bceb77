"""Where `Connection.get`, `Variable.get` and the context's `conn` / `var` look things up, in Airflow's order:
the environment first (`DAGRUNNER_CONN_<ID>`, `DAGRUNNER_VAR_<KEY>`), then the metadata DB.

Authoring never touches the database: the executor running a try installs a `SecretsBackend` for it
(`install`), which reads the DB itself (inline executor, `tasks test`) or asks the worker over the task
process's pipe (local executor: a task process opens no database connection). Outside a try (a DAG file
being parsed) only the environment answers. Whatever secret is read is handed to the try's mask
(`execution.masking`), so it never reaches the try's log.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Protocol

CONN_ENV_PREFIX = "DAGRUNNER_CONN_"
VAR_ENV_PREFIX = "DAGRUNNER_VAR_"
#: A variable, param or connection extra field whose name contains one of these holds a secret (masked).
SENSITIVE_WORDS = ("password", "secret", "token", "api_key", "apikey", "passwd", "credential", "private_key")


def is_sensitive(name: str) -> bool:
    lowered = name.lower()
    return any(word in lowered for word in SENSITIVE_WORDS)


class SecretsBackend(Protocol):
    """The metadata DB as a try sees it: the stored values, decrypted (None: not stored)."""

    def get_connection(self, conn_id: str) -> str | None:
        """The connection as Airflow's JSON form (`Connection.as_json`)."""

    def get_variable(self, key: str) -> str | None: ...

    def set_variable(self, key: str, value: str, description: str | None) -> None: ...


@dataclass
class _Installed:
    backend: SecretsBackend | None = None
    mask: Callable[[str], None] = lambda _value: None
    environ: Mapping[str, str] | None = None


# One try at a time runs in a process (a task process, or the inline executor's loop); user code may read
# from threads it starts, which a ContextVar would not follow.
_CURRENT = _Installed()


def install(
    backend: SecretsBackend | None, mask: Callable[[str], None], environ: Mapping[str, str] | None = None
) -> None:
    """Make `backend` (None: the environment only) and `mask` the ones the current try's code uses."""
    _CURRENT.backend = backend
    _CURRENT.mask = mask
    _CURRENT.environ = environ


def environ() -> Mapping[str, str]:
    return os.environ if _CURRENT.environ is None else _CURRENT.environ


def mask(value: str | None) -> None:
    if value:
        _CURRENT.mask(value)


def env_name(prefix: str, key: str) -> str:
    return prefix + key.upper()


def connection_text(conn_id: str, env: Mapping[str, str] | None = None) -> tuple[str | None, str]:
    """(the stored text, where it came from): the environment's URI or JSON first, then the DB's JSON."""
    name = env_name(CONN_ENV_PREFIX, conn_id)
    found = (environ() if env is None else env).get(name)
    if found is not None:
        return found, name
    backend = _CURRENT.backend
    return (backend.get_connection(conn_id) if backend is not None else None), "the metadata DB"


def variable_text(key: str, env: Mapping[str, str] | None = None) -> tuple[str | None, str]:
    """(the value, where it came from); a secret-looking key's value is masked from now on."""
    name = env_name(VAR_ENV_PREFIX, key)
    found = (environ() if env is None else env).get(name)
    where = name
    if found is None:
        backend = _CURRENT.backend
        found = backend.get_variable(key) if backend is not None else None
        where = "the metadata DB"
    if found is not None and is_sensitive(key):
        mask(found)
    return found, where


def set_variable(key: str, value: str, description: str | None) -> None:
    backend = _CURRENT.backend
    if backend is None:
        from dagrunner.errors import ExecutionError

        raise ExecutionError(
            f"Variable.set({key!r}, ...) works inside a running task (or use `dagrunner variables set`)"
        )
    backend.set_variable(key, value, description)
    if is_sensitive(key):
        mask(value)


def backend_installed() -> bool:
    return _CURRENT.backend is not None
