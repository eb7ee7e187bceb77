"""Choreography: two DAGs that react, each on its own, to every completed order.

`order_processing` publishes its run events through the transactional outbox; with the sink of
docs/events.md configured, each successful run becomes a CloudEvent (`dagrunner.dag_run.succeeded`) on
the Redis stream `orders.completed`: its attributes as fields, its `data` (dag_id, run_id, old and new
state) as the `data` field, which is the message the watcher reads. The asset `order.completed` watches
that stream: each entry becomes one asset event (the run it reports is the message id, so the same run
published twice starts nothing new), and both `order_shipping` and `order_analytics` are scheduled on it.
Neither knows of the other, nor of how the order was processed: they see the event in
`triggering_asset_events`.

    redis-cli XADD orders.completed '*' data '{"dag_id": "order_processing", "run_id": "by-hand", "new_state": "success"}'

The watcher is there when `DAGRUNNER_ORDERS_REDIS_URL` names the Redis server (e.g. redis://127.0.0.1:6379/0);
the stream is `DAGRUNNER_ORDERS_STREAM` (default `orders.completed`).
"""

from __future__ import annotations

import os

import pendulum

from dagrunner import Asset, AssetWatcher, dag, task
from dagrunner.triggers import RedisStreamTrigger


def _check_completed(run: dict) -> None:
    """Only a run that succeeded is a completed order: anything else on the stream is dead-lettered."""
    if run.get("new_state") != "success" or not isinstance(run.get("run_id"), str):
        raise ValueError("expected a run that succeeded: a string `run_id` and `new_state` 'success'")


#: Opt-in, as in order_processing: the watcher is there when `DAGRUNNER_ORDERS_REDIS_URL` names the server.
REDIS_URL = os.environ.get("DAGRUNNER_ORDERS_REDIS_URL")
ORDER_COMPLETED = Asset(
    "order.completed",
    watchers=[
        AssetWatcher(
            "orders-completed-stream",
            RedisStreamTrigger(
                url=REDIS_URL,
                stream=os.environ.get("DAGRUNNER_ORDERS_STREAM", "orders.completed"),
                message_id=lambda run: f"{run.get('dag_id')}/{run['run_id']}",
                validate=_check_completed,
            ),
        )
    ]
    if REDIS_URL
    else [],
)


def _completed_runs(triggering_asset_events: dict) -> list[str]:
    """The order runs this run reacts to: one per CloudEvent that triggered it."""
    events = triggering_asset_events.get(ORDER_COMPLETED.name, [])
    return [f"{e.extra.get('dag_id')}/{e.extra['run_id']}" for e in events]


@dag(
    schedule=[ORDER_COMPLETED],
    start_date=pendulum.datetime(2026, 1, 1, tz="UTC"),
    catchup=False,
    tags=["example", "events"],
)
def order_shipping():
    @task
    def print_label(triggering_asset_events=None) -> list[str]:
        runs = _completed_runs(triggering_asset_events)
        for run in runs:
            print(f"shipping label printed for {run}")
        return runs

    print_label()


@dag(
    schedule=[ORDER_COMPLETED],
    start_date=pendulum.datetime(2026, 1, 1, tz="UTC"),
    catchup=False,
    tags=["example", "events"],
)
def order_analytics():
    @task
    def count_order(triggering_asset_events=None) -> int:
        runs = _completed_runs(triggering_asset_events)
        print(f"{len(runs)} completed order(s) counted: {', '.join(runs)}")
        return len(runs)

    count_order()


order_shipping()
order_analytics()
