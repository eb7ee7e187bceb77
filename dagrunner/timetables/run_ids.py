"""Run ids: how we make them, and the check every user-given one passes (DESIGN sections 4 and 8).

Run ids arrive from the CLI (and later an API), end up in log paths and audit records, and are shown in
terminals, so a user-given one is limited to a safe alphabet and length.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime

from dagrunner.errors import InvalidRunIdError

RUN_TYPES = ("scheduled", "manual", "backfill", "asset_triggered")
RUN_ID_PATTERN = re.compile(r"^[A-Za-z0-9_.~:+-]+$")
MAX_RUN_ID_LENGTH = 250  # Airflow's column width: ids port both ways


def make_run_id(run_type: str, when: datetime) -> str:
    """`"<run_type>__<when in UTC, ISO-8601>"`, e.g. "scheduled__2026-01-05T00:00:00+00:00".

    Seconds precision unless `when` has microseconds, so the usual id is short and stable while two
    manual triggers within one second still get distinct ids. `when` must be aware: a naive time here
    is a bug upstream (which zone was it?), not something to guess.
    """
    if run_type not in RUN_TYPES:
        raise ValueError(f"run_type {run_type!r} is not one of {', '.join(RUN_TYPES)}")
    if when.tzinfo is None or when.utcoffset() is None:
        raise ValueError(f"make_run_id needs a timezone-aware datetime, got {when!r}")
    utc = when.astimezone(UTC)
    stamp = utc.isoformat(timespec="microseconds" if utc.microsecond else "seconds")
    return f"{run_type}__{stamp}"


def validate_run_id(run_id: str) -> str:
    """The run id itself if it is safe to use, else InvalidRunIdError naming the value and the rule.

    Beyond the pattern: not empty, at most MAX_RUN_ID_LENGTH characters, and not only dots ("." and ".."
    match the pattern but mean something else in a path).
    """
    if (
        not isinstance(run_id, str)
        or not RUN_ID_PATTERN.fullmatch(run_id)
        or len(run_id) > MAX_RUN_ID_LENGTH
        or set(run_id) == {"."}
    ):
        shown = run_id if not isinstance(run_id, str) or len(run_id) <= 80 else run_id[:80] + "..."
        raise InvalidRunIdError(
            f"invalid run id {shown!r}: use 1-{MAX_RUN_ID_LENGTH} characters matching "
            f"{RUN_ID_PATTERN.pattern} (letters, digits and _ . ~ : + -), not only dots"
        )
    return run_id
