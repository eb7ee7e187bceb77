"""A saga started by a message: an order goes through seven steps; when payment fails, the steps that
succeeded are undone.

validate_payment -> check_inventory -> reserve_inventory -> process_payment -> confirm_order -> ship -> notify

The DAG runs when an "order placed" message arrives on the RabbitMQ queue `orders.placed`: the asset
`orders.placed` has a watcher on that queue, each message becomes one asset event (its `order_id` is the
message id, so a message delivered twice starts one run), and the event's payload (the order) reaches the
run in `triggering_asset_events`. A message that is not a valid order goes to the dead letters
(`dagrunner events dead-letters list`). It can still be triggered by hand, the order taken from `params`.
docs/events.md walks through it. The watcher is there when `DAGRUNNER_ORDERS_AMQP_URL` names the broker (so
the quick start needs none); the queue is `DAGRUNNER_ORDERS_QUEUE` (default `orders.placed`).

`validate_payment` authorises the payment and `reserve_inventory` reserves the goods; each names the task
that undoes it (`compensate_with`). An order with `"fail_payment": true` (or `--conf '{"fail_payment":
true}'`) makes `process_payment` fail after its retry: the run fails, and the scheduler runs the
compensations of the steps that succeeded, newest first: the reservation is released, then the
authorisation voided. Each compensation gets the step's return value (the reservation id, the
authorisation id) and an idempotency key to hand to the external system, so running it twice would do no
harm. `dagrunner audit` reads the rollback back.

    dagrunner dags trigger order_processing --conf '{"fail_payment": true}'
    python -c "import pika, json; c = pika.BlockingConnection(); c.channel().basic_publish('', 'orders.placed', json.dumps({'order_id': 'o-1', 'amount': 12.5}))"
"""

from __future__ import annotations

import os
from datetime import timedelta

import pendulum

from dagrunner import Asset, AssetWatcher, dag, task
from dagrunner.triggers import RabbitMQTrigger


def _check_order(order: dict) -> None:
    """The watcher's validation: a message that is not an order is dead-lettered, not run."""
    if not isinstance(order.get("order_id"), str) or not isinstance(order.get("amount"), int | float):
        raise ValueError("an order needs a string `order_id` and a numeric `amount`")


#: The broker is opt-in, so the quick start needs none: with `DAGRUNNER_ORDERS_AMQP_URL` set (e.g.
#: amqp://guest:guest@127.0.0.1:5672/), the asset gets its watcher on the queue.
AMQP_URL = os.environ.get("DAGRUNNER_ORDERS_AMQP_URL")
ORDERS_PLACED = Asset(
    "orders.placed",
    watchers=[
        AssetWatcher(
            "orders-placed-queue",
            RabbitMQTrigger(
                url=AMQP_URL,
                queue=os.environ.get("DAGRUNNER_ORDERS_QUEUE", "orders.placed"),
                message_id=lambda order: order["order_id"],
                validate=_check_order,
            ),
        )
    ]
    if AMQP_URL
    else [],
)


def _order(params: dict, triggering_asset_events: dict) -> dict:
    """The order this run is about: the message that triggered it, or `params` for a manual run."""
    events = triggering_asset_events.get(ORDERS_PLACED.name) if triggering_asset_events else None
    return dict(events[-1].extra) if events else dict(params)


@dag(
    schedule=[ORDERS_PLACED],
    start_date=pendulum.datetime(2026, 1, 1, tz="UTC"),
    catchup=False,
    tags=["example", "saga", "events"],
    params={"fail_payment": False, "order_id": "order-1001", "amount": 42.5},
    default_args={"retries": 1, "retry_delay": timedelta(seconds=2)},
)
def order_processing():
    @task
    def validate_payment(params=None, triggering_asset_events=None) -> dict:
        """Authorise the amount with the payment provider; the authorisation id is what voiding needs."""
        order = _order(params, triggering_asset_events)
        auth_id = f"auth-{order['order_id']}"
        print(f"authorised {order['amount']} for {order['order_id']}: {auth_id}")
        return {"auth_id": auth_id, "amount": order["amount"], "order_id": order["order_id"],
                "fail_payment": bool(order.get("fail_payment"))}  # fmt: skip

    @task
    def void_authorisation(compensation=None) -> str:
        auth = compensation["result"]
        print(f"voided {auth['auth_id']} (idempotency key {compensation['idempotency_key']})")
        return auth["auth_id"]

    @task
    def check_inventory(auth: dict) -> int:
        print(f"3 items in stock for {auth['order_id']}")
        return 3

    @task
    def reserve_inventory(in_stock: int, auth: dict) -> dict:
        reservation_id = f"resv-{auth['order_id']}"
        print(f"reserved 1 of {in_stock} items: {reservation_id}")
        return {"reservation_id": reservation_id}

    @task
    def release_inventory(compensation=None) -> str:
        reservation = compensation["result"]
        print(f"released {reservation['reservation_id']} (idempotency key {compensation['idempotency_key']})")
        return reservation["reservation_id"]

    @task
    def process_payment(auth: dict, reservation: dict) -> dict:
        if auth["fail_payment"]:
            raise RuntimeError(f"the payment provider declined {auth['auth_id']} (fail_payment)")
        print(f"captured {auth['amount']} on {auth['auth_id']} for {reservation['reservation_id']}")
        return {"payment_id": f"pay-{auth['order_id']}", "order_id": auth["order_id"]}

    @task
    def confirm_order(payment: dict) -> str:
        print(f"order {payment['order_id']} confirmed, payment {payment['payment_id']}")
        return payment["order_id"]

    @task
    def ship(order_id: str) -> str:
        print(f"shipped {order_id}")
        return f"track-{order_id}"

    @task
    def notify(tracking: str) -> None:
        print(f"told the customer: tracking {tracking}")

    auth = validate_payment()
    auth.compensate_with(void_authorisation())
    in_stock = check_inventory(auth)
    reservation = reserve_inventory(in_stock, auth)
    reservation.compensate_with(release_inventory())
    notify(ship(confirm_order(process_payment(auth, reservation))))


order_processing()
