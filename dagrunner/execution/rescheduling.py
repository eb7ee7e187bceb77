"""A `reschedule` sensor's "not yet", judged where its try is recorded: wait again, or time out.

The try process only knows that its poke said not yet (`RescheduleTask` -> a `TryOutcome` in state
`up_for_reschedule` carrying a `RescheduleAsk`). Whether the sensor has now waited past its `timeout` is
decided by `judge`, a pure function of the time the wait began (the instance's `waiting_since`: the start
of the first try that said not yet, kept across tries and retries, cleared by a clear) and the recording
side's clock, so a fake-clock test steps through a whole wait without sleeping.

- waited < timeout: `up_for_reschedule`, next poke at `now + poke_interval`, but never later than the
  moment the timeout expires, so the last poke happens at the deadline (as the poke loop does).
- waited >= timeout: `failed` without retries (Airflow's AirflowSensorTimeout), or `skipped` with
  `soft_fail`.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from dagrunner.states import TaskInstanceState


@dataclass(frozen=True)
class RescheduleAsk:
    """What a sensor's "not yet" asks for (picklable: it crosses from the task process to its worker)."""

    poke_interval: float
    timeout: float
    soft_fail: bool


@dataclass(frozen=True)
class Verdict:
    """`state` up_for_reschedule (with `next_poke_at`), failed or skipped (with `error`)."""

    state: TaskInstanceState
    next_poke_at: datetime | None = None
    error: str = ""


def judge(ask: RescheduleAsk, *, task_id: str, waiting_since: datetime, now: datetime) -> Verdict:
    """Wait again, or time out (module docstring)."""
    waited = (now - waiting_since).total_seconds()
    if waited >= ask.timeout:
        error = (
            f"sensor {task_id!r} timed out after {waited:.0f}s since its first poke at "
            f"{waiting_since.isoformat(timespec='seconds')} (timeout {ask.timeout:g}s)"
        )
        state = TaskInstanceState.SKIPPED if ask.soft_fail else TaskInstanceState.FAILED
        return Verdict(state, error=error)
    deadline = waiting_since + timedelta(seconds=ask.timeout)
    return Verdict(TaskInstanceState.UP_FOR_RESCHEDULE, min(now + timedelta(seconds=ask.poke_interval), deadline))
