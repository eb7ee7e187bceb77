"""A worker's try logs over HTTP, read-only, for `dagrunner tasks logs` on another host.

The server answers `GET /log/<path>` with the file at <path> inside the worker's log folder and nothing
else: no `..`, no absolute paths, no symlink that leads out (the resolved file must be inside the resolved
folder), no directory listings, only regular files. The client builds the path from the try alone
(`logs.log_path` relative to the folder), so it needs only the try's host (recorded on the try) and the
port (the `worker_log_server_port` setting, the same on every host).
"""

from __future__ import annotations

import logging
import threading
import urllib.error
import urllib.parse
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

from dagrunner.errors import NotFoundError
from dagrunner.execution.base import TaskKey
from dagrunner.execution.logs import log_path

log = logging.getLogger(__name__)
_PREFIX = "/log/"


def confined(root: Path, relative: str) -> Path | None:
    """The regular file `relative` names inside `root`, or None when it escapes, is missing or not a file."""
    parts = relative.split("/")
    if not relative or relative.startswith("/") or any(p in ("", ".", "..") or "\\" in p or "\0" in p for p in parts):
        return None
    base = root.resolve()
    try:
        full = (base / relative).resolve(strict=True)
    except (OSError, RuntimeError):
        return None
    if not full.is_relative_to(base) or not full.is_file():
        return None
    return full


def serve_logs(folder: Path, port: int, host: str = "0.0.0.0") -> ThreadingHTTPServer | None:  # noqa: S104 - other hosts read it
    """Serve `folder` on `port` in a daemon thread (0: any free port); None when the port is taken."""
    root = Path(folder)

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802 - the http.server interface
            raw = urllib.parse.urlsplit(self.path).path
            path = confined(root, urllib.parse.unquote(raw[len(_PREFIX) :])) if raw.startswith(_PREFIX) else None
            if path is None:
                self.send_error(404, "no such log")
                return
            data = path.read_bytes()
            self.send_response(200)
            self.send_header("Content-Type", "text/plain; charset=utf-8")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, format: str, *args: object) -> None:  # noqa: A002 - the http.server interface
            log.debug(format, *args)

    try:
        server = ThreadingHTTPServer((host, port), Handler)
    except OSError as exc:
        log.warning("cannot serve try logs on port %s: %s", port, exc)
        return None
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, name="log-server", daemon=True).start()
    return server


def log_url(hostname: str, port: int, key: TaskKey, try_number: int) -> str:
    relative = log_path("/", key, try_number).relative_to("/")
    return f"http://{hostname}:{port}{_PREFIX}{urllib.parse.quote(str(relative))}"


def fetch_log(hostname: str, port: int, key: TaskKey, try_number: int, *, timeout_s: float = 10.0) -> str:
    """A try's log from the worker on `hostname`; NotFoundError saying why it could not be read."""
    url = log_url(hostname, port, key, try_number)
    try:
        with urllib.request.urlopen(url, timeout=timeout_s) as response:  # noqa: S310 - http to our own worker
            data: bytes = response.read()
    except urllib.error.HTTPError as exc:
        raise NotFoundError(
            f"worker {hostname} has no log of try {try_number} of {key.label()} ({url}: {exc.code})"
        ) from exc
    except OSError as exc:
        raise NotFoundError(
            f"the log of try {try_number} of {key.label()} is on {hostname}, whose log server did not answer "
            f"({url}: {exc}); is its `dagrunner worker` running?"
        ) from exc
    return data.decode("utf-8", errors="replace")
