"""The 13 trigger rules as one pure function of the direct upstream states: Airflow 3's outcomes.

A rule is decided as soon as its outcome is certain, so the function answers three things at once:
whether the task may run now (`passed`), whether it can never run and must become `upstream_failed` or
`skipped` (`new_state`), and a reason a person can read in `dagrunner tasks why`.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from dagrunner.states import TaskInstanceState


@dataclass(frozen=True)
class UpstreamCounts:
    """Direct upstream task instances of one task in one run, counted by state."""

    total: int
    success: int = 0
    skipped: int = 0
    failed: int = 0
    upstream_failed: int = 0
    removed: int = 0

    @property
    def done(self) -> int:
        return self.success + self.skipped + self.failed + self.upstream_failed + self.removed

    @property
    def all_done(self) -> bool:
        return self.done >= self.total

    @classmethod
    def of(cls, states: Iterable[TaskInstanceState | str]) -> UpstreamCounts:
        listed = [TaskInstanceState(s) for s in states]
        return cls(
            total=len(listed),
            success=listed.count(TaskInstanceState.SUCCESS),
            skipped=listed.count(TaskInstanceState.SKIPPED),
            failed=listed.count(TaskInstanceState.FAILED),
            upstream_failed=listed.count(TaskInstanceState.UPSTREAM_FAILED),
            removed=listed.count(TaskInstanceState.REMOVED),
        )

    def describe(self) -> str:
        parts = [f"{n} {name}" for name, n in self._named() if n]
        waiting = self.total - self.done
        if waiting:
            parts.append(f"{waiting} not done")
        return ", ".join(parts) or "no upstream tasks"

    def _named(self) -> list[tuple[str, int]]:
        return [
            ("success", self.success),
            ("skipped", self.skipped),
            ("failed", self.failed),
            ("upstream_failed", self.upstream_failed),
            ("removed", self.removed),
        ]


@dataclass(frozen=True)
class RuleOutcome:
    passed: bool
    reason: str
    new_state: TaskInstanceState | None = None  # set when the task can never run: upstream_failed or skipped


def evaluate_trigger_rule(rule: str, up: UpstreamCounts, setups: UpstreamCounts | None = None) -> RuleOutcome:
    """Decide `rule` against the direct upstream counts `up`; `setups` counts the direct upstream setup tasks
    among them (a teardown's setups), which only `all_done_setup_success` looks at."""
    if up.total == 0 or rule == "always":
        return RuleOutcome(True, f"trigger rule {rule}: no upstream constraint")
    doomed = _setups_doomed(setups) if rule == "all_done_setup_success" else _doomed(rule, up)
    if doomed is not None:
        state, why = doomed
        return RuleOutcome(False, f"trigger rule {rule} can no longer be met: {why} ({up.describe()})", state)
    waiting = _waiting_for(rule, up)
    if waiting:
        return RuleOutcome(False, f"trigger rule {rule} waits: {waiting} ({up.describe()})")
    return RuleOutcome(True, f"trigger rule {rule} is met ({up.describe()})")


def _doomed(rule: str, up: UpstreamCounts) -> tuple[TaskInstanceState, str] | None:
    """The final state when the rule can never pass, decided as early as Airflow decides it."""
    failed_any = up.failed or up.upstream_failed
    match rule:
        case "all_success":
            if failed_any:
                return TaskInstanceState.UPSTREAM_FAILED, "an upstream task failed"
            if up.skipped:
                return TaskInstanceState.SKIPPED, "an upstream task was skipped"
        case "all_failed":
            if up.success or up.skipped:
                return TaskInstanceState.SKIPPED, "an upstream task succeeded or was skipped"
        case "one_success":
            if up.all_done and up.done == up.skipped:
                return TaskInstanceState.SKIPPED, "every upstream task was skipped"
            if up.all_done and up.success == 0:
                return TaskInstanceState.UPSTREAM_FAILED, "every upstream task finished and none succeeded"
        case "one_failed":
            if up.all_done and not failed_any:
                return TaskInstanceState.SKIPPED, "every upstream task finished and none failed"
        case "one_done":
            if up.all_done and not (up.failed or up.success):
                return TaskInstanceState.SKIPPED, "every upstream task finished and none succeeded or failed"
        case "none_failed":
            if failed_any:
                return TaskInstanceState.UPSTREAM_FAILED, "an upstream task failed"
        case "none_failed_min_one_success":
            if failed_any:
                return TaskInstanceState.UPSTREAM_FAILED, "an upstream task failed"
            if up.skipped == up.total:
                return TaskInstanceState.SKIPPED, "every upstream task was skipped"
        case "none_skipped":
            if up.skipped:
                return TaskInstanceState.SKIPPED, "an upstream task was skipped"
        case "all_skipped":
            if up.success or failed_any:
                return TaskInstanceState.SKIPPED, "an upstream task did not skip"
        case "all_done_min_one_success":
            if up.skipped:
                return TaskInstanceState.SKIPPED, "an upstream task was skipped"
            if up.all_done and up.success == 0:
                return TaskInstanceState.UPSTREAM_FAILED, "every upstream task finished and none succeeded"
        case "all_done":
            return None
        case _:
            raise ValueError(f"unknown trigger rule {rule!r}")
    return None


def _setups_doomed(setups: UpstreamCounts | None) -> tuple[TaskInstanceState, str] | None:
    """all_done_setup_success (Airflow's): decided once every setup is done; with no setups, all_done."""
    if setups is None or setups.total == 0 or not setups.all_done:
        return None
    if setups.skipped == setups.total:
        return TaskInstanceState.SKIPPED, "every setup task was skipped"
    if setups.success == 0:
        return TaskInstanceState.UPSTREAM_FAILED, "no setup task succeeded"
    return None


def _waiting_for(rule: str, up: UpstreamCounts) -> str | None:
    """What the rule still waits for, or None when it is met (given it is not doomed)."""
    match rule:
        case "all_success":
            missing = up.total - up.success
            return f"{missing} upstream task(s) not yet successful" if missing > 0 else None
        case "all_failed":
            missing = up.total - up.failed - up.upstream_failed
            return f"{missing} upstream task(s) not yet failed" if missing > 0 else None
        case "one_success":
            return None if up.success else "no upstream task has succeeded yet"
        case "one_failed":
            return None if up.failed or up.upstream_failed else "no upstream task has failed yet"
        case "one_done":
            return None if up.success + up.failed else "no upstream task has succeeded or failed yet"
        case "all_done" | "all_done_setup_success" | "none_skipped" | "all_done_min_one_success":
            left = up.total - up.done
            return f"{left} upstream task(s) not done" if left > 0 else None
        case "none_failed" | "none_failed_min_one_success":
            missing = up.total - up.success - up.skipped
            return f"{missing} upstream task(s) not yet successful or skipped" if missing > 0 else None
        case "all_skipped":
            missing = up.total - up.skipped
            return f"{missing} upstream task(s) not yet skipped" if missing > 0 else None
    raise ValueError(f"unknown trigger rule {rule!r}")
