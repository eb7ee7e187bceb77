"""When a failed try may be tried again: DESIGN section 4's formula, as a pure function."""

from __future__ import annotations

import hashlib
import math
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from dagrunner.execution.runnable import RunnableTask
    from dagrunner.loading.serialization import TaskSpec


MAX_DELAY_S = 86400


def retry_delay_s(
    *,
    retry_delay_s: float,
    exponential_base: float,
    max_retry_delay_s: float | None,
    dag_id: str,
    task_id: str,
    logical_date: datetime,
    try_number: int,
) -> float:
    """Seconds to wait after try `try_number` failed before the next try may start.

    `exponential_base` 0 or 1 means a fixed delay. With backoff, the delay doubles (or grows by the base)
    per try, plus a jitter derived from a hash of the task instance and try, so that many tasks failing
    together do not retry together, yet a given try always waits the same (reproducible audits and tests).
    `max_retry_delay_s` caps the result in both modes (Airflow caps only with backoff; we always do).
    """
    delay = float(retry_delay_s)
    if exponential_base not in (0, 1):
        base = math.ceil(retry_delay_s * exponential_base ** (try_number - 1))
        base = max(1, base)
        seed = f"{dag_id}#{task_id}#{logical_date}#{try_number}".encode()
        jitter = int(hashlib.sha1(seed).hexdigest(), 16) % base
        delay = float(min(base + jitter, MAX_DELAY_S))
    if max_retry_delay_s is not None:
        delay = min(delay, max_retry_delay_s)
    return delay


def next_try_at(failed_at: datetime, delay_s: float) -> datetime:
    return failed_at + timedelta(seconds=delay_s)


@dataclass(frozen=True)
class RetryPolicy:
    """A task's retry arguments in seconds, from a live task or its serialized spec (same numbers)."""

    retries: int = 0
    retry_delay_s: float = 300.0
    exponential_base: float = 0.0  # 0 or 1: fixed delay
    max_retry_delay_s: float | None = None

    @classmethod
    def none(cls) -> RetryPolicy:
        """No retries (a task whose definition is no longer known)."""
        return cls()

    @classmethod
    def from_task(cls, task: RunnableTask) -> RetryPolicy:
        max_delay = task.max_retry_delay
        return cls(
            retries=task.retries,
            retry_delay_s=task.retry_delay.total_seconds(),
            exponential_base=float(task.retry_exponential_backoff),
            max_retry_delay_s=None if max_delay is None else _seconds(max_delay),
        )

    @classmethod
    def from_spec(cls, spec: TaskSpec) -> RetryPolicy:
        return cls(
            retries=spec.retries,
            retry_delay_s=spec.retry_delay,
            exponential_base=spec.retry_exponential_backoff,
            max_retry_delay_s=spec.max_retry_delay,
        )

    def delay_s(self, *, dag_id: str, task_id: str, logical_date: datetime, try_number: int) -> float:
        """`retry_delay_s(...)` for this policy: how long after try `try_number` failed the next may start."""
        return retry_delay_s(
            retry_delay_s=self.retry_delay_s,
            exponential_base=self.exponential_base,
            max_retry_delay_s=self.max_retry_delay_s,
            dag_id=dag_id,
            task_id=task_id,
            logical_date=logical_date,
            try_number=try_number,
        )


def _seconds(value: timedelta | float) -> float:
    return value.total_seconds() if isinstance(value, timedelta) else float(value)
