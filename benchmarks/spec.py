"""What a workload declares: its metrics and their targets, and the sizes it runs at (full or --quick)."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any, Literal

#: PostgreSQL figures may be this much worse than the SQLite targets (issue 5: "within 2x").
PG_FACTOR = 2.0


@dataclass(frozen=True)
class Target:
    """A goal for one metric: `value` is the SQLite goal; time and rate goals are PG_FACTOR looser on PostgreSQL."""

    value: float
    op: Literal["<=", ">="]
    #: False for goals that do not depend on database speed (a ratio, a memory size).
    scales_on_pg: bool = True

    def for_db(self, db: str) -> float:
        if db != "postgres" or not self.scales_on_pg:
            return self.value
        return self.value * PG_FACTOR if self.op == "<=" else self.value / PG_FACTOR

    def met(self, figure: float, db: str) -> bool:
        goal = self.for_db(db)
        return figure <= goal if self.op == "<=" else figure >= goal


@dataclass(frozen=True)
class Metric:
    key: str
    label: str
    unit: str
    target: Target | None = None


@dataclass(frozen=True)
class Sizes:
    """How big each workload is. `QUICK` shrinks everything for a fast check of the harness itself."""

    quick: bool
    parallelism: int = 8
    w1_tasks: int = 200
    w2_chain: int = 50
    w3_dates: int = 30
    w3_tasks: int = 5
    w3_long_dates: int | None = 365  # None: the long variant is skipped
    w3_long_tasks: int = 10
    w4_files: int = 200
    w4_tasks: int = 10
    w5_runs: int = 20_000
    w5_tis_per_run: int = 50
    w5_active_tasks: int = 10
    w5_ticks: int = 200
    w6_dags: int = 1000
    w6_tasks: int = 10
    w7_messages: int = 30
    #: W8: DAGs in the list, the grid's runs x tasks, and timed calls of each page (idle, then under W1).
    w8_dags: int = 1000
    w8_grid_runs: int = 100
    w8_grid_tasks: int = 50
    w8_calls: int = 50
    #: W1/W2: the executor (`--executor`); with celery, how many `dagrunner worker`s of how many slots each.
    executor: str = "local"
    workers: int = 1
    worker_concurrency: int = 4
    #: W1/W2: how many `dagrunner scheduler` processes share the work (`--schedulers`; more than one: PostgreSQL).
    schedulers: int = 1
    #: W1/W2: how long each task sleeps (`--task-sleep-ms`; 0: no-op tasks).
    task_sleep_ms: int = 0
    #: Bounds on waiting for work to finish (seconds); a workload that takes longer fails loudly.
    run_timeout_s: float = 180.0
    backfill_timeout_s: float = 300.0
    w6_timeout_s: float = 900.0

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


FULL = Sizes(quick=False)
QUICK = Sizes(
    quick=True,
    w1_tasks=20,
    w2_chain=10,
    w3_dates=5,
    w3_long_dates=None,
    w4_files=20,
    w5_runs=200,
    w5_ticks=20,
    w6_dags=20,
    w7_messages=5,
    w8_dags=100,
    w8_grid_runs=20,
    w8_grid_tasks=10,
    w8_calls=10,
    run_timeout_s=120.0,
    backfill_timeout_s=120.0,
    w6_timeout_s=120.0,
)
