"""Per-try overhead of the executors, without the scheduler: how long one no-op try takes end to end.

    python -m benchmarks.per_try [--db sqlite|postgres] [--runs 5] [--n 100] [--tries 200] [--json FILE]

Figures (each a median over `--runs` repetitions, every repetition a fresh executor on one database):
- `local seq`: one try at a time through the LocalExecutor (parallelism 1): submit -> `finished` event,
  median per try (ms), after warm-up tries that import the DAG file in the worker.
- `inline seq`: the same through the InlineExecutor (no process boundary, no isolation).
- `db begin` / `db finish`: the two recording transactions alone (`attempt.begin` / `attempt.finish`),
  in this process, ms per call.
- `local pN`: `--tries` independent tries submitted at once to a warm LocalExecutor with parallelism N
  (2 and 8): tries per second from the first submit to the last `finished` event, and the CPU time per
  try of this process and all below it (executor, workers, task processes; robust to a noisy machine).
Every try must end `success`, or the run fails.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, select

from benchmarks.dagfiles import wide_dag
from benchmarks.databases import DB_KINDS, fresh_database
from dagrunner.execution import attempt
from dagrunner.execution.base import Executor, RunFacts, TaskKey, WorkItem
from dagrunner.execution.inline import InlineExecutor
from dagrunner.execution.local import LocalExecutor
from dagrunner.execution.runner import TryOutcome
from dagrunner.persistence import audit
from dagrunner.persistence.engine import make_engine, session_scope
from dagrunner.persistence.models import DagRun, DagRunType, TaskInstance
from dagrunner.persistence.schema import init_db
from dagrunner.settings import Settings
from dagrunner.states import DagRunState, TaskInstanceState

ACTOR = "bench@host: per_try"
DAG_ID = "per_try"
LOGICAL = datetime(2026, 1, 5, tzinfo=UTC)
WARMUP = 5


class Bench:
    """One project (dags folder, logs, database) in which runs of queued no-op tries are made."""

    def __init__(self, root: Path, db_url: str, tasks: int) -> None:
        self.root = root
        self.tasks = tasks
        dags = root / "dags"
        dags.mkdir()
        self.fileloc = str(dags / "per_try.py")
        Path(self.fileloc).write_text(wide_dag(DAG_ID, tasks))
        self.settings = Settings.load(
            overrides={
                "db_url": db_url,
                "dags_folder": str(dags),
                "plugins_folder": str(root / "plugins"),
                "logs_folder": str(root / "logs"),
                "parallelism": 8,
            },
            environ={},
            home=root,
        )
        self.engine: Engine = make_engine(db_url)
        init_db(self.engine)
        self.runs = 0

    def queued_items(self, count: int) -> list[WorkItem]:
        """A new run whose first `count` tasks are queued (one transaction, as a scheduler tick would)."""
        if count > self.tasks:
            raise ValueError(f"{count} tries asked for, the DAG has {self.tasks} tasks")
        self.runs += 1
        logical = LOGICAL + timedelta(days=self.runs)
        run_id = f"manual__{logical.isoformat()}"
        task_ids = [f"t{i:04d}" for i in range(count)]
        with session_scope(self.engine) as session:
            run = DagRun(
                dag_id=DAG_ID, run_id=run_id, run_type=DagRunType.MANUAL, logical_date=logical,
                data_interval_start=logical, data_interval_end=logical + timedelta(days=1), run_after=logical,
                state=DagRunState.RUNNING, conf={}, start_date=logical,
            )  # fmt: skip
            tis = [TaskInstance(dag_id=DAG_ID, run_id=run_id, task_id=t) for t in task_ids]
            audit.record_created(session, [run, *tis], actor=ACTOR, reason="bench setup", when=logical)
            for ti in tis:
                ti.try_number = 1
            change = audit.Change(TaskInstanceState.QUEUED, logical, ACTOR, "bench: queued")
            audit.transition(session, audit.TASK, tis, change)
        facts = RunFacts("manual", logical, logical, logical + timedelta(days=1), logical)
        return [WorkItem(TaskKey(DAG_ID, run_id, t), 1, self.fileloc, facts) for t in task_ids]

    def check_success(self, items: list[WorkItem]) -> None:
        run_id = items[0].key.run_id
        with session_scope(self.engine, readonly=True) as session:
            states = session.scalars(
                select(TaskInstance.state).where(TaskInstance.dag_id == DAG_ID, TaskInstance.run_id == run_id)
            ).all()
        bad = [s for s in states if s != TaskInstanceState.SUCCESS]
        if bad or len(states) != len(items):
            raise SystemExit(f"run {run_id}: {len(bad)} of {len(states)} tries did not succeed: {sorted(set(bad))}")

    def local(self, parallelism: int) -> LocalExecutor:
        executor = LocalExecutor(self.settings, self.settings.db_url, actor=ACTOR, parallelism=parallelism)
        executor.start()
        return executor

    def inline(self) -> InlineExecutor:
        return InlineExecutor(self.settings, self.engine, actor=ACTOR)


def tree_cpu_s() -> float:
    """CPU seconds used so far by this process and every process below it (workers, forkserver, and the
    reaped task processes, which the kernel adds to their parents' counts)."""
    ticks = os.sysconf("SC_CLK_TCK")
    parents: dict[int, int] = {}
    cpu: dict[int, int] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as handle:
                fields = handle.read().rsplit(")", 1)[1].split()
        except OSError:
            continue
        parents[int(entry)] = int(fields[1])
        cpu[int(entry)] = sum(int(f) for f in fields[11:15])  # utime stime cutime cstime
    me = os.getpid()

    def below(pid: int) -> bool:
        while pid > 1:
            if pid == me:
                return True
            pid = parents.get(pid, 0)
        return False

    return sum(ticks_ for pid, ticks_ in cpu.items() if below(pid)) / ticks


def wait_finished(executor: Executor, count: int, timeout: float = 120.0) -> None:
    deadline = time.monotonic() + timeout
    seen = 0
    while seen < count:
        if time.monotonic() > deadline:
            raise SystemExit(f"only {seen} of {count} tries finished within {timeout:g}s")
        for event in executor.events(1.0):
            if event.kind == "lost":
                raise SystemExit(f"try lost: {event}")
            seen += event.kind == "finished"


def sequential_ms(bench: Bench, executor: Executor, n: int) -> list[float]:
    """ms per try (submit -> finished event), one at a time; warm-up tries first."""
    items = bench.queued_items(WARMUP + n)
    times = []
    for i, item in enumerate(items):
        t0 = time.perf_counter()
        executor.submit(item)
        wait_finished(executor, 1)
        if i >= WARMUP:
            times.append((time.perf_counter() - t0) * 1000)
    bench.check_success(items)
    return times


def throughput(bench: Bench, parallelism: int, tries: int, cpu_ms: list[float] | None = None) -> float:
    """Tries per second through a warm LocalExecutor: every worker ran a try before the clock starts.
    Appends the CPU milliseconds per try of all our processes to `cpu_ms` when given."""
    executor = bench.local(parallelism)
    try:
        warm = bench.queued_items(parallelism)
        for item in warm:
            executor.submit(item)
        wait_finished(executor, len(warm))
        items = bench.queued_items(tries)
        cpu0 = tree_cpu_s()
        t0 = time.perf_counter()
        for item in items:
            executor.submit(item)
        wait_finished(executor, tries)
        elapsed = time.perf_counter() - t0
        if cpu_ms is not None:
            cpu_ms.append((tree_cpu_s() - cpu0) * 1000 / tries)
    finally:
        executor.shutdown(5.0)
    bench.check_success(items)
    return tries / elapsed


def db_ms(bench: Bench, n: int) -> tuple[float, float]:
    """Median ms of `attempt.begin` and `attempt.finish` for a no-op try, in this process."""
    items = bench.queued_items(WARMUP + n)
    task = bench.inline().cache.get_task(bench.fileloc, DAG_ID, items[0].key.task_id)
    outcome = TryOutcome(state="success", exit_code=0)
    begins, finishes = [], []
    policy = attempt.policy_of(task)
    for i, item in enumerate(items):
        t0 = time.perf_counter()
        start = attempt.begin(bench.engine, item, attempt.upstream_of(task), log_file="/dev/null", pid=1, actor=ACTOR)
        t1 = time.perf_counter()
        assert not isinstance(start, str), start
        attempt.finish(bench.engine, item, outcome, policy=policy, actor=ACTOR)
        t2 = time.perf_counter()
        if i >= WARMUP:
            begins.append((t1 - t0) * 1000)
            finishes.append((t2 - t1) * 1000)
    return statistics.median(begins), statistics.median(finishes)


def repeat(runs: int, measure: Callable[[], float]) -> dict[str, Any]:
    values = [measure() for _ in range(runs)]
    return {"median": statistics.median(values), "min": min(values), "max": max(values), "runs": values}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.per_try", description=__doc__.splitlines()[0])
    parser.add_argument("--db", choices=DB_KINDS, default="sqlite")
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--n", type=int, default=100, help="sequential tries per run")
    parser.add_argument("--tries", type=int, default=200, help="tries per throughput run")
    parser.add_argument("--only", default="local,inline,db,p2,p8", help="comma-separated subset")
    parser.add_argument("--json", type=Path, help="also write the figures here")
    args = parser.parse_args(argv)
    wanted = set(args.only.split(","))
    results: dict[str, Any] = {}
    with tempfile.TemporaryDirectory(prefix="dr_per_try_") as tmp, fresh_database(args.db, Path(tmp)) as url:
        bench = Bench(Path(tmp), url, max(args.n + WARMUP, args.tries))
        if "local" in wanted:

            def local_seq() -> float:
                executor = bench.local(1)
                try:
                    return statistics.median(sequential_ms(bench, executor, args.n))
                finally:
                    executor.shutdown(5.0)

            results["local seq ms/try"] = repeat(args.runs, local_seq)
        if "inline" in wanted:
            results["inline seq ms/try"] = repeat(
                args.runs, lambda: statistics.median(sequential_ms(bench, bench.inline(), args.n))
            )
        if "db" in wanted:
            pairs = [db_ms(bench, args.n) for _ in range(args.runs)]
            results["db begin ms"] = repeat(1, lambda: statistics.median(p[0] for p in pairs))
            results["db finish ms"] = repeat(1, lambda: statistics.median(p[1] for p in pairs))
        for p in (2, 8):
            if f"p{p}" in wanted:
                cpu: list[float] = []
                results[f"local p{p} tries/s"] = repeat(
                    args.runs, lambda p=p, cpu=cpu: throughput(bench, p, args.tries, cpu)
                )
                results[f"local p{p} cpu ms/try"] = repeat(1, lambda cpu=cpu: statistics.median(cpu))
        bench.engine.dispose()
    print(f"per-try overhead, {args.db}, {args.runs} runs (n={args.n} sequential, {args.tries} for throughput)")
    for name, figures in results.items():
        spread = f"[{figures['min']:.2f} .. {figures['max']:.2f}]"
        print(f"  {name:<20} {figures['median']:9.2f}   {spread}")
    if args.json:
        args.json.write_text(json.dumps({"db": args.db, "args": vars(args) | {"json": str(args.json)}, **results}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
