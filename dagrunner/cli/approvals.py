"""`dagrunner approvals list` and `dagrunner tasks approve|reject|respond`: people answer waiting tasks.

The rules are `scheduling.approvals` (answers) and `persistence.views.pending_approvals` (the list);
these commands parse, call and render. A refused answer is one line and changes nothing.
"""

from __future__ import annotations

from datetime import UTC, datetime

import click

from dagrunner.cli import render
from dagrunner.cli.context import CliContext, pass_cli
from dagrunner.cli.options import json_option


@click.group()
def approvals() -> None:
    """Human approvals: what waits for a person (answer with `dagrunner tasks approve|reject|respond`)."""


@approvals.command("list")
@click.option("--dag", "dag_id", metavar="DAG_ID", help="Only this DAG's requests.")
@json_option("a list of waiting requests")
@pass_cli
def list_approvals(cli: CliContext, dag_id: str | None, as_json: bool) -> None:
    """Every unanswered request: who is asked, since when, the rendered subject, the options, the timeout."""
    from dagrunner.persistence.views import pending_approvals

    with cli.read_session() as session:
        rows = pending_approvals(session, dag_id)
    if as_json:
        render.print_json([r.to_json() for r in rows])
        return
    render.table(
        "waiting for a person",
        ["dag", "run", "task", "assigned to", "since", "subject", "options", "times out"],
        [
            (
                r.dag_id, r.run_id, f"{r.task_id}[{r.map_index}]" if r.map_index >= 0 else r.task_id,
                ", ".join(r.assigned_users) or "anyone", render.fmt_time(r.since), r.subject,
                ", ".join(r.options), render.fmt_time(r.timeout_at) if r.timeout_at else None,
            )
            for r in rows
        ],
    )  # fmt: skip


_COMMENT = click.option("--comment", help="Why (stored with the answer and in the audit log; never rendered).")
_AS = click.option("--as", "as_name", metavar="NAME", help="Who answers (default: you, user@host).")
_MAP_INDEX = click.option("--map-index", type=int, default=-1, show_default=True, help="Which mapped instance.")
_PARAM = click.option("--param", "params", multiple=True, metavar="NAME=VALUE",
                      help="A form value (repeatable); checked against the task's Param schema.")  # fmt: skip


def _answer(cli: CliContext, dag_id: str, task_id: str, run_id: str, *, options: list[str], params: tuple[str, ...],
            comment: str | None, as_name: str | None, map_index: int, as_json: bool) -> None:  # fmt: skip
    from dagrunner.scheduling.approvals import answer, parse_params

    me = cli.actor.split(":", 1)[0]
    form = parse_params(params)
    with cli.session() as session:
        result = answer(session, dag_id, run_id=run_id, task_id=task_id, map_index=map_index, options=options,
                        params=form, comment=comment, responder=as_name or me,
                        actor=f"{as_name} (via {cli.actor})" if as_name else cli.actor, now=datetime.now(UTC))  # fmt: skip
    if as_json:
        render.print_json({"dag_id": result.dag_id, "run_id": result.run_id, "task_id": result.task_id,
                           "map_index": result.map_index, **result.response})  # fmt: skip
        return
    render.info(result.line())


def _approval_command(name: str, option: str, doc: str) -> click.Command:
    @click.command(name, help=doc)
    @click.argument("dag_id")
    @click.argument("task_id")
    @click.argument("run_id")
    @_COMMENT
    @_AS
    @_MAP_INDEX
    @json_option("the answer recorded")
    @pass_cli
    def command(cli: CliContext, dag_id: str, task_id: str, run_id: str, comment: str | None, as_name: str | None,
                map_index: int, as_json: bool) -> None:  # fmt: skip
        _answer(cli, dag_id, task_id, run_id, options=[option], params=(), comment=comment, as_name=as_name,
                map_index=map_index, as_json=as_json)  # fmt: skip

    return command


approve = _approval_command(
    "approve", "Approve", "Approve a waiting ApprovalOperator task: it succeeds and the run continues."
)
reject = _approval_command(
    "reject", "Reject", "Reject a waiting ApprovalOperator task: it succeeds and everything downstream is skipped."
)


@click.command("respond")
@click.argument("dag_id")
@click.argument("task_id")
@click.argument("run_id")
@click.option("--option", "options", multiple=True, required=True, metavar="OPTION",
              help="The option chosen (repeat for several when the task allows multiple).")  # fmt: skip
@_PARAM
@_COMMENT
@_AS
@_MAP_INDEX
@json_option("the answer recorded")
@pass_cli
def respond(cli: CliContext, dag_id: str, task_id: str, run_id: str, options: tuple[str, ...],
            params: tuple[str, ...], comment: str | None, as_name: str | None, map_index: int,
            as_json: bool) -> None:  # fmt: skip
    """Answer a waiting HITLOperator / HITLBranchOperator / HITLEntryOperator task with options and form values."""
    _answer(cli, dag_id, task_id, run_id, options=list(options), params=params, comment=comment, as_name=as_name,
            map_index=map_index, as_json=as_json)  # fmt: skip


def register(tasks: click.Group) -> None:
    """Attach `tasks approve|reject|respond` to the tasks group."""
    for command in (approve, reject, respond):
        tasks.add_command(command)
