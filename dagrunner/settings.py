"""Settings: defaults -> dagrunner.toml -> DAGRUNNER_* environment -> CLI flags, each value with its source.

The project directory is `$DAGRUNNER_HOME` when set, else the current directory. Relative paths in any
source are read relative to the project directory, so `dagrunner` behaves the same from any shell that
points at the same project.
"""

from __future__ import annotations

import json
import os
import re
import socket
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
    #: Pools from the `[pools.NAME]` tables of dagrunner.toml, applied when the scheduler starts.
    pools: tuple[PoolSpec, ...] = ()
    # Asset watchers (#12 part B): a triggerer child of the scheduler, the largest message, tries per message.
    triggerer_in_scheduler: bool = True
    event_max_message_bytes: int = 1048576
    event_max_attempts: int = 5
    # Published events (issue #12 part C): sinks from `[events.sinks.NAME]`, the CloudEvent `source`, listeners.
    event_sinks: tuple[SinkSpec, ...] = ()
    events_source: str = ""
    events_listeners: bool = True
    # Several schedulers (#13 part F): a job silent this long is declared dead and its work adopted.
    scheduler_adopt_after_sec: float = 30.0
    # Celery executor and `dagrunner worker` (#13 part E): the broker, the queue of tasks without `queue=`,
    # how long a try sent to the broker may wait unstarted, and the port a worker serves its try logs on.
    celery_broker_url: str = ""
    celery_default_queue: str = "default"
    queued_timeout_sec: float = 600.0
    #: 8794: the api-server's default port is Airflow's 8793, and both may run on one laptop.
    worker_log_server_port: int = 8794
    # The api-server and web UI (#14): where `dagrunner api-server` and `standalone` listen (127.0.0.1: this
    # machine only, unless told otherwise), how long a browser session lasts, and whether its cookie is
    # sent over HTTPS only (set true behind a TLS-terminating proxy).
    api_host: str = "127.0.0.1"
    api_port: int = 8793
    api_session_hours: float = 12.0
    api_cookie_secure: bool = False
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
            pools = section.pop("pools", None) if isinstance(section, dict) else None
            pools = data.pop("pools", None) if pools is None else pools
            if pools is not None:
                raw["pools"] = pool_specs(pools, str(toml_path))
                sources["pools"] = str(toml_path)
            _events_from_toml(section, data, raw, sources, str(toml_path))
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
        if ENV_PREFIX + "EVENTS_SINKS" in env:
            raw["event_sinks"] = sink_specs_from_json(env[ENV_PREFIX + "EVENTS_SINKS"], "env DAGRUNNER_EVENTS_SINKS")
            sources["event_sinks"] = "env DAGRUNNER_EVENTS_SINKS"
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
            values[key] = value if key in ("pools", "event_sinks") else _coerce(key, value, sources.get(key, "default"))

        def path_of(key: str, default: Path) -> Path:
            p = Path(values[key]) if key in values else default
            return p if p.is_absolute() else (home / p)

        state = path_of("state_folder", Path(".dagrunner"))
        values["dags_folder"] = path_of("dags_folder", Path("dags"))
        values["plugins_folder"] = path_of("plugins_folder", Path("plugins"))
        values["state_folder"] = state
        values["logs_folder"] = path_of("logs_folder", state / "logs")
        values.setdefault("db_url", f"sqlite:///{state / 'dagrunner.db'}")
        if not values.get("events_source"):
            values["events_source"] = f"dagrunner://{socket.gethostname()}/"
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
            text = mask_url(value) if f.name in ("db_url", "celery_broker_url") and value else str(value)
            if f.name == "pools":
                text = "; ".join(spec.describe() for spec in self.pools) or "-"
            if f.name == "event_sinks":
                text = "; ".join(spec.describe() for spec in self.event_sinks) or "-"
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


# --- pools from the config file ---------------------------------------------------------------------------


@dataclass(frozen=True)
class PoolSpec:
    """A pool as the config file (`[pools.NAME]`) or `dagrunner pools set` describes it. None: leave that
    value as the pool has it (a new pool gets the defaults: no description, no breaker, a 300s cool-down)."""

    name: str
    slots: int | None = None
    description: str | None = None
    breaker_failures: int | None = None
    breaker_cooldown_s: float | None = None

    def describe(self) -> str:
        words = [f"{self.name}: {self.slots} slots" if self.slots is not None else f"{self.name}:"]
        if self.breaker_failures is not None:
            words.append(f"breaker after {self.breaker_failures} failures")
        if self.breaker_cooldown_s is not None:
            words.append(f"cool-down {self.breaker_cooldown_s:g}s")
        return ", ".join(words)


