"""Saga compensation through the scheduler, with a fake clock and the inline executor, on SQLite and PostgreSQL.

A run that fails for good runs the undo tasks of the steps that succeeded in it, the last finished first,
one at a time, each with its own retries; an undo task receives its step's result and an idempotency key;
a compensation that fails after its retries marks the run as needing attention. The audit reads the
rollback back.
"""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import select

from dagrunner.labels import task_label
from dagrunner.persistence.engine import session_scope
from dagrunner.persistence.models import DagRun, TaskInstance, XCom
from dagrunner.scheduling.operations import explain_instance, trigger_run

from .harness import START, Harness

HEADER = """
import pendulum
from dagrunner import DAG, task, FailTask, SkipTask
from dagrunner.operators import BashOperator

def undo(name, retries=0, fail_tries=0):
    @task(task_id=name, retries=retries, retry_delay=60)
    def _undo(compensation, ti=None):
        if ti.try_number <= fail_tries:
            raise RuntimeError(f"{name}: the payment service said no (try {ti.try_number})")
        return compensation
    return _undo()

@task
def ok(value):
    return value

@task
def boom():
    raise FailTask("step failed")
"""


def _dag(h: Harness, body: str, dag_id: str = "saga") -> None:
    start = f'with DAG("{dag_id}", schedule=None, start_date=pendulum.datetime(2026, 1, 1, tz="UTC")):\n'
    indented = "".join(f"    {line}\n" for line in body.strip().splitlines())
    h.settings.dags_folder.joinpath(f"{dag_id}.py").write_text(HEADER + start + indented)


def _trigger(h: Harness, dag_id: str = "saga") -> str:
    sched = h.start()
    with session_scope(h.engine) as s:
        return trigger_run(s, sched.dag_source.dags()[dag_id], actor="test", now=START).run_id


def _step_through(h: Harness, ticks: int, every_s: float = 10) -> None:
    """One tick per `every_s` seconds without settling: each step of a chain ends at its own time."""
    for i in range(ticks):
        h.tick(START + timedelta(seconds=i * every_s), settle=False)


def _run(h: Harness, dag_id: str = "saga") -> DagRun:
    (run,) = h.runs(dag_id)
    return run


def _comp_rows(h: Harness, run_id: str) -> list[TaskInstance]:
    with session_scope(h.engine, readonly=True) as s:
        q = select(TaskInstance).where(TaskInstance.run_id == run_id, TaskInstance.compensation_order.is_not(None))
        return list(s.scalars(q.order_by(TaskInstance.compensation_order)))


def _xcom(h: Harness, task_id: str, map_index: int = -1) -> object:
    with session_scope(h.engine, readonly=True) as s:
        q = select(XCom.value).where(XCom.task_id == task_id, XCom.map_index == map_index, XCom.key == "return_value")
        return s.scalars(q).one()


def _events(h: Harness, event: str) -> list[tuple[str | None, int | None, dict[str, object] | None]]:
    return [(row.task_id, row.map_index, row.detail) for row in h.audit(event=event)]


CHAIN = """
# defined in the reverse of the order they run, so ids do not give the completion order away
third = ok.override(task_id="third")("c").compensate_with(undo("undo_third"))
second = ok.override(task_id="second")("b").compensate_with(undo("undo_second"))
first = ok.override(task_id="first")("a").compensate_with(undo("undo_first"))
first >> second >> third >> boom()
"""


def test_compensations_run_in_reverse_order_of_completion_then_the_run_fails(h: Harness) -> None:
    _dag(h, CHAIN)
    run_id = _trigger(h)
    _step_through(h, 12)
    run = _run(h)
    assert run.state.value == "failed" and not run.needs_attention
    comps = _comp_rows(h, run_id)
    assert [(c.task_id, c.compensation_order, c.state.value) for c in comps] == [
        ("undo_third", 1, "success"), ("undo_second", 2, "success"), ("undo_first", 3, "success"),
    ]  # fmt: skip
    # one at a time: each started after the one before it ended
    assert comps[0].end_date <= comps[1].start_date and comps[1].end_date <= comps[2].start_date
    started = _events(h, "compensation.started")
    assert [(t, d["order"], d["compensation_task"]) for t, _, d in started] == [  # type: ignore[index]
        ("third", 1, "undo_third"), ("second", 2, "undo_second"), ("first", 3, "undo_first"),
    ]  # fmt: skip
    finished = _events(h, "compensation.finished")
    assert [(t, d["state"]) for t, _, d in finished] == [  # type: ignore[index]
        ("third", "success"), ("second", "success"), ("first", "success"),
    ]  # fmt: skip
    run_end = [r for r in h.audit(event="run.state") if r.new_state == "failed"]
    assert len(run_end) == 1 and run_end[0].id > h.audit(event="compensation.finished")[-1].id


