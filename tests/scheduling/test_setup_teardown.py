"""Setup and teardown through the real scheduler: fake clock, inline executor, SQLite and PostgreSQL.

Each task body appends its name to a ledger file, so a test can tell what actually ran (and in what
order), not only which states were written.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from dagrunner.persistence.engine import session_scope
from dagrunner.scheduling.operations import clear, explain_instance, select_for_clear, trigger_run

from .harness import START, Harness

CLUSTER = """
import pendulum
from datetime import timedelta
from pathlib import Path
from dagrunner import DAG, SkipTask
from dagrunner.operators import PythonOperator

LEDGER = Path({ledger!r})
FLAGS = Path({flags!r})


def step(name):
    def run():
        with LEDGER.open("a") as ledger:
            ledger.write(name + "\\n")
        if (FLAGS / (name + ".skip")).exists():
            raise SkipTask(name + " has nothing to do")
        if (FLAGS / (name + ".fail")).exists():
            raise RuntimeError(name + " broke")
    return run


with DAG("cluster", schedule=None, start_date=pendulum.datetime(2026, 1, 1, tz="UTC")):
    create = PythonOperator(task_id="create", python_callable=step("create"))
    query = PythonOperator(task_id="query", python_callable=step("query"),
                           retries={retries}, retry_delay=timedelta(seconds=60))
    report = PythonOperator(task_id="report", python_callable=step("report"))
    delete = PythonOperator(task_id="delete", python_callable=step("delete"))
    create >> query >> report >> delete.as_teardown(setups=create, on_failure_fail_dagrun={fail_dagrun})
"""


def _cluster(h: Harness, *, failing: tuple[str, ...] = (), skipping: tuple[str, ...] = (), retries: int = 0,
             fail_dagrun: bool = False) -> tuple[Path, Path]:  # fmt: skip
    ledger, flags = h.root / "ledger.txt", h.root / "flags"
    flags.mkdir()
    for name in failing:
        (flags / f"{name}.fail").touch()
    for name in skipping:
        (flags / f"{name}.skip").touch()
    h.write_dag("cluster.py", CLUSTER.format(ledger=str(ledger), flags=str(flags), retries=retries,
                                             fail_dagrun=fail_dagrun))  # fmt: skip
    sched = h.start()
    with session_scope(h.engine) as s:
        trigger_run(s, sched.dag_source.dags()["cluster"], actor="test", now=START)
    return ledger, flags


def _ran(ledger: Path) -> list[str]:
    return ledger.read_text().split() if ledger.exists() else []


@pytest.mark.parametrize("fail_dagrun", [False, True])
def test_teardown_runs_after_the_work_failed_and_the_run_still_fails(h: Harness, fail_dagrun: bool) -> None:
    ledger, _ = _cluster(h, failing=("query",), fail_dagrun=fail_dagrun)
    h.tick()
    assert h.states("cluster") == {
        "create": "success",
        "query": "failed",
        "report": "upstream_failed",
        "delete": "success",
    }
    assert _ran(ledger) == ["create", "query", "delete"]
    (run,) = h.runs("cluster")
    assert run.state.value == "failed"  # the work failed: a teardown's success never hides that


def test_teardown_does_not_run_when_its_setup_failed(h: Harness) -> None:
    ledger, _ = _cluster(h, failing=("create",))
    h.tick()
    assert h.states("cluster") == {
        "create": "failed",
        "query": "upstream_failed",
        "report": "upstream_failed",
        "delete": "upstream_failed",  # Airflow's all_done_setup_success: no setup succeeded
    }
    assert _ran(ledger) == ["create"]
    (run,) = h.runs("cluster")
    assert run.state.value == "failed"


def test_teardown_is_skipped_when_its_setup_was_skipped(h: Harness) -> None:
    ledger, _ = _cluster(h, skipping=("create",))
    h.tick()
    assert h.states("cluster") == {"create": "skipped", "query": "skipped", "report": "skipped", "delete": "skipped"}
    assert _ran(ledger) == ["create"]
    (run,) = h.runs("cluster")
    assert run.state.value == "success"


@pytest.mark.parametrize(("fail_dagrun", "run_state"), [(False, "success"), (True, "failed")])
def test_a_failed_teardown_fails_the_run_only_with_on_failure_fail_dagrun(
    h: Harness, fail_dagrun: bool, run_state: str
) -> None:
    ledger, _ = _cluster(h, failing=("delete",), fail_dagrun=fail_dagrun)
    h.tick()
    assert h.states("cluster") == {"create": "success", "query": "success", "report": "success", "delete": "failed"}
    assert _ran(ledger) == ["create", "query", "report", "delete"]
    (run,) = h.runs("cluster")
    assert run.state.value == run_state


def test_clearing_the_failed_work_clears_its_setup_and_teardown_and_reruns_all_in_order(h: Harness) -> None:
    ledger, flags = _cluster(h, failing=("query",))
    h.tick()
    assert _ran(ledger) == ["create", "query", "delete"]
    (flags / "query.fail").unlink()
    dag = h.scheduler.dag_source.dags()["cluster"]  # type: ignore[union-attr]
    with session_scope(h.engine) as s:
        chosen = select_for_clear(s, dag, only_failed=True)
        assert sorted(ti.task_id for ti in chosen) == ["create", "delete", "query", "report"]
        clear(s, dag, chosen, actor="test", now=h.clock.now())
    h.advance(h.scheduler.options.full_scan_s)  # type: ignore[union-attr]
    assert set(h.states("cluster").values()) == {"success"}
    assert _ran(ledger) == ["create", "query", "delete", "create", "query", "report", "delete"]
    (run,) = h.runs("cluster")
    assert run.state.value == "success"


def test_clearing_one_task_selects_its_setups_and_teardowns_but_not_other_work(h: Harness) -> None:
    _cluster(h)
    h.tick()
    dag = h.scheduler.dag_source.dags()["cluster"]  # type: ignore[union-attr]
    with session_scope(h.engine, readonly=True) as s:
        by_regex = {pattern: sorted(ti.task_id for ti in select_for_clear(s, dag, task_regex=pattern))
                    for pattern in ("^report$", "^create$", "^delete$")}  # fmt: skip
    assert by_regex == {
        "^report$": ["create", "delete", "report"],  # its setup, and that setup's teardown
        "^create$": ["create", "delete"],  # a setup brings its teardown
        "^delete$": ["delete"],  # a teardown alone: re-run the cleanup only (Airflow's rule)
    }


def test_tasks_why_explains_a_waiting_teardown(h: Harness) -> None:
    _, _ = _cluster(h, failing=("query",), retries=1)
    h.tick()
    assert h.states("cluster") == {"create": "success", "query": "up_for_retry", "report": "none", "delete": "none"}
    dag = h.scheduler.dag_source.dags()["cluster"]  # type: ignore[union-attr]
    (run,) = h.runs("cluster")
    with session_scope(h.engine, readonly=True) as s:
        why = explain_instance(s, dag, run.run_id, "delete", -1, h.clock.now())
    reasons = {c.rule: (c.passed, c.reason) for c in why.checks}
    assert reasons["setup_teardown"] == (
        False,
        "teardown of create: waits for report to finish; runs even if they fail",
    )
    assert reasons["trigger_rule"][0] is False and "all_done_setup_success waits" in reasons["trigger_rule"][1]
    h.advance(61)  # the retry fails too: the teardown still runs
    assert h.states("cluster") == {
        "create": "success",
        "query": "failed",
        "report": "upstream_failed",
        "delete": "success",
    }
