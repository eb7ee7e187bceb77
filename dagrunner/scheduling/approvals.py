"""Human approval without a slot, the scheduling side: answers, timeouts and escalations of `deferred`
instances (the worker side, a request made or escalated, is `execution.deferral`).

An instance waits `deferred` with no process. Three things wake it, each moving `deferred -> scheduled`
through `transition()` in one transaction with the request's row, so the regular readiness rules then
queue a new try (which uses no retry: the deferral raised `max_tries`):

- `answer` (the CLI's `tasks approve|reject|respond`): a person's answer, checked against the request's
  options and form (`Param` schemas) before anything is written; a second answer is refused. The try
  gets `next_method="resume"` and the answer in `next_kwargs`; audited `hitl.answered`.
- `wake_due` (every scheduler tick that is due, `Approvals.tick`), at `timeout_at`: with `defaults`, they
  become the answer (responded_by "timeout") and the task resumes; without, the task fails. Audited
  `hitl.timed_out`.
- `wake_due` at `escalate_at` (once: `escalated_at` is stamped here): a try with `next_method="escalate"`
  runs `on_escalate` in the worker and defers again.

An answer is data: it is stored as JSON and handed to the task as a value, never rendered as a template.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from dagrunner.authoring.params import check_value
from dagrunner.errors import ApprovalError, ParamValidationError
from dagrunner.persistence.audit import TASK, Change, TaskRef, record_event, transition
from dagrunner.persistence.hitl import (
    Request,
    describe_wait,
    due_requests,
    mark_escalated,
    next_due,
    request_of,
    write_response,
)
from dagrunner.persistence.models import TaskInstance
from dagrunner.scheduling.readiness import Check
from dagrunner.states import TaskInstanceState

#: `ti.next_method` of a woken instance (the operators in `authoring.operators.hitl` read them).
RESUME, ESCALATE = "resume", "escalate"
APPROVE, REJECT = "Approve", "Reject"
TIMEOUT_RESPONDER = "timeout"

RunRef = tuple[str, str]


# --- answers -----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Answer:
    """What `answer` recorded (the CLI renders it)."""

    dag_id: str
    run_id: str
    task_id: str
    map_index: int
    response: dict[str, Any]

    def line(self) -> str:
        chosen = ", ".join(self.response["chosen_options"])
        return f"{self.dag_id}/{self.run_id}/{self.task_id}: answered {chosen} as {self.response['responded_by']}"


def answer(
    session: Session, dag_id: str, run_id: str, task_id: str, *, map_index: int = -1, options: Sequence[str],
    params: Mapping[str, str] | None = None, comment: str | None = None, responder: str, actor: str, now: datetime,
) -> Answer:  # fmt: skip
    """Answer a waiting request and wake its task; ApprovalError (nothing written) when it cannot be taken."""
    ti = session.scalars(
        select(TaskInstance).where(TaskInstance.dag_id == dag_id, TaskInstance.run_id == run_id,
                                   TaskInstance.task_id == task_id, TaskInstance.map_index == map_index)
        .with_for_update()
    ).first()  # fmt: skip
    where = f"{task_id} in run {run_id} of {dag_id}" + (f" (map index {map_index})" if map_index >= 0 else "")
    if ti is None:
        raise ApprovalError(f"there is no task instance {where}; `dagrunner approvals list` shows what waits")
    request = request_of(session, ti.id, lock=True)
    if request is not None and request.responded_at is not None:
        raise ApprovalError(
            f"{where} was already answered by {request.responded_by} at "
            f"{request.responded_at.isoformat(timespec='seconds')}; an answer cannot be changed"
        )
    if request is None or ti.state != TaskInstanceState.DEFERRED:
        raise ApprovalError(f"{where} is {ti.state.value}, not waiting for an answer; "
                            "`dagrunner approvals list` shows what waits")  # fmt: skip
    chosen = _check_options(request, list(options), where)
    response = {
        "chosen_options": chosen,
        "params_input": parse_form(request.params, params or {}, where),
        "responded_by": responder,
        "comment": comment,
    }
    _wake(session, ti, request, response, actor=actor, now=now,
          reason=f"answered by {responder}: {', '.join(chosen)}" + (f" ({comment})" if comment else ""))  # fmt: skip
    record_event(session, "hitl.answered", actor=actor, when=now, dag_id=dag_id, run_id=run_id, task_id=task_id,
                 map_index=map_index, try_number=ti.try_number, reason=f"answered: {', '.join(chosen)}",
                 detail=response)  # fmt: skip
    return Answer(dag_id, run_id, task_id, map_index, response)


def _check_options(request: Request, chosen: list[str], where: str) -> list[str]:
    choices = ", ".join(request.options)
    if not chosen:
        raise ApprovalError(f"choose an option for {where} with --option (one of: {choices})")
    for option in chosen:
        if option not in request.options:
            if option in (APPROVE, REJECT):
                raise ApprovalError(f"{where} is not an approval (its options: {choices}); answer it with "
                                    "`dagrunner tasks respond ... --option X`")  # fmt: skip
            raise ApprovalError(f"unknown option {option!r} for {where}; choose one of: {choices}")
    if len(set(chosen)) > 1 and not request.multiple:
        raise ApprovalError(f"{where} takes one option (multiple=False), got {len(set(chosen))}: {', '.join(chosen)}")
    return list(dict.fromkeys(chosen))


def parse_form(schemas: Mapping[str, Any], given: Mapping[str, str], where: str) -> dict[str, Any]:
    """The form's values: `given` ("k" -> text from `--param k=v`) checked against each Param's schema
    (text that parses as JSON is taken as JSON, unless the field is a string), defaults for the rest."""
    unknown = set(given) - set(schemas)
    if unknown:
        fields = ", ".join(sorted(schemas)) or "(none)"
        raise ApprovalError(f"{where} has no form field {', '.join(sorted(unknown))}; its fields: {fields}")
    values: dict[str, Any] = {}
    for name, schema in schemas.items():
        if name in given:
            value = _coerce(schema, given[name])
        elif "default" in schema:
            value = schema["default"]
        else:
            raise ApprovalError(f"{where} needs a value for form field {name!r}: add --param {name}=VALUE")
        try:
            values[name] = check_value(schema, value, name=name)
        except ParamValidationError as exc:
            raise ApprovalError(f"{exc} (for {where}); nothing was changed") from None
    return values


def _coerce(schema: Mapping[str, Any], text: str) -> Any:
    types = schema.get("type")
    if types == "string" or (isinstance(types, list) and types == ["string"]):
        return text
    try:
        return json.loads(text)
    except ValueError:
        return text


def parse_params(pairs: Sequence[str]) -> dict[str, str]:
    """`["k=v", ...]` from the command line; ApprovalError for a pair without `=`."""
    result = {}
    for pair in pairs:
        name, sep, value = pair.partition("=")
        if not sep or not name:
            raise ApprovalError(f"--param {pair!r} is not NAME=VALUE")
        result[name] = value
    return result


# --- the scheduler's side: timeouts and escalations ----------------------------------------------------


def wake_due(session: Session, now: datetime, *, actor: str) -> list[RunRef]:
    """Apply every timeout and escalation that is due (module docstring); the runs that changed."""
    changed: list[RunRef] = []
    for request in due_requests(session, now):
        ti = session.get(TaskInstance, request.ti_id, with_for_update=True)
        if ti is None or ti.state != TaskInstanceState.DEFERRED:
            continue
        if request.timeout_at is not None and request.timeout_at <= now:
            _time_out(session, ti, request, actor=actor, now=now)
        elif mark_escalated(session, request.id, now):
            reason = f"escalate_after passed without an answer ({describe_wait(request.assigned_users, None, None)})"
            change = Change(TaskInstanceState.SCHEDULED, now, actor, reason, values={"next_method": ESCALATE})
            transition(session, TASK, [_ref(ti)], change)
        changed.append((ti.dag_id, ti.run_id))
    return changed


def _time_out(session: Session, ti: TaskInstance, request: Request, *, actor: str, now: datetime) -> None:
    assert request.timeout_at is not None
    at = request.timeout_at.isoformat(timespec="seconds")
    names: dict[str, Any] = {"dag_id": ti.dag_id, "run_id": ti.run_id, "task_id": ti.task_id, "map_index": ti.map_index}
    if not request.defaults:
        reason = f"no answer by its timeout at {at} and no defaults: the task fails"
        transition(session, TASK, [_ref(ti)], Change(TaskInstanceState.FAILED, now, actor, reason))
        record_event(session, "hitl.timed_out", actor=actor, when=now, reason=reason, detail={"defaults": None},
                     **names)  # fmt: skip
        return
    form = {name: schema.get("default") for name, schema in request.params.items()}
    response = {"chosen_options": list(request.defaults), "params_input": form, "responded_by": TIMEOUT_RESPONDER,
                "comment": None}  # fmt: skip
    reason = f"no answer by its timeout at {at}: its defaults {', '.join(request.defaults)} are the answer"
    _wake(session, ti, request, response, actor=actor, now=now, reason=reason)
    record_event(session, "hitl.timed_out", actor=actor, when=now, reason=reason, detail=response, **names)


def _wake(session: Session, ti: TaskInstance, request: Request, response: dict[str, Any], *, actor: str,
          now: datetime, reason: str) -> None:  # fmt: skip
    if not write_response(session, request.id, response, by=str(response["responded_by"]),
                          comment=response.get("comment"), now=now):  # fmt: skip
        raise ApprovalError(f"{ti.task_id} in run {ti.run_id} was answered meanwhile; nothing was changed")
    change = Change(TaskInstanceState.SCHEDULED, now, actor, reason,
                    values={"next_method": RESUME, "next_kwargs": {"response": response}})  # fmt: skip
    if not transition(session, TASK, [_ref(ti)], change):
        raise ApprovalError(f"{ti.task_id} in run {ti.run_id} stopped waiting meanwhile; nothing was changed")


def _ref(ti: TaskInstance) -> TaskRef:
    return TaskRef(ti.dag_id, ti.run_id, ti.task_id, ti.map_index, TaskInstanceState.DEFERRED, ti.try_number)


class Approvals:
    """The scheduler's timer for approvals: looks for due timeouts/escalations at the earliest known due
    moment, and at least every `rescan_s` (a request made by a worker meanwhile may be due sooner)."""

    def __init__(self, *, actor: str, rescan_s: float = 2.0) -> None:
        self.actor = actor
        self.rescan_s = rescan_s
        self.next_check: datetime | None = None

    def tick(self, session: Session, now: datetime) -> list[RunRef]:
        """The runs whose deferred instances this tick woke or failed (to decide again)."""
        if self.next_check is not None and now < self.next_check:
            return []
        changed = wake_due(session, now, actor=self.actor)
        due = next_due(session)
        rescan = now + timedelta(seconds=self.rescan_s)
        self.next_check = min(due, rescan) if due is not None else rescan
        return changed


# --- `tasks why` ---------------------------------------------------------------------------------------


def approval_checks(session: Session, ti: TaskInstance) -> list[Check]:
    """A deferred instance: who it waits for, since when, until when."""
    if ti.state != TaskInstanceState.DEFERRED:
        return []
    request = request_of(session, ti.id)
    if request is None:
        return [Check("approval", False, "deferred, but no approval request was found")]
    text = describe_wait(request.assigned_users, request.created_at, request.timeout_at)
    if request.escalate_at is not None and request.escalated_at is None:
        text += f"; escalates at {request.escalate_at.isoformat(timespec='seconds')}"
    return [Check("approval", False, text + "; answer with `dagrunner tasks approve|reject|respond`")]
