"""When a failed try may be tried again: DESIGN section 4's formula, as a pure function."""

from __future__ import annotations

import hashlib
import math
from datetime import datetime, timedelta

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
