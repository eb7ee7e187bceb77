"""`dagrunner api-server` and `dagrunner standalone` as real processes: they listen where they say, answer over
real HTTP, and stop cleanly (exit 0, no process left behind) on SIGINT/SIGTERM."""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
import textwrap
from pathlib import Path

import httpx
import pytest
from polling import wait_until
from sqlalchemy import select

from dagrunner.persistence.engine import make_engine, session_scope
from dagrunner.persistence.models import SchedulerJob

from .procs import db_states, env_for, finish, run, start

pytestmark = pytest.mark.slow

TINY_DAG = """
    from dagrunner import DAG, task

    with DAG(dag_id="tiny", schedule=None):

        @task
        def hello():
            return "hi"

        hello()
"""


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _tiny_project(root: Path) -> Path:
    (root / "dags").mkdir(parents=True)
    (root / "dags" / "tiny.py").write_text(textwrap.dedent(TINY_DAG))
    return root


def _output(proc: subprocess.Popen[str]) -> str:
    return proc.log_path.read_text()  # type: ignore[attr-defined]


def _healthy(port: int) -> bool:
    try:
        return httpx.get(f"http://127.0.0.1:{port}/health", timeout=2).status_code == 200
    except httpx.HTTPError:
        return False


def _listening_addresses(port: int) -> set[str]:
    """The local IPv4 addresses a socket LISTENs on at `port` (from /proc/net/tcp: hex address, state 0A)."""
    found = set()
    for line in Path("/proc/net/tcp").read_text().splitlines()[1:]:
        local, state = line.split()[1], line.split()[3]
        address, port_hex = local.split(":")
        if int(port_hex, 16) == port and state == "0A":
            found.add(socket.inet_ntoa(bytes.fromhex(address)[::-1]))
    return found


def _stop(proc: subprocess.Popen[str], sig: signal.Signals, timeout: float = 60) -> str:
    proc.send_signal(sig)
    output = finish(proc, timeout)
    assert proc.returncode == 0, output
    assert "Traceback" not in output, output
    return output


def test_api_server_binds_loopback_answers_and_stops_on_sigint(tmp_path: Path, sqlite_url: str) -> None:
    root = _tiny_project(tmp_path)
    port = _free_port()
    proc = start(root, sqlite_url, "api-server", "--port", str(port))
    wait_until(lambda: _healthy(port) or proc.poll() is not None, what="the api-server's /health", timeout=60)
    assert proc.poll() is None, _output(proc)
    assert _listening_addresses(port) == {"127.0.0.1"}
    assert f"http://127.0.0.1:{port}" in _output(proc)
    response = httpx.get(f"http://127.0.0.1:{port}/api/v1/auth/me")
    assert response.status_code == 401
    assert "server" not in response.headers  # uvicorn's server header is off
    assert response.headers["x-frame-options"] == "DENY"
    output = _stop(proc, signal.SIGINT)
    assert "api-server stopped" in output


def test_api_server_on_all_interfaces_warns_and_stops_on_sigterm(tmp_path: Path, sqlite_url: str) -> None:
    root = _tiny_project(tmp_path)
    port = _free_port()
    proc = start(root, sqlite_url, "api-server", "--host", "0.0.0.0", "--port", str(port))
    wait_until(lambda: _healthy(port) or proc.poll() is not None, what="the api-server's /health", timeout=60)
    assert _listening_addresses(port) == {"0.0.0.0"}
    output = _stop(proc, signal.SIGTERM)
    assert f"warning: listening on 0.0.0.0:{port}, reachable from other machines" in output


def test_a_port_in_use_is_one_line(tmp_path: Path, sqlite_url: str) -> None:
    root = _tiny_project(tmp_path)
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        proc = run(root, sqlite_url, "api-server", "--port", str(port), timeout=60)
    assert proc.returncode == 1
    assert f"Error: port {port} on 127.0.0.1 is in use" in proc.stderr
    assert "Traceback" not in proc.stdout + proc.stderr


def _scheduler_pids(db_url: str) -> list[int]:
    engine = make_engine(db_url)
    try:
        with session_scope(engine, readonly=True) as s:
            return list(s.scalars(select(SchedulerJob.pid).where(SchedulerJob.job_type == "scheduler")))
    except Exception:  # noqa: BLE001 - the scheduler may still be creating its tables
        return []
    finally:
        engine.dispose()


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # a zombie (exited, not yet reaped by its parent) is gone too
    status = Path(f"/proc/{pid}/status")
    return status.exists() and "State:\tZ" not in status.read_text()


