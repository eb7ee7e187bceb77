"""`dagrunner triggerer`: asset watchers and the outbox relay in one process, until SIGINT/SIGTERM."""

from __future__ import annotations

import logging
import signal
import sys

import click

from dagrunner.cli import render
from dagrunner.cli.context import CliContext, pass_cli
from dagrunner.clock import SystemClock


@click.command()
@click.option("--report-fd", type=int, hidden=True, help="A pipe to tell a parent scheduler of created runs.")
@click.option(
    "--parent-pid", type=int, hidden=True, help="The scheduler that started it: it stops when that one is gone."
)
@pass_cli
def triggerer(cli: CliContext, report_fd: int | None, parent_pid: int | None) -> None:
    """Run the asset watchers and the outbox relay until SIGINT/SIGTERM.

    Watchers turn broker messages (Redis streams, RabbitMQ queues) into asset events and the runs they
    trigger; messages that cannot be used go to `dagrunner events dead-letters`. `dagrunner scheduler`
    runs one as a child process unless `triggerer_in_scheduler` is false; run it alone for a larger
    deployment (any number of them may run: the database de-duplicates messages).
    """
    from dagrunner.scheduling.outbox_relay import Relay
    from dagrunner.scheduling.triggerer_child import report_runs_created, stop_when_orphaned
    from dagrunner.scheduling.watchers.triggerer import Triggerer

    _log_to_stderr()
    settings = cli.settings
    trig = Triggerer(
        cli.engine, settings, actor=cli.actor, clock=SystemClock(),
        on_runs_created=report_runs_created(report_fd) if report_fd is not None else None,
        relay_factory=lambda: Relay(cli.engine, settings, actor=cli.actor, clock=SystemClock()),
    )  # fmt: skip

    def stop(signum: int, _frame: object) -> None:
        render.info(f"triggerer: {signal.Signals(signum).name}: stopping")
        trig.request_stop()

    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, stop)
    if parent_pid is not None:  # a scheduler's child: it ends with its scheduler, however that ends
        stop_when_orphaned(trig.request_stop, parent=parent_pid)
    render.info(f"dagrunner triggerer: dags {settings.dags_folder}, db {cli.db_label}")
    trig.run()
    render.info("triggerer stopped")


def _log_to_stderr() -> None:
    """The watchers' and relay's log lines (INFO and up), prefixed, on stderr."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("triggerer: %(levelname)s %(message)s"))
    for name in ("dagrunner.scheduling.watchers", "dagrunner.scheduling.outbox_relay"):
        logger = logging.getLogger(name)
        logger.setLevel(logging.INFO)
        logger.addHandler(handler)
        logger.propagate = False
