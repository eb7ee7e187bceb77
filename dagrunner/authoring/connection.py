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
from typing import Any
from urllib.parse import SplitResult, parse_qsl, quote, unquote, urlencode, urlsplit

from dagrunner.authoring import _secrets
from dagrunner.errors import ConnectionNotFoundError, InvalidConnectionError

FIELDS = ("conn_type", "description", "host", "schema", "login", "password", "port", "extra")
EXTRA_JSON_PARAM = "__extra__"
PORT_MAX = 65535


class Connection:
    """One connection, built as Airflow builds it: `Connection(conn_id=..., uri=...)` or from its fields
    (keyword-only; not both). `extra` is a JSON string (a dict is accepted and stored as JSON);
    `extra_dejson` is it parsed.

    Differs from Airflow on purpose: an `extra` that is not a JSON object is an `InvalidConnectionError`
    naming the connection (Airflow logs it and answers `{}`), and a malformed URI or JSON says which part
    is wrong."""

    conn_id: str
    conn_type: str | None
    description: str | None
    host: str | None
    schema: str | None
    login: str | None
    password: str | None
    port: int | None
    extra: str | None

    def __init__(
        self,
        *,
        conn_id: str,
        uri: str | None = None,
        conn_type: str | None = None,
        description: str | None = None,
        host: str | None = None,
        schema: str | None = None,
        login: str | None = None,
        password: str | None = None,
        port: int | str | None = None,
        extra: str | dict[str, Any] | None = None,
    ) -> None:
        fields = (conn_type, description, host, schema, login, password, port, extra)
        if uri is not None:
            if any(v is not None for v in fields):
                raise InvalidConnectionError(
                    f"connection {conn_id!r}: give a URI or the fields (conn_type, host, login, ...), not both"
                )
            parsed = Connection.from_uri(uri, conn_id=conn_id)
            self.__dict__.update(parsed.__dict__)
            return
        self.conn_id = conn_id
        self.conn_type = conn_type
        self.description = description
        self.host = host
        self.schema = schema
        self.login = login
        self.password = password
        self.port = _port(conn_id, port)
        self.extra = json.dumps(extra) if isinstance(extra, dict) else extra
        if self.extra:
            _extra_dict(conn_id, self.extra)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Connection) and self.__dict__ == other.__dict__

    def __repr__(self) -> str:  # never the password or the extra
        return f"Connection(conn_id={self.conn_id!r}, conn_type={self.conn_type!r}, host={self.host!r})"

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
        try:
            if text.lstrip().startswith("{"):
                return cls.from_json(text, conn_id=conn_id)
            return cls.from_uri(text, conn_id=conn_id)
        except InvalidConnectionError as exc:
            raise InvalidConnectionError(f"{exc}{source}") from None

    @classmethod
    def from_uri(cls, uri: str, conn_id: str) -> Connection:
        """Parse Airflow's URI format (a host may carry its own protocol: `http://https://example.com`)."""
        schemes = uri.count("://")
        if not schemes or schemes > 2 or not urlsplit(uri).scheme:
            raise InvalidConnectionError(
                f"connection {conn_id!r}: {_shown(uri)!r} is not a URI like conn-type://login:password@host:port/schema"
            )
        conn_type = urlsplit(uri).scheme
        rest = uri.replace(f"{conn_type}://", "" if schemes == 2 else "//", 1)
        if schemes == 2 and ("@" in rest.split("://", 1)[0] or ":" in rest.split("://", 1)[0]):
            raise InvalidConnectionError(
                f"connection {conn_id!r}: {_shown(uri)!r} has a misplaced protocol; a host's "
                f"own protocol comes first: conn-type://protocol://login:password@host"
            )
        parts = urlsplit(rest)
        try:
            port = parts.port
        except ValueError:
            raise InvalidConnectionError(f"connection {conn_id!r}: the URI's port is not a number") from None
        host = _host(parts)
        if host and schemes == 2:
            host = f"{parts.scheme}://{host}"
        extra: str | None = None
        if parts.query:
            query = dict(parse_qsl(parts.query, keep_blank_values=True))
            extra = query[EXTRA_JSON_PARAM] if EXTRA_JSON_PARAM in query else json.dumps(query)
        return cls(
            conn_id=conn_id,
            conn_type=normalize_conn_type(conn_type),
            host=host,
            schema=unquote(parts.path[1:]) or None,
            login=unquote(parts.username) if parts.username else None,
            password=unquote(parts.password) if parts.password else None,
            port=port,
            extra=extra,
        )

    @classmethod
    def from_json(cls, value: str, conn_id: str) -> Connection:
        """Airflow's JSON form; `extra` may be an object or a JSON string."""
        try:
            data = json.loads(value)
        except json.JSONDecodeError as exc:
            raise InvalidConnectionError(f"connection {conn_id!r}: not valid JSON: {exc}") from None
        if not isinstance(data, dict):
            raise InvalidConnectionError(f"connection {conn_id!r}: the JSON form must be an object")
        unknown = sorted(set(data) - set(FIELDS) - {"conn_id"})
        if unknown:
            raise InvalidConnectionError(
                f"connection {conn_id!r}: unknown field(s) {', '.join(unknown)}; known: {', '.join(FIELDS)}"
            )
        extra = data.get("extra")
        if extra is not None and not isinstance(extra, str | dict):
            raise InvalidConnectionError(f"connection {conn_id!r}: extra must be an object or a JSON string")
        values = {k: v for k, v in data.items() if k in FIELDS}
        if values.get("conn_type"):
            values["conn_type"] = normalize_conn_type(values["conn_type"])
        return cls(conn_id=conn_id, **values)

    # --- writing ---------------------------------------------------------------------------------------

    def get_uri(self) -> str:
        """Airflow's URI for this connection (`from_uri(get_uri())` gives it back)."""
        uri = f"{self.conn_type.lower().replace('_', '-')}://" if self.conn_type else "//"
        host = self.host
        if host and "://" in host:
            protocol, bare = host.split("://", 1)
            if protocol != self.conn_type:
                uri += f"{protocol}://"
                host = bare
        auth = ""
        if self.login is not None:
            auth += quote(self.login, safe="")
        if self.password is not None:
            auth += ":" + quote(self.password, safe="")
        if auth:
            uri += auth + "@"
        tail = quote(host, safe="") if host else ""
        if self.port is not None:
            tail += f"@:{self.port}" if not tail and not auth else f":{self.port}"
        if self.schema:
            tail += "/" + quote(self.schema, safe="")
        uri += tail
        if self.extra:
            extra = self.extra_dejson
            try:
                query: str | None = urlencode(extra)
            except TypeError:
                query = None
            if not query or extra != dict(parse_qsl(query, keep_blank_values=True)):
                query = urlencode({EXTRA_JSON_PARAM: self.extra})
            uri += ("?" if self.schema else "/?") + query
        return uri

    def to_dict(self, *, prune_empty: bool = False, validate: bool = True) -> dict[str, Any]:
        """The JSON form's fields with `conn_id`, `extra` parsed (Airflow's `to_dict`)."""
        data: dict[str, Any] = {"conn_id": self.conn_id}
        data.update({name: getattr(self, name) for name in FIELDS if name != "extra"})
        if prune_empty:
            data = {k: v for k, v in data.items() if v is not None}
        extra = self.extra_dejson
        if extra or not prune_empty:
            data["extra"] = extra
        if validate:
            json.dumps(data)
        return data

    def as_json(self) -> str:
        """Airflow's JSON form, without the conn_id (what `DAGRUNNER_CONN_<ID>` may hold)."""
        data = self.to_dict(prune_empty=True, validate=False)
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


def normalize_conn_type(conn_type: str) -> str:
    """Airflow's rule: the URI scheme `postgresql` is type `postgres`; `-` in a scheme is `_` in a type."""
    return "postgres" if conn_type == "postgresql" else conn_type.replace("-", "_")


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
        port = int(value)
    except (TypeError, ValueError):
        raise InvalidConnectionError(f"connection {conn_id!r}: port {value!r} is not a number") from None
    if not 0 <= port <= PORT_MAX:
        raise InvalidConnectionError(f"connection {conn_id!r}: port {port} is not in 0-{PORT_MAX}")
    return port


def _host(parts: SplitResult) -> str | None:
    """Airflow's rule: urlsplit's `hostname` (lower-cased, as a host name is case-insensitive), except a host
    that holds a path (`%2F`), which is kept as written."""
    host = unquote(parts.hostname or "")
    if "/" in host:
        host = parts.netloc.rsplit("@", 1)[-1].split(":", 1)[0]
        host = unquote(host)
    return host or None


def _shown(uri: str) -> str:
    """A bad URI as it may be shown in an error: everything after a `:` that could be a password hidden."""
    return uri if "@" not in uri else uri.split("@", 1)[1]
