"""W8 api-server (issue 14): how fast the API serves the two heaviest pages, idle and while W1 runs.

One project and database per repetition:

1. 1,000 DAGs of 5 chained tasks (`@daily` from 2030, so no run is due and `next_run` is set), several
   DAGs per file (`W8_DAGS_PER_FILE` = 50: 20 files), plus a `grid` DAG of 50 chained tasks and W1's `wide`
   DAG (200 independent tasks, manual). The folder is parsed into the DB once, in-process, as the scheduler
   does.
2. 100 runs of `grid` with their 50 task instances each, created through `trigger_run` (the CLI's call),
   then set to finished states (success, with every seventh run failed at its last tasks) by two bulk
   UPDATEs: what matters to the grid is the rows, not how they finished.
3. A real `dagrunner api-server` subprocess on a free port; an admin's bearer token; `httpx` over HTTP.
   After WARMUP calls each, N calls of each page, alternating: `GET /api/v1/dags?limit=50` (the UI's DAG
   list page), `GET /api/v1/dags/grid/grid?limit=100` (100 runs x 50 tasks), and `GET /api/v1/dags?limit=1000`
   (every DAG on one page, reported without a target).
4. The same dags/grid calls while a `dagrunner scheduler --parallelism 8` runs W1 on the same database:
   the scheduler is started and waited for until it parsed the folder and went idle, then `dags trigger
   wide` is started and the pages are called back to back until the run finished; again until N calls of
   each were made. Checked: every `wide` run succeeded with all its tasks.
"""

from __future__ import annotations

import importlib
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from datetime import datetime

from sqlalchemy import Engine, func, select, text, update

from benchmarks.dagfiles import HEADER, wide_dag
from benchmarks.errors import BenchTimeout, CommandFailed, CorrectnessError
from benchmarks.probe import DbProbe, wait_until
from benchmarks.project import STOP_TIMEOUT_S, Project, _tail, project_with_db
from benchmarks.spec import Metric, Sizes, Target
from benchmarks.stats import median, percentile
from benchmarks.workloads.base import Details, Figures, Workload, start_idle_scheduler
from dagrunner.persistence.models import DagRun, TaskInstance

W8_DAGS_PER_FILE = 50
GRID_DAG = "grid"
WIDE_DAG = "wide"
WARMUP = 5
READY_TIMEOUT_S = 60.0
HTTP_TIMEOUT_S = 60.0


def many_dags(first: int, count: int) -> str:
    """`count` DAGs (bench_0000, ...) of 5 chained no-op tasks in one file, daily from 2030 (none due)."""
    return (
        HEADER
        + f"""
for n in range({first}, {first + count}):
    with DAG(f"bench_{{n:04d}}", schedule="@daily", start_date=pendulum.datetime(2030, 1, 1, tz="UTC"),
             catchup=False, tags=["bench", f"group{{n % 10}}"], description="W8: a DAG of the list") as dag:
        previous = None
        for i in range(5):
            current = PythonOperator(task_id=f"t{{i}}", python_callable=noop)
            if previous is not None:
                previous >> current
            previous = current
    globals()[f"dag_{{n}}"] = dag
"""
    )


def grid_dag(tasks: int) -> str:
    return (
        HEADER
        + f"""
with DAG({GRID_DAG!r}, schedule=None, start_date=pendulum.datetime(2026, 1, 1, tz="UTC"), catchup=False):
    previous = None
    for i in range({tasks}):
        current = PythonOperator(task_id=f"t{{i:04d}}", python_callable=noop)
        if previous is not None:
            previous >> current
        previous = current
"""
    )


