"""A soak: many runs through a real scheduler while its processes are killed at random; then the invariants.

    python -m benchmarks.soak [--runs 1000] [--minutes 10] [--kill-every 20] [--db sqlite|postgres] [--seed N]

A DAG of four tasks (a >> [b, c] >> d, retries=3) gets `--runs` runs by catchup on a per-minute schedule.
`dagrunner scheduler` runs them; every `--kill-every` seconds one process is SIGKILLed at random: the
scheduler itself (then started again, as an operator's supervisor would), or one of its descendants (a
worker, a forker, a task process, the forkserver). Every task body appends to an external ledger
(`tests/chaos/ledger.py`). It stops when every run has finished or the time is up, stops the scheduler,
and reports: runs finished, tasks per second, the kills by kind, and every invariant the ledger check finds
broken (a try started twice, overlapping tries, anything left queued or running, a gap in the audit chain).
Not a CI test: it takes minutes and its figures need a quiet machine (docs/performance.md).
"""

from __future__ import annotations

import argparse
import json
import os
import random
import signal
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import func, select

from benchmarks.machine import git_info, machine_info
from benchmarks.procfs import descendants
from benchmarks.project import Project, SchedulerProcess, project_with_db

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "tests"))  # the chaos tests' ledger, shared rather than copied
from chaos import ledger  # noqa: E402

DAG = """
import pendulum
from datetime import timedelta
from dagrunner import DAG, task

with DAG("soak", schedule="* * * * *", start_date=pendulum.parse("{start}"), end_date=pendulum.parse("{end}"),
         catchup=True, max_active_runs=16, default_args={{"retries": 3, "retry_delay": timedelta(seconds=1)}}):
    @task
    def step(ti=None, run_id=None):
        note("start", ti, run_id)
        note("end", ti, run_id)

    a, b, c, d = (step.override(task_id=t)() for t in ("a", "b", "c", "d"))
    a >> [b, c] >> d
"""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=1000)
    parser.add_argument("--minutes", type=float, default=10.0)
    parser.add_argument("--kill-every", type=float, default=20.0)
    parser.add_argument("--db", default="sqlite", choices=["sqlite", "postgres"])
    parser.add_argument("--seed", type=int, default=None)
    parser.add_argument("--out", type=Path, default=None, help="JSON report (default benchmarks/results/)")
    args = parser.parse_args()
    rng = random.Random(args.seed)
    with project_with_db(args.db) as project:
        report = soak(project, args.runs, args.minutes * 60, args.kill_every, rng)
    report.update(options=vars(args) | {"out": str(args.out)}, machine=machine_info(), git=git_info())
    out = args.out or REPO / "benchmarks" / "results" / f"soak-{datetime.now(UTC):%Y%m%dT%H%M%S}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(report, indent=2, default=str))
    print(json.dumps({k: v for k, v in report.items() if k not in ("machine", "git")}, indent=2, default=str))
    print(f"report: {out}")
    if report["problems"]:
        raise SystemExit(1)


def soak(project: Project, runs: int, seconds: float, kill_every: float, rng: random.Random) -> dict[str, Any]:
    ledger_path = project.root / "ledger.txt"
    project.env[ledger.ENV] = str(ledger_path)
    start = (datetime.now(UTC) - timedelta(minutes=runs + 5)).replace(second=0, microsecond=0)
    end = start + timedelta(minutes=runs - 1)
    project.write_dag("soak.py", ledger.LEDGER_SNIPPET + DAG.format(start=start.isoformat(), end=end.isoformat()))
    project.cli("db", "init")
    kills: dict[str, int] = {"scheduler": 0}
    exits: list[str] = []  # the last lines of a scheduler that exited on its own
    began = time.monotonic()
    scheduler = project.start_scheduler()
    next_kill = began + kill_every
    try:
        while time.monotonic() - began < seconds and _finished_runs(project) < runs:
            time.sleep(1.0)
            if not scheduler.alive():  # it died on its own: that is a finding, and it is started again
                exits.append(f"exit code {scheduler.popen.returncode}: {scheduler.tail()[-1500:]}")
                scheduler = project.start_scheduler()
            if time.monotonic() >= next_kill:
                scheduler = _kill_one(project, scheduler, rng, kills)
                next_kill = time.monotonic() + kill_every
        elapsed = time.monotonic() - began
    finally:
        scheduler.stop()
    finished = _finished_runs(project)
    problems = ledger.check_against_db(project.db_url, ledger_path) if finished >= runs else []
    if finished < runs:
        problems = [f"only {finished} of {runs} runs finished within {seconds:g}s"]
    if exits:
        problems.append(f"the scheduler exited on its own {len(exits)} time(s) (see scheduler_exits)")
    ends = sum(1 for e in ledger.read(ledger_path) if e.event == "end")
    return {
        "runs": runs,
        "runs_finished": finished,
        "elapsed_s": round(elapsed, 1),
        "task_bodies_finished": ends,
        "tasks_per_s": round(ends / elapsed, 2) if elapsed else None,
        "kills": kills,
        "scheduler_exits": exits,
        "problems": problems[:50],
        "problem_count": len(problems),
    }


def _kill_one(
    project: Project, scheduler: SchedulerProcess, rng: random.Random, kills: dict[str, int]
) -> SchedulerProcess:
    victims = descendants(scheduler.pid)
    if not victims or rng.random() < 0.3:
        # kill -9 of the scheduler alone: its workers live on, finish their tries and exit (DESIGN 7)
        scheduler.popen.kill()
        scheduler.popen.wait(timeout=10)
        kills["scheduler"] += 1
        return project.start_scheduler()
    victim = rng.choice(victims)
    try:
        kind = _kind(victim)
        os.kill(victim, signal.SIGKILL)
        kills[kind] = kills.get(kind, 0) + 1
    except (ProcessLookupError, FileNotFoundError):
        pass
    return scheduler


def _kind(pid: int) -> str:
    """A descendant by what it runs: the forkserver, or a process forked from it (worker, forker, task)."""
    cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
    return "forkserver" if b"forkserver" in cmdline else "worker/forker/task"


def _finished_runs(project: Project) -> int:
    from dagrunner.persistence.engine import make_engine, session_scope
    from dagrunner.persistence.models import DagRun

    engine = make_engine(project.db_url)
    try:
        with session_scope(engine, readonly=True) as session:
            query = select(func.count()).select_from(DagRun).where(DagRun.state.in_(("success", "failed")))
            return int(session.scalar(query) or 0)
    except Exception:  # noqa: BLE001 - the schema may not exist yet
        return 0
    finally:
        engine.dispose()


if __name__ == "__main__":
    main()
