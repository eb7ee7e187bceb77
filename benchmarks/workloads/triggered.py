"""W1 wide and W2 chain: a running, idle scheduler; `dagrunner dags trigger`; time until the run succeeded."""

from __future__ import annotations

import json
import os
import time
import uuid
from dataclasses import dataclass
from datetime import datetime

from benchmarks.dagfiles import chain_dag, wide_dag
from benchmarks.errors import CommandFailed, CorrectnessError
from benchmarks.probe import DbProbe, wait_until
from benchmarks.project import Project, WorkerProcess, project_with_db
from benchmarks.spec import Metric, Sizes, Target
from benchmarks.stats import median, percentile
from benchmarks.workloads.base import (
    READY_TIMEOUT_S,
    Details,
    Figures,
    Workload,
    seconds,
    start_idle_scheduler,
    wait_idle,
)


@dataclass
class TriggeredRun:
    run_id: str
    trigger_cli_s: float  # the `dags trigger` command itself
    wall_s: float  # from the trigger command's return to the run's success, seen by polling
    queued_at: datetime
    run_end: datetime
    tries: dict[str, tuple[datetime, datetime]]  # task_id -> (start, end)

    @property
    def first_start(self) -> datetime:
        return min(start for start, _ in self.tries.values())

    @property
    def queued_to_end_s(self) -> float:
        """From the run's creation by the trigger command to its end, by the database's own timestamps.

        The trigger command commits the run before it exits, so a fast scheduler starts (and may even
        finish) the run before the command's return is seen: `wall_s` alone understates then.
        """
        return seconds(self.run_end, self.queued_at)

    @property
    def db_span_s(self) -> float:
        """From the first try's start to the run's end, by the database's own timestamps."""
        return seconds(self.run_end, self.first_start)


def trigger_and_wait(project: Project, sizes: Sizes, dag_id: str, tasks: int) -> TriggeredRun:
    """Start an idle scheduler, trigger `dag_id`, wait for the run to finish, stop the scheduler, check."""
    project.cli("db", "init")
    probe = DbProbe(project.db_url)
    workers = start_workers(project, sizes)
    try:
        args: tuple[str, ...] = ("--parallelism", str(sizes.parallelism))
        if sizes.executor == "celery":
            args += ("--executor", "celery")
        sched = start_idle_scheduler(project, probe, dags=1, args=args)
        others = [project.start_scheduler(*args) for _ in range(sizes.schedulers - 1)]
        try:
            wait_until(lambda: probe.schedulers_running() >= sizes.schedulers, timeout=READY_TIMEOUT_S,
                       what=f"{sizes.schedulers} schedulers to register", check=sched.check_alive)  # fmt: skip
            for other in others:
                wait_idle(other)
            before = time.monotonic()
            out = project.cli("dags", "trigger", dag_id, "--json")
            returned = time.monotonic()
            run_id = json.loads(out.stdout)["run_id"]
            state = wait_until(
                lambda: _finished(probe.run_state(dag_id, run_id)),
                timeout=sizes.run_timeout_s, what=f"run {run_id} of {dag_id} to finish", check=sched.check_alive,
            )  # fmt: skip
            done = time.monotonic()
            code = max([sched.stop(), *(other.stop() for other in others)], key=abs)
        except BaseException:
            for proc in (sched, *others):
                proc.kill()
            raise
        if code != 0:
            raise CommandFailed(f"the scheduler exited {code} after SIGTERM:\n{sched.tail()}")
        probe.assert_all_succeeded(runs=1, task_instances=tasks)
        if state != "success":  # assert_all_succeeded already said why; this is a guard
            raise CorrectnessError(f"run {run_id} ended {state}")
        queued_at, _, run_end = probe.run_row(dag_id, run_id)
        return TriggeredRun(run_id, returned - before, done - returned, queued_at, run_end, probe.tries(dag_id, run_id))
    finally:
        for worker in workers:
            worker.kill()
        probe.close()


