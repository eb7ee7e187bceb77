"""Bash tasks with Jinja templating: {{ ds }}, {{ params }}, macros, and a task group."""

from __future__ import annotations

from datetime import timedelta

import pendulum

from dagrunner import DAG, TaskGroup
from dagrunner.operators import BashOperator

with DAG(
    dag_id="bash_templating",
    schedule=timedelta(hours=6),
    start_date=pendulum.datetime(2026, 1, 1, tz="UTC"),
    catchup=False,
    params={"greeting": "hello"},
    tags=["example", "bash"],
):
    prepare = BashOperator(
        task_id="prepare",
        bash_command='mkdir -p "$OUT" && echo \'{{ params.greeting }} from {{ ds }} ({{ ts }})\' > "$OUT/{{ ds_nodash }}.txt"',
        env={"OUT": "/tmp/dagrunner_bash_example/{{ dag.dag_id }}"},
        append_env=True,
    )
    with TaskGroup("report") as report:
        count = BashOperator(task_id="count_words", bash_command="echo {{ params.greeting }} {{ ds }} | wc -w")
        show = BashOperator(task_id="show", bash_command="echo 'run {{ run_id }} for {{ data_interval_start }}'")
        count >> show
    prepare >> report
