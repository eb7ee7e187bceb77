"""Fixtures for executor tests: a project (dags folder, logs, settings) on each database, and executors.

`executor` is parametrized over inline, local and celery (a real `dagrunner worker` subprocess on Redis,
queues of the test's own), so a contract test that takes it runs against both
(and, through `db_url`, on SQLite and PostgreSQL). Executors are started for the test and shut down
after it.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path

import pytest
from sqlalchemy import Engine

from dagrunner.authoring._settings import get_settings
from dagrunner.authoring.dag import reset_collected_dags
from dagrunner.execution.base import Executor
from dagrunner.execution.inline import InlineExecutor
from dagrunner.execution.local import LocalExecutor
from dagrunner.execution.worker_config import LEAN_FORKER_AFTER
from dagrunner.settings import Settings

from .dag_sources import CONTRACT_DAG
from .helpers import ACTOR, make_settings, write_dag


@pytest.fixture(autouse=True)
def clean_environment(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """DAG files see default settings (no stray dagrunner.toml or DAGRUNNER_* from the shell)."""
    monkeypatch.setenv("DAGRUNNER_HOME", str(tmp_path_factory.mktemp("home")))
    for name in ("DAGRUNNER_CREATE_CRON_DATA_INTERVALS", "DAGRUNNER_DEFAULT_TIMEZONE", "DAGRUNNER_DB_URL"):
        monkeypatch.delenv(name, raising=False)
    get_settings.cache_clear()
    reset_collected_dags()
    yield
    reset_collected_dags()
    get_settings.cache_clear()


@dataclass
class Project:
    root: Path
    dags: Path
    settings: Settings
    engine: Engine

    def dag_file(self, name: str, source: str) -> Path:
        return write_dag(self.dags, name, source)

    @property
    def marks(self) -> Path:
        """Where the test DAGs' callbacks leave marker files."""
        return self.dags / "marks"


@pytest.fixture
def project(tmp_path: Path, db_url: str, migrated_engine: Engine) -> Project:
    dags = tmp_path / "dags"
    dags.mkdir()
    (dags / "marks").mkdir()
    return Project(tmp_path, dags, make_settings(tmp_path, db_url, dags), migrated_engine)


@pytest.fixture
def contract_file(project: Project) -> Path:
    return project.dag_file("contract_dag.py", CONTRACT_DAG)


ExecutorFactory = Callable[..., Executor]


@pytest.fixture
def make_executor(project: Project) -> Iterator[ExecutorFactory]:
    """Build and start an executor by name; everything built is shut down after the test."""
    built: list[Executor] = []
    stack = ExitStack()

    def make(
        name: str, *, parallelism: int = 2, heartbeat_s: float = 5.0, lean_forker_after: int = LEAN_FORKER_AFTER
    ) -> Executor:
        executor: Executor
        if name == "inline":
            executor = InlineExecutor(project.settings, project.engine, actor=ACTOR)
        elif name == "celery":
            executor = _celery_executor(stack, project, parallelism=parallelism)
        else:
            executor = LocalExecutor(
                project.settings,
                project.settings.db_url,
                actor=ACTOR,
                parallelism=parallelism,
                heartbeat_s=heartbeat_s,
                lean_forker_after=lean_forker_after,
            )
        executor.start()
        built.append(executor)
        return executor

    yield make
    for executor in built:
        executor.shutdown(5.0)
    stack.close()


def _celery_executor(stack: ExitStack, project: Project, *, parallelism: int) -> Executor:
    """A CeleryExecutor on Redis with a queue of its own, and a `dagrunner worker` serving that queue."""
    from dagrunner.execution.celery.executor import CeleryExecutor

    from .celery_helpers import REDIS_URL, celery_settings, require_broker, running_worker, unique_queue

    require_broker(REDIS_URL)
    settings = celery_settings(project.settings, REDIS_URL, unique_queue("contract"))
    project.settings = settings
    stack.enter_context(running_worker(settings, concurrency=parallelism, warm_stop=False))
    return CeleryExecutor(settings, actor=ACTOR, parallelism=parallelism, poll_s=0.5)


@pytest.fixture(
    params=["inline", pytest.param("local", marks=pytest.mark.slow), pytest.param("celery", marks=pytest.mark.slow)]
)
def executor(request: pytest.FixtureRequest, make_executor: ExecutorFactory, db_url: str) -> Executor:
    return make_executor(request.param)


@pytest.fixture
def local_executor(make_executor: ExecutorFactory) -> Executor:
    return make_executor("local")