class ApiServing(Workload):
    name = "W8"
    title = "api-server: DAG list of 1,000 DAGs and a 100 x 50 grid over HTTP, idle and while W1 runs"
    metrics = (
        Metric("dags_median_ms", "GET /dags?limit=50 (1,000 DAGs), median", "ms", Target(300.0, "<=")),
        Metric("dags_p90_ms", "GET /dags?limit=50, p90", "ms"),
        Metric("grid_median_ms", "GET /dags/grid/grid?limit=100 (100 runs x 50 tasks), median", "ms",
               Target(300.0, "<=")),
        Metric("grid_p90_ms", "GET .../grid, p90", "ms"),
        Metric("dags_all_median_ms", "GET /dags?limit=1000 (every DAG on one page), median", "ms"),
        Metric("dags_under_w1_median_ms", "GET /dags?limit=50 while the scheduler runs W1, median", "ms"),
        Metric("dags_under_w1_p90_ms", "same, p90", "ms"),
        Metric("grid_under_w1_median_ms", "GET .../grid while the scheduler runs W1, median", "ms"),
        Metric("grid_under_w1_p90_ms", "same, p90", "ms"),
    )  # fmt: skip

    def unavailable(self) -> str | None:
        try:
            import httpx  # noqa: F401

            importlib.import_module("dagrunner.cli.api_server")
            dags = importlib.import_module("dagrunner.web.api.dags")
        except ImportError as exc:
            return f"needs `dagrunner api-server`, the DAG endpoints and the web extra ({exc})"
        paths = {getattr(route, "path", "") for route in dags.router.routes}
        missing = {"/dags", "/dags/{dag_id}/grid"} - paths
        return f"the API has no {', '.join(sorted(missing))} yet" if missing else None

    def run_once(self, db: str, sizes: Sizes) -> tuple[Figures, Details]:
        with project_with_db(db) as project:
            token = _prepare(project, sizes)
            server = ApiServer(project)
            try:
                idle = _measure_idle(server.url, token, sizes.w8_calls)
                loaded, rounds = _measure_under_w1(project, server.url, token, sizes)
            finally:
                server.stop()
        figures = {
            "dags_median_ms": median(idle["dags"]),
            "dags_p90_ms": percentile(idle["dags"], 90),
            "grid_median_ms": median(idle["grid"]),
            "grid_p90_ms": percentile(idle["grid"], 90),
            "dags_all_median_ms": median(idle["dags_all"]),
            "dags_under_w1_median_ms": median(loaded["dags"]),
            "dags_under_w1_p90_ms": percentile(loaded["dags"], 90),
            "grid_under_w1_median_ms": median(loaded["grid"]),
            "grid_under_w1_p90_ms": percentile(loaded["grid"], 90),
        }
        details = {"dags": sizes.w8_dags, "dags_per_file": W8_DAGS_PER_FILE, "grid_runs": sizes.w8_grid_runs,
                   "grid_tasks": sizes.w8_grid_tasks, "calls": sizes.w8_calls, "w1_runs_during_load": rounds,
                   "w1_tasks": sizes.w1_tasks,
                   "samples_ms": {k: [round(x, 2) for x in v] for k, v in {**idle, **{f"{k}_under_w1": v
                                  for k, v in loaded.items()}}.items()}}  # fmt: skip
        return figures, details


# --- preparing the database -------------------------------------------------------------------------


def _prepare(project: Project, sizes: Sizes) -> str:
    """Write and parse the DAG files, create the grid's runs, and an admin; returns the admin's token."""
    from datetime import UTC, datetime, timedelta

    from dagrunner.loading.sync import load_dagbag
    from dagrunner.persistence.engine import make_engine, session_scope
    from dagrunner.persistence.users import create_token, create_user
    from dagrunner.scheduling.operations import trigger_run
    from dagrunner.settings import Settings

    for first in range(0, sizes.w8_dags, W8_DAGS_PER_FILE):
        project.write_dag(f"many_{first:04d}.py", many_dags(first, min(W8_DAGS_PER_FILE, sizes.w8_dags - first)))
    project.write_dag("grid.py", grid_dag(sizes.w8_grid_tasks))
    project.write_dag("wide.py", wide_dag(WIDE_DAG, sizes.w1_tasks))
    project.cli("db", "init")
    settings = Settings.load({"db_url": project.db_url, "dagbag_import_timeout": 120}, environ={}, home=project.root)
    engine = make_engine(project.db_url)
    try:
        bag = load_dagbag(settings, engine)
        if bag.failures or len(bag.dags) != sizes.w8_dags + 2:
            raise CorrectnessError(f"W8's DAG files did not all import ({len(bag.dags)} DAGs): {bag.failures}")
        now = datetime.now(UTC)
        start = now - timedelta(days=sizes.w8_grid_runs)
        with session_scope(engine) as session:
            for i in range(sizes.w8_grid_runs):
                trigger_run(session, bag.dags[GRID_DAG], actor="benchmark", now=now,
                            logical_date=start + timedelta(days=i), run_id=f"bench_{i:04d}")  # fmt: skip
        _finish_grid_runs(engine, now)
        with session_scope(engine) as session:
            create_user(session, "bench", "admin", "benchmark-password", actor="benchmark", when=now)
            return create_token(session, "bench", "w8", actor="benchmark", when=now)
    finally:
        engine.dispose()


