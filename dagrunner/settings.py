"""Settings: defaults -> dagrunner.toml -> DAGRUNNER_* environment -> CLI flags, each value with its source.

The project directory is `$DAGRUNNER_HOME` when set, else the current directory. Relative paths in any
source are read relative to the project directory, so `dagrunner` behaves the same from any shell that
points at the same project.
"""

from __future__ import annotations

import os
import tomllib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

from dagrunner.errors import ConfigError

ENV_PREFIX = "DAGRUNNER_"
TOML_NAME = "dagrunner.toml"


def _default_parallelism() -> int:
    return max(2, os.cpu_count() or 2)


@dataclass(frozen=True)
class Settings:
    """The effective configuration. Build it with `Settings.load()`; `sources` says where each came from."""

    home: Path
    dags_folder: Path
    plugins_folder: Path
    state_folder: Path
    db_url: str
    logs_folder: Path
    executor: str = "local"
    parallelism: int = field(default_factory=_default_parallelism)
    default_timezone: str = "UTC"
    create_cron_data_intervals: bool = False
    dagbag_import_timeout: float = 30.0
    dagbag_import_memory_mb: int = 1024
    default_pool_slots: int = 128
    sqlite_busy_timeout: float = 30.0
    scheduler_heartbeat_sec: float = 5.0
    zombie_threshold_sec: float = 300.0
    #: How long the scheduler, backfill and workers retry through a database outage (connection lost,
    #: SQLite locked, writes refused) before they stop with one line saying so.
    db_unreachable_timeout_sec: float = 300.0
    sources: Mapping[str, str] = field(default_factory=dict, compare=False, repr=False)

    # --- construction ----------------------------------------------------------------------------

    @classmethod
    def load(
        cls,
        overrides: Mapping[str, Any] | None = None,
        environ: Mapping[str, str] | None = None,
        home: Path | None = None,
    ) -> Settings:
        """Merge defaults, the toml file, the environment and CLI overrides (None values are ignored)."""
        env = os.environ if environ is None else environ
        home = Path(home or env.get(ENV_PREFIX + "HOME") or os.getcwd()).resolve()
        raw: dict[str, Any] = {}
        sources: dict[str, str] = {}

        toml_path = home / TOML_NAME
        if toml_path.is_file():
            try:
                data = tomllib.loads(toml_path.read_text())
            except tomllib.TOMLDecodeError as exc:
                raise ConfigError(f"{toml_path}: not valid TOML ({exc}); fix the file or remove it") from exc
            section = data.get("dagrunner", data)
            for key, value in section.items():
                if key not in _FIELD_TYPES:
                    raise ConfigError(
                        f"{toml_path}: unknown setting {key!r}; known settings: {', '.join(sorted(_FIELD_TYPES))}"
                    )
                raw[key] = value
                sources[key] = str(toml_path)
        for key in _FIELD_TYPES:
            env_name = ENV_PREFIX + key.upper()
            if env_name in env:
                raw[key] = env[env_name]
                sources[key] = f"env {env_name}"
        for key, value in (overrides or {}).items():
            if value is not None:
                if key not in _FIELD_TYPES:
                    raise ConfigError(f"unknown setting {key!r}")
                raw[key] = value
                sources[key] = "command line"
        return cls._build(home, raw, sources)

    @classmethod
    def _build(cls, home: Path, raw: dict[str, Any], sources: dict[str, str]) -> Settings:
        values: dict[str, Any] = {}
        for key, value in raw.items():
            values[key] = _coerce(key, value, sources.get(key, "default"))

        def path_of(key: str, default: Path) -> Path:
            p = Path(values[key]) if key in values else default
            return p if p.is_absolute() else (home / p)

        state = path_of("state_folder", Path(".dagrunner"))
        values["dags_folder"] = path_of("dags_folder", Path("dags"))
        values["plugins_folder"] = path_of("plugins_folder", Path("plugins"))
        values["state_folder"] = state
        values["logs_folder"] = path_of("logs_folder", state / "logs")
        values.setdefault("db_url", f"sqlite:///{state / 'dagrunner.db'}")
        if values.get("executor", "local") not in ("inline", "local", "celery"):
            raise ConfigError(
                f"executor {values['executor']!r} (from {sources.get('executor')}) is not one of inline, local, celery"
            )
        all_sources = {f.name: sources.get(f.name, "default") for f in fields(cls) if f.name != "sources"}
        all_sources["home"] = "env DAGRUNNER_HOME" if "home" in sources else "current directory"
        settings = cls(home=home, sources=all_sources, **values)
        settings.validate()
        return settings

    def validate(self) -> None:
        """Refuse settings that contradict each other, with one line per broken rule (see `_INVARIANTS`)."""
        broken = [line for check in _INVARIANTS if (line := check(self))]
        if broken:
            raise ConfigError("\n".join(broken))

    def described(self, name: str) -> str:
        """`name=value (from source)`, for an error line that says what to change and where."""
        return f"{name}={getattr(self, name)!r} (from {self.sources.get(name, 'default')})"

    # --- views -----------------------------------------------------------------------------------

    def as_rows(self) -> list[tuple[str, str, str]]:
        """(name, value, source) for `dagrunner config show`; the DB password is masked."""
        rows = []
        for f in fields(self):
            if f.name == "sources":
                continue
            value = getattr(self, f.name)
            text = mask_url(value) if f.name == "db_url" else str(value)
            rows.append((f.name, text, self.sources.get(f.name, "default")))
        return rows

    @property
    def is_sqlite(self) -> bool:
        return self.db_url.startswith("sqlite")


