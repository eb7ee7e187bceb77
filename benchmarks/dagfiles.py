"""The DAG files the workloads generate: no-op PythonOperator tasks, independent or in a chain."""

from __future__ import annotations

HEADER = """\
import os
import time

import pendulum
from dagrunner import DAG
from dagrunner.operators import PythonOperator

SLEEP_S = float(os.environ.get("BENCH_TASK_SLEEP_S") or 0)  # --task-sleep-ms: tasks that take time


def noop():
    if SLEEP_S:
        time.sleep(SLEEP_S)
    return None

"""


def wide_dag(dag_id: str, tasks: int, *, pool: str | None = None) -> str:
    """One manual-only DAG of `tasks` independent no-op tasks; `pool` puts every task in that pool."""
    pool_arg = f", pool={pool!r}" if pool else ""
    return (
        HEADER
        + f"""
with DAG({dag_id!r}, schedule=None, start_date=pendulum.datetime(2026, 1, 1, tz="UTC"), catchup=False):
    for i in range({tasks}):
        PythonOperator(task_id=f"t{{i:04d}}", python_callable=noop{pool_arg})
"""
    )


def chain_dag(
    dag_id: str,
    tasks: int,
    *,
    schedule: str | None = None,
    start: str = "2026-01-01",
    extra: str = "",
) -> str:
    """`tasks` no-op tasks in a chain t0000 >> t0001 >> ...; `extra` is appended (e.g. one more task)."""
    year, month, day = (int(p) for p in start.split("-"))
    return (
        HEADER
        + f"""
with DAG({dag_id!r}, schedule={schedule!r}, start_date=pendulum.datetime({year}, {month}, {day}, tz="UTC"),
         catchup=False):
    previous = None
    for i in range({tasks}):
        current = PythonOperator(task_id=f"t{{i:04d}}", python_callable=noop)
        if previous is not None:
            previous >> current
        previous = current
{extra}"""
    )
