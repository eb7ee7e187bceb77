"""LatestOnlyOperator: let the work downstream run only in the DAG's latest scheduled run (Airflow's name).

    with DAG("report", schedule="@daily", start_date=..., catchup=True):
        LatestOnlyOperator(task_id="latest_only") >> send_email

A catch-up or backfill run of an old day skips `send_email`; the run for the newest period runs it. A run
is the latest while the timetable's next run after it is not yet due (`now` before that run's
`run_after`), as Airflow judges it by the next run's data interval. Runs that are not scheduled (manual,
asset-triggered) always proceed, as in Airflow 3. The direct downstream tasks are skipped and the skip
travels further by trigger rules, as for any branch.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

from dagrunner.authoring.operators.clock_branch import ClockBranchOperator
from dagrunner.timetables import DagRunInfo

#: Run types LatestOnlyOperator judges; every other run (manual, asset_triggered) proceeds.
_JUDGED_RUN_TYPES = frozenset({"scheduled", "backfill"})


class LatestOnlyOperator(ClockBranchOperator):
    """Skip the direct downstream tasks unless this run is the DAG's latest scheduled one."""

    def choose_branch(self, context: Mapping[str, Any], now: datetime) -> list[str]:
        """All direct downstream task ids when the run is the latest (or not scheduled), else none."""
        downstream = sorted(self.downstream_task_ids)
        dag_run = context["dag_run"]
        if dag_run.run_type not in _JUDGED_RUN_TYPES:
            print(f"[dagrunner] {dag_run.run_type} run: allowing execution to proceed")
            return downstream
        if self.is_latest(dag_run, now):
            print("[dagrunner] the latest run: allowing execution to proceed")
            return downstream
        print("[dagrunner] not the latest run: skipping downstream " + (", ".join(downstream) or "(none)"))
        return []

    def is_latest(self, dag_run: Any, now: datetime) -> bool:
        """True while the run after `dag_run` on the DAG's timetable is not yet due at `now`."""
        this = DagRunInfo(
            run_after=dag_run.run_after,
            logical_date=dag_run.logical_date,
            data_interval_start=dag_run.data_interval_start,
            data_interval_end=dag_run.data_interval_end,
        )
        following = self.dag.timetable.next_dagrun_info(
            last=this, start_date=self.dag.start_date, end_date=self.dag.end_date, catchup=True, now=now
        )
        return following is None or now < following.run_after
