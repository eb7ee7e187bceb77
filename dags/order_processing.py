"""A saga: an order goes through seven steps; when payment fails, the steps that succeeded are undone.

validate_payment -> check_inventory -> reserve_inventory -> process_payment -> confirm_order -> ship -> notify

`validate_payment` authorises the payment and `reserve_inventory` reserves the goods; each names the task
that undoes it (`compensate_with`). Trigger with `--conf '{"fail_payment": true}'` and `process_payment`
fails after its retry: the run fails, and the scheduler runs the compensations of the steps that succeeded,
newest first: the reservation is released, then the authorisation voided. Each compensation gets the
step's return value (the reservation id, the authorisation id) and an idempotency key to hand to the
external system, so running it twice would do no harm. `dagrunner audit` reads the rollback back.

    dagrunner dags trigger order_processing --conf '{"fail_payment": true}'
"""

from __future__ import annotations

from datetime import timedelta

import pendulum

from dagrunner import dag, task


@dag(
    schedule=None,
    start_date=pendulum.datetime(2026, 1, 1, tz="UTC"),
    catchup=False,
    tags=["example", "saga"],
    params={"fail_payment": False, "order_id": "order-1001", "amount": 42.5},
    default_args={"retries": 1, "retry_delay": timedelta(seconds=2)},
)
def order_processing():
    @task
    def validate_payment(params=None) -> dict:
        """Authorise the amount with the payment provider; the authorisation id is what voiding needs."""
        auth_id = f"auth-{params['order_id']}"
        print(f"authorised {params['amount']} for {params['order_id']}: {auth_id}")
        return {"auth_id": auth_id, "amount": params["amount"]}

    @task
    def void_authorisation(compensation=None) -> str:
        auth = compensation["result"]
        print(f"voided {auth['auth_id']} (idempotency key {compensation['idempotency_key']})")
        return auth["auth_id"]

    @task
    def check_inventory(params=None) -> int:
        print(f"3 items in stock for {params['order_id']}")
        return 3

    @task
    def reserve_inventory(in_stock: int, params=None) -> dict:
        reservation_id = f"resv-{params['order_id']}"
        print(f"reserved 1 of {in_stock} items: {reservation_id}")
        return {"reservation_id": reservation_id}

    @task
    def release_inventory(compensation=None) -> str:
        reservation = compensation["result"]
        print(f"released {reservation['reservation_id']} (idempotency key {compensation['idempotency_key']})")
        return reservation["reservation_id"]

    @task
    def process_payment(auth: dict, reservation: dict, params=None) -> str:
        if params["fail_payment"]:
            raise RuntimeError(f"the payment provider declined {auth['auth_id']} (conf fail_payment)")
        print(f"captured {auth['amount']} on {auth['auth_id']} for {reservation['reservation_id']}")
        return f"pay-{params['order_id']}"

    @task
    def confirm_order(payment_id: str, params=None) -> str:
        print(f"order {params['order_id']} confirmed, payment {payment_id}")
        return params["order_id"]

    @task
    def ship(order_id: str) -> str:
        print(f"shipped {order_id}")
        return f"track-{order_id}"

    @task
    def notify(tracking: str, params=None) -> None:
        print(f"told the customer of {params['order_id']}: tracking {tracking}")

    auth = validate_payment()
    auth.compensate_with(void_authorisation())
    in_stock = check_inventory()
    auth >> in_stock
    reservation = reserve_inventory(in_stock)
    reservation.compensate_with(release_inventory())
    notify(ship(confirm_order(process_payment(auth, reservation))))


order_processing()
