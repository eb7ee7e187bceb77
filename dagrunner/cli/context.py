"""What every command shares: the settings, the metadata DB engine, the parsed DAG folder, the actor name.

Each piece is built on first use, so `dagrunner version` or `--help` touch neither the DB nor the DAG files.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from functools import cached_property
from typing import Any, TypeVar

import click
from sqlalchemy.engine import Engine

from dagrunner.settings import Settings

F = TypeVar("F", bound=Callable[..., Any])


class CliContext:
    def __init__(self, *, verbose: bool, home: str | None, overrides: dict[str, Any]) -> None:
        self.verbose = verbose
        self._home = home
        self._overrides = dict(overrides)
        self._engine: Engine | None = None

    def override(self, **values: Any) -> None:
        """Apply a command's own flags (e.g. --parallelism) before the settings are first read."""
        if "settings" in self.__dict__:
            raise RuntimeError("settings were read before a command applied its flags")
        self._overrides.update(values)

    @cached_property
    def settings(self) -> Settings:
        from pathlib import Path

        return Settings.load(self._overrides, home=Path(self._home) if self._home else None)

    @property
    def db_label(self) -> str:
        from dagrunner.settings import mask_url

        return mask_url(self.settings.db_url)

    @property
    def engine(self) -> Engine:
        """The metadata DB, created and migrated on first use when it is empty (nothing to set up)."""
        if self._engine is None:
            from dagrunner.persistence.engine import make_engine
            from dagrunner.persistence.schema import ensure_schema

            engine = make_engine(self.settings.db_url, busy_timeout=self.settings.sqlite_busy_timeout)
            ensure_schema(engine, auto_init=True)
            self._engine = engine
        return self._engine

    def session(self) -> Any:
        """A transaction on the metadata DB: commits on success, rolls back on error."""
        from dagrunner.persistence.engine import session_scope

        return session_scope(self.engine)

    def read_session(self) -> Any:
        """A read-only view of the metadata DB: never takes SQLite's write lock (for displays, lists)."""
        from dagrunner.persistence.engine import session_scope

        return session_scope(self.engine, readonly=True)

    def raw_engine(self) -> Engine:
        """The engine without the schema check, for `dagrunner db ...` itself."""
        from dagrunner.persistence.engine import make_engine

        if self._engine is None:
            self._engine = make_engine(self.settings.db_url, busy_timeout=self.settings.sqlite_busy_timeout)
        return self._engine

    @cached_property
    def dagbag(self) -> Any:
        """The DAG folder, parsed (only changed files are re-imported) and recorded in the DB."""
        from dagrunner.loading.sync import load_dagbag

        return load_dagbag(self.settings, self.engine)

    @cached_property
    def actor(self) -> str:
        from dagrunner.persistence.audit import actor_for_cli

        ctx = click.get_current_context(silent=True)
        argv = ctx.meta.get("dagrunner.argv") if ctx is not None else None
        return actor_for_cli(["dagrunner", *(sys.argv[1:] if argv is None else argv)])

    def close(self) -> None:
        if self._engine is not None:
            self._engine.dispose()


def pass_cli(func: F) -> F:
    """Hand a command the shared CliContext as its first argument."""
    return click.pass_obj(func)  # type: ignore[return-value]
