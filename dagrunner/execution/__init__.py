"""Executors: where and how tries run. `base` is the map (the interface and its messages).

- `inline`: in the calling process (debugging, `dags test`);
- `local`: warm worker processes, each with a forker that forks one process per try (the default);
- `celery`: tries sent to Celery queues, run by `dagrunner worker` processes on any host (`execution.celery`).

The runner (`runner.run_task`) is the one place user code runs; `recording` is every database write
about a try, made by the side that runs it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from dagrunner.errors import ExecutionError

if TYPE_CHECKING:
    from dagrunner.clock import Clock
    from dagrunner.execution.base import Executor
    from dagrunner.settings import Settings

EXECUTOR_NAMES = ("inline", "local", "celery")


def make_executor(name: str, settings: Settings, *, actor: str, clock: Clock | None = None) -> Executor:
    """The executor called `name`, configured from `settings` (not started: call `start()`).

    `clock` stamps what the inline executor records (a FakeClock in scheduler tests); the local
    executor's workers are other processes and always use the system clock.
    """
    if name == "inline":
        from dagrunner.execution.inline import InlineExecutor
        from dagrunner.persistence.engine import make_engine

        engine = make_engine(settings.db_url, busy_timeout=settings.sqlite_busy_timeout)
        return InlineExecutor(settings, engine, actor=actor, clock=clock)
    if name == "local":
        from dagrunner.execution.local import LocalExecutor

        return LocalExecutor(settings, settings.db_url, actor=actor, parallelism=settings.parallelism)
    if name == "celery":
        from dagrunner.execution.celery.executor import CeleryExecutor

        return CeleryExecutor(settings, actor=actor, parallelism=settings.parallelism, clock=clock)
    raise ExecutionError(f"unknown executor {name!r}; choose one of: {', '.join(EXECUTOR_NAMES)}")