def test_a_compensation_waits_for_the_one_before_it_and_tasks_why_says_so(h: Harness) -> None:
    _dag(h, """
first = ok.override(task_id="first")("a").compensate_with(undo("undo_first"))
second = ok.override(task_id="second")("b").compensate_with(undo("undo_second", retries=1, fail_tries=1))
first >> second >> boom()
""")  # fmt: skip
    run_id = _trigger(h)
    h.tick(START)
    # undo_second failed its first try and waits 60 s for its retry; undo_first must wait for it
    assert {c.task_id: c.state.value for c in _comp_rows(h, run_id)} == {
        "undo_second": "up_for_retry", "undo_first": "none",
    }  # fmt: skip
    assert _run(h).state.value == "running"
    dag = h.scheduler.dag_source.dags()["saga"]  # type: ignore[union-attr]
    with session_scope(h.engine, readonly=True) as s:
        why = explain_instance(s, dag, run_id, "undo_first", -1, START)
        waiting = explain_instance(s, dag, run_id, "undo_second", -1, START)
    blocked = [c for c in why.checks if not c.passed]
    assert [(c.rule, c.reason) for c in blocked] == [
        ("compensation_order", "waiting for compensation of second to finish")
    ]
    assert any(c.rule == "retry_delay" and not c.passed for c in waiting.checks)
    h.advance(61)
    assert {c.task_id: c.state.value for c in _comp_rows(h, run_id)} == {
        "undo_second": "success", "undo_first": "success",
    }  # fmt: skip
    assert [t.try_number for t in h.tries("saga", "undo_second")] == [1, 2]
    run = _run(h)
    assert run.state.value == "failed" and not run.needs_attention


def test_only_steps_that_succeeded_are_compensated(h: Harness) -> None:
    _dag(h, """
done = ok.override(task_id="done")("a").compensate_with(undo("undo_done"))

@task
def skipped():
    raise SkipTask("nothing to do")

gone = skipped().compensate_with(undo("undo_skipped"))
failed = boom.override(task_id="failed")().compensate_with(undo("undo_failed"))
never = ok.override(task_id="never")("x").compensate_with(undo("undo_never"))
done >> failed >> never
""")  # fmt: skip
    run_id = _trigger(h)
    h.tick(START)
    assert h.states("saga", run_id) == {
        "done": "success", "skipped": "skipped", "failed": "failed", "never": "upstream_failed",
        "undo_done": "success",
    }  # fmt: skip
    assert [t for t, _, _ in _events(h, "compensation.started")] == ["done"]
    assert _run(h).state.value == "failed"


def test_a_run_with_nothing_to_compensate_fails_at_once(h: Harness) -> None:
    _dag(h, """
boom.override(task_id="first")().compensate_with(undo("undo_first"))
""")  # fmt: skip
    run_id = _trigger(h)
    h.tick(START)
    assert h.states("saga", run_id) == {"first": "failed"}
    assert _run(h).state.value == "failed"
    assert h.audit(event="compensation.started") == []


def test_a_run_that_succeeds_runs_no_compensation(h: Harness) -> None:
    _dag(h, """
a = ok.override(task_id="a")(1).compensate_with(undo("undo_a"))
b = ok.override(task_id="b")(2).compensate_with(undo("undo_b"))
a >> b
""")  # fmt: skip
    run_id = _trigger(h)
    h.tick(START)
    assert h.states("saga", run_id) == {"a": "success", "b": "success"}
    assert _run(h).state.value == "success"
    assert h.audit(event="compensation.started") == [] and h.tries("saga", "undo_a") == []


def test_failed_compensation_marks_the_run_as_needing_attention_and_the_rest_still_runs(h: Harness) -> None:
    _dag(h, """
first = ok.override(task_id="first")("a").compensate_with(undo("undo_first"))
second = ok.override(task_id="second")("b").compensate_with(undo("undo_second", retries=1, fail_tries=9))
first >> second >> boom()
""")  # fmt: skip
    run_id = _trigger(h)
    h.tick(START)
    assert not _run(h).needs_attention  # undo_second still has a retry left
    h.advance(61)
    assert {c.task_id: c.state.value for c in _comp_rows(h, run_id)} == {
        "undo_second": "failed", "undo_first": "success",
    }  # fmt: skip
    run = _run(h)
    assert run.state.value == "failed" and run.needs_attention
    assert "undo_second (undoing second)" in (run.needs_attention_reason or "")
    (flag,) = h.audit(event="run.needs_attention")
    assert flag.run_id == run_id and flag.reason == run.needs_attention_reason
    assert flag.detail == {"failed_compensations": [task_label("saga", "undo_second", -1, run_id)]}
    finished = {t: d["state"] for t, _, d in _events(h, "compensation.finished")}  # type: ignore[index]
    assert finished == {"second": "failed", "first": "success"}