_POOL_KEYS = ("slots", "description", "breaker_failures", "breaker_cooldown")
_POOL_NAME = re.compile(r"^[A-Za-z0-9_.:~+-]{1,256}$")
_DURATION = re.compile(r"(\d+(?:\.\d+)?)\s*([smhd])")
_UNIT_S = {"s": 1, "m": 60, "h": 3600, "d": 86400}


def parse_duration(value: str | float | int) -> float:
    """Seconds from `30s`, `5m`, `1h`, `1h30m`, `2d` or a plain number of seconds; ValueError naming the
    value when it is none of those or not positive."""
    if isinstance(value, bool):
        raise ValueError(f"{value!r} is not a duration; use e.g. 30s, 5m or 1h")
    if isinstance(value, int | float):
        seconds = float(value)
    else:
        text = value.strip().lower()
        try:
            seconds = float(text)
        except ValueError:
            parts = _DURATION.findall(text)
            if not parts or _DURATION.sub("", text).strip():
                raise ValueError(f"{value!r} is not a duration; use e.g. 30s, 5m or 1h") from None
            seconds = sum(float(amount) * _UNIT_S[unit] for amount, unit in parts)
    if not seconds > 0 or seconds == float("inf"):
        raise ValueError(f"duration {value!r} must be positive and finite")
    return seconds


def check_pool_name(name: str) -> str:
    """A pool name as given: 1-256 letters, digits and `_ . : ~ + -` (ValueError naming it otherwise)."""
    if not isinstance(name, str) or not _POOL_NAME.match(name):
        raise ValueError(f"pool name {name!r} must be 1-256 letters, digits or _ . : ~ + -")
    return name


def check_positive(what: str, value: object) -> int:
    """A count that must be a positive integer (slots, a breaker's threshold)."""
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"{what} must be a positive whole number, not {value!r}")
    return value


def pool_specs(table: object, source: str) -> tuple[PoolSpec, ...]:
    """The `[pools.NAME]` tables of the config file as PoolSpecs; ConfigError naming the pool, the key and
    the file for anything we cannot use."""
    if not isinstance(table, dict):
        raise ConfigError(f"{source}: `pools` must be a table of pools ([pools.NAME] with slots = N)")
    specs = []
    for name, body in table.items():
        try:
            check_pool_name(name)
            if not isinstance(body, dict):
                raise ValueError("must be a table with slots = N")
            unknown = sorted(set(body) - set(_POOL_KEYS))
            if unknown:
                raise ValueError(f"unknown key(s) {', '.join(unknown)}; known: {', '.join(_POOL_KEYS)}")
            if "slots" not in body:
                raise ValueError("needs slots = N")
            cooldown = body.get("breaker_cooldown")
            description = body.get("description")
            if description is not None and not isinstance(description, str):
                raise ValueError(f"description must be a string, not {description!r}")
            specs.append(PoolSpec(
                name, check_positive("slots", body["slots"]), description,
                None if "breaker_failures" not in body else check_positive("breaker_failures", body["breaker_failures"]),
                None if cooldown is None else parse_duration(cooldown),
            ))  # fmt: skip
        except ValueError as exc:
            raise ConfigError(f"{source}: pool {name!r}: {exc}") from None
    return tuple(specs)


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
    # Asset watchers (#12 part B)
    "triggerer_in_scheduler": bool,
    "event_max_message_bytes": int,
    "event_max_attempts": int,
    "events_source": str,
    "events_listeners": bool,
    # Several schedulers (#13 part F)
    "scheduler_adopt_after_sec": float,
    # Celery executor and workers (#13 part E)
    "celery_broker_url": str,
    "celery_default_queue": str,
    "queued_timeout_sec": float,
    "worker_log_server_port": int,
    # The api-server (#14)
    "api_host": str,
    "api_port": int,
    "api_session_hours": float,
    "api_cookie_secure": bool,
}


# --- event sinks from the config file (issue #12 part C) ------------------------------------------------------

