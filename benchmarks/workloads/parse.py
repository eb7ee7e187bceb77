"""W4 parse: a folder of DAG files parsed from cold by `dags list`, then one changed file picked up by a
running scheduler."""

from __future__ import annotations

import json
import time
from pathlib import Path

from sqlalchemy import select

from benchmarks.dagfiles import chain_dag
from benchmarks.errors import CommandFailed, CorrectnessError
from benchmarks.probe import DbProbe, wait_until
from benchmarks.project import Project, project_with_db
from benchmarks.spec import Metric, Sizes, Target
from benchmarks.workloads.base import Details, Figures, Workload, start_idle_scheduler
from dagrunner.persistence.models import DagFile

PICKUP_TIMEOUT_S = 60.0
EXTRA_TASK = '    current >> PythonOperator(task_id="added", python_callable=noop)\n'


class Parse(Workload):
    name = "W4"
    title = "parse: 200 DAG files of 10 chained tasks; cold `dags list`; one changed file picked up"
    metrics = (
        Metric("cold_list_s", "wall: `dags list --json` from cold (fresh DB)", "s", Target(2.0, "<=")),
        Metric("reparse_s", "wall: file written -> new hash in dag_file (scheduler running)", "s", Target(0.5, "<=")),
        Metric("warm_list_s", "wall: `dags list --json` again (nothing changed)", "s"),
        Metric("db_init_s", "wall: `db init` on the fresh DB (not in cold_list_s)", "s"),
    )

    def run_once(self, db: str, sizes: Sizes) -> tuple[Figures, Details]:
        n = sizes.w4_files
        with project_with_db(db) as project:
            for i in range(n):
                project.write_dag(f"parse_{i:04d}.py", chain_dag(f"parse_{i:04d}", sizes.w4_tasks))
            began = time.monotonic()
            project.cli("db", "init")
            db_init = time.monotonic() - began
            cold = _timed_list(project, n)
            warm = _timed_list(project, n)
            probe = DbProbe(project.db_url)
            try:
                reparse = _pickup(project, probe, sizes, n)
            finally:
                probe.close()
        return {"cold_list_s": cold, "reparse_s": reparse, "warm_list_s": warm, "db_init_s": db_init}, {"files": n}


def _timed_list(project: Project, n: int) -> float:
    began = time.monotonic()
    out = project.cli("dags", "list", "--json")
    took = time.monotonic() - began
    listed = json.loads(out.stdout)
    if len(listed) != n:
        raise CorrectnessError(f"`dags list` printed {len(listed)} DAGs, expected {n}")
    return took


def _pickup(project: Project, probe: DbProbe, sizes: Sizes, n: int) -> float:
    """Seconds from writing a changed file to its new hash in `dag_file`, with a scheduler running."""
    target = project.dags / "parse_0000.py"
    path = str(target.resolve())
    old_hash = probe.scalar(select(DagFile.file_hash).where(DagFile.path == path))
    if old_hash is None:
        raise CorrectnessError(f"no dag_file row for {path} after `dags list`")
    sched = start_idle_scheduler(project, probe, dags=n)
    try:
        began = time.monotonic()
        project.write_dag(target.name, chain_dag("parse_0000", sizes.w4_tasks, extra=EXTRA_TASK))
        wait_until(
            lambda: probe.scalar(select(DagFile.file_hash).where(DagFile.path == path)) != old_hash,
            timeout=PICKUP_TIMEOUT_S, what=f"the scheduler to re-parse {Path(path).name}", check=sched.check_alive,
        )  # fmt: skip
        took = time.monotonic() - began
        code = sched.stop()
    except BaseException:
        sched.kill()
        raise
    if code != 0:
        raise CommandFailed(f"the scheduler exited {code} after SIGTERM:\n{sched.tail()}")
    _check_reparsed(probe, path)
    return took


def _check_reparsed(probe: DbProbe, path: str) -> None:
    row = probe.rows(select(DagFile.serialized, DagFile.import_error).where(DagFile.path == path))[0]
    if row.import_error:
        raise CorrectnessError(f"the changed file failed to import: {row.import_error}")
    tasks = (row.serialized or {}).get("parse_0000", {}).get("tasks", [])
    if not any((t.get("task_id") if isinstance(t, dict) else None) == "added" for t in tasks):
        raise CorrectnessError("the re-parsed DAG does not have the added task")
    errors = probe.rows(select(DagFile.path).where(DagFile.import_error.is_not(None)))
    if errors:
        raise CorrectnessError(f"{len(errors)} DAG file(s) failed to import, e.g. {errors[0][0]}")