def mask_url(url: str) -> str:
    """Hide the password in a database URL before it is printed anywhere."""
    from sqlalchemy.engine import make_url

    try:
        return make_url(url).render_as_string(hide_password=True)
    except Exception:  # noqa: BLE001 - an unparsable URL is shown as is; it holds no parsed password
        return url


_FIELD_TYPES: dict[str, type] = {
    "dags_folder": Path,
    "plugins_folder": Path,
    "state_folder": Path,
    "logs_folder": Path,
    "db_url": str,
    "executor": str,
    "parallelism": int,
    "default_timezone": str,
    "create_cron_data_intervals": bool,
    "dagbag_import_timeout": float,
    "dagbag_import_memory_mb": int,
    "default_pool_slots": int,
    "sqlite_busy_timeout": float,
    "scheduler_heartbeat_sec": float,
    "zombie_threshold_sec": float,
    "db_unreachable_timeout_sec": float,
}


def _zombie_after_heartbeats(s: Settings) -> str | None:
    """A process is declared dead after `zombie_threshold_sec` without a heartbeat, so the threshold must
    span at least two heartbeats: else one late heartbeat (a slow tick, a busy DB) kills a live process's
    work, and with a threshold below the heartbeat every running try is failed as a zombie."""
    if s.zombie_threshold_sec >= 2 * s.scheduler_heartbeat_sec:
        return None
    return (
        f"{s.described('zombie_threshold_sec')} must be at least twice {s.described('scheduler_heartbeat_sec')}, "
        f"or live processes are taken for dead: raise zombie_threshold_sec to {2 * s.scheduler_heartbeat_sec:g} "
        "or more (default 300), or lower scheduler_heartbeat_sec (default 5)"
    )


def _at_least(name: str, least: int, why: str) -> Callable[[Settings], str | None]:
    def check(s: Settings) -> str | None:
        if getattr(s, name) >= least:
            return None
        return f"{s.described(name)} must be at least {least}: {why}"

    check.__doc__ = f"{name} >= {least}: {why}"
    return check


#: The rules a whole configuration must keep; each returns None or one line naming the settings, their
#: values and sources, and what to change. Checked by `Settings.load`, so every command refuses to start.
_INVARIANTS: tuple[Callable[[Settings], str | None], ...] = (
    _zombie_after_heartbeats,
    _at_least("parallelism", 1, "it is how many tries run at once"),
    _at_least("default_pool_slots", 1, "with no slots no task of the default pool ever runs (pause DAGs instead)"),
    _at_least("dagbag_import_memory_mb", 64, "a DAG file's import needs room for Python and dagrunner"),
)

_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off", ""}


def _coerce(key: str, value: Any, source: str) -> Any:
    kind = _FIELD_TYPES[key]
    try:
        if kind is bool:
            if isinstance(value, bool):
                return value
            text = str(value).strip().lower()
            if text in _TRUE:
                return True
            if text in _FALSE:
                return False
            raise ValueError("expected true or false")
        if kind is int:
            count = int(value)
            if key == "parallelism" and count < 1:
                raise ValueError("must be at least 1")
            return count
        if kind is float:
            amount = float(value)
            if amount <= 0:
                raise ValueError("must be positive")
            return amount
        return str(value)
    except (TypeError, ValueError) as exc:
        raise ConfigError(f"setting {key}={value!r} (from {source}) is invalid: {exc}") from exc
