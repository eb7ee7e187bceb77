"""`dagrunner api-server` (the REST API and web UI) and `dagrunner standalone` (that plus a scheduler).

FastAPI and uvicorn are the optional `web` extra, imported only when one of these commands runs (so
`dagrunner --help` stays fast and works without them). The server binds its socket itself before anything
else, so a port in use is one line, not a traceback; it listens on 127.0.0.1 unless told otherwise.
SIGINT/SIGTERM stop it gracefully with exit code 0.
"""

from __future__ import annotations

import errno
import ipaddress
import os
import secrets
import signal
import socket
import subprocess
import sys
import threading
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from dagrunner.cli import render
from dagrunner.cli.context import CliContext, pass_cli
from dagrunner.cli.scheduler import executor_option
from dagrunner.errors import WEB_EXTRA_HINT, PortInUseError, WebError, WebExtraMissingError

if TYPE_CHECKING:
    import uvicorn

#: The first admin `standalone` creates in an empty database, and the file (in the state folder, mode 0600)
#: that keeps its generated password, so a later start can say where it is without printing it again.
STANDALONE_ADMIN = "admin"
PASSWORD_FILE = "standalone_admin_password"

host_option = click.option("--host", help="Address to listen on (default: api_host, 127.0.0.1: this machine only).")
port_option = click.option("--port", type=click.IntRange(1, 65535), help="Port (default: api_port, 8793).")


def require_web_extra() -> None:
    """Fail with what to install when FastAPI, uvicorn or argon2-cffi is missing."""
    for module in ("fastapi", "uvicorn", "argon2"):
        try:
            __import__(module)
        except ImportError as exc:
            raise WebExtraMissingError(
                f"the api-server needs the web extra ({module} is missing): {WEB_EXTRA_HINT}"
            ) from exc


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False  # a host name: it may resolve to a public address


