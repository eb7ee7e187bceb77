"""The metadata DB's connections and variables as a try reads them (`authoring._secrets.SecretsBackend`).

`DatabaseSecrets` reads the DB itself: the inline executor, `tasks test`, and a worker answering its task
processes. `PipeSecrets` is what a local executor's task process uses: it opens no database connection,
so it asks its worker over the pipe (`messages.SecretRequest`), as it does for XComs. The Fernet key is
read by the process that reads the DB, and only when a secret is first asked for.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from functools import cached_property
from multiprocessing.connection import Connection as Pipe
from pathlib import Path
from typing import TYPE_CHECKING

from dagrunner.clock import utcnow
from dagrunner.errors import DagRunnerError, ExecutionError
from dagrunner.execution.messages import SecretAnswer, SecretRequest

if TYPE_CHECKING:
    from sqlalchemy import Engine

    from dagrunner.persistence.fernet import SecretBox


class DatabaseSecrets:
    """Reads (and for `Variable.set`, writes) the metadata DB with the state folder's Fernet key."""

    def __init__(self, engine: Engine, state_folder: Path, *, actor: str) -> None:
        self.engine = engine
        self.state_folder = state_folder
        self.actor = actor

    @cached_property
    def box(self) -> SecretBox:
        from dagrunner.persistence.fernet import secret_box

        return secret_box(self.state_folder)

    def get_connection(self, conn_id: str) -> str | None:
        from dagrunner.persistence.engine import session_scope
        from dagrunner.persistence.secrets import connection_json

        with session_scope(self.engine, readonly=True) as session:
            return connection_json(session, conn_id, self.box)

    def get_variable(self, key: str) -> str | None:
        from dagrunner.persistence.engine import session_scope
        from dagrunner.persistence.secrets import variable_value

        with session_scope(self.engine, readonly=True) as session:
            return variable_value(session, key, self.box)

    def set_variable(self, key: str, value: str, description: str | None) -> None:
        from dagrunner.persistence.engine import session_scope
        from dagrunner.persistence.secrets import set_variable

        with session_scope(self.engine) as session:
            set_variable(session, key, value, self.box, description=description, actor=self.actor, when=utcnow())

    def answer(self, request: SecretRequest) -> SecretAnswer:
        """A task process's request, answered (an error travels back as text: the task's call raises it)."""
        try:
            match request.op:
                case "connection":
                    return SecretAnswer(self.get_connection(request.key))
                case "variable":
                    return SecretAnswer(self.get_variable(request.key))
                case "set_variable":
                    self.set_variable(request.key, request.value or "", request.description)
                    return SecretAnswer(None)
            return SecretAnswer(None, f"unknown request {request.op!r}")
        except DagRunnerError as exc:
            return SecretAnswer(None, str(exc))
        except Exception as exc:  # noqa: BLE001 - the task's call fails with it, not the worker
            return SecretAnswer(None, f"{type(exc).__name__}: {exc}")


@dataclass
class PipeSecrets:
    """Asks the worker at the other end of `pipe`; `lock` is shared with the XCom loader on the same pipe
    (user code may read from threads: one request and its answer at a time)."""

    pipe: Pipe
    lock: threading.Lock

    def _ask(self, request: SecretRequest) -> str | None:
        with self.lock:
            self.pipe.send(request)
            reply = self.pipe.recv()
        if not isinstance(reply, SecretAnswer):
            raise ExecutionError(f"the worker answered a request for {request.op} {request.key!r} with "
                                 f"{type(reply).__name__}")  # fmt: skip
        if reply.error is not None:
            raise ExecutionError(reply.error)
        return reply.value

    def get_connection(self, conn_id: str) -> str | None:
        return self._ask(SecretRequest("connection", conn_id))

    def get_variable(self, key: str) -> str | None:
        return self._ask(SecretRequest("variable", key))

    def set_variable(self, key: str, value: str, description: str | None) -> None:
        self._ask(SecretRequest("set_variable", key, value, description))
