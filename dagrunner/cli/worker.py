"""`dagrunner worker`: a Celery worker that runs the tries a `--executor celery` scheduler sends."""

from __future__ import annotations

import socket
import threading

import click

from dagrunner.cli import render
from dagrunner.cli.context import CliContext, pass_cli
from dagrunner.clock import SystemClock


@click.command()
@click.option("--queues", default=None, help="Comma-separated Celery queues to take tries from "
              "(default: the celery_default_queue setting).")  # fmt: skip
@click.option("--concurrency", type=click.IntRange(min=1), default=None,
              help="Tries run at once (default: the parallelism setting).")  # fmt: skip
@click.option("--hostname", default=None, help="The Celery node name (default: dagrunner@<host>).")
@pass_cli
def worker(cli: CliContext, queues: str | None, concurrency: int | None, hostname: str | None) -> None:
    """Run tries from Celery queues until SIGTERM/SIGINT (tries in hand finish first).

    Needs the same DAG folder as the scheduler, the metadata DB (DAGRUNNER_DB_URL) and the broker
    (DAGRUNNER_CELERY_BROKER_URL). Serves its try logs over HTTP on worker_log_server_port for
    `dagrunner tasks logs` on other hosts. See docs/celery.md.
    """
    from dagrunner.execution.celery.app import require_celery
    from dagrunner.execution.celery.logserver import serve_logs
    from dagrunner.execution.celery.worker import run_worker
    from dagrunner.persistence.engine import session_scope
    from dagrunner.persistence.models import JobState, JobType, SchedulerJob
    from dagrunner.scheduling import jobs

    settings = cli.settings
    require_celery(settings)
    names = [q.strip() for q in (queues or settings.celery_default_queue).split(",") if q.strip()]
    if not names:
        raise click.UsageError("--queues names no queue")
    node = hostname or f"dagrunner@{socket.gethostname()}"
    clock = SystemClock()
    with session_scope(cli.engine) as session:
        job = jobs.register_job(session, JobType.WORKER, clock.now(), actor=cli.actor)
        session.get(SchedulerJob, job.id).queues = ",".join(names)  # type: ignore[union-attr]
        job_id = job.id
    server = serve_logs(settings.logs_folder, settings.worker_log_server_port)
    stop = threading.Event()

    def beat() -> None:
        while not stop.wait(settings.scheduler_heartbeat_sec):
            try:
                with session_scope(cli.engine) as session:
                    jobs.heartbeat(session, job_id, clock.now())
            except Exception as exc:  # noqa: BLE001 - a missed heartbeat is retried at the next beat
                render.error(f"worker heartbeat failed: {exc}")

    threading.Thread(target=beat, name="worker-heartbeat", daemon=True).start()
    port = f"port {server.server_port}" if server is not None else "no log server (port in use)"
    render.info(f"dagrunner worker {node} (job {job_id}): queues {', '.join(names)}, dags {settings.dags_folder}, "
                f"db {cli.db_label}, logs served on {port}")  # fmt: skip
    state, reason = JobState.SUCCESS, "stopped"
    try:
        run_worker(settings, actor=cli.actor, queues=names, concurrency=concurrency or settings.parallelism,
                   hostname=node)  # fmt: skip
    except BaseException as exc:
        state, reason = JobState.FAILED, f"{type(exc).__name__}: {exc}"
        raise
    finally:
        stop.set()
        if server is not None:
            server.shutdown()
        with session_scope(cli.engine) as session:
            jobs.end_job(session, job_id, clock.now(), state, actor=cli.actor, reason=reason)
        render.info("worker stopped")
