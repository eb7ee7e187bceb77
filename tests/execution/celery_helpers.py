"""Real brokers and real `dagrunner worker` subprocesses for the Celery executor's tests.

Each test gets queue names of its own (so tests never take each other's messages) and its own worker
process, stopped (SIGTERM, then SIGKILL) after the test.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import uuid
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from pathlib import Path

import pytest

from dagrunner.settings import Settings

REDIS_URL = os.environ.get("DAGRUNNER_TEST_REDIS_BROKER", "redis://127.0.0.1:6379/0")
AMQP_URL = os.environ.get("DAGRUNNER_TEST_AMQP_BROKER", "amqp://guest:guest@127.0.0.1:5672//")
BROKERS = {"redis": REDIS_URL, "rabbitmq": AMQP_URL}


def broker_reachable(url: str) -> bool:
    from urllib.parse import urlsplit

    parts = urlsplit(url)
    try:
        with socket.create_connection((parts.hostname or "127.0.0.1", parts.port or 6379), timeout=1.0):
            return True
    except OSError:
        return False


def require_broker(url: str) -> None:
    pytest.importorskip("celery")
    if not broker_reachable(url):
        pytest.skip(f"no broker at {url}")


def unique_queue(prefix: str = "t") -> str:
    return f"dagrunner-test-{prefix}-{uuid.uuid4().hex[:10]}"


def celery_settings(settings: Settings, broker_url: str, queue: str, **extra: object) -> Settings:
    """`settings` with the broker, the default queue, and whatever else the test sets."""
    from dataclasses import replace

    return replace(settings, celery_broker_url=broker_url, celery_default_queue=queue, **extra)  # type: ignore[arg-type]


def worker_env(settings: Settings, *, log_port: int = 0, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("DAGRUNNER_")}
    env.update({
        "DAGRUNNER_HOME": str(settings.home),
        "DAGRUNNER_DB_URL": settings.db_url,
        "DAGRUNNER_DAGS_FOLDER": str(settings.dags_folder),
        "DAGRUNNER_PLUGINS_FOLDER": str(settings.plugins_folder),
        "DAGRUNNER_LOGS_FOLDER": str(settings.logs_folder),
        "DAGRUNNER_CELERY_BROKER_URL": settings.celery_broker_url,
        "DAGRUNNER_CELERY_DEFAULT_QUEUE": settings.celery_default_queue,
        "DAGRUNNER_WORKER_LOG_SERVER_PORT": str(log_port),
        "DAGRUNNER_DAGBAG_IMPORT_TIMEOUT": str(settings.dagbag_import_timeout),
        **extra,
    })  # fmt: skip
    return env


@contextmanager
def running_worker(
    settings: Settings,
    *,
    queues: str | None = None,
    concurrency: int = 2,
    log_port: int = 0,
    warm_stop: bool = True,
    **env: str,
) -> Iterator[subprocess.Popen[bytes]]:
    """A `dagrunner worker` subprocess for the test; stopped afterwards (warm, then SIGKILL; or SIGKILL at
    once when `warm_stop` is false and the test has nothing left running)."""
    args = [sys.executable, "-m", "dagrunner", "worker", "--concurrency", str(concurrency)]
    if queues:
        args += ["--queues", queues]
    log = Path(settings.home) / f"worker-{uuid.uuid4().hex[:6]}.log"
    with log.open("wb") as out:
        process = subprocess.Popen(args, env=worker_env(settings, log_port=log_port, **env), stdout=out,
                                   stderr=subprocess.STDOUT, start_new_session=True)  # fmt: skip
    try:
        yield process
    finally:
        stop_worker(process, timeout=15.0 if warm_stop else 0.0)
        if os.environ.get("DAGRUNNER_TEST_SHOW_WORKER_LOG"):
            print(log.read_text())


def stop_worker(process: subprocess.Popen[bytes], timeout: float = 15.0) -> None:
    """SIGTERM (Celery's warm shutdown), then SIGKILL to its whole group (forkserver, warm workers, forkers)."""
    if process.poll() is None and timeout > 0:
        process.send_signal(signal.SIGTERM)
        with suppress(subprocess.TimeoutExpired):
            process.wait(timeout=15.0)
    with suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGKILL)
    process.wait(timeout=15.0)
