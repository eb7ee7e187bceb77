"""Run `dagrunner` as a real process against a project folder and a real database."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections.abc import Mapping
from pathlib import Path

from sqlalchemy import select

from dagrunner.persistence.engine import make_engine, session_scope
from dagrunner.persistence.models import DagRun, TaskInstance

REPO = Path(__file__).resolve().parents[2]


def project(root: Path, *, examples: bool = True) -> Path:
    if examples:
        shutil.copytree(REPO / "dags", root / "dags")
        shutil.copytree(REPO / "plugins", root / "plugins")
    else:
        (root / "dags").mkdir()
    return root


def env_for(root: Path, db_url: str, extra: Mapping[str, str] | None = None) -> dict[str, str]:
    """The test process's environment without its DAGRUNNER_* settings, pointed at `root` and `db_url`."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("DAGRUNNER_")}
    env.update(DAGRUNNER_HOME=str(root), DAGRUNNER_DB_URL=db_url, ETL_DATA_DIR=str(root / "data"))
    env.update(extra or {})
    return env


def start(root: Path, db_url: str, *args: str, env: Mapping[str, str] | None = None) -> subprocess.Popen[str]:
    """Start `dagrunner ARGS`; its output goes to a file (a pipe nobody reads would block it)."""
    log = root / f"proc-{len(list(root.glob('proc-*.log')))}.log"
    with log.open("w") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "dagrunner", *args],
            cwd=root, env=env_for(root, db_url, env), stdout=out, stderr=subprocess.STDOUT, text=True,
        )  # fmt: skip
    proc.log_path = log  # type: ignore[attr-defined]
    return proc


def finish(proc: subprocess.Popen[str], timeout: float = 90) -> str:
    """Wait for a process started with `start` and return everything it printed."""
    try:
        proc.wait(timeout)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(10)
    return proc.log_path.read_text()  # type: ignore[attr-defined]


def run(
    root: Path, db_url: str, *args: str, timeout: float = 120, env: Mapping[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "dagrunner", *args],
        cwd=root, env=env_for(root, db_url, env), capture_output=True, text=True, timeout=timeout,
    )  # fmt: skip


def scheduler_started(db_url: str) -> bool:
    """A scheduler process has registered its job row (it parsed the folder and is about to tick)."""
    from dagrunner.persistence.models import SchedulerJob

    engine = make_engine(db_url)
    try:
        with session_scope(engine, readonly=True) as s:
            return s.scalars(select(SchedulerJob.id).limit(1)).first() is not None
    except Exception:  # noqa: BLE001 - the schema may not exist yet while the scheduler creates it
        return False
    finally:
        engine.dispose()


def db_states(db_url: str) -> tuple[dict[str, str], dict[tuple[str, str], str]]:
    """({run_id: state}, {(run_id, task): state}) for every run in the database."""
    engine = make_engine(db_url)
    try:
        with session_scope(engine, readonly=True) as s:
            runs = {f"{r.dag_id}/{r.run_id}": r.state.value for r in s.scalars(select(DagRun))}
            tis = {(f"{t.dag_id}/{t.run_id}", t.task_id): t.state.value for t in s.scalars(select(TaskInstance))}
        return runs, tis
    finally:
        engine.dispose()