def _finish_grid_runs(engine: Engine, now: datetime) -> None:
    """Every grid run and instance finished: success, except the last two tasks of every seventh run."""
    with engine.begin() as conn:
        conn.execute(update(TaskInstance).where(TaskInstance.dag_id == GRID_DAG)
                     .values(state="success", try_number=1, start_date=now, end_date=now))  # fmt: skip
        conn.execute(update(DagRun).where(DagRun.dag_id == GRID_DAG)
                     .values(state="success", start_date=now, end_date=now))  # fmt: skip
        failed = [r for (r,) in conn.execute(select(DagRun.run_id).where(DagRun.dag_id == GRID_DAG))][::7]
        last = [t for (t,) in conn.execute(select(TaskInstance.task_id).where(TaskInstance.dag_id == GRID_DAG)
                                           .distinct().order_by(TaskInstance.task_id.desc()).limit(2))]  # fmt: skip
        conn.execute(update(TaskInstance).where(TaskInstance.dag_id == GRID_DAG, TaskInstance.run_id.in_(failed),
                                                TaskInstance.task_id.in_(last)).values(state="failed"))  # fmt: skip
        conn.execute(update(DagRun).where(DagRun.dag_id == GRID_DAG, DagRun.run_id.in_(failed))
                     .values(state="failed"))  # fmt: skip
        if engine.dialect.name == "postgresql":
            conn.execute(text("ANALYZE dag_run"))
            conn.execute(text("ANALYZE task_instance"))


# --- the server ---------------------------------------------------------------------------------------


