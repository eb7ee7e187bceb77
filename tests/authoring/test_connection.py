"""`Connection` and `Variable` as Airflow 3 defines them: the URI format both ways, the JSON form, the
environment override, and clear errors for bad input (#15). No database: outside a try only the
environment answers."""

from __future__ import annotations

import json

import pytest

from dagrunner.authoring import _secrets
from dagrunner.authoring.connection import Connection
from dagrunner.authoring.variable import Variable
from dagrunner.errors import ConnectionNotFoundError, InvalidConnectionError, VariableNotFoundError


@pytest.mark.parametrize(
    ("uri", "expected"),
    [
        ("postgresql://us%40er:p%40ss%2Fw@db.example:5432/my%2Fdb?sslmode=require",
         {"conn_type": "postgres", "host": "db.example", "login": "us@er", "password": "p@ss/w", "port": 5432,
          "schema": "my/db", "extra": {"sslmode": "require"}}),
        ("my-conn-type://login:pw@HOST.example", {"conn_type": "my_conn_type", "host": "host.example",
                                                  "login": "login", "password": "pw"}),
        ("http://https%3A%2F%2Fexample.com/api", {"conn_type": "http", "host": "https://example.com", "schema": "api"}),
        ("http://https://user:pw@example.com:8080", {"conn_type": "http", "host": "https://example.com",
                                                     "login": "user", "password": "pw", "port": 8080}),
        ("aws://?__extra__=%7B%22region%22%3A+%22eu%22%2C+%22retries%22%3A+3%7D",
         {"conn_type": "aws", "extra": {"region": "eu", "retries": 3}}),
    ],
)  # fmt: skip
def test_uris_parse_as_airflow_parses_them_and_round_trip(uri: str, expected: dict[str, object]) -> None:
    conn = Connection(conn_id="c", uri=uri)
    assert conn.to_dict(prune_empty=True) == {"conn_id": "c", **expected}
    assert Connection.from_uri(conn.get_uri(), conn_id="c") == conn
    assert Connection.from_json(conn.as_json(), conn_id="c") == conn


def test_get_uri_writes_airflows_format() -> None:
    conn = Connection(conn_id="c", conn_type="google_cloud", login="a b", password="p:w", host="h", port=1,
                      extra={"k": "v"})  # fmt: skip
    assert conn.get_uri() == "google-cloud://a%20b:p%3Aw@h:1/?k=v"
    nested = Connection(conn_id="c", conn_type="http", host="h", extra={"n": [1]})
    assert nested.get_uri() == "http://h/?__extra__=%7B%22n%22%3A+%5B1%5D%7D"
    assert "password" not in repr(Connection(conn_id="c", conn_type="http", password="secret-pw"))


@pytest.mark.parametrize(
    ("build", "message"),
    [
        (lambda: Connection(conn_id="c", uri="no scheme here"), "is not a URI"),
        (lambda: Connection(conn_id="c", uri="http://h:99999"), "port"),
        (lambda: Connection(conn_id="c", uri="http://h", host="x"), "not both"),
        (lambda: Connection.from_json("{nope", conn_id="c"), "not valid JSON"),
        (lambda: Connection.from_json('{"hots": "x"}', conn_id="c"), "unknown field"),
        (lambda: Connection(conn_id="c", conn_type="http", extra="[1]"), "extra must be a JSON object"),
    ],
)
def test_bad_connections_say_what_is_wrong(build: object, message: str) -> None:
    with pytest.raises(InvalidConnectionError, match=message):
        build()  # type: ignore[operator]


def test_the_environment_answers_outside_a_try(monkeypatch: pytest.MonkeyPatch) -> None:
    _secrets.install(None, lambda _value: None)
    monkeypatch.setenv("DAGRUNNER_CONN_MY_API", "http://user:pw-123456@api.example:8443")
    monkeypatch.setenv("DAGRUNNER_CONN_MY_JSON", json.dumps({"conn_type": "postgres", "host": "pg"}))
    monkeypatch.setenv("DAGRUNNER_VAR_CFG", '{"rows": 3}')
    masked: list[str] = []
    _secrets.install(None, masked.append)
    assert Connection.get("my_api").port == 8443 and masked == ["pw-123456"]
    assert Connection.get("my_json").host == "pg"
    assert Variable.get("cfg", deserialize_json=True) == {"rows": 3}
    assert Variable.get("missing", default=None) is None
    with pytest.raises(VariableNotFoundError, match="DAGRUNNER_VAR_MISSING"):
        Variable.get("missing")
    with pytest.raises(ConnectionNotFoundError, match="outside a running task only the environment"):
        Connection.get("nope")
    _secrets.install(None, lambda _value: None)
