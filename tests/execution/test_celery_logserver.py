"""A worker's log server: serves the try logs inside its folder and nothing else; `fetch_log` reads them."""

from __future__ import annotations

import os
import urllib.error
import urllib.request
from collections.abc import Iterator
from http.server import ThreadingHTTPServer
from pathlib import Path

import pytest

from dagrunner.errors import NotFoundError
from dagrunner.execution.base import TaskKey
from dagrunner.execution.celery.logserver import confined, fetch_log, serve_logs
from dagrunner.execution.logs import log_path

KEY = TaskKey("dag", "manual__2026-01-01", "task")


@pytest.fixture
def served(tmp_path: Path) -> Iterator[tuple[Path, ThreadingHTTPServer]]:
    logs = tmp_path / "logs"
    path = log_path(logs, KEY, 1)
    path.parent.mkdir(parents=True)
    path.write_text("hello from the worker\n")
    (tmp_path / "secret.txt").write_text("not a log")
    os.symlink(tmp_path / "secret.txt", logs / "link.log")
    server = serve_logs(logs, 0, host="127.0.0.1")
    assert server is not None
    yield logs, server
    server.shutdown()


def test_fetch_reads_a_try_log_over_http(served: tuple[Path, ThreadingHTTPServer]) -> None:
    _, server = served
    assert fetch_log("127.0.0.1", server.server_port, KEY, 1) == "hello from the worker\n"
    with pytest.raises(NotFoundError, match="no log of try 2"):
        fetch_log("127.0.0.1", server.server_port, KEY, 2)


@pytest.mark.parametrize("path", ["/log/../secret.txt", "/log/%2E%2E/secret.txt", "/log//etc/passwd", "/log/link.log",
                                  "/log/", "/etc/passwd", "/log/dag_id=dag"])  # fmt: skip
def test_nothing_outside_the_folder_nor_a_directory_is_served(
    served: tuple[Path, ThreadingHTTPServer], path: str
) -> None:
    _, server = served
    with pytest.raises(urllib.error.HTTPError) as error:
        urllib.request.urlopen(f"http://127.0.0.1:{server.server_port}{path}", timeout=5)  # noqa: S310
    assert error.value.code == 404


def test_confined_refuses_escapes(tmp_path: Path) -> None:
    (tmp_path / "a.log").write_text("x")
    assert confined(tmp_path, "a.log") == (tmp_path / "a.log").resolve()
    for bad in ("../a.log", "/a.log", "", "x/../a.log", "./a.log", "missing.log"):
        assert confined(tmp_path, bad) is None


def test_an_unreachable_worker_is_named(tmp_path: Path) -> None:
    with pytest.raises(NotFoundError, match="is its `dagrunner worker` running"):
        fetch_log("127.0.0.1", 1, KEY, 1, timeout_s=2)
