"""Human-in-the-loop operators (Airflow 3.1's names and arguments): a task that waits for a person.

    review = ApprovalOperator(task_id="review", subject="Pay {{ params.amount }}?", assigned_users=["maria"],
                              execution_timeout=timedelta(days=2), escalate_after=timedelta(hours=8),
                              on_escalate=FileNotifier(path="alerts.log", message="{{ ti.task_id }} waits"))

How it waits: the first try renders `subject` and `body`, raises `DeferTask` with what to ask, and ends;
the worker writes the request and records the instance `deferred` (no slot, no process). An answer
(`dagrunner tasks approve|reject|respond`), the timeout's `defaults` or the escalation moment wakes it for
a new try, which finds why in `ti.next_method` / `ti.next_kwargs`:

- `resume`: the answer is the task's result, `{"chosen_options": [...], "params_input": {...},
  "responded_by": ..., "comment": ...}` (the `return_value` XCom). An answer is data: never rendered.
- `escalate`: `escalate_after` passed without an answer: `on_escalate` runs (callables or notifiers,
  called with the context), and the task waits again.

`execution_timeout` is the wait's deadline (counted from the request): past it the `defaults` become the
answer (responded_by "timeout"), or, without defaults, the task fails. The scheduler decides that.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import timedelta
from typing import Any

from dagrunner.authoring.baseoperator import BaseOperator
from dagrunner.authoring.params import check_value, form_schema
from dagrunner.authoring.skipping import branch_skip_ids, short_circuit_skip_ids
from dagrunner.errors import DeferTask, InvalidArgumentError, ParamValidationError

__all__ = ["ApprovalOperator", "HITLBranchOperator", "HITLEntryOperator", "HITLOperator"]

APPROVE, REJECT = "Approve", "Reject"
#: `ti.next_method` of a woken deferred instance (set by the side that woke it).
RESUME, ESCALATE = "resume", "escalate"


class HITLOperator(BaseOperator):
    """Ask a person to choose among `options` (several when `multiple`) and fill in `params` (a form of
    `Param`s); the answer is the task's result. `defaults` answer for them at the timeout."""

    template_fields = ("subject", "body")

    def __init__(
        self,
        *,
        subject: str,
        options: Sequence[str] | None = None,
        body: str | None = None,
        defaults: str | Sequence[str] | None = None,
        multiple: bool = False,
        params: Mapping[str, Any] | None = None,
        assigned_users: str | Sequence[str] | None = None,
        escalate_after: timedelta | float | None = None,
        on_escalate: Any = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        check = self._arg_check
        self.subject = check.string("subject", subject)
        self.body = check.optional_string("body", body)
        self.options = check.string_list("options", list(options) if isinstance(options, tuple) else options or [])
        if not self.options or len(set(self.options)) != len(self.options):
            check.fail("options", options, "a non-empty list of distinct option names")
        self.multiple = check.boolean("multiple", multiple)
        self.defaults: list[str] | None = None
        if defaults is not None:
            self.defaults = [defaults] if isinstance(defaults, str) else check.string_list("defaults", list(defaults))
            wrong = [d for d in self.defaults if d not in self.options]
            if wrong or not self.defaults or (len(self.defaults) > 1 and not self.multiple):
                check.fail("defaults", defaults, f"one of the options ({', '.join(self.options)}), several only "
                                                 "with multiple=True")  # fmt: skip
        try:
            self.form = form_schema(check.mapping("params", params))
        except ParamValidationError as exc:
            check.fail("params", params, f"a mapping of names to Params or default values ({exc})")
        users = [assigned_users] if isinstance(assigned_users, str) else assigned_users
        self.assigned_users = check.string_list("assigned_users", list(users or []))
        self.escalate_after = check.optional_duration("escalate_after", escalate_after, positive=True)
        self.on_escalate = check.callbacks("on_escalate", on_escalate)
        if self.on_escalate and self.escalate_after is None:
            check.fail("on_escalate", on_escalate, "given together with escalate_after=timedelta(...)")

    # --- the three tries: ask, escalate, resume -------------------------------------------------------

    def execute(self, context: Mapping[str, Any]) -> Any:
        ti = context["ti"]
        method = getattr(ti, "next_method", None)
        if method == RESUME:
            return self.execute_complete(context, dict((ti.next_kwargs or {})["response"]))
        if method == ESCALATE:
            raise DeferTask(task_id=self.task_id, request={"escalation": True, "errors": self._escalate(context)})
        raise DeferTask(task_id=self.task_id, request=self.request())

    def request(self) -> dict[str, Any]:
        """What a person is asked (subject and body already rendered), as the worker stores it."""
        return {
            "subject": self.subject,
            "body": self.body,
            "options": list(self.options),
            "defaults": self.defaults,
            "multiple": self.multiple,
            "params": self.form,
            "assigned_users": list(self.assigned_users),
            "timeout_s": self.execution_timeout.total_seconds() if self.execution_timeout else None,
            "escalate_after_s": self.escalate_after.total_seconds() if self.escalate_after else None,
        }

    def execute_complete(self, context: Mapping[str, Any], response: dict[str, Any]) -> Any:  # noqa: ARG002
        """The answer, checked again against the options and the form (it was checked when given)."""
        chosen = list(response.get("chosen_options") or [])
        if not chosen or any(c not in self.options for c in chosen) or (len(chosen) > 1 and not self.multiple):
            raise InvalidArgumentError(f"task {self.task_id!r}: the answer chose {chosen!r}; options: {self.options}")
        for name, value in (response.get("params_input") or {}).items():
            if name in self.form:
                check_value(self.form[name], value, name=name)
        return response

    def _escalate(self, context: Mapping[str, Any]) -> list[str]:
        """Run `on_escalate`; one line per callable that raised (printed to the log, never re-raised)."""
        import sys
        import traceback

        errors = []
        for callback in self.on_escalate:
            try:
                callback(context)
            except Exception as exc:  # noqa: BLE001 - an escalation never decides the task's outcome
                traceback.print_exception(type(exc), exc, exc.__traceback__, file=sys.stderr)
                name = getattr(callback, "__qualname__", None) or type(callback).__name__
                errors.append(f"on_escalate {name}: {type(exc).__name__}: {exc}")
        return errors


class ApprovalOperator(HITLOperator):
    """Approve or Reject. Approve continues; Reject skips everything downstream (only the direct downstream
    tasks with `ignore_downstream_trigger_rules=False`), or fails the task with `fail_on_reject=True`. The
    approval task itself succeeds either way (as in Airflow)."""

    is_branch = True  # its result decides what downstream is skipped (`branches_to_skip`)

    def __init__(
        self,
        *,
        subject: str,
        ignore_downstream_trigger_rules: bool = True,
        fail_on_reject: bool = False,
        defaults: str | Sequence[str] | None = None,
        **kwargs: Any,
    ) -> None:
        if "options" in kwargs:
            raise InvalidArgumentError("ApprovalOperator's options are always Approve and Reject; do not pass options")
        super().__init__(subject=subject, options=[APPROVE, REJECT], defaults=defaults, multiple=False, **kwargs)
        self.ignore_downstream_trigger_rules = self._arg_check.boolean(
            "ignore_downstream_trigger_rules", ignore_downstream_trigger_rules
        )
        self.fail_on_reject = self._arg_check.boolean("fail_on_reject", fail_on_reject)

    def execute_complete(self, context: Mapping[str, Any], response: dict[str, Any]) -> Any:
        response = super().execute_complete(context, response)
        if self.fail_on_reject and response["chosen_options"] == [REJECT]:
            from dagrunner.errors import FailTask

            raise FailTask(f"rejected by {response.get('responded_by')}: {response.get('comment') or 'no comment'}")
        return response

    def branches_to_skip(self, result: object) -> set[str]:
        approved = isinstance(result, dict) and result.get("chosen_options") == [APPROVE]
        return short_circuit_skip_ids(self.dag.graph, self.task_id, condition=approved,
                                      ignore_downstream_trigger_rules=self.ignore_downstream_trigger_rules)  # fmt: skip


class HITLBranchOperator(HITLOperator):
    """A person picks the branch: each option is a downstream task id (or a label mapped to one by
    `options_mapping`); the chosen ones run, the other direct downstream tasks are skipped."""

    is_branch = True

    def __init__(self, *, options_mapping: Mapping[str, str] | None = None, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.options_mapping = {
            k: str(v) for k, v in self._arg_check.mapping("options_mapping", options_mapping).items()
        }
        wrong = set(self.options_mapping) - set(self.options)
        if wrong:
            self._arg_check.fail("options_mapping", options_mapping, f"keys among the options {self.options}")

    def branches_to_skip(self, result: object) -> set[str]:
        chosen = result.get("chosen_options", []) if isinstance(result, dict) else []
        ids = [self.options_mapping.get(c, c) for c in chosen]
        groups = self.dag.task_group_dict
        roots = {gid: [t.task_id for t in group.roots] for gid, group in groups.items()}
        return branch_skip_ids(self.dag.graph, self.task_id, ids, roots)


class HITLEntryOperator(HITLOperator):
    """A form to fill in (`params`); one option, "OK", which is also the default."""

    def __init__(
        self,
        *,
        subject: str,
        params: Mapping[str, Any] | None = None,
        options: Sequence[str] | None = None,
        defaults: str | Sequence[str] | None = None,
        **kwargs: Any,
    ) -> None:
        options = list(options) if options else ["OK"]
        if defaults is None and options == ["OK"]:
            defaults = ["OK"]
        super().__init__(subject=subject, options=options, defaults=defaults, params=params, **kwargs)
