"""The Celery app both sides build: the broker from settings, JSON only, no result backend, late acks.

`require_celery()` turns a missing package or broker URL into one clear error naming what to install or
set; nothing else in dagrunner imports `celery` at module level, so the extra stays optional.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from dagrunner.errors import ExecutionError

if TYPE_CHECKING:
    from dagrunner.settings import Settings

#: Seconds to wait for the broker to answer a connection attempt (a blackholed broker must not hang a tick).
CONNECT_TIMEOUT_S = 2.0
#: Redis redelivers a message not acked within this many seconds (a worker killed mid-try); the try itself
#: is failed or retried by the scheduler's zombie check long before, and the redelivery is fenced out.
VISIBILITY_TIMEOUT_S = 3600

# `worker_enable_prefetch_count_reduction` is off: after a broker reconnect Celery lowers the prefetch count
# while earlier tasks are in hand, and raises it again from each later task's ack promise. With the thread
# pool that promise runs in the pool thread, so `basic.qos` goes out on the consumer's py-amqp connection
# from that thread while the main thread's event loop reads it too; the frames interleave and the main
# thread blocks for ever reading a frame of garbage size: the worker takes no more work (RabbitMQ; Redis
# has no such RPC). With prefetch 1 per thread the reduction buys nothing, so the count is never changed.


def require_celery(settings: Settings) -> str:
    """The broker URL; ExecutionError when the `celery` extra is not installed or no broker is set."""
    try:
        import celery  # noqa: F401
        import kombu  # noqa: F401
    except ImportError as exc:
        raise ExecutionError(
            f"the celery executor needs the celery extra ({exc}): pip install 'dagrunner[celery]'"
        ) from exc
    if not settings.celery_broker_url:
        raise ExecutionError(
            "the celery executor needs a broker: set DAGRUNNER_CELERY_BROKER_URL (or celery_broker_url in "
            "dagrunner.toml), e.g. redis://127.0.0.1:6379/0 or amqp://guest:guest@127.0.0.1:5672//"
        )
    return settings.celery_broker_url


def make_app(settings: Settings, *, main: str = "dagrunner") -> Any:
    """A Celery app on the settings' broker (no result backend: outcomes go to the metadata DB)."""
    broker = require_celery(settings)
    from celery import Celery

    app = Celery(main, broker=broker, set_as_current=False)
    app.conf.update(
        task_serializer="json",
        accept_content=["json"],
        result_serializer="json",
        result_backend=None,
        task_ignore_result=True,
        task_acks_late=True,
        task_reject_on_worker_lost=True,
        task_default_queue=settings.celery_default_queue,
        worker_prefetch_multiplier=1,
        worker_enable_prefetch_count_reduction=False,
        worker_hijack_root_logger=False,
        worker_redirect_stdouts=False,
        broker_connection_timeout=CONNECT_TIMEOUT_S,
        broker_connection_retry_on_startup=True,
        broker_transport_options={"visibility_timeout": VISIBILITY_TIMEOUT_S},
        worker_enable_remote_control=False,
        worker_send_task_events=False,
        task_send_sent_event=False,
    )
    return app