def start_workers(project: Project, sizes: Sizes) -> list[WorkerProcess]:
    """With --executor celery: a queue of this repetition's own and `sizes.workers` workers serving it."""
    if sizes.task_sleep_ms:
        project.env["BENCH_TASK_SLEEP_S"] = str(sizes.task_sleep_ms / 1000)
    if sizes.executor != "celery":
        return []
    project.env["DAGRUNNER_CELERY_BROKER_URL"] = os.environ.get(
        "DAGRUNNER_BENCH_BROKER_URL", "redis://127.0.0.1:6379/0"
    )
    project.env["DAGRUNNER_CELERY_DEFAULT_QUEUE"] = f"bench-{uuid.uuid4().hex[:10]}"
    project.env["DAGRUNNER_WORKER_LOG_SERVER_PORT"] = "0"
    return [WorkerProcess(project, i, sizes.worker_concurrency) for i in range(sizes.workers)]


def _finished(state: str | None) -> str | None:
    return state if state in ("success", "failed") else None


class Wide(Workload):
    name = "W1"
    title = "wide: 200 independent no-op tasks, one triggered run, parallelism 8"
    metrics = (
        Metric("trigger_to_success_s", "wall: trigger returned -> run success", "s", Target(0.3, "<=")),
        Metric("tasks_per_s", "tasks / (run end - first try start)", "tasks/s", Target(1000, ">=")),
        Metric("queued_to_success_s", "DB: run created by the trigger -> run end", "s"),
        Metric("run_db_s", "DB: first try start -> run end", "s"),
        Metric("queued_to_first_start_s", "DB: run queued -> first try start", "s"),
        Metric("trigger_cli_s", "wall: `dags trigger` command", "s"),
    )

    def run_once(self, db: str, sizes: Sizes) -> tuple[Figures, Details]:
        with project_with_db(db) as project:
            project.write_dag("wide.py", wide_dag("wide", sizes.w1_tasks))
            run = trigger_and_wait(project, sizes, "wide", sizes.w1_tasks)
        figures = {
            "trigger_to_success_s": run.wall_s,
            "tasks_per_s": sizes.w1_tasks / run.db_span_s,
            "queued_to_success_s": run.queued_to_end_s,
            "run_db_s": run.db_span_s,
            "queued_to_first_start_s": seconds(run.first_start, run.queued_at),
            "trigger_cli_s": run.trigger_cli_s,
        }
        return figures, {"tasks": sizes.w1_tasks, "run_id": run.run_id}


class Chain(Workload):
    name = "W2"
    title = "chain: 50 no-op tasks in a chain, one triggered run"
    metrics = (
        Metric("gap_median_ms", "end of a try -> start of its downstream's, median", "ms", Target(2.0, "<=")),
        Metric("gap_p90_ms", "end of a try -> start of its downstream's, p90", "ms", Target(5.0, "<=")),
        Metric("gap_max_ms", "end of a try -> start of its downstream's, max", "ms"),
        Metric("run_wall_s", "wall: trigger returned -> run success", "s"),
        Metric("queued_to_success_s", "DB: run created by the trigger -> run end", "s"),
        Metric("run_db_s", "DB: first try start -> run end", "s"),
    )

    def run_once(self, db: str, sizes: Sizes) -> tuple[Figures, Details]:
        n = sizes.w2_chain
        with project_with_db(db) as project:
            project.write_dag("chain.py", chain_dag("chain", n))
            run = trigger_and_wait(project, sizes, "chain", n)
        order = [f"t{i:04d}" for i in range(n)]
        gaps = [seconds(run.tries[b][0], run.tries[a][1]) * 1000 for a, b in zip(order, order[1:], strict=False)]
        figures = {
            "gap_median_ms": median(gaps),
            "gap_p90_ms": percentile(gaps, 90),
            "gap_max_ms": max(gaps),
            "run_wall_s": run.wall_s,
            "queued_to_success_s": run.queued_to_end_s,
            "run_db_s": run.db_span_s,
        }
        return figures, {"tasks": n, "run_id": run.run_id, "gaps_ms": [round(g, 3) for g in gaps]}
