"""TaskFlow: return values flow between @task functions as XCom, and a branch picks the path to run."""

from __future__ import annotations

import pendulum

from dagrunner import TriggerRule, dag, task
from dagrunner.operators import EmptyOperator


@dag(
    schedule="0 6 * * 1-5",
    start_date=pendulum.datetime(2026, 1, 1, tz="Europe/Amsterdam"),
    catchup=False,
    tags=["example", "taskflow"],
    params={"threshold": 100},
)
def taskflow_branching():
    @task
    def measure(logical_date=None) -> int:
        """A number that depends on the day, standing in for a metric read from somewhere."""
        return (logical_date.day * 37) % 200

    @task.branch
    def choose(value: int, params=None) -> str:
        return "alert" if value > params["threshold"] else "all_good"

    @task
    def alert(value: int) -> str:
        print(f"value {value} is above the threshold")
        return "alerted"

    all_good = EmptyOperator(task_id="all_good")
    done = EmptyOperator(task_id="done", trigger_rule=TriggerRule.NONE_FAILED_MIN_ONE_SUCCESS)

    value = measure()
    choose(value) >> [alert(value), all_good] >> done


taskflow_branching()