def listen_socket(host: str, port: int) -> socket.socket:
    """A socket bound to host:port (uvicorn listens on it); PortInUseError when another process has it."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # a restart need not wait for TIME_WAIT
    try:
        sock.bind((host.strip("[]"), port))
    except OSError as exc:
        sock.close()
        if exc.errno == errno.EADDRINUSE:
            raise PortInUseError(
                f"port {port} on {host} is in use (another api-server or standalone?): stop it, or choose "
                "another with --port (or the api_port setting)"
            ) from None
        raise WebError(f"cannot listen on {host}:{port}: {exc.strerror or exc}; check --host") from None
    return sock


def url_of(host: str, port: int) -> str:
    shown = "127.0.0.1" if host in ("0.0.0.0", "::", "") else host
    return f"http://[{shown}]:{port}" if ":" in shown else f"http://{shown}:{port}"


def _listen(cli: CliContext, host: str | None, port: int | None) -> tuple[socket.socket, str]:
    """Apply --host/--port to the settings, bind, and warn on stderr when the server is reachable from
    other machines. Returns the socket and the URL to open."""
    require_web_extra()
    cli.override(api_host=host, api_port=port)
    settings = cli.settings
    sock = listen_socket(settings.api_host, settings.api_port)
    if not is_loopback(settings.api_host):
        click.echo(
            f"warning: listening on {settings.api_host}:{settings.api_port}, reachable from other machines. "
            "Serve it over HTTPS (a TLS proxy in front, with api_cookie_secure = true) and give users strong "
            "passwords.",
            err=True,
        )
    return sock, url_of(settings.api_host, settings.api_port)


def build_server(cli: CliContext) -> uvicorn.Server:
    import uvicorn

    from dagrunner.web.app import create_app

    settings = cli.settings
    app = create_app(settings, engine=cli.engine)
    config = uvicorn.Config(
        app, host=settings.api_host, port=settings.api_port, server_header=False, date_header=True,
        log_level="info", proxy_headers=False,
    )  # fmt: skip
    return uvicorn.Server(config)


class StopSignals:
    """SIGINT/SIGTERM, from the moment a command starts: each asks the server to stop (or, before it runs,
    not to start). Installed before the slow start-up steps (the first admin's hash, the DB) so a Ctrl-C
    during them still ends the command normally.

    uvicorn takes the signals over while it runs and then raises them again for the handlers it found:
    ours, which only record them, so a stop by signal exits with code 0 rather than as an abort."""

    def __init__(self) -> None:
        self.received: str | None = None
        self.server: uvicorn.Server | None = None
        self._previous: dict[int, Any] = {}

    def __enter__(self) -> StopSignals:
        self._previous = {sig: signal.signal(sig, self._handle) for sig in (signal.SIGINT, signal.SIGTERM)}
        return self

    def __exit__(self, *_exc: object) -> None:
        for sig, handler in self._previous.items():
            signal.signal(sig, handler)

    def _handle(self, signum: int, _frame: object) -> None:
        self.received = self.received or signal.Signals(signum).name
        if self.server is not None:
            self.server.should_exit = True


def serve(server: uvicorn.Server, sock: socket.socket, stop: StopSignals) -> None:
    """Run `server` on `sock` in the foreground until a signal (or `server.should_exit`)."""
    stop.server = server
    if stop.received:
        server.should_exit = True  # a signal came during start-up: start and stop at once
    try:
        server.run(sockets=[sock])
    finally:
        sock.close()


@click.command("api-server")
@host_option
@port_option
@pass_cli
def api_server(cli: CliContext, host: str | None, port: int | None) -> None:
    """Serve the REST API (/api/v1, OpenAPI at /api/v1/openapi.json) and the web UI until SIGINT/SIGTERM.

    Listens on 127.0.0.1:8793 unless told otherwise. Create users first with `dagrunner users create`.
    """
    with StopSignals() as stop:
        sock, url = _listen(cli, host, port)
        server = build_server(cli)
        render.info(f"dagrunner api-server: {url}  (db {cli.db_label})")
        serve(server, sock, stop)
    render.info("api-server stopped")


# --- standalone: the api-server and a scheduler, for a laptop -----------------------------------------------


def ensure_first_admin(cli: CliContext, url: str) -> None:
    """In a database without users, create `admin` with a random password, print it once and keep it in
    the state folder (mode 0600); later starts say where it is instead of printing it again."""
    from dagrunner.persistence.users import create_user, has_users
    from dagrunner.roles import Role

    path = cli.settings.state_folder / PASSWORD_FILE
    password = None
    with cli.session() as session:
        if not has_users(session):
            password = secrets.token_urlsafe(16)
            create_user(session, STANDALONE_ADMIN, Role.ADMIN, password, actor=cli.actor, when=datetime.now(UTC))
            _write_private(path, password + "\n")  # before the commit: no admin whose password is lost
    if password is not None:
        render.info(f"UI: {url}  user: {STANDALONE_ADMIN}  password: {password}")
        render.info(f"(shown only now; also kept in {path}, readable by you alone)")
    elif path.exists():
        render.info(f"UI: {url}  user: {STANDALONE_ADMIN}  password: in {path} (created at the first start)")
    else:
        render.info(f"UI: {url}  (sign in with a user from `dagrunner users list`)")


def _write_private(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as out:
        out.write(text)
    os.chmod(path, 0o600)  # the file may have existed with wider permissions


class SchedulerChild:
    """`dagrunner scheduler` as a child process with the same settings. It runs in its own process group,
    so a terminal's Ctrl-C reaches only the parent, which stops it with one SIGTERM (a second signal would
    cut the scheduler's grace period short); `--parent-pid` makes it stop if the parent dies first."""

    def __init__(self, cli: CliContext, executor: str | None) -> None:
        settings = cli.settings
        self.env = {**os.environ, "DAGRUNNER_HOME": str(settings.home), "DAGRUNNER_DB_URL": settings.db_url,
                    "DAGRUNNER_DAGS_FOLDER": str(settings.dags_folder)}  # fmt: skip
        self.args = [sys.executable, "-m", "dagrunner", "scheduler", "--parent-pid", str(os.getpid())]
        if executor:
            self.args += ["--executor", executor]
        self.process: subprocess.Popen[bytes] | None = None

    def start(self, on_exit: Any) -> None:
        """Start it; `on_exit(code)` is called from a thread when it exits."""
        self.process = subprocess.Popen(self.args, env=self.env, stdin=subprocess.DEVNULL, process_group=0)
        process = self.process
        threading.Thread(target=lambda: on_exit(process.wait()), name="scheduler-child", daemon=True).start()

    def stop(self, timeout_s: float = 45.0) -> None:
        """SIGTERM, then wait for its grace period (running tries finish or are recorded); SIGKILL after."""
        from dagrunner.subprocesses import stop_child

        stop_child(self.process, timeout_s)


@click.command()
@host_option
@port_option
@executor_option
@pass_cli
def standalone(cli: CliContext, host: str | None, port: int | None, executor: str | None) -> None:
    """The api-server and a scheduler in one command, for a laptop: Ctrl-C stops both.

    In a database without users it creates `admin` with a random password and prints it once.
    If the scheduler stops on its own, the server stops too, with exit code 1.
    """
    cli.override(executor=executor)
    with StopSignals() as stop:
        sock, url = _listen(cli, host, port)
        ensure_first_admin(cli, url)
        server = build_server(cli)
        child = SchedulerChild(cli, executor)
        stopping = threading.Event()
        died: list[int] = []

        def scheduler_exited(code: int) -> None:
            if not stopping.is_set():
                died.append(code)
                server.should_exit = True

        child.start(scheduler_exited)
        try:
            serve(server, sock, stop)
        finally:
            stopping.set()
            child.stop()
    if died:
        raise WebError(
            f"the scheduler (pid {child.process.pid if child.process else '?'}) exited with code {died[0]}, so "
            "the api-server stopped too; its output above says why"
        )
    render.info("standalone stopped: api-server and scheduler")
