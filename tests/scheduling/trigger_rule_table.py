"""The expected outcome of every trigger rule once all direct upstream tasks are done.

Written as a table of plain predicates from the Airflow documentation's wording, independently of
`dagrunner.scheduling.trigger_rules`, so the tests compare two separate statements of the rules.
"""

from __future__ import annotations

from collections import Counter
from itertools import combinations_with_replacement

UPSTREAM_STATES = ("success", "failed", "skipped", "upstream_failed")
RULES = (
    "all_success", "all_failed", "all_done", "all_done_min_one_success", "all_done_setup_success",
    "one_success", "one_failed", "one_done", "none_failed", "none_failed_min_one_success",
    "none_skipped", "all_skipped", "always",
)  # fmt: skip


def combos() -> list[tuple[str, ...]]:
    """Every multiset of 1 to 3 upstream states."""
    return [c for n in (1, 2, 3) for c in combinations_with_replacement(UPSTREAM_STATES, n)]


def expected(rule: str, upstream: tuple[str, ...]) -> str:
    """`success` when the task runs (and succeeds), else the state it is given instead."""
    c = Counter(upstream)
    n = len(upstream)
    ok, skip, fail = c["success"], c["skipped"], c["failed"] + c["upstream_failed"]
    table = {
        # rule: (runs?, state when it does not run)
        "all_success": (ok == n, "upstream_failed" if fail else "skipped"),
        "all_failed": (fail == n, "skipped"),
        "all_done": (True, None),
        "all_done_setup_success": (True, None),  # no setup tasks: the same as all_done
        "all_done_min_one_success": (skip == 0 and ok >= 1, "skipped" if skip else "upstream_failed"),
        "one_success": (ok >= 1, "skipped" if skip == n else "upstream_failed"),
        "one_failed": (fail >= 1, "skipped"),
        "one_done": (ok + c["failed"] >= 1, "skipped"),
        "none_failed": (fail == 0, "upstream_failed"),
        "none_failed_min_one_success": (fail == 0 and ok >= 1, "upstream_failed" if fail else "skipped"),
        "none_skipped": (skip == 0, "skipped"),
        "all_skipped": (skip == n, "skipped"),
        "always": (True, None),
    }
    runs, otherwise = table[rule]
    return "success" if runs else str(otherwise)
