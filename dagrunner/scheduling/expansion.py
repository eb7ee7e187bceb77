"""Dynamic task mapping: when a mapped task's input is known, turn its placeholder into N instances.

A mapped task starts as one instance with map_index -1. Once its dependencies are met its input is
known: literal lists have their length in the serialized DAG, XCom inputs are looked up. Several
`.expand()` arguments combine as a cross product (Airflow's rule), so N is the product of the lengths.
The placeholder becomes map index 0 and N-1 siblings are created; N = 0 skips the task.
"""

from __future__ import annotations

import math
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from dagrunner.loading.serialization import MappedArgSpec, SerializedDag, TaskSpec
from dagrunner.persistence.audit import TASK, Change, TIRow, expand_placeholder, record_created, transition
from dagrunner.persistence.models import DagRun, TaskInstance, XCom
from dagrunner.states import TaskInstanceState


def expand_mapped(
    session: Session, dag: SerializedDag, run: DagRun, placeholders: list[TIRow], *, actor: str, now: datetime
) -> None:
    for ti in placeholders:
        spec = dag.task(ti.task_id)
        try:
            length, why = mapped_length(session, dag, spec, run)
        except ValueError as exc:
            transition(session, TASK, [ti], Change(TaskInstanceState.FAILED, now, actor, str(exc)))
            continue
        if length == 0:
            transition(
                session, TASK, [ti], Change(TaskInstanceState.SKIPPED, now, actor, f"mapped over nothing: {why}")
            )
            continue
        if not expand_placeholder(session, ti, length=length, inputs=why, actor=actor, when=now):
            continue  # expanded by another scheduler meanwhile
        siblings = [
            TaskInstance(
                dag_id=ti.dag_id,
                run_id=ti.run_id,
                task_id=ti.task_id,
                map_index=i,
                max_tries=ti.max_tries,
                operator=spec.operator,
                queue=ti.queue,
                pool=ti.pool,
                pool_slots=ti.pool_slots,
                priority_weight=ti.priority_weight,
                updated_at=now,
            )  # fmt: skip
            for i in range(1, length)
        ]
        if siblings:
            record_created(session, siblings, actor=actor, reason="mapped task expanded", when=now)


def mapped_length(session: Session, dag: SerializedDag, spec: TaskSpec, run: DagRun) -> tuple[int, str]:
    """How many instances the mapped task gets, and a description of its inputs for the audit log."""
    lengths: dict[str, int] = {}
    for name, arg in (spec.expand_input or {}).items():
        upstream_mapped = arg.kind == "xcom" and dag.task(str(arg.task_id)).is_mapped
        lengths[name] = _arg_length(session, arg, run, upstream_mapped)
    why = ", ".join(f"{name}: {n}" for name, n in lengths.items())
    return (math.prod(lengths.values()) if lengths else 0), why


def _arg_length(session: Session, arg: MappedArgSpec, run: DagRun, upstream_mapped: bool) -> int:
    if arg.kind == "literal":
        return int(arg.length or 0)
    values = session.scalars(
        select(XCom.value)
        .where(
            XCom.dag_id == run.dag_id,
            XCom.run_id == run.run_id,
            XCom.task_id == arg.task_id,
            XCom.key == (arg.key or "return_value"),
        )  # fmt: skip
        .order_by(XCom.map_index)
    ).all()
    if upstream_mapped:  # one value per map index of the upstream, taken as one list
        return len(values)
    if not values or values[0] is None:
        return 0
    value = values[0]
    if not isinstance(value, (list, dict)):
        raise ValueError(
            f"cannot map over the XCom {arg.key or 'return_value'!r} of task {arg.task_id!r}: it is a "
            f"{type(value).__name__}, not a list or dict"
        )
    return len(value)
