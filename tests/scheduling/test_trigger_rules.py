"""Every trigger rule against every combination of 1-3 finished upstream states (the pure function)."""

from __future__ import annotations

import pytest

from dagrunner.scheduling.trigger_rules import UpstreamCounts, evaluate_trigger_rule
from dagrunner.states import TaskInstanceState

from .trigger_rule_table import RULES, combos, expected


@pytest.mark.parametrize("rule", RULES)
@pytest.mark.parametrize("upstream", combos(), ids=lambda c: "+".join(c))
def test_rule_outcome_when_upstream_is_done(rule: str, upstream: tuple[str, ...]) -> None:
    outcome = evaluate_trigger_rule(rule, UpstreamCounts.of(upstream))
    want = expected(rule, upstream)
    if want == "success":
        assert outcome.passed and outcome.new_state is None, outcome
    else:
        assert not outcome.passed and outcome.new_state == TaskInstanceState(want), outcome


@pytest.mark.parametrize(
    ("rule", "done", "pending", "decided"),
    [
        # decided as soon as certain, while another upstream still runs
        ("all_success", ["skipped"], 1, "skipped"),
        ("all_success", ["failed"], 2, "upstream_failed"),
        ("none_failed", ["upstream_failed"], 1, "upstream_failed"),
        ("none_skipped", ["skipped"], 1, "skipped"),
        ("all_failed", ["success"], 1, "skipped"),
        ("all_skipped", ["failed"], 1, "skipped"),
        ("all_done_min_one_success", ["skipped"], 1, "skipped"),
        # not yet decided
        ("one_success", ["failed"], 1, None),
        ("one_failed", ["success"], 1, None),
        ("all_done", ["failed"], 1, None),
        ("none_failed_min_one_success", ["skipped"], 1, None),
    ],
)
def test_rules_decide_early_only_when_certain(rule: str, done: list[str], pending: int, decided: str | None) -> None:
    counts = UpstreamCounts.of([*done, *(["running"] * pending)])
    outcome = evaluate_trigger_rule(rule, counts)
    assert not outcome.passed
    assert outcome.new_state == (TaskInstanceState(decided) if decided else None)
    assert rule in outcome.reason


@pytest.mark.parametrize(("rule", "done", "pending"), [("one_success", ["success"], 2), ("one_failed", ["failed"], 2),
                                                       ("one_done", ["failed"], 1)])  # fmt: skip
def test_one_rules_fire_without_waiting(rule: str, done: list[str], pending: int) -> None:
    counts = UpstreamCounts.of([*done, *(["queued"] * pending)])
    assert evaluate_trigger_rule(rule, counts).passed


def test_no_upstream_always_passes() -> None:
    for rule in RULES:
        assert evaluate_trigger_rule(rule, UpstreamCounts.of([])).passed
