"""`dagrun_timeout`: a running run older than its DAG's timeout fails, and what it had not finished is skipped.

Airflow's rule: the age counts from the run's `start_date` (when it started running; a queued run held
by max_active_runs does not age); when it passes, the run fails and each unfinished task instance becomes
`skipped`. A queued or running try of such an instance is fenced out: its worker's report no longer
matches the instance, and it is stopped where the executor can stop it. The DAG's on_failure_callback
gets `reason` "timed_out".

Pure over the run's row and the DAG: the scheduler asks `deadline` for its wake-up timer (so a run with
nothing else happening is still failed on time) and `overdue` when it decides the run.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime, timedelta

from dagrunner.loading.serialization import SerializedDag
from dagrunner.persistence.audit import TIRow
from dagrunner.persistence.models import DagRun
from dagrunner.scheduling.dag_callbacks import REASON_TIMED_OUT, RunEnding
from dagrunner.states import FINISHED, DagRunState


def deadline(dag: SerializedDag, run: DagRun) -> datetime | None:
    """When `run` times out: its start plus the DAG's dagrun_timeout; None without either, or once finished."""
    if dag.dagrun_timeout is None or run.start_date is None or run.state != DagRunState.RUNNING:
        return None
    return run.start_date + timedelta(seconds=dag.dagrun_timeout)


def overdue(dag: SerializedDag, run: DagRun, now: datetime) -> RunEnding | None:
    """How the run ends if its deadline has passed at `now`, else None."""
    when = deadline(dag, run)
    if when is None or now < when:
        return None
    assert dag.dagrun_timeout is not None
    return RunEnding(
        DagRunState.FAILED, f"dagrun_timeout of {_duration(dag.dagrun_timeout)} exceeded", REASON_TIMED_OUT
    )


def unfinished(tis: Iterable[TIRow]) -> list[TIRow]:
    """The instances a timed-out run skips: every one not finished (running and queued tries included)."""
    return [ti for ti in tis if ti.state not in FINISHED]


def earliest(timer: datetime | None, other: datetime | None) -> datetime | None:
    """The earlier of two optional wake-up times."""
    return min((t for t in (timer, other) if t is not None), default=None)


def _duration(seconds: float) -> str:
    """`600s (0:10:00)`: the seconds, and the clock form people set it with."""
    return f"{seconds:g}s ({timedelta(seconds=seconds)})"
