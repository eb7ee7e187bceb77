"""Setup and teardown at run time (authoring/setup_teardown.py has the rules and the names).

Two pure rules, both shown by `dagrunner tasks why` under the rule name `setup_teardown`:

- a **teardown** waits until everything directly upstream of it is done and then runs, even when the work
  failed; whether its setups let it run is its trigger rule, `all_done_setup_success` (trigger_rules.py):
  every setup skipped -> skipped, no setup succeeded -> upstream_failed;
- a task **within a setup's scope** (its relevant setups, serialized as `setup_task_ids`) runs only once those
  setups succeeded, whatever its own trigger rule: a failed setup makes it upstream_failed, a skipped one
  skipped.

And what `tasks clear` also clears (`clear_closure`).
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass

from dagrunner.authoring.setup_teardown import with_setups_and_teardowns
from dagrunner.loading.serialization import SerializedDag, TaskSpec
from dagrunner.scheduling.trigger_rules import RuleOutcome, UpstreamCounts
from dagrunner.states import TaskInstanceState

_DONE = frozenset(
    {
        TaskInstanceState.SUCCESS,
        TaskInstanceState.SKIPPED,
        TaskInstanceState.FAILED,
        TaskInstanceState.UPSTREAM_FAILED,
        TaskInstanceState.REMOVED,
    }
)


@dataclass(frozen=True)
class SetupFacts:
    """What the setup/teardown rule looks at for one task instance."""

    is_teardown: bool
    setup_ids: tuple[str, ...]
    setups: UpstreamCounts  # the setups' instances, counted by state
    not_succeeded: tuple[str, ...] = ()  # setups with an instance that did not (yet) succeed
    unfinished: tuple[str, ...] = ()  # a teardown's direct upstream tasks that are not done yet


def setup_facts(spec: TaskSpec, states: Mapping[str, Sequence[TaskInstanceState]]) -> SetupFacts | None:
    """The facts for `spec`'s instance in a run with these task states; None for a task with no setups."""
    if not spec.setup_task_ids:
        return None
    listed = [s for setup_id in spec.setup_task_ids for s in states.get(setup_id, ())]
    not_succeeded = tuple(
        s for s in spec.setup_task_ids if any(x != TaskInstanceState.SUCCESS for x in states.get(s, ()))
    )
    unfinished: tuple[str, ...] = ()
    if spec.is_teardown:
        unfinished = tuple(u for u in spec.upstream_task_ids if any(x not in _DONE for x in states.get(u, ())))
    return SetupFacts(spec.is_teardown, spec.setup_task_ids, UpstreamCounts.of(listed), not_succeeded, unfinished)


def evaluate_setup_rule(facts: SetupFacts) -> RuleOutcome:
    """The teardown rule or the setup-scope rule (see the module docstring)."""
    names = ", ".join(facts.setup_ids)
    up = facts.setups
    if facts.is_teardown:
        if up.all_done and up.success == 0:
            return RuleOutcome(
                False, f"teardown of {names}: no setup succeeded ({up.describe()}), nothing to tear down"
            )
        if facts.unfinished:
            return RuleOutcome(False, f"teardown of {names}: {_teardown_waits(facts)}")
        return RuleOutcome(True, f"teardown of {names}: everything upstream is done; runs even if the work failed")
    pending = ", ".join(facts.not_succeeded)
    if up.failed or up.upstream_failed:
        return RuleOutcome(
            False,
            f"setup {pending} did not succeed ({up.describe()}): the tasks that work within it do not run",
            TaskInstanceState.UPSTREAM_FAILED,
        )
    if up.skipped:
        return RuleOutcome(
            False,
            f"setup {pending} was skipped ({up.describe()}): the tasks that work within it are skipped too",
            TaskInstanceState.SKIPPED,
        )
    if not up.all_done:
        return RuleOutcome(False, f"waits for setup {pending} to succeed ({up.describe()})")
    return RuleOutcome(True, f"setup {names} succeeded")


def _teardown_waits(facts: SetupFacts) -> str:
    setups = ", ".join(u for u in facts.unfinished if u in facts.setup_ids)
    work = ", ".join(u for u in facts.unfinished if u not in facts.setup_ids)
    if not work:
        return f"waits for setup {setups} to succeed; then runs once the work is done, even if it fails"
    if not setups:
        return f"waits for {work} to finish; runs even if they fail"
    return f"waits for setup {setups} to succeed and for {work} to finish; runs even if they fail"


def clear_closure(dag: SerializedDag, task_ids: Collection[str]) -> set[str]:
    """`task_ids` plus their relevant setups, those setups' teardowns, and the teardowns of setups among them."""
    setups = {t.task_id for t in dag.tasks if t.is_setup}
    if not setups:
        return set(task_ids)
    teardowns = {t.task_id for t in dag.tasks if t.is_teardown}
    return with_setups_and_teardowns(dag.graph, setups, teardowns, task_ids)
