"""What a local worker is started with: a module of its own, so the executor, the worker and the forker
can all name it without importing each other (the worker imports SQLAlchemy; the forker must not)."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from dagrunner.settings import Settings

#: Seconds between heartbeats of a running try (the zombie threshold is minutes). Not a setting yet.
HEARTBEAT_S = 5.0
#: After this many tries a worker starts a lean forker beside its first one and changes to it once it is
#: ready. The first forker is forked from the worker: ready at once, but it carries the worker's memory
#: (SQLAlchemy and all, ~55 MB against ~31 MB), which every fork and exit of a task process pays for:
#: 3-6 ms of CPU per try on a 2-core VM. A lean forker is a fresh interpreter: ~0.5 s of CPU to import
#: dagrunner, then cheaper forks. Changing at about the break-even point (0.5 s / 4 ms) never costs more
#: than twice the better choice in hindsight (the ski-rental rule): a short command (a backfill of a few
#: dates, a test) never pays for the import, and a scheduler that runs for hours gets the cheaper forks.
#: 0: lean at once.
LEAN_FORKER_AFTER = 128


@dataclass(frozen=True)
class WorkerConfig:
    """Everything a worker needs, picklable (it crosses to a forkserver or spawned process)."""

    engine_url: str
    busy_timeout: float
    logs_folder: Path
    dags_folder: Path | None
    plugins_folder: Path | None
    import_timeout_s: float
    actor: str
    heartbeat_s: float = HEARTBEAT_S
    lean_forker_after: int = LEAN_FORKER_AFTER
    #: How long a try's start or finish is retried through a database outage (the setting
    #: `db_unreachable_timeout_sec`).
    db_unreachable_timeout_s: float = 300.0
    environ: dict[str, str] = field(default_factory=dict)
    cwd: str = ""
    #: Where the Fernet key file is (connections and variables, `persistence.fernet`); None: ./.dagrunner.
    state_folder: Path | None = None

    @classmethod
    def from_settings(
        cls, settings: Settings, *, actor: str, engine_url: str | None = None, **extra: Any
    ) -> WorkerConfig:
        """The config of a process that runs user code (a worker, a DAG callback process) under `settings`."""
        return cls(
            engine_url=engine_url or settings.db_url,
            busy_timeout=settings.sqlite_busy_timeout,
            logs_folder=settings.logs_folder,
            dags_folder=settings.dags_folder,
            plugins_folder=settings.plugins_folder,
            import_timeout_s=settings.dagbag_import_timeout,
            actor=actor,
            db_unreachable_timeout_s=settings.db_unreachable_timeout_sec,
            state_folder=settings.state_folder,
            **extra,
        )
