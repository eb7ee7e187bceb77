"""W6 scale: 1,000 DAG files x 10 chained tasks, each run once (`@once`, start_date in the past, so the
scheduler creates the runs itself), run by `dagrunner scheduler --num-runs 1000`: throughput and peak RSS."""

from __future__ import annotations

import time
from dataclasses import dataclass

from sqlalchemy import func, select

from benchmarks.dagfiles import chain_dag
from benchmarks.errors import BenchTimeout, CommandFailed
from benchmarks.probe import DbProbe
from benchmarks.procfs import descendants, pss_kb, status_kb
from benchmarks.project import project_with_db
from benchmarks.spec import Metric, Sizes, Target
from benchmarks.workloads.base import Details, Figures, Workload, seconds
from dagrunner.persistence.models import DagRun, TaskInstance, TaskTry

SAMPLE_S = 0.1


@dataclass
class RssPeaks:
    """Peak memory (kB) of the scheduler process itself (VmHWM) and of what it started (forkserver, workers,
    parsers: the peak of their summed PSS, since forked children share most of their pages)."""

    pid: int
    scheduler_hwm_kb: int = 0
    children_sum_kb: int = 0
    child_max_kb: int = 0
    tree_sum_kb: int = 0

    def sample(self) -> None:
        own_hwm = status_kb(self.pid, "VmHWM")
        own = pss_kb(self.pid)
        children = [pss_kb(pid) for pid in descendants(self.pid)]
        self.scheduler_hwm_kb = max(self.scheduler_hwm_kb, own_hwm)
        self.children_sum_kb = max(self.children_sum_kb, sum(children))
        self.child_max_kb = max(self.child_max_kb, max(children, default=0))
        self.tree_sum_kb = max(self.tree_sum_kb, own + sum(children))


class Scale(Workload):
    name = "W6"
    title = "scale: 1,000 DAGs x 10 chained tasks, each run once by `scheduler --num-runs 1000`"
    metrics = (
        Metric("tasks_per_s", "tasks / (last run end - first try start)", "tasks/s"),
        Metric("scheduler_peak_rss_mb", "scheduler process VmHWM", "MB", Target(250, "<=", scales_on_pg=False)),
        Metric("children_peak_pss_mb", "its children (forkserver, workers), peak of the summed PSS", "MB"),
        Metric("child_max_pss_mb", "largest single child PSS", "MB"),
        Metric("run_db_s", "DB: first try start -> last run end", "s"),
        Metric("startup_s", "wall: scheduler start -> first try start (parse, create runs)", "s"),
        Metric("scheduler_wall_s", "wall: scheduler start -> exit", "s"),
    )

    def run_once(self, db: str, sizes: Sizes) -> tuple[Figures, Details]:
        n, tasks = sizes.w6_dags, sizes.w6_tasks
        with project_with_db(db) as project:
            for i in range(n):
                project.write_dag(f"scale_{i:04d}.py", chain_dag(f"scale_{i:04d}", tasks, schedule="@once"))
            project.cli("db", "init")
            probe = DbProbe(project.db_url)
            try:
                began_wall = time.time()
                sched = project.start_scheduler("--parallelism", str(sizes.parallelism), "--num-runs", str(n))
                peaks = RssPeaks(sched.pid)
                try:
                    while sched.alive():
                        peaks.sample()
                        if time.monotonic() - sched.started > sizes.w6_timeout_s:
                            raise BenchTimeout(_progress(probe, sizes, peaks))
                        time.sleep(SAMPLE_S)
                except BaseException:
                    sched.kill()
                    raise
                wall = time.monotonic() - sched.started
                if sched.popen.returncode != 0:
                    raise CommandFailed(f"the scheduler exited {sched.popen.returncode}:\n{sched.tail()}")
                probe.assert_all_succeeded(runs=n, task_instances=n * tasks)
                first, end = probe.span()
            finally:
                probe.close()
        span = seconds(end, first)
        figures = {
            "tasks_per_s": n * tasks / span,
            "scheduler_peak_rss_mb": peaks.scheduler_hwm_kb / 1024,
            "children_peak_pss_mb": peaks.children_sum_kb / 1024,
            "child_max_pss_mb": peaks.child_max_kb / 1024,
            "run_db_s": span,
            "startup_s": first.timestamp() - began_wall,
            "scheduler_wall_s": wall,
        }
        return figures, {"dags": n, "tasks": n * tasks, "tree_peak_pss_mb": peaks.tree_sum_kb / 1024}


def _progress(probe: DbProbe, sizes: Sizes, peaks: RssPeaks) -> str:
    """What was done when the bound ran out: enough to see how far off the scheduler is."""
    total = sizes.w6_dags * sizes.w6_tasks
    done = probe.count(TaskInstance, TaskInstance.state == "success")
    runs_done = probe.count(DagRun, DagRun.state == "success")
    first = probe.scalar(select(func.min(TaskTry.start_date)))
    last = probe.scalar(select(func.max(TaskTry.end_date)))
    rate = done / seconds(last, first) if first and last and last > first else 0.0
    return (
        f"the scheduler did not finish {sizes.w6_dags} runs within {sizes.w6_timeout_s:g}s: {runs_done} runs and "
        f"{done}/{total} task instances succeeded ({rate:.1f} tasks/s between the first try start and the last "
        f"try end so far); scheduler peak RSS so far {peaks.scheduler_hwm_kb / 1024:.0f} MB, children "
        f"{peaks.children_sum_kb / 1024:.0f} MB"
    )
