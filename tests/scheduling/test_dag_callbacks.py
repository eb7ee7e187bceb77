"""DAG-level callbacks run for real: the scheduler requests one in the transaction that ends the run and a
process of its own imports the DAG file and calls it. Each test waits for that process with `wait_until`."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

from polling import wait_until
from sqlalchemy import select

from dagrunner.execution.dag_callbacks import callback_log_path
from dagrunner.persistence.engine import session_scope
from dagrunner.persistence.models import CallbackRequest

from .harness import START, Harness
from .test_run_timeouts import trigger

CALLED_BACK = """
import pendulum
from datetime import timedelta
from pathlib import Path
from dagrunner import DAG, FailTask, task
from dagrunner.notifications import FileNotifier

LEDGER = Path({ledger!r})
line = FileNotifier(path=str(LEDGER), message="{{{{ dag.dag_id }}}} {{{{ run_id }}}} {{{{ dag_run.state }}}} {{{{ reason }}}}")


def explode(context):
    print("about to explode for", context["run_id"])
    raise RuntimeError("the DAG callback exploded")


with DAG("{dag_id}", schedule=None, start_date=pendulum.datetime(2026, 1, 1, tz="UTC"),
         on_success_callback=[{success}], on_failure_callback=[{failure}], dagrun_timeout={timeout}):
    @task(retries={retries}, retry_delay=timedelta(hours=1))
    def work(dag_run=None):
        if dag_run.conf.get("fail"):
            raise FailTask("asked to fail")
        if dag_run.conf.get("retry"):
            raise RuntimeError("try again in an hour")

    @task(pool="{pool}")
    def last():
        pass

    work() >> last()
"""


def _write(h: Harness, *, dag_id: str = "cb", success: str = "line", failure: str = "line", timeout: str = "None",
           retries: int = 0, pool: str = "default_pool") -> Path:  # fmt: skip
    ledger = h.root / "ledger.txt"
    h.write_dag(f"{dag_id}.py", CALLED_BACK.format(ledger=str(ledger), dag_id=dag_id, success=success,
                                                   failure=failure, timeout=timeout, retries=retries, pool=pool))  # fmt: skip
    return ledger


def _requests(h: Harness) -> list[CallbackRequest]:
    with session_scope(h.engine, readonly=True) as s:
        return list(s.scalars(select(CallbackRequest).order_by(CallbackRequest.id)))


def _done(h: Harness) -> list[CallbackRequest]:
    def all_done() -> list[CallbackRequest] | None:
        requests = _requests(h)
        return requests if requests and all(r.done_at is not None for r in requests) else None

    found = wait_until(all_done, what="every callback request to be done", timeout=60)
    assert found is not None
    return found


def _lines(ledger: Path) -> list[str]:
    return ledger.read_text().splitlines() if ledger.exists() else []


def test_on_success_callback_runs_once_with_the_dag_callback_context(h: Harness) -> None:
    ledger = _write(h, success="line, lambda context: print('plain function for', context['reason'])")
    h.start()
    run_id = trigger(h, "cb")
    h.tick(START)
    assert h.runs("cb")[0].state.value == "success"
    (request,) = _done(h)
    assert (request.kind, request.reason, request.attempts, request.error) == (
        "on_success_callback",
        "success",
        1,
        None,
    )
    assert _lines(ledger) == [f"cb {run_id} success success"]
    assert [e.event for e in h.audit(run_id=run_id) if e.event.startswith("dag_callback.")] == [
        "dag_callback.requested",
        "dag_callback.finished",
    ]
    log = callback_log_path(h.settings.logs_folder, "cb", run_id, "on_success_callback", request.id).read_text()
    assert "plain function for success" in log


def _trigger_with(h: Harness, conf: dict[str, bool]) -> str:
    from dagrunner.scheduling.operations import trigger_run

    h.start()
    assert h.scheduler is not None
    with session_scope(h.engine) as s:
        return trigger_run(s, h.scheduler.dag_source.dags()["cb"], actor="test", now=START, conf=conf).run_id


def test_on_failure_callback_gets_reason_task_failure(h: Harness) -> None:
    ledger = _write(h)
    run_id = _trigger_with(h, {"fail": True})
    h.tick(START)
    (request,) = _done(h)
    assert (request.kind, request.reason) == ("on_failure_callback", "task_failure")
    assert _lines(ledger) == [f"cb {run_id} failed task_failure"]


def test_a_raising_dag_callback_is_audited_and_changes_nothing(h: Harness) -> None:
    ledger = _write(h, success="explode, line")
    h.start()
    run_id = trigger(h, "cb")
    h.tick(START)
    (request,) = _done(h)
    assert request.error is not None and request.error.startswith("on_success_callback explode: RuntimeError: the DAG")
    assert _lines(ledger) == [f"cb {run_id} success success"]  # the next callback still ran
    (failed,) = h.audit(event="dag_callback.failed")
    assert failed.reason == request.error and failed.run_id == run_id
    h.advance(5)
    assert h.runs("cb")[0].state.value == "success"
    assert [e.new_state for e in h.audit(event="run.state")] == ["running", "success"]
    log = callback_log_path(h.settings.logs_folder, "cb", run_id, "on_success_callback", request.id).read_text()
    assert "about to explode for" in log and "Traceback" in log


def test_a_timed_out_run_calls_back_with_reason_timed_out(h: Harness) -> None:
    ledger = _write(h, timeout="timedelta(minutes=5)", retries=2)
    run_id = _trigger_with(h, {"retry": True})
    h.tick(START)
    assert h.states("cb", run_id)["work"] == "up_for_retry"
    h.tick(START + timedelta(minutes=5))
    (request,) = _done(h)
    assert (request.kind, request.reason) == ("on_failure_callback", "timed_out")
    assert _lines(ledger) == [f"cb {run_id} failed timed_out"]


def test_a_deadlocked_run_calls_back_with_reason_all_tasks_deadlocked(h: Harness) -> None:
    ledger = _write(h, dag_id="stuck", pool="nowhere")
    h.start()
    run_id = trigger(h, "stuck")
    h.tick(START)
    (request,) = _done(h)
    assert (request.kind, request.reason) == ("on_failure_callback", "all_tasks_deadlocked")
    assert _lines(ledger) == [f"stuck {run_id} failed all_tasks_deadlocked"]


def test_a_request_left_pending_by_a_scheduler_that_stopped_runs_when_the_next_one_starts(h: Harness) -> None:
    ledger = _write(h)
    first = h.start(callbacks=False)  # requests the callback but cannot run it (as if killed after the commit)
    run_id = trigger(h, "cb")
    h.tick(START)
    (request,) = _requests(h)
    assert request.done_at is None and request.job_id == first.job_id
    first.shutdown(1.0)
    assert _lines(ledger) == []
    second = h.start()
    (adopted,) = h.audit(event="dag_callback.adopted")
    assert adopted.detail == {"request_id": request.id, "from_job": first.job_id, "job": second.job_id}
    h.advance(1)
    (request,) = _done(h)
    assert request.job_id == second.job_id and request.attempts == 1
    assert _lines(ledger) == [f"cb {run_id} success success"]


def test_a_run_without_dag_callbacks_requests_none(h: Harness) -> None:
    _write(h, success="", failure="")
    h.start()
    trigger(h, "cb")
    h.tick(START + timedelta(seconds=1))
    assert h.runs("cb")[0].state.value == "success"
    assert _requests(h) == [] and h.audit(event="dag_callback.requested") == []
