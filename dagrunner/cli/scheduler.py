"""`dagrunner scheduler`: the daemon, and the shared way CLI commands build a scheduler."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

import click

from dagrunner.cli import render
from dagrunner.cli.context import CliContext, pass_cli
from dagrunner.clock import SystemClock

if TYPE_CHECKING:  # the scheduling stack loads only when a command needs it (fast --help, version)
    from dagrunner.scheduling.dag_source import DagSource
    from dagrunner.scheduling.scheduler import Scheduler, SchedulerEvent, SchedulerOptions
    from dagrunner.scheduling.single_scheduler import SchedulerLock
    from dagrunner.scheduling.triggerer_child import TriggererChild

executor_option = click.option(
    "--executor",
    type=click.Choice(["inline", "local", "celery"]),
    help="Where tasks run: local (warm worker processes, the default), inline (this process, for debugging) or "
    "celery (Celery queues served by `dagrunner worker` processes; docs/celery.md).",
)
parallelism_option = click.option(
    "--parallelism", type=click.IntRange(min=1), help="Most tries running at once (default: CPUs, at least 2)."
)


def build_scheduler(
    cli: CliContext,
    *,
    dag_source: DagSource | None = None,
    options: SchedulerOptions | None = None,
    on_event: Callable[[SchedulerEvent], None] | None | str = "print",
) -> Scheduler:
    from dagrunner.cli.live import print_event
    from dagrunner.execution import make_executor
    from dagrunner.execution.worker_config import WorkerConfig
    from dagrunner.scheduling.dag_source import FolderDagSource
    from dagrunner.scheduling.scheduler import Scheduler

    settings = cli.settings
    engine = cli.engine
    executor = make_executor(settings.executor, settings, actor=cli.actor)
    return Scheduler(
        engine=engine,
        executor=executor,
        dag_source=dag_source or FolderDagSource(settings, engine, actor=cli.actor),
        clock=SystemClock(),
        actor=cli.actor,
        zombie_threshold_s=settings.zombie_threshold_sec,
        heartbeat_s=settings.scheduler_heartbeat_sec,
        adopt_after_s=settings.scheduler_adopt_after_sec,
        options=options,
        on_event=print_event if on_event == "print" else on_event,  # type: ignore[arg-type]
        db_unreachable_timeout_s=settings.db_unreachable_timeout_sec,
        callbacks=WorkerConfig.from_settings(settings, actor=cli.actor),
    )


@click.command()
@executor_option
@parallelism_option
@click.option("--once", is_flag=True, help="Exit when nothing is running or ready (future runs and retries wait).")
@click.option("--num-runs", type=click.IntRange(min=1), help="Exit after this many DAG runs have finished.")
@click.option("--grace", "grace_s", type=float, default=30.0, show_default=True,
              help="Seconds running tries get to finish after SIGINT/SIGTERM.")  # fmt: skip
@click.option("--parent-pid", type=int, hidden=True, help="The process that started it (`dagrunner standalone`): "
              "it stops when that one is gone.")  # fmt: skip
@pass_cli
def scheduler(
    cli: CliContext, executor: str | None, parallelism: int | None, once: bool, num_runs: int | None, grace_s: float,
    parent_pid: int | None,
) -> None:  # fmt: skip
    """Run the scheduler: parse dags/, create runs on schedule, run their tasks, until stopped.

    Changed and new DAG files are picked up while it runs. SIGINT/SIGTERM stop it gracefully: no new
    work, running tries get --grace seconds, and what is left is recorded.
    """
    from dagrunner.scheduling.loop import StopOnSignals, StopWhen, run_loop

    cli.override(executor=executor, parallelism=parallelism)
    lock = _only_scheduler_on_sqlite(cli)
    apply_config_pools(cli)
    sched = build_scheduler(cli)
    settings = cli.settings
    render.info(
        f"dagrunner scheduler: dags {settings.dags_folder}, executor {settings.executor}, "
        f"parallelism {settings.parallelism}, db {cli.db_label}"
    )
    if parent_pid is not None:  # `standalone`'s child: it ends with the api-server, however that ends
        from dagrunner.scheduling.triggerer_child import stop_when_orphaned

        stop_when_orphaned(sched.request_stop, parent=parent_pid)
    child = _start_triggerer(cli, sched)
    try:
        with StopOnSignals(sched, on_signal=lambda name: render.info(f"{name}: stopping (grace {grace_s:g}s)")):
            finished = run_loop(sched, StopWhen(once=once, num_runs=num_runs), grace_s=grace_s)
    finally:
        if child is not None:
            child.stop()
    render.info(f"scheduler stopped; {len(finished)} run(s) finished in this session")
    if lock is not None:
        lock.release()


def _start_triggerer(cli: CliContext, sched: Scheduler) -> TriggererChild | None:
    """The asset watchers and outbox relay as a child process (`dagrunner triggerer`), unless the setting
    `triggerer_in_scheduler` is false; runs it creates wake this scheduler at once (`nudge`)."""
    import os

    from dagrunner.scheduling.triggerer_child import TriggererChild

    settings = cli.settings
    if not settings.triggerer_in_scheduler:
        render.info("triggerer_in_scheduler is false: run `dagrunner triggerer` for asset watchers and the outbox")
        return None
    env = {**os.environ, "DAGRUNNER_HOME": str(settings.home), "DAGRUNNER_DB_URL": settings.db_url,
           "DAGRUNNER_DAGS_FOLDER": str(settings.dags_folder)}  # fmt: skip
    child = TriggererChild(env, sched.nudge)
    child.start()
    return child


def apply_config_pools(cli: CliContext) -> None:
    """Create or change the pools of the config file's `[pools.NAME]` tables (`scheduling.pools`), saying
    each change made."""
    settings = cli.settings
    if not settings.pools:
        return
    from dagrunner.scheduling.pools import apply_pool_config

    source = settings.sources.get("pools", "config")
    with cli.session() as session:
        changes = apply_pool_config(session, settings.pools, source=source, actor=cli.actor, now=SystemClock().now())
    for change in changes:
        render.info(f"{change.describe()} (from {source})")


def _only_scheduler_on_sqlite(cli: CliContext) -> SchedulerLock | None:
    """On a SQLite file, take the one-scheduler lock (refused, naming the holder, if another has it)."""
    from dagrunner.scheduling.single_scheduler import SchedulerLock, sqlite_lock_path

    path = sqlite_lock_path(cli.settings.db_url)
    if path is None:
        return None  # PostgreSQL: several schedulers may run
    lock = SchedulerLock(path)
    lock.acquire(SystemClock().now())
    return lock
