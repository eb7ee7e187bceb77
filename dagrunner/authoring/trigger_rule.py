"""Trigger rules (Airflow's 13) and weight rules: the names a task uses to say when it runs and how urgent it is.

Only the names live here; what each rule decides for a set of upstream states is the scheduler's readiness
code, so authoring stays free of run-time logic.
"""

from __future__ import annotations

from enum import StrEnum


class TriggerRule(StrEnum):
    """When a task may run, given the states of its direct upstream tasks."""

    ALL_SUCCESS = "all_success"
    ALL_FAILED = "all_failed"
    ALL_DONE = "all_done"
    ALL_DONE_MIN_ONE_SUCCESS = "all_done_min_one_success"
    ALL_DONE_SETUP_SUCCESS = "all_done_setup_success"
    ONE_SUCCESS = "one_success"
    ONE_FAILED = "one_failed"
    ONE_DONE = "one_done"
    NONE_FAILED = "none_failed"
    NONE_FAILED_MIN_ONE_SUCCESS = "none_failed_min_one_success"
    NONE_SKIPPED = "none_skipped"
    ALL_SKIPPED = "all_skipped"
    ALWAYS = "always"


class WeightRule(StrEnum):
    """How a task's effective priority is computed from `priority_weight` (Airflow's weight_rule)."""

    DOWNSTREAM = "downstream"  # own weight + all descendants' weights
    UPSTREAM = "upstream"  # own weight + all ancestors' weights
    ABSOLUTE = "absolute"  # own weight only
