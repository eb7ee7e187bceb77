"""`python -m benchmarks run`: run workloads, print the table, write the JSON. Exit 1 if anything failed."""

from __future__ import annotations

import dataclasses
import os
import signal
import sys
import time
import traceback
from datetime import UTC, datetime
from pathlib import Path
from types import FrameType

import click
from rich.console import Console

from benchmarks import report
from benchmarks.databases import DB_KINDS, describe, pg_server_url
from benchmarks.errors import BenchmarkError
from benchmarks.machine import REPO, git_info, machine_info
from benchmarks.results import FAILED, NOT_AVAILABLE, Repetition, WorkloadResult, write_json
from benchmarks.spec import FULL, QUICK, Sizes
from benchmarks.workloads import WORKLOADS
from benchmarks.workloads.base import Workload

console = Console(stderr=True)


@click.group()
def cli() -> None:
    """dagrunner's benchmark suite (issue 5)."""


@cli.command()
@click.argument("workloads", nargs=-1, type=click.Choice(sorted(WORKLOADS), case_sensitive=False))
@click.option("--db", "db", type=click.Choice([*DB_KINDS, "both"]), default="both", show_default=True)
@click.option("--repeat", type=click.IntRange(min=1), default=3, show_default=True, help="Repetitions per workload.")
@click.option("--out", type=click.Path(dir_okay=False, path_type=Path),
              help="JSON file (default benchmarks/results/<timestamp>.json).")  # fmt: skip
@click.option("--quick", is_flag=True, help="Small sizes, to check the harness (see benchmarks/README.md).")
@click.option("--executor", type=click.Choice(["local", "celery"]), default="local", show_default=True,
              help="W1/W2: the scheduler's executor (celery: Redis at $DAGRUNNER_BENCH_BROKER_URL).")  # fmt: skip
@click.option("--workers", type=click.IntRange(min=1), default=1, show_default=True,
              help="W1/W2 with --executor celery: how many `dagrunner worker` processes.")  # fmt: skip
@click.option("--worker-concurrency", type=click.IntRange(min=1), default=4, show_default=True,
              help="W1/W2 with --executor celery: slots of each worker.")  # fmt: skip
@click.option("--schedulers", type=click.IntRange(min=1), default=1, show_default=True,
              help="W1/W2: how many schedulers share the work (more than one needs --db postgres).")  # fmt: skip
@click.option("--task-sleep-ms", type=click.IntRange(min=0), default=0, show_default=True,
              help="W1/W2: each task sleeps this long (0: no-op tasks).")  # fmt: skip
def run(workloads: tuple[str, ...], db: str, repeat: int, out: Path | None, quick: bool, executor: str,
        workers: int, worker_concurrency: int, schedulers: int, task_sleep_ms: int) -> None:  # fmt: skip
    """Run WORKLOADS (default: all of W1..W6) on each database, --repeat times each."""
    signal.signal(signal.SIGTERM, _exit_on_sigterm)  # clean up (schedulers, databases) as on Ctrl-C
    names = [w.upper() for w in workloads] or sorted(WORKLOADS)
    dbs = list(DB_KINDS) if db == "both" else [db]
    if schedulers > 1 and "sqlite" in dbs:
        raise click.UsageError("--schedulers above 1 needs --db postgres (SQLite allows one scheduler)")
    sizes = dataclasses.replace(QUICK if quick else FULL, executor=executor, workers=workers,
                                worker_concurrency=worker_concurrency, schedulers=schedulers,
                                task_sleep_ms=task_sleep_ms)  # fmt: skip
    started = datetime.now(UTC)
    out = out or REPO / "benchmarks" / "results" / f"{started:%Y%m%dT%H%M%SZ}.json"
    document = {
        "schema": 1,
        "command": ["python", "-m", "benchmarks", *sys.argv[1:]],
        "started_at": started.isoformat(),
        "options": {"workloads": names, "dbs": dbs, "repeat": repeat, "quick": quick, "sizes": sizes.as_dict()},
        "databases": {
            "sqlite": "a file in each repetition's project folder",
            "postgres": describe(pg_server_url()) + " (a fresh database per repetition)",
        },  # fmt: skip
        "machine": machine_info(),
        "git": git_info(),
    }
    results: list[WorkloadResult] = []
    for name in names:
        for kind in dbs:
            results.append(run_workload(WORKLOADS[name], kind, sizes, repeat))
            document["results"] = [r.as_dict() for r in results]
            write_json(out, document)  # after every workload: a crash or Ctrl-C keeps what was measured
    finished = datetime.now(UTC)
    ok = not any(r.status == FAILED for r in results)
    document.update(finished_at=finished.isoformat(), duration_s=(finished - started).total_seconds(), ok=ok)
    write_json(out, document)
    report.render(results, Console(width=None if sys.stdout.isatty() else 180), quick=quick)
    console.print(f"results: {out}  ({(finished - started).total_seconds():.0f}s)")
    if not ok:
        console.print("[bold red]some workloads failed: see above[/]")
        sys.exit(1)


def run_workload(workload: Workload, db: str, sizes: Sizes, repeat: int) -> WorkloadResult:
    result = WorkloadResult(workload.name, workload.title, db, workload.metrics, sizes.quick)
    why_not = workload.unavailable()
    if why_not:
        result.status, result.error = NOT_AVAILABLE, why_not
        console.print(f"[yellow]{workload.name} {db}: not available: {why_not}[/]")
        return result
    for index in range(repeat):
        console.print(f"{workload.name} {db} repetition {index + 1}/{repeat} ...", end=" ")
        rep = Repetition(index, datetime.now(UTC).isoformat())
        began = time.monotonic()
        load_before = os.getloadavg()[0]
        try:
            rep.figures, rep.details = workload.run_once(db, sizes)
        except Exception as exc:  # noqa: BLE001 - every failure is recorded and fails the suite
            rep.error = _describe(exc)
        rep.duration_s = time.monotonic() - began
        # The 1-minute load average around the repetition: figures taken on a busy machine say so.
        rep.details.update(loadavg_1m_before=load_before, loadavg_1m_after=os.getloadavg()[0])
        result.repetitions.append(rep)
        if rep.error is not None:
            console.print(f"[bold red]FAILED[/] after {rep.duration_s:.1f}s\n{rep.error}")
            result.status, result.error = FAILED, rep.error
            break  # the next repetitions would fail the same way; say so once, loudly
        console.print(f"{rep.duration_s:.1f}s  " + ", ".join(f"{k}={report.fmt(v)}" for k, v in rep.figures.items()))
    return result


def _exit_on_sigterm(signum: int, _frame: FrameType | None) -> None:
    raise SystemExit(128 + signum)


def _describe(exc: Exception) -> str:
    notes = "".join(f"\n{note}" for note in getattr(exc, "__notes__", []))
    if isinstance(exc, BenchmarkError):
        return f"{type(exc).__name__}: {exc}{notes}"
    return "".join(traceback.format_exception(exc)).strip()


def main() -> None:
    cli(prog_name="python -m benchmarks")
