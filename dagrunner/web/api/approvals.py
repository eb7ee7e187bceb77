"""/api/v1 endpoints: approvals: what waits for a person, and their answer (`dagrunner approvals list`,
`dagrunner tasks approve|reject|respond`). The rules are `scheduling.approvals.answer`'s, called here as the
CLI calls it, with the signed-in user as responder and `api:<user>` as the audit actor."""

from __future__ import annotations

import json
from typing import Annotated, Any, Literal

from fastapi import APIRouter, HTTPException, Query
from pydantic import BaseModel, Field
from sqlalchemy import select
from sqlalchemy.orm import Session

from dagrunner.execution.masking import MASK, is_sensitive
from dagrunner.web.deps import Operator, PageArgs, Viewer, Web
from dagrunner.web.inputs import MAX_TEXT, NO_NUL, check_json
from dagrunner.web.pages import Page
from dagrunner.web.redact import redact

router = APIRouter(tags=["approvals"])

MAX_INT = 2**31 - 1
_ID = Field(min_length=1, max_length=250, pattern=NO_NUL)
_OPTIONS = {"approve": ["Approve"], "reject": ["Reject"]}


class WaitingRequest(BaseModel):
    """One request nobody has answered yet (`approvals list --json`), with the request's id."""

    id: int
    dag_id: str
    run_id: str
    task_id: str
    map_index: int
    assigned_users: list[str]
    since: str | None
    subject: str
    body: str | None
    #: What the person chooses from; `multiple`: whether several may be chosen.
    options: list[str]
    multiple: bool
    #: The form: field name -> the JSON Schema of its Param ("default", "type", "minimum", ...).
    params: dict[str, Any]
    timeout_at: str | None
    escalate_at: str | None
    escalated_at: str | None


class Respond(BaseModel):
    """An answer: to the request `id`, or to the instance named by dag_id, run_id, task_id (and map_index).

    action "approve" / "reject" answer an ApprovalOperator; "respond" picks `chosen_options` and fills the
    form with `params_input` (values checked against each field's Param schema)."""

    id: Annotated[int | None, Field(ge=1, le=2**63 - 1)] = None
    dag_id: Annotated[str | None, _ID] = None
    run_id: Annotated[str | None, _ID] = None
    task_id: Annotated[str | None, _ID] = None
    map_index: Annotated[int, Field(ge=-1, le=MAX_INT)] = -1
    action: Literal["approve", "reject", "respond"]
    chosen_options: Annotated[
        list[Annotated[str, Field(max_length=MAX_TEXT, pattern=NO_NUL)]], Field(max_length=100)
    ] = []
    params_input: Annotated[dict[str, Any], Field(max_length=100)] = {}
    comment: Annotated[str | None, Field(max_length=10_000, pattern=NO_NUL)] = None


class Answered(BaseModel):
    """What was recorded (`tasks respond --json`): the instance and the response its task resumes with."""

    dag_id: str
    run_id: str
    task_id: str
    map_index: int
    chosen_options: list[str]
    params_input: dict[str, Any]
    responded_by: str
    comment: str | None


def _form(params: dict[str, Any]) -> dict[str, Any]:
    """The form's schemas with secrets out: a secret-looking field keeps its schema, its default is masked."""
    form = {}
    for name, schema in params.items():
        shown = redact(schema) if isinstance(schema, dict) else schema
        if is_sensitive(name) and isinstance(shown, dict) and shown.get("default") is not None:
            shown = {**shown, "default": MASK}
        form[name] = shown
    return form


def _request_ids(session: Session) -> dict[tuple[str, str, str, int], int]:
    from dagrunner.persistence.models import HITLRequest

    rows = session.execute(
        select(HITLRequest.dag_id, HITLRequest.run_id, HITLRequest.task_id, HITLRequest.map_index, HITLRequest.id)
        .where(HITLRequest.responded_at.is_(None))
    )  # fmt: skip
    return {(d, r, t, m): i for d, r, t, m, i in rows}


@router.get("/approvals", response_model=Page[WaitingRequest])
def list_approvals(
    _user: Viewer,
    state: Web,
    paging: PageArgs,
    dag_id: Annotated[str | None, Query(max_length=MAX_TEXT, pattern=NO_NUL, description="Only this DAG.")] = None,
) -> dict[str, Any]:
    """Every unanswered request, oldest first: who is asked, the subject, the options and the form."""
    from dagrunner.persistence.views import pending_approvals

    with state.read() as session:
        rows = pending_approvals(session, dag_id)
        ids = _request_ids(session)
    items = []
    for row in rows[paging.offset : paging.offset + paging.limit]:
        data = row.to_json()
        items.append({**data, "id": ids[(row.dag_id, row.run_id, row.task_id, row.map_index)],
                      "params": _form(data["params"])})  # fmt: skip
    return paging.page(items, len(rows))


def _target(session: Session, body: Respond) -> tuple[str, str, str, int]:
    from dagrunner.persistence.models import HITLRequest

    if body.id is not None:
        request = session.get(HITLRequest, body.id)
        if request is None:
            raise HTTPException(404, f"no approval request {body.id}; GET /api/v1/approvals lists the waiting ones")
        return request.dag_id, request.run_id, request.task_id, request.map_index
    if body.dag_id is None or body.run_id is None or body.task_id is None:
        raise HTTPException(400, "name the request: its id, or dag_id, run_id and task_id (and map_index)")
    return body.dag_id, body.run_id, body.task_id, body.map_index


def _as_text(params: dict[str, Any]) -> dict[str, str]:
    """Form values as `--param` text: `answer` reads text as the CLI gives it (JSON unless the field is a string)."""
    check_json(params, "params_input")
    return {name: value if isinstance(value, str) else json.dumps(value) for name, value in params.items()}


@router.post("/approvals/respond", response_model=Answered)
def respond(body: Respond, user: Operator, state: Web) -> dict[str, Any]:
    """Answer a waiting request and wake its task (audited `hitl.answered` with actor api:<user>).

    400 when the answer cannot be taken (already answered, not waiting, unknown option, bad form value):
    nothing is changed then."""
    from dagrunner.scheduling.approvals import answer

    options = _OPTIONS.get(body.action, body.chosen_options)
    form = _as_text(body.params_input)
    with state.write() as session:
        dag_id, run_id, task_id, map_index = _target(session, body)
        result = answer(session, dag_id, run_id=run_id, task_id=task_id, map_index=map_index, options=options,
                        params=form, comment=body.comment, responder=user.username, actor=user.actor,
                        now=state.now())  # fmt: skip
    response = {**result.response, "params_input": redact(result.response["params_input"])}
    return {"dag_id": result.dag_id, "run_id": result.run_id, "task_id": result.task_id,
            "map_index": result.map_index, **response}  # fmt: skip