def _start_standalone(root: Path, db_url: str, port: int) -> subprocess.Popen[str]:
    proc = start(root, db_url, "standalone", "--port", str(port))
    wait_until(lambda: (_healthy(port) and _scheduler_pids(db_url)) or proc.poll() is not None,
               what="standalone's server and scheduler", timeout=90)  # fmt: skip
    assert proc.poll() is None, _output(proc)
    return proc


def test_standalone_creates_an_admin_runs_the_scheduler_and_stops_both(tmp_path: Path, db_url: str) -> None:
    root = _tiny_project(tmp_path)
    port = _free_port()
    proc = _start_standalone(root, db_url, port)
    match = re.search(rf"UI: http://127\.0\.0\.1:{port}  user: admin  password: (\S+)", _output(proc))
    assert match, _output(proc)
    password = match.group(1)
    password_file = root / ".dagrunner" / "standalone_admin_password"
    assert password_file.read_text().strip() == password
    assert password_file.stat().st_mode & 0o777 == 0o600

    with httpx.Client(base_url=f"http://127.0.0.1:{port}") as browser:
        login = browser.post("/api/v1/auth/login", json={"username": "admin", "password": password})
        assert login.status_code == 200 and login.json()["role"] == "admin"
        assert browser.get("/api/v1/auth/me").json()["username"] == "admin"

    (scheduler_pid,) = _scheduler_pids(db_url)
    triggered = run(root, db_url, "dags", "trigger", "tiny")
    assert triggered.returncode == 0, triggered.stdout + triggered.stderr
    wait_until(lambda: list(db_states(db_url)[0].values()) == ["success"], what="tiny's run to succeed", timeout=90)

    output = _stop(proc, signal.SIGINT)
    assert "standalone stopped" in output and "scheduler stopped" in output
    wait_until(lambda: not _alive(scheduler_pid), what="the scheduler child to be gone", timeout=10)

    again = _start_standalone(root, db_url, port)  # a second start: the password is not printed again
    text = _output(again)
    assert password not in text and f"password: in {password_file}" in text
    _stop(again, signal.SIGTERM)


def test_standalone_stops_with_an_error_when_its_scheduler_dies(tmp_path: Path, sqlite_url: str) -> None:
    root = _tiny_project(tmp_path)
    port = _free_port()
    proc = _start_standalone(root, sqlite_url, port)
    (scheduler_pid,) = _scheduler_pids(sqlite_url)
    os.kill(scheduler_pid, signal.SIGKILL)
    output = finish(proc, 60)
    assert proc.returncode == 1, output
    assert f"the scheduler (pid {scheduler_pid}) exited with code -9" in output
    assert "Traceback" not in output
    assert not _healthy(port)


@pytest.mark.parametrize("missing", ["uvicorn", "fastapi"])
def test_without_the_web_extra_the_commands_say_what_to_install(tmp_path: Path, missing: str) -> None:
    root = _tiny_project(tmp_path)
    code = (  # an import of `missing` fails, as when the extra is not installed
        f"import sys; sys.modules[{missing!r}] = None; "
        "from dagrunner.cli.main import main; main(['api-server', '--port', '1'])"
    )
    proc = subprocess.run([sys.executable, "-c", code], cwd=root, env=env_for(root, f"sqlite:///{root}/db.sqlite"),
                          capture_output=True, text=True, timeout=60)  # fmt: skip
    assert proc.returncode == 1
    assert f"the api-server needs the web extra ({missing} is missing): pip install 'dagrunner[web]'" in proc.stderr
    assert "Traceback" not in proc.stderr


def test_a_killed_standalone_leaves_no_scheduler_behind(tmp_path: Path, sqlite_url: str) -> None:
    root = _tiny_project(tmp_path)
    port = _free_port()
    proc = _start_standalone(root, sqlite_url, port)
    (scheduler_pid,) = _scheduler_pids(sqlite_url)
    proc.kill()  # no chance to stop its child: the child's life line must
    finish(proc, 30)
    wait_until(lambda: not _alive(scheduler_pid), what="the orphaned scheduler to stop", timeout=60)
