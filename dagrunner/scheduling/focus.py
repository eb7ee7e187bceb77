"""What the next tick must look at again: which runs, and within each run which tasks.

A finished try can only change what its direct downstream tasks may do (and, through their decisions,
what lies further down: `plan_run` follows that cascade itself). So an event marks its run with just the
task and its downstream, and the tick decides only those instances instead of every waiting instance of
the run. Anything that may have changed a run in ways we cannot name (a new run, a retry delay that
elapsed, an earlier run finishing for depends_on_past, a lost try, the periodic full scan) marks the
whole run.
"""

from __future__ import annotations

from collections.abc import Iterable

RunRef = tuple[str, str]  # (dag_id, run_id)


class DirtyRuns:
    """RunRef -> the task ids to decide again, or None for every task of the run."""

    def __init__(self) -> None:
        self._runs: dict[RunRef, set[str] | None] = {}

    def whole(self, ref: RunRef) -> None:
        """Decide every waiting instance of `ref` next tick."""
        self._runs[ref] = None

    def whole_many(self, refs: Iterable[RunRef]) -> None:
        for ref in refs:
            self._runs[ref] = None

    def tasks(self, ref: RunRef, task_ids: Iterable[str]) -> None:
        """Decide these tasks of `ref` next tick (on top of whatever was marked already)."""
        if ref in self._runs:
            focus = self._runs[ref]
            if focus is not None:
                focus.update(task_ids)
        else:
            self._runs[ref] = set(task_ids)

    def take(self) -> dict[RunRef, set[str] | None]:
        """Everything marked so far; the set starts empty again."""
        runs, self._runs = self._runs, {}
        return runs

    def __bool__(self) -> bool:
        return bool(self._runs)

    def __contains__(self, ref: object) -> bool:
        return ref in self._runs
