"""A task removed from the DAG file while a run of it is under way, with a real scheduler process (item 5).

The removed task's instance becomes `removed` when the scheduler loads the new version of the file, the
run finishes by the rules, and every body that ran did so once (the external ledger agrees with the
database).
"""

from __future__ import annotations

import signal
from pathlib import Path

import pytest
from integration.procs import db_states, finish, project, run, scheduler_started, start
from polling import wait_until

from chaos.ledger import LEDGER_SNIPPET, check_against_db, read

pytestmark = pytest.mark.slow

DAG_FILE = """
import os, time
from dagrunner import DAG, task
os.environ["DAGRUNNER_LEDGER"] = {ledger!r}
{snippet}

@task
def step(ti=None, run_id=None):
    note("start", ti, run_id)
    time.sleep(0.2 if ti.task_id != "a" else 4)
    note("end", ti, run_id)

with DAG("shrinks", schedule=None):
    {chain}
"""
V1 = 'step.override(task_id="a")() >> step.override(task_id="b")() >> step.override(task_id="c")()'
V2 = 'step.override(task_id="a")() >> step.override(task_id="c")()'


def _write(root: Path, chain: str) -> None:
    body = DAG_FILE.format(ledger=str(root / "ledger.txt"), snippet=LEDGER_SNIPPET, chain=chain)
    (root / "dags" / "shrinks.py").write_text(body)


def test_a_task_removed_mid_run_is_removed_and_the_run_finishes(tmp_path: Path, sqlite_url: str) -> None:
    db_url = sqlite_url  # one dialect is enough here: the behaviour under test is not the database's
    root = project(tmp_path, examples=False)
    ledger = root / "ledger.txt"
    _write(root, V1)
    daemon = start(root, db_url, "scheduler")
    try:
        wait_until(lambda: scheduler_started(db_url), timeout=60, what="the scheduler to start")
        trigger = run(root, db_url, "dags", "trigger", "shrinks")
        assert trigger.returncode == 0, trigger.stdout + trigger.stderr
        wait_until(lambda: any(e.task_id == "a" for e in read(ledger)), timeout=60, what="task a to start")
        _write(root, V2)  # b is gone while a runs
        runs = wait_until(lambda: [s for s in db_states(db_url)[0].values() if s in ("success", "failed")],
                          timeout=60, what="the run to finish")  # fmt: skip
    finally:
        daemon.send_signal(signal.SIGTERM)
        out = finish(daemon, 60)
    assert runs == ["success"], out
    states = {task: state for (_, task), state in db_states(db_url)[1].items()}
    assert states == {"a": "success", "b": "removed", "c": "success"}
    assert sorted(e.task_id for e in read(ledger) if e.event == "end") == ["a", "c"]
    assert check_against_db(db_url, ledger) == []