def test_compensation_receives_the_step_result_and_an_idempotency_key(h: Harness) -> None:
    _dag(h, """
charge = ok.override(task_id="charge")({"charge_id": "ch_42", "amount": 1250})
charge.compensate_with(undo("refund"))
void = BashOperator(task_id="void", bash_command="echo void {{ compensation.idempotency_key }} "
                                                  "{{ compensation.result }}")
reserve = ok.override(task_id="reserve")("r-7")
reserve.compensate_with(void)
reserve >> charge >> boom()
""")  # fmt: skip
    run_id = _trigger(h)
    h.tick(START)
    assert _xcom(h, "refund") == {
        "task_id": "charge", "map_index": -1, "result": {"charge_id": "ch_42", "amount": 1250},
        "idempotency_key": f"saga/{run_id}/charge/-1",
    }  # fmt: skip
    assert _xcom(h, "void") == f"void saga/{run_id}/reserve/-1 r-7"


def test_mapped_steps_are_compensated_per_map_index_that_succeeded(h: Harness) -> None:
    _dag(h, """
@task
def charge(amount):
    if amount < 0:
        raise FailTask("refused")
    return f"charged {amount}"

charge.expand(amount=[10, -1, 30]).compensate_with(undo("refund")) >> ok.override(task_id="after")(0)
""")  # fmt: skip
    run_id = _trigger(h)
    h.tick(START)
    comps = _comp_rows(h, run_id)
    assert sorted((c.map_index, c.state.value) for c in comps) == [(0, "success"), (2, "success")]
    assert _xcom(h, "refund", 2) == {
        "task_id": "charge", "map_index": 2, "result": "charged 30", "idempotency_key": f"saga/{run_id}/charge/2",
    }  # fmt: skip
    # same end time: ties go by id, the later instance first
    assert [c.map_index for c in comps] == [2, 0]
    assert _run(h).state.value == "failed"


def test_a_cleared_failed_compensation_runs_again_and_resolves_the_attention(h: Harness) -> None:
    from dagrunner.scheduling.operations import clear, select_for_clear

    _dag(h, """
a = ok.override(task_id="a")("a").compensate_with(undo("undo_a", fail_tries=1))
a >> boom()
""")  # fmt: skip
    run_id = _trigger(h)
    h.tick(START)
    assert _run(h).needs_attention
    dag = h.scheduler.dag_source.dags()["saga"]  # type: ignore[union-attr]
    with session_scope(h.engine) as s:
        clear(s, dag, select_for_clear(s, dag, task_regex="^undo_a$"), actor="test", now=START)
    h.advance(5)
    run = _run(h)
    assert run.state.value == "failed" and not run.needs_attention
    assert h.states("saga", run_id)["undo_a"] == "success"
    assert [d["state"] for _, _, d in _events(h, "compensation.finished")] == ["failed", "success"]  # type: ignore[index]
    assert len(h.audit(event="run.attention_resolved")) == 1


def test_order_check_is_a_pure_rule_with_the_reason_tasks_why_prints() -> None:
    from dagrunner.scheduling.compensation import CompensationFacts, compensation_checks, order_check
    from dagrunner.states import TaskInstanceState as S

    first = CompensationFacts(S.NONE, None, "charge", 1, 2, None)
    assert order_check(first).passed and order_check(first).reason.startswith("compensation 1 of 2: charge")
    for previous, passed in [(S.RUNNING, False), (S.UP_FOR_RETRY, False), (S.FAILED, True), (S.SUCCESS, True)]:
        facts = CompensationFacts(S.NONE, None, "reserve", 2, 2, ("charge", previous))
        assert order_check(facts).passed is passed
        if not passed:
            assert order_check(facts).reason == "waiting for compensation of charge to finish"
    retrying = CompensationFacts(S.UP_FOR_RETRY, START + timedelta(seconds=30), "charge", 1, 1, None)
    assert [(c.rule, c.passed) for c in compensation_checks(retrying, START)] == [
        ("task_state", True), ("retry_delay", False), ("compensation_order", True),
    ]  # fmt: skip
