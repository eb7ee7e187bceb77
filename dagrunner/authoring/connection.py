"""`Connection`: how to reach an external system (Airflow's `airflow.sdk.Connection`).

Airflow's URI format, both ways: `conn-type://login:password@host:port/schema?key=value`, every part
percent-encoded; the scheme's `-` is the type's `_`; extras whose values are not all strings travel as one
`__extra__=<JSON>` query parameter. The JSON form is Airflow's too: `{"conn_type": ..., "host": ...,
"login": ..., "password": ..., "schema": ..., "port": ..., "extra": {...}}`.

`Connection.get(conn_id)` reads `DAGRUNNER_CONN_<ID>` (a URI or a JSON object) first, then the metadata DB
(see `_secrets`); its password and the secret-looking fields of its extra are masked in the try's log
from then on.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qsl, quote, unquote, urlencode, urlsplit

from dagrunner.authoring import _secrets
from dagrunner.errors import ConnectionNotFoundError, InvalidConnectionError

FIELDS = ("conn_type", "description", "host", "schema", "login", "password", "port", "extra")
EXTRA_JSON_PARAM = "__extra__"


@dataclass
class Connection:
    """One connection. `extra` is a JSON string (as Airflow stores it); `extra_dejson` is it parsed."""

    conn_id: str
    conn_type: str = ""
    description: str | None = None
    host: str | None = None
    schema: str | None = None
    login: str | None = None
    password: str | None = field(default=None, repr=False)
    port: int | None = None
    extra: str | None = field(default=None, repr=False)

    def __post_init__(self) -> None:
        if isinstance(self.extra, dict):  # Airflow accepts a dict too and stores it as JSON
            self.extra = json.dumps(self.extra)
        if self.port is not None and not isinstance(self.port, int):
            self.port = _port(self.conn_id, self.port)

    # --- reading ---------------------------------------------------------------------------------------

    @classmethod
    def get(cls, conn_id: str) -> Connection:
        """The connection `conn_id`: `DAGRUNNER_CONN_<ID>` if set, else the metadata DB's."""
        text, where = _secrets.connection_text(conn_id)
        if text is None:
            env = _secrets.env_name(_secrets.CONN_ENV_PREFIX, conn_id)
            hint = "" if _secrets.backend_installed() else " (outside a running task only the environment is read)"
            raise ConnectionNotFoundError(
                f"connection {conn_id!r} is not defined: add it with `dagrunner connections add {conn_id} "
                f"--conn-uri ...` or set {env}{hint}"
            )
        conn = cls.from_text(conn_id, text, where)
        conn.mask_secrets()
        return conn

    @classmethod
    def from_text(cls, conn_id: str, text: str, where: str = "") -> Connection:
        """A URI or a JSON object (`where` names the source in the error)."""
        source = f" ({where})" if where else ""
        if text.lstrip().startswith("{"):
            return cls.from_json(text, conn_id=conn_id, where=where)
        try:
            return cls.from_uri(conn_id, text)
        except InvalidConnectionError as exc:
            raise InvalidConnectionError(f"{exc}{source}") from None

    @classmethod
    def from_uri(cls, conn_id: str, uri: str) -> Connection:
        """Parse Airflow's URI format."""
        parts = urlsplit(uri)
        if not parts.scheme or "://" not in uri:
            raise InvalidConnectionError(
                f"connection {conn_id!r}: {_shown(uri)!r} is not a URI like conn-type://login:password@host:port/schema"
            )
        try:
            port = parts.port
        except ValueError:
            raise InvalidConnectionError(f"connection {conn_id!r}: the URI's port is not a number") from None
        conn_type = parts.scheme.replace("-", "_")
        if conn_type == "postgresql":  # SQLAlchemy's name; Airflow's type is "postgres"
            conn_type = "postgres"
        query = dict(parse_qsl(parts.query, keep_blank_values=True))
        extra: str | None = None
        if EXTRA_JSON_PARAM in query:
            extra = query.pop(EXTRA_JSON_PARAM)
            _extra_dict(conn_id, extra)
        elif query:
            extra = json.dumps(query)
        return cls(
            conn_id=conn_id,
            conn_type=conn_type,
            host=_host(parts.netloc),
            schema=unquote(parts.path[1:]) or None,
            login=unquote(parts.username) if parts.username else None,
            password=unquote(parts.password) if parts.password else None,
            port=port,
            extra=extra,
        )

    @classmethod
    def from_json(cls, value: str, conn_id: str, where: str = "") -> Connection:
        """Airflow's JSON form; `extra` may be an object or a JSON string."""
        source = f" ({where})" if where else ""
        try:
            data = json.loads(value)
        except json.JSONDecodeError as exc:
            raise InvalidConnectionError(f"connection {conn_id!r}: not valid JSON{source}: {exc}") from None
        if not isinstance(data, dict):
            raise InvalidConnectionError(f"connection {conn_id!r}: the JSON form must be an object{source}")
        unknown = sorted(set(data) - set(FIELDS) - {"conn_id"})
        if unknown:
            raise InvalidConnectionError(
                f"connection {conn_id!r}: unknown field(s) {', '.join(unknown)}{source}; known: {', '.join(FIELDS)}"
            )
        extra = data.get("extra")
        if isinstance(extra, str):
            _extra_dict(conn_id, extra)
        elif extra is not None and not isinstance(extra, dict):
            raise InvalidConnectionError(f"connection {conn_id!r}: extra must be an object or a JSON string{source}")
        values = {k: v for k, v in data.items() if k in FIELDS}
        values["port"] = _port(conn_id, values.get("port"))
        values["conn_type"] = values.get("conn_type") or ""
        return cls(conn_id=conn_id, **values)

    # --- writing ---------------------------------------------------------------------------------------

    def get_uri(self) -> str:
        """Airflow's URI for this connection (`from_uri(get_uri())` gives it back)."""
        uri = f"{self.conn_type.replace('_', '-')}://"
        auth = ""
        if self.login:
            auth += quote(self.login, safe="")
        if self.password:
            auth += ":" + quote(self.password, safe="")
        if auth or self.password:
            uri += auth + "@"
        if self.host:
            uri += quote(self.host, safe="")
        if self.port is not None:
            uri += f":{self.port}"
        if self.schema:
            uri += "/" + quote(self.schema, safe="")
        extra = self.extra_dejson
        if extra:
            if all(isinstance(v, str) for v in extra.values()):
                query = urlencode(extra)
            else:
                query = urlencode({EXTRA_JSON_PARAM: json.dumps(extra)})
            if not self.schema:
                uri += "/"
            uri += "?" + query
        return uri

    def to_dict(self) -> dict[str, Any]:
        """The JSON form's fields, with `extra` parsed (Airflow's `to_dict`)."""
        data: dict[str, Any] = {"conn_id": self.conn_id}
        for name in FIELDS:
            value = self.extra_dejson if name == "extra" else getattr(self, name)
            if value not in (None, "", {}):
                data[name] = value
        return data

    def as_json(self) -> str:
        """Airflow's JSON form, without the conn_id (what `DAGRUNNER_CONN_<ID>` may hold)."""
        data = self.to_dict()
        data.pop("conn_id")
        return json.dumps(data)

    @property
    def extra_dejson(self) -> dict[str, Any]:
        """`extra` parsed ({} when there is none)."""
        return _extra_dict(self.conn_id, self.extra) if self.extra else {}

    def secrets(self) -> list[str]:
        """What to mask: the password and every string in the extra under a secret-looking key."""
        found = [self.password] if self.password else []
        found += [str(v) for k, v in self.extra_dejson.items() if _secrets.is_sensitive(k) and v not in (None, "")]
        return found

    def mask_secrets(self) -> None:
        for secret in self.secrets():
            _secrets.mask(secret)


def _extra_dict(conn_id: str, extra: str) -> dict[str, Any]:
    try:
        value = json.loads(extra)
    except json.JSONDecodeError as exc:
        raise InvalidConnectionError(f"connection {conn_id!r}: extra is not valid JSON: {exc}") from None
    if not isinstance(value, dict):
        raise InvalidConnectionError(f"connection {conn_id!r}: extra must be a JSON object")
    return value


def _port(conn_id: str, value: Any) -> int | None:
    if value in (None, ""):
        return None
    try:
        return int(value)
    except (TypeError, ValueError):
        raise InvalidConnectionError(f"connection {conn_id!r}: port {value!r} is not a number") from None


def _host(netloc: str) -> str | None:
    """The host as written (urlsplit's `hostname` lower-cases it), percent-decoded."""
    host = netloc.rsplit("@", 1)[-1]
    if host.startswith("["):  # an IPv6 address keeps its colons
        host = host[: host.find("]") + 1]
    elif ":" in host:
        host = host.rsplit(":", 1)[0]
    return unquote(host) or None


def _shown(uri: str) -> str:
    """A bad URI as it may be shown in an error: everything after a `:` that could be a password hidden."""
    return uri if "@" not in uri else uri.split("@", 1)[1]
