"""Browser tests of the web UI: the real server (`dagrunner standalone`, or api-server + scheduler) on a temp
project with the example DAGs, driven by Playwright through Debian's Chromium.

One server per test module (starting it and the browser is most of the cost); each test gets a fresh browser
context (no cookies), so logging in is part of what it tests. Screenshots go to the test's tmp dir always, and
to docs/images/ui-<page>.png when DAGRUNNER_UPDATE_SCREENSHOTS=1 (1366x768, the laptop screen the UI targets).
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import textwrap
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from integration import procs
from polling import wait_until

from dagrunner.persistence.engine import make_engine, session_scope
from dagrunner.persistence.users import create_user

REPO = Path(__file__).resolve().parents[3]
VIEWPORT = {"width": 1366, "height": 768}
PASSWORD = "correct horse battery"
CHROMIUM_ARGS = [
    "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
    "--disable-component-update", "--disable-sync",
]  # fmt: skip

#: A DAG of our own whose task fails until a gate file exists in the project: the test opens the failure's log,
#: then creates the gate and clears the task, which runs again and succeeds.
FLAKY_DAG = '''
    """Fails in `load` until the file GATE exists in the project folder (the UI browser tests clear it)."""
    import os
    from pathlib import Path

    import pendulum

    from dagrunner import dag, task


    @dag(schedule=None, start_date=pendulum.datetime(2026, 1, 1, tz="UTC"), catchup=False, tags=["ui-test"])
    def ui_flaky():
        @task
        def extract() -> int:
            return 3

        @task
        def load(n: int) -> None:
            gate = Path(os.environ["DAGRUNNER_HOME"]) / "GATE"
            if not gate.exists():
                raise RuntimeError(f"ui-flaky-boom: no gate file at {gate}")
            print(f"loaded {n} rows")

        load(extract())


    ui_flaky()
'''


def chromium_path() -> str:
    """Debian's Chromium (Playwright's own browser download cannot work here); .ci/run installs it."""
    path = os.environ.get("DAGRUNNER_TEST_CHROMIUM", "/usr/bin/chromium")
    if not Path(path).exists():
        pytest.fail(
            f"no Chromium at {path}: install Debian's (`apt-get install -y chromium`, as .ci/run does) or point "
            "DAGRUNNER_TEST_CHROMIUM at one; the browser tests cannot run without it"
        )
    return path


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _has_command(name: str) -> bool:
    from dagrunner.cli.main import cli

    return name in getattr(cli, "commands", {})


#: The app under uvicorn, for a checkout whose CLI has no `api-server` command yet.
_UVICORN = (
    "import uvicorn, sys; from dagrunner.settings import Settings; from dagrunner.web.app import create_app; "
    "uvicorn.run(create_app(Settings.load()), host='127.0.0.1', port=int(sys.argv[1]), log_level='warning')"
)


def _start_api_server(root: Path, db_url: str, port: int) -> subprocess.Popen[str]:
    if _has_command("api-server"):
        return procs.start(root, db_url, "api-server", "--port", str(port))
    log = root / "proc-api.log"
    with log.open("w") as out:
        proc = subprocess.Popen(
            [sys.executable, "-c", _UVICORN, str(port)],
            cwd=root, env=procs.env_for(root, db_url), stdout=out, stderr=subprocess.STDOUT, text=True,
        )  # fmt: skip
    proc.log_path = log  # type: ignore[attr-defined]
    return proc


@dataclass
class UiServer:
    root: Path
    db_url: str
    url: str
    users: dict[str, str]  # role -> username
    procs: list[subprocess.Popen[str]] = field(default_factory=list)
    shots: Path | None = None

    def logs(self) -> str:
        return "\n".join(f"--- {p.log_path.name}\n{p.log_path.read_text()[-4000:]}" for p in self.procs)  # type: ignore[attr-defined]


def _healthy(url: str) -> bool:
    try:
        with urllib.request.urlopen(f"{url}/health", timeout=2) as response:
            return bool(response.status == 200)
    except OSError:
        return False


def _add_users(db_url: str) -> dict[str, str]:
    engine = make_engine(db_url)
    try:
        with session_scope(engine) as session:
            for role in ("admin", "operator", "viewer"):
                create_user(session, f"ui-{role}", role, PASSWORD, actor="test", when=datetime.now(UTC))
    finally:
        engine.dispose()
    return {role: f"ui-{role}" for role in ("admin", "operator", "viewer")}


def _parsed(db_url: str, *dag_ids: str) -> bool:
    from sqlalchemy import select

    from dagrunner.persistence.models import Dag

    engine = make_engine(db_url)
    try:
        with session_scope(engine, readonly=True) as session:
            return set(dag_ids) <= set(session.scalars(select(Dag.dag_id).where(Dag.dag_id.in_(dag_ids))))
    finally:
        engine.dispose()


@pytest.fixture(scope="module")
def ui_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[UiServer]:
    """The api-server and the scheduler on a temp project: the example DAGs plus `ui_flaky`."""
    root = procs.project(tmp_path_factory.mktemp("ui-project"))
    (root / "dags" / "ui_flaky.py").write_text(textwrap.dedent(FLAKY_DAG))
    db_url = f"sqlite:///{root / 'dagrunner.db'}"
    port = free_port()
    server = UiServer(root, db_url, f"http://127.0.0.1:{port}", {})
    # The api-server creates the schema before it answers /health; the users and the scheduler come after,
    # so no two processes race to create the schema.
    standalone = _has_command("standalone")
    server.procs.append(
        procs.start(root, db_url, "standalone", "--port", str(port))
        if standalone
        else _start_api_server(root, db_url, port)
    )
    try:
        try:
            wait_until(lambda: _healthy(server.url), what=f"the api-server at {server.url}", timeout=30, interval=0.1)
        except AssertionError as exc:
            raise AssertionError(f"{exc}\n{server.logs()}") from None
        if not standalone:
            server.procs.append(procs.start(root, db_url, "scheduler"))
        server.users.update(_add_users(db_url))
        wait_until(lambda: _parsed(db_url, "ui_flaky", "loan_approval", "taskflow_branching"),
                   what="the scheduler to parse the DAG folder", timeout=60, interval=0.2)  # fmt: skip
        yield server
    finally:
        for proc in server.procs:
            proc.terminate()
        for proc in server.procs:
            try:
                proc.wait(15)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(5)


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    from playwright.sync_api import sync_playwright

    executable = chromium_path()
    with sync_playwright() as playwright:
        # Playwright gives each launch its own fresh temporary profile (user-data-dir) and runs headless.
        chromium = playwright.chromium.launch(executable_path=executable, headless=True, args=CHROMIUM_ARGS)
        try:
            yield chromium
        finally:
            chromium.close()


@pytest.fixture
def page(browser: Any, ui_server: UiServer, tmp_path: Path) -> Iterator[Any]:
    """A fresh browser context (no cookies) at 1366x768; failing console errors are collected in `page.errors`."""
    context = browser.new_context(viewport=VIEWPORT, base_url=ui_server.url)
    context.set_default_timeout(15_000)
    page = context.new_page()
    page.errors = []  # type: ignore[attr-defined]
    page.on("pageerror", lambda e: page.errors.append(str(e)))  # type: ignore[attr-defined]
    page.on(
        "console",
        lambda m: page.errors.append(m.text) if m.type == "error" and "Content Security Policy" in m.text else None,
    )  # type: ignore[attr-defined]
    page.on("dialog", lambda dialog: dialog.accept())
    ui_server.shots = tmp_path
    try:
        yield page
    finally:
        context.close()


def screenshot(page: Any, server: UiServer, name: str, *, full_page: bool = False) -> None:
    """Save the page as ui-<name>.png in the test's tmp dir, and into docs/images/ when asked to update them."""
    assert server.shots is not None
    page.screenshot(path=str(server.shots / f"ui-{name}.png"), full_page=full_page)
    if os.environ.get("DAGRUNNER_UPDATE_SCREENSHOTS") == "1":
        target = REPO / "docs" / "images"
        target.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(server.shots / f"ui-{name}.png", target / f"ui-{name}.png")


def login(page: Any, username: str, password: str = PASSWORD) -> None:
    page.goto("/#/login")
    page.fill("#username", username)
    page.fill("#password", password)
    page.click("button[type=submit]")
