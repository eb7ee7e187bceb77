"""The setup/teardown rules as pure functions: all_done_setup_success with setups, and the setup scope.

The expected outcomes are written from Airflow's documentation ("a teardown runs if its setup was
successful, even if its work tasks failed; it skips if the setup was skipped") and its trigger rule
(every setup skipped: skipped; no setup succeeded: upstream_failed), not from our code.
"""

from __future__ import annotations

from itertools import combinations_with_replacement

import pytest

from dagrunner.scheduling.readiness import TaskFacts, evaluate
from dagrunner.scheduling.setup_teardown import SetupFacts, evaluate_setup_rule
from dagrunner.scheduling.trigger_rules import UpstreamCounts, evaluate_trigger_rule
from dagrunner.states import TaskInstanceState

from .harness import START

FINISHED = ("success", "failed", "skipped", "upstream_failed")
SETUP_COMBOS = [c for n in (1, 2) for c in combinations_with_replacement(FINISHED, n)]
WORK_COMBOS = [(), *[c for n in (1, 2) for c in combinations_with_replacement(FINISHED, n)]]


def teardown_expected(setups: tuple[str, ...]) -> str:
    """What the teardown becomes once everything upstream is done: its work's states never matter."""
    if all(s == "skipped" for s in setups):
        return "skipped"
    if "success" not in setups:
        return "upstream_failed"
    return "runs"


@pytest.mark.parametrize("setups", SETUP_COMBOS, ids="+".join)
@pytest.mark.parametrize("work", WORK_COMBOS, ids=lambda c: "+".join(c) or "no-work")
def test_teardown_rule_once_everything_upstream_is_done(setups: tuple[str, ...], work: tuple[str, ...]) -> None:
    outcome = evaluate_trigger_rule(
        "all_done_setup_success", UpstreamCounts.of([*setups, *work]), setups=UpstreamCounts.of(setups)
    )
    want = teardown_expected(setups)
    if want == "runs":
        assert outcome.passed and outcome.new_state is None, outcome
    else:
        assert not outcome.passed and outcome.new_state == TaskInstanceState(want), outcome


@pytest.mark.parametrize(
    ("setups", "work", "decided"),
    [
        (["success"], ["running"], None),  # waits for the work, whatever it will end as
        (["success"], ["failed", "queued"], None),
        (["running"], ["none"], None),  # the setup still runs
        (["failed"], ["none"], "upstream_failed"),  # certain once every setup is done
        (["skipped"], ["none"], "skipped"),
        (["success", "running"], ["none"], None),
        (["failed", "running"], ["none"], None),  # the other setup may still succeed
    ],
)
def test_teardown_rule_waits_or_decides_early_only_when_certain(
    setups: list[str], work: list[str], decided: str | None
) -> None:
    outcome = evaluate_trigger_rule(
        "all_done_setup_success", UpstreamCounts.of([*setups, *work]), setups=UpstreamCounts.of(setups)
    )
    assert not outcome.passed
    assert outcome.new_state == (TaskInstanceState(decided) if decided else None)


def test_without_setups_the_rule_is_all_done() -> None:
    for work in WORK_COMBOS[1:]:
        assert evaluate_trigger_rule("all_done_setup_success", UpstreamCounts.of(work)).passed


@pytest.mark.parametrize(
    ("setups", "passed", "new_state"),
    [
        (["success"], True, None),
        (["success", "success"], True, None),
        (["running"], False, None),
        (["success", "queued"], False, None),
        (["failed"], False, "upstream_failed"),
        (["upstream_failed"], False, "upstream_failed"),
        (["success", "failed"], False, "upstream_failed"),
        (["failed", "running"], False, "upstream_failed"),  # certain at once: one setup is enough to fail
        (["skipped"], False, "skipped"),
        (["success", "skipped"], False, "skipped"),
    ],
)
def test_setup_scope_rule(setups: list[str], passed: bool, new_state: str | None) -> None:
    facts = SetupFacts(False, ("s",), UpstreamCounts.of(setups), ("s",) if set(setups) != {"success"} else ())
    outcome = evaluate_setup_rule(facts)
    assert outcome.passed is passed
    assert outcome.new_state == (TaskInstanceState(new_state) if new_state else None)


def test_a_task_within_a_failed_setup_does_not_run_even_with_trigger_rule_all_done() -> None:
    facts = TaskFacts(
        state=TaskInstanceState.NONE,
        trigger_rule="all_done",
        upstream=UpstreamCounts.of(["upstream_failed"]),
        setup=SetupFacts(False, ("create",), UpstreamCounts.of(["failed"]), ("create",)),
    )
    decision = evaluate(facts, START)
    assert decision.new_state == TaskInstanceState.UPSTREAM_FAILED
    (check,) = [c for c in decision.checks if c.rule == "setup_teardown"]
    assert "setup create did not succeed" in check.reason


def test_a_waiting_teardown_names_what_it_waits_for() -> None:
    facts = TaskFacts(
        state=TaskInstanceState.NONE,
        trigger_rule="all_done_setup_success",
        upstream=UpstreamCounts.of(["success", "running", "failed"]),
        setup=SetupFacts(True, ("create",), UpstreamCounts.of(["success"]), (), ("query",)),
    )
    decision = evaluate(facts, START)
    assert not decision.ready and decision.new_state is None
    reasons = {c.rule: c.reason for c in decision.checks}
    assert reasons["setup_teardown"] == "teardown of create: waits for query to finish; runs even if they fail"