class ApiServer:
    """`dagrunner api-server --host 127.0.0.1 --port P` in the background, waited for until /health answers."""

    def __init__(self, project: Project) -> None:
        port = _free_port()
        self.url = f"http://127.0.0.1:{port}"
        self.log = project.root / "api-server.log"
        with self.log.open("w") as out:
            self.popen = subprocess.Popen(
                [sys.executable, "-m", "dagrunner", "api-server", "--host", "127.0.0.1", "--port", str(port)],
                cwd=project.root, env=project.env, stdout=out, stderr=subprocess.STDOUT,
            )  # fmt: skip
        try:
            wait_until(self._healthy, timeout=READY_TIMEOUT_S, interval=0.05, what="the api-server to answer /health",
                       check=self.check_alive)  # fmt: skip
        except BaseException:
            self.stop()
            raise

    def _healthy(self) -> bool:
        import httpx

        try:
            return httpx.get(f"{self.url}/health", timeout=2.0).status_code == 200
        except httpx.HTTPError:
            return False

    def check_alive(self) -> None:
        if self.popen.poll() is not None:
            raise CommandFailed(f"the api-server exited with code {self.popen.returncode}:\n{self.tail()}")

    def tail(self) -> str:
        return _tail(self.log.read_text(errors="replace")) if self.log.exists() else ""

    def stop(self) -> None:
        if self.popen.poll() is None:
            self.popen.terminate()
        try:
            self.popen.wait(timeout=STOP_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            self.popen.kill()
            self.popen.wait(timeout=10)
            raise BenchTimeout(f"the api-server ignored SIGTERM and was killed:\n{self.tail()}") from None


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


# --- measuring --------------------------------------------------------------------------------------------

PAGES = {
    "dags": "/api/v1/dags?limit=50",
    "grid": f"/api/v1/dags/{GRID_DAG}/grid?limit=100",
    "dags_all": "/api/v1/dags?limit=1000",
}


def _timed_get(client: object, path: str) -> float:
    """One call in ms; a non-200 answer fails the workload (a fast error page is not a figure)."""
    began = time.perf_counter()
    response = client.get(path)  # type: ignore[attr-defined]
    took = (time.perf_counter() - began) * 1000
    if response.status_code != 200:
        raise CommandFailed(f"GET {path} answered {response.status_code}: {response.text[:500]}")
    return took


def _client(url: str, token: str) -> object:
    import httpx

    return httpx.Client(base_url=url, headers={"Authorization": f"Bearer {token}"}, timeout=HTTP_TIMEOUT_S)


def _measure_idle(url: str, token: str, calls: int) -> dict[str, list[float]]:
    samples: dict[str, list[float]] = {name: [] for name in PAGES}
    with _client(url, token) as client:  # type: ignore[attr-defined]
        for path in PAGES.values():
            for _ in range(WARMUP):
                _timed_get(client, path)
        for _ in range(calls):
            for name, path in PAGES.items():
                samples[name].append(_timed_get(client, path))
    return samples


def _measure_under_w1(project: Project, url: str, token: str, sizes: Sizes) -> tuple[dict[str, list[float]], int]:
    """dags/grid calls back to back while the scheduler runs W1's wide DAG, run after run, until N each."""
    samples: dict[str, list[float]] = {"dags": [], "grid": []}
    probe = DbProbe(project.db_url)
    rounds = 0
    try:
        sched = start_idle_scheduler(project, probe, dags=sizes.w8_dags + 2,
                                     args=("--parallelism", str(sizes.parallelism)))  # fmt: skip
        try:
            with _client(url, token) as client:  # type: ignore[attr-defined]

                def call_pages() -> None:
                    for name, values in samples.items():
                        values.append(_timed_get(client, PAGES[name]))

                while min(len(v) for v in samples.values()) < sizes.w8_calls:
                    rounds += 1
                    _while_w1_runs(project, probe, sched.check_alive, rounds, sizes, call_pages)
        finally:
            code = sched.stop()
        if code != 0:
            raise CommandFailed(f"the scheduler exited {code} after SIGTERM:\n{sched.tail()}")
        _check_wide(probe, rounds, sizes.w1_tasks)
    finally:
        probe.close()
    return samples, rounds


def _while_w1_runs(project: Project, probe: DbProbe, alive: Callable[[], None], round_: int, sizes: Sizes,
                   call: Callable[[], None]) -> None:  # fmt: skip
    """Trigger one more run of `wide` (the CLI, in the background) and `call` until it has finished."""
    trigger = subprocess.Popen([sys.executable, "-m", "dagrunner", "dags", "trigger", WIDE_DAG],
                               cwd=project.root, env=project.env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)  # fmt: skip
    deadline = time.monotonic() + sizes.run_timeout_s
    while True:
        call()
        alive()
        done = probe.count(DagRun, DagRun.dag_id == WIDE_DAG, DagRun.state.in_(["success", "failed"]))
        if trigger.poll() is not None and done >= round_:
            break
        if time.monotonic() > deadline:
            trigger.kill()
            raise BenchTimeout(f"W1's run {round_} did not finish within {sizes.run_timeout_s:g}s")
    out = trigger.communicate()[0].decode(errors="replace")
    if trigger.returncode != 0:
        raise CommandFailed(f"`dags trigger {WIDE_DAG}` exited {trigger.returncode}:\n{_tail(out)}")


def _check_wide(probe: DbProbe, runs: int, tasks: int) -> None:
    states = dict(
        probe.rows(select(DagRun.state, func.count()).where(DagRun.dag_id == WIDE_DAG).group_by(DagRun.state))
    )
    tis = dict(probe.rows(select(TaskInstance.state, func.count()).where(TaskInstance.dag_id == WIDE_DAG)
                          .group_by(TaskInstance.state)))  # fmt: skip
    found = ({str(k.value): v for k, v in states.items()}, {str(k.value): v for k, v in tis.items()})
    if found != ({"success": runs}, {"success": runs * tasks}):
        raise CorrectnessError(f"expected {runs} wide run(s) and {runs * tasks} instances, all success; found {found}")