SINK_TYPES = ("webhook", "redis_stream", "rabbitmq")
_SINK_TARGET = {"webhook": "url", "redis_stream": "stream", "rabbitmq": "exchange"}
_SINK_KEYS = ("type", "url", "url_env", "stream", "maxlen", "exchange", "secret_env", "timeout", "dags", "types",
              "max_backoff")  # fmt: skip
_ENV_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


@dataclass(frozen=True)
class SinkSpec:
    """Where published events go (`[events.sinks.NAME]`): a webhook, a Redis stream or a RabbitMQ exchange.

    `url` is the webhook's URL or the broker's (`url_env`: the name of an env var holding it, for a URL with
    a password); `secret_env` names the env var holding a webhook's HMAC secret. `dags` and `types` are
    glob lists (empty: all). A secret never lives in this object, only the names of variables holding one.
    """

    name: str
    type: str
    url: str | None = None
    url_env: str | None = None
    stream: str | None = None
    maxlen: int | None = None
    exchange: str | None = None
    secret_env: str | None = None
    timeout: float = 10.0
    dags: tuple[str, ...] = ()
    types: tuple[str, ...] = ()
    max_backoff: float = 60.0

    def describe(self) -> str:
        target = getattr(self, _SINK_TARGET[self.type])
        where = mask_url(self.url) if self.url else (f"${self.url_env}" if self.url_env else "default")
        return f"{self.name}: {self.type} {target} at {where}"

    def resolved_url(self, environ: Mapping[str, str] | None = None) -> str | None:
        """The URL, read from `url_env` when it names a variable (ConfigError when that variable is unset)."""
        if self.url_env is None:
            return self.url
        env = os.environ if environ is None else environ
        if self.url_env not in env:
            raise ConfigError(f"event sink {self.name!r}: url_env names {self.url_env}, which is not set")
        return env[self.url_env]


def _events_from_toml(section: Any, data: dict[str, Any], raw: dict[str, Any], sources: dict[str, str],
                      where: str) -> None:  # fmt: skip
    """Take the `[events]` table (source, listeners, sinks.NAME) out of the parsed file into `raw`."""
    events = section.pop("events", None) if isinstance(section, dict) else None
    events = data.pop("events", None) if events is None else events
    if events is None:
        return
    if not isinstance(events, dict):
        raise ConfigError(f"{where}: `events` must be a table ([events] with source, listeners, [events.sinks.NAME])")
    unknown = sorted(set(events) - {"source", "listeners", "sinks"})
    if unknown:
        raise ConfigError(f"{where}: [events]: unknown key(s) {', '.join(unknown)}; known: listeners, sinks, source")
    for key, field_name in (("source", "events_source"), ("listeners", "events_listeners")):
        if key in events:
            raw[field_name] = events[key]
            sources[field_name] = where
    if "sinks" in events:
        raw["event_sinks"] = sink_specs(events["sinks"], where)
        sources["event_sinks"] = where


def sink_specs_from_json(text: str, source: str) -> tuple[SinkSpec, ...]:
    """`DAGRUNNER_EVENTS_SINKS`: a JSON object of sink name -> the keys of an `[events.sinks.NAME]` table."""
    try:
        table = json.loads(text)
    except ValueError as exc:
        raise ConfigError(f"{source}: not valid JSON ({exc}); give an object of sink name -> settings") from None
    return sink_specs(table, source)


def sink_specs(table: object, source: str) -> tuple[SinkSpec, ...]:
    """The `[events.sinks.NAME]` tables as SinkSpecs; ConfigError naming the sink, the key and the source."""
    if not isinstance(table, dict):
        raise ConfigError(f"{source}: events sinks must be a table of sinks ([events.sinks.NAME] with type = ...)")
    specs = []
    for name, body in table.items():
        try:
            specs.append(_sink_spec(name, body))
        except ValueError as exc:
            raise ConfigError(f"{source}: event sink {name!r}: {exc}") from None
    return tuple(specs)


