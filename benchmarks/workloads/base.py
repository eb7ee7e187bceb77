"""What every workload is, and the scheduler steps several of them share."""

from __future__ import annotations

import time
from abc import ABC, abstractmethod
from datetime import datetime
from typing import Any, ClassVar

from benchmarks.errors import BenchTimeout
from benchmarks.probe import DbProbe, wait_until
from benchmarks.procfs import cpu_seconds, descendants
from benchmarks.project import Project, SchedulerProcess
from benchmarks.spec import Metric, Sizes
from dagrunner.persistence.models import Dag

Figures = dict[str, float]
Details = dict[str, Any]

#: How long a scheduler may take to register and parse its folder before a workload gives up.
READY_TIMEOUT_S = 180.0
#: "Idle": the scheduler and its workers used less than this much CPU over IDLE_WINDOW_S.
IDLE_CPU_S = 0.02
IDLE_WINDOW_S = 0.3


class Workload(ABC):
    name: ClassVar[str]
    title: ClassVar[str]
    metrics: ClassVar[tuple[Metric, ...]]

    def unavailable(self) -> str | None:
        """Why this workload cannot run with this dagrunner (e.g. a command that does not exist yet)."""
        return None

    @abstractmethod
    def run_once(self, db: str, sizes: Sizes) -> tuple[Figures, Details]:
        """One repetition on a fresh project and database; raises BenchmarkError when it goes wrong."""


def seconds(later: datetime, earlier: datetime) -> float:
    return (later - earlier).total_seconds()


def start_idle_scheduler(
    project: Project, probe: DbProbe, *, dags: int, args: tuple[str, ...] = ()
) -> SchedulerProcess:
    """Start `dagrunner scheduler ARGS` and return once it has registered, parsed `dags` DAGs and gone idle."""
    sched = project.start_scheduler(*args)
    try:
        wait_until(
            lambda: probe.scheduler_registered() and probe.count(Dag, Dag.is_active.is_(True)) >= dags,
            timeout=READY_TIMEOUT_S, interval=0.05, what=f"the scheduler to register and parse {dags} DAG(s)",
            check=sched.check_alive,
        )  # fmt: skip
        wait_idle(sched)
    except BaseException:
        sched.kill()
        raise
    return sched


def wait_idle(sched: SchedulerProcess, timeout: float = 60.0) -> None:
    """Wait until the scheduler and everything it started (forkserver, workers) stop using CPU."""
    deadline = time.monotonic() + timeout
    window: list[float] = []
    while time.monotonic() < deadline:
        sched.check_alive()
        window.append(cpu_seconds([sched.pid, *descendants(sched.pid)]))
        samples = int(IDLE_WINDOW_S / 0.1) + 1
        if len(window) >= samples and window[-1] - window[-samples] < IDLE_CPU_S:
            return
        time.sleep(0.1)
    raise BenchTimeout(f"the scheduler did not go idle within {timeout:g}s")
