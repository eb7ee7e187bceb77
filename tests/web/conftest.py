"""Fixtures for the api-server's tests: a project on each database, the app, and clients per role.

`web` gives a project directory (its own dags/ folder and metadata DB, SQLite or PostgreSQL through
`db_url`), the FastAPI app built on it, and `web.client(role)`: a client that goes through the whole HTTP
layer (FastAPI's TestClient: routing, validation, auth, serialization) with a bearer token of a fresh user
with that role. Nothing is mocked: users, tokens and every record live in the real database.
"""

from __future__ import annotations

import itertools
import textwrap
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import Engine

from dagrunner.persistence.engine import make_engine, session_scope
from dagrunner.persistence.schema import ensure_schema
from dagrunner.persistence.users import create_token, create_user
from dagrunner.roles import Role
from dagrunner.settings import Settings
from dagrunner.web.app import create_app

ACTOR = "test"
PASSWORD = "correct horse battery"
_names = itertools.count()


@dataclass
class WebProject:
    home: Path
    settings: Settings
    engine: Engine
    app: FastAPI
    clients: list[TestClient] = field(default_factory=list)

    @property
    def dags(self) -> Path:
        return self.settings.dags_folder

    def dag_file(self, name: str, source: str) -> Path:
        """Write a DAG file into the project's dags/ folder (dedented)."""
        path = self.dags / name
        path.write_text(textwrap.dedent(source))
        return path

    def parse(self) -> Any:
        """Parse the dags/ folder into the metadata DB, as the scheduler does; returns the DagBag."""
        from dagrunner.loading.sync import load_dagbag

        return load_dagbag(self.settings, self.engine)

    def user(self, role: Role | str, username: str | None = None, password: str = PASSWORD) -> str:
        """Create a user with `role` (a fresh name unless given); returns the name."""
        name = username or f"{Role(role).value}{next(_names)}"
        with session_scope(self.engine) as session:
            create_user(session, name, role, password, actor=ACTOR, when=datetime.now(UTC))
        return name

    def token(self, username: str) -> str:
        with session_scope(self.engine) as session:
            return create_token(session, username, "tests", actor=ACTOR, when=datetime.now(UTC))

    def client(self, role: Role | str | None = Role.ADMIN, *, username: str | None = None) -> TestClient:
        """A client through the HTTP layer, with a bearer token of a new user with `role` (None: anonymous)."""
        client = TestClient(self.app)
        self.clients.append(client)
        if role is not None:
            client.headers["Authorization"] = f"Bearer {self.token(self.user(role, username))}"
        return client


def make_web_project(home: Path, db_url: str, **settings: Any) -> WebProject:
    (home / "dags").mkdir(parents=True, exist_ok=True)
    loaded = Settings.load({"db_url": db_url, "dagbag_import_timeout": 10, **settings}, environ={}, home=home)
    engine = make_engine(loaded.db_url)
    ensure_schema(engine, auto_init=True)
    return WebProject(home, loaded, engine, create_app(loaded, engine=engine))


@pytest.fixture
def web(tmp_path: Path, db_url: str) -> Iterator[WebProject]:
    project = make_web_project(tmp_path / "home", db_url)
    yield project
    for client in project.clients:
        client.close()
    project.engine.dispose()