def _sink_spec(name: str, body: object) -> SinkSpec:
    if not isinstance(name, str) or not _POOL_NAME.match(name) or name.startswith("@"):
        raise ValueError("a sink name is 1-256 letters, digits or _ . : ~ + -")
    if not isinstance(body, dict):
        raise ValueError("must be a table with type = webhook | redis_stream | rabbitmq")
    unknown = sorted(set(body) - set(_SINK_KEYS))
    if unknown:
        raise ValueError(f"unknown key(s) {', '.join(unknown)}; known: {', '.join(sorted(_SINK_KEYS))}")
    kind = body.get("type")
    if kind not in SINK_TYPES:
        raise ValueError(f"type {kind!r} is not one of {', '.join(SINK_TYPES)}")
    text_keys = ("url", "url_env", "stream", "exchange", "secret_env")
    for key in text_keys:
        if key in body and (not isinstance(body[key], str) or not body[key]):
            raise ValueError(f"{key} must be a non-empty string, not {body[key]!r}")
    for key in ("url_env", "secret_env"):
        if key in body and not _ENV_NAME.match(body[key]):
            raise ValueError(f"{key} must be the NAME of an environment variable, not {body[key]!r}")
    target = _SINK_TARGET[kind]
    if target not in body:
        raise ValueError(f"a {kind} sink needs {target} = ...")
    if kind == "webhook" and "url" not in body and "url_env" not in body:
        raise ValueError("a webhook sink needs url = ... (or url_env = the variable holding it)")
    if kind == "webhook" and "url" in body and not body["url"].startswith(("http://", "https://")):
        raise ValueError(f"url {body['url']!r} must start with http:// or https://")
    if "url" in body and "url_env" in body:
        raise ValueError("give url or url_env, not both")
    if "secret_env" in body and kind != "webhook":
        raise ValueError("secret_env signs webhook bodies; only a webhook sink takes it")
    globs = {key: _globs(key, body.get(key, [])) for key in ("dags", "types")}
    maxlen = body.get("maxlen")
    return SinkSpec(
        name, kind, body.get("url"), body.get("url_env"), body.get("stream"),
        None if maxlen is None else check_positive("maxlen", maxlen), body.get("exchange"), body.get("secret_env"),
        _duration_of("timeout", body.get("timeout", 10.0)), globs["dags"], globs["types"],
        _duration_of("max_backoff", body.get("max_backoff", 60.0)),
    )  # fmt: skip


def _duration_of(key: str, value: Any) -> float:
    try:
        return parse_duration(value)
    except ValueError as exc:
        raise ValueError(f"{key}: {exc}") from None


def _globs(key: str, value: object) -> tuple[str, ...]:
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, list) or not all(isinstance(v, str) and v for v in value):
        raise ValueError(f"{key} must be a list of glob patterns, not {value!r}")
    return tuple(value)


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


def _adopt_after_heartbeats(s: Settings) -> str | None:
    """Another scheduler adopts a job's work once its heartbeat is `scheduler_adopt_after_sec` old: below
    two heartbeats a live scheduler (one slow tick) would be declared dead and lose its queued work."""
    if s.scheduler_adopt_after_sec >= 2 * s.scheduler_heartbeat_sec:
        return None
    return (
        f"{s.described('scheduler_adopt_after_sec')} must be at least twice "
        f"{s.described('scheduler_heartbeat_sec')}, or live schedulers are taken for dead: raise it to "
        f"{2 * s.scheduler_heartbeat_sec:g} or more (default 30), or lower scheduler_heartbeat_sec (default 5)"
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
    _adopt_after_heartbeats,
    _at_least("parallelism", 1, "it is how many tries run at once"),
    _at_least("default_pool_slots", 1, "with no slots no task of the default pool ever runs (pause DAGs instead)"),
    _at_least("dagbag_import_memory_mb", 64, "a DAG file's import needs room for Python and dagrunner"),
    _at_least("event_max_message_bytes", 1, "a watcher's message cannot be smaller than one byte"),
    _at_least("event_max_attempts", 1, "a message is tried at least once before it is dead-lettered"),
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
            # 0 asks for any free port: fine for a worker's log server (tests run several), not for the
            # api-server, whose address users type.
            lowest = 0 if key == "worker_log_server_port" else 1
            if key.endswith("_port") and not lowest <= count < 65536:
                raise ValueError(f"a port is {lowest} to 65535")
            return count
        if kind is float:
            amount = float(value)
            if amount <= 0:
                raise ValueError("must be positive")
            return amount
        return str(value)
    except (TypeError, ValueError) as exc:
        raise ConfigError(f"setting {key}={value!r} (from {source}) is invalid: {exc}") from exc
