"""One exception tree for dagrunner: a root, then one subtree per layer.

Every message says what was wrong, where (file, line, value) and what to do, because the CLI prints
`str(error)` as the one line a user sees. `SkipTask` and `FailTask` are not errors of ours: they are
signals a task raises on purpose, so they live outside the `DagRunnerError` tree.
"""

from __future__ import annotations

from typing import Any


class DagRunnerError(Exception):
    """Root of every error dagrunner raises on purpose (the CLI shows these without a traceback)."""


# --- configuration ---------------------------------------------------------------------------------


class ConfigError(DagRunnerError):
    """A setting has a value we cannot use (names the setting, its source and the value)."""


# --- authoring ---------------------------------------------------------------------------------------


class AuthoringError(DagRunnerError):
    """A DAG or task definition is invalid. Raised while the DAG file is being imported."""


class InvalidArgumentError(AuthoringError, ValueError):
    """A DAG or operator argument has a bad value."""


class DuplicateTaskIdError(AuthoringError):
    """Two tasks in one DAG share a task_id."""


class CycleError(AuthoringError):
    """The task graph has a cycle; the message names it as `a -> b -> a`."""


class InvalidScheduleError(AuthoringError, ValueError):
    """A schedule (cron string, preset, timedelta, timetable) cannot be understood."""


class InvalidTimezoneError(AuthoringError, ValueError):
    """A timezone name is unknown."""


class TaskNotFoundError(AuthoringError, KeyError):
    """A task_id (or group id) was asked of a DAG that does not define it."""

    def __str__(self) -> str:  # KeyError would show the message quoted, like a repr
        return str(self.args[0]) if self.args else ""


class TemplateRenderError(AuthoringError):
    """A templated field failed to render (undefined variable, syntax error, missing template file)."""


class UntrustedValueError(TemplateRenderError):
    """A value from a trigger (conf, params given at trigger time) would reach a shell command unquoted."""


class InvalidBranchError(AuthoringError, ValueError):
    """A branch callable chose a task that is not directly downstream of the branching task."""


class SetupTeardownError(AuthoringError, ValueError):
    """A setup/teardown is declared wrongly: a teardown without a setup, a task marked as both, a setup of
    another DAG."""


class ParamValidationError(AuthoringError, ValueError):
    """A value that does not fit its `Param` (type, enum, bounds, pattern), or a Param defined wrongly."""


class NoCurrentContextError(AuthoringError, RuntimeError):
    """`get_current_context()` was called where no task is running (Airflow raises a RuntimeError too)."""


class CompensationError(AuthoringError, ValueError):
    """A `step.compensate_with(undo)` that cannot work: the undo task is in another DAG, has edges,
    undoes two steps, is itself compensated (a cycle through a compensation), or is the step itself."""


# --- loading -----------------------------------------------------------------------------------------


class LoadingError(DagRunnerError):
    """Finding or importing DAG files failed in a way that is not one file's import error."""


class DagNotFoundError(LoadingError):
    """A dag_id was asked for that no parsed file defines."""


# --- scheduling --------------------------------------------------------------------------------------


class SchedulingError(DagRunnerError):
    """The scheduler cannot create or advance a run as asked."""


class DuplicateRunError(SchedulingError):
    """A run with this run_id or logical date already exists for the DAG."""


class InvalidRunIdError(SchedulingError, ValueError):
    """A user-given run id does not match the allowed pattern."""


class InvalidConfError(SchedulingError, ValueError):
    """A run's conf (from a trigger: CLI, web API, broker message) is not a JSON object we can store."""


class SchedulerAlreadyRunningError(SchedulingError):
    """Another `dagrunner scheduler` holds this SQLite database (only one may run on a SQLite file)."""


class InvalidPoolError(SchedulingError, ValueError):
    """A pool given on the command line cannot be used as asked (a non-positive slot count or breaker
    threshold, a bad duration, an unknown pool, deleting default_pool)."""


class InvalidOverrideError(SchedulingError):
    """`tasks set-state` / `runs set-state` asked for a change that makes no sense (the same state, a move
    the state machine forbids, a run that is not there)."""


class ApprovalError(SchedulingError, ValueError):
    """An answer to a human-in-the-loop request that cannot be taken (the task is not waiting, an unknown
    option, a form value that fails its Param, a second answer); nothing was changed."""


# --- execution ---------------------------------------------------------------------------------------


class ExecutionError(DagRunnerError):
    """An executor failed to run a work item (not the task's own failure)."""


class VariableNotFoundError(ExecutionError, KeyError):
    """`var.value.get(name)` without a default, for a variable that is not set."""

    def __str__(self) -> str:
        return str(self.args[0]) if self.args else ""


class ConnectionNotFoundError(ExecutionError, KeyError):
    """`Connection.get(conn_id)` / `{{ conn.conn_id }}` for a connection that is neither in the environment
    (`DAGRUNNER_CONN_<ID>`) nor in the metadata DB."""

    def __str__(self) -> str:
        return str(self.args[0]) if self.args else ""


class InvalidConnectionError(DagRunnerError, ValueError):
    """A connection URI or JSON that cannot be read (says which part is wrong)."""


class XComError(ExecutionError):
    """A task returned a value that cannot be stored as XCom (not JSON-serializable)."""


class AssetError(ExecutionError):
    """An asset event cannot be recorded as asked (#12 part A)."""


class UnknownAssetError(AssetError):
    """An event for an asset name (or URI) that no DAG declares in a schedule, an outlet or an inlet."""


# --- persistence -------------------------------------------------------------------------------------


class PersistenceError(DagRunnerError):
    """The metadata database cannot be used as asked."""


class DatabaseNotInitializedError(PersistenceError):
    """The database has no dagrunner schema yet (run `dagrunner db init`)."""


class SchemaNotCurrentError(PersistenceError):
    """The schema is older (or newer) than this version of dagrunner expects."""


class DatabaseUnavailableError(PersistenceError):
    """The metadata database cannot be opened or reached (names the URL with its password masked)."""


class DatabaseLockedError(PersistenceError):
    """Another process holds the SQLite write lock for longer than the busy timeout."""


class DatabaseReadOnlyError(PersistenceError):
    """The metadata database accepts reads but refuses writes (a read-only file or mount, an immutable
    SQLite file, a PostgreSQL standby or `default_transaction_read_only`)."""


class DatabaseOutageTimeoutError(DatabaseUnavailableError):
    """The metadata database stayed unusable (unreachable, locked or read-only) for longer than the
    `db_unreachable_timeout_sec` setting, so the scheduler, backfill or worker gave up."""


class FernetKeyError(PersistenceError):
    """The Fernet key for connections and variables is malformed, or is not the key a stored value was
    encrypted with (never answered with plaintext or an empty value)."""


class IllegalTransitionError(PersistenceError):
    """A state change that `states.TRANSITIONS` does not allow."""


class NotFoundError(PersistenceError):
    """A row that was asked for (run, task instance, try) does not exist."""


# --- the api-server (#14) -----------------------------------------------------------------------------

#: What to run when the api-server's packages (FastAPI, uvicorn, argon2-cffi) are not installed.
WEB_EXTRA_HINT = "pip install 'dagrunner[web]'"


class WebError(DagRunnerError):
    """The api-server could not start or had to stop (missing packages, a port in use, its scheduler died)."""


class WebExtraMissingError(WebError):
    """A command needs the `web` extra, which is not installed."""


class PortInUseError(WebError):
    """The address the api-server should listen on is taken."""


# --- signals raised by task code -------------------------------------------------------------------


class TaskSignal(Exception):  # noqa: N818 - these are signals, named as Airflow users expect
    """Base of the exceptions a task raises on purpose to control its own outcome."""


class SkipTask(TaskSignal):  # noqa: N818
    """Raise inside a task to mark it `skipped` (Airflow's AirflowSkipException)."""


class FailTask(TaskSignal):  # noqa: N818
    """Raise inside a task to fail it without further retries (Airflow's AirflowFailException)."""


class RescheduleTask(TaskSignal):  # noqa: N818 - Airflow's AirflowRescheduleException
    """Raised by a sensor in `reschedule` mode whose poke said "not yet": the try ends, freeing its slot, and
    the next poke is a new try `poke_interval` seconds later. `timeout` (seconds, counted from the first
    poke across tries) and `soft_fail` travel with it, because the process that records the try decides,
    on its clock, whether the sensor has waited too long."""

    def __init__(self, *, task_id: str, poke_interval: float, timeout: float, soft_fail: bool) -> None:
        super().__init__(f"sensor {task_id!r}: not yet; next poke in {poke_interval:g}s")
        self.poke_interval = poke_interval
        self.timeout = timeout
        self.soft_fail = soft_fail


class DeferTask(TaskSignal):  # noqa: N818 - Airflow's TaskDeferred
    """Raised by a human-in-the-loop task that must wait for a person: the try ends, freeing its slot, and
    the instance waits `deferred` (no process) until an answer, its escalation or its timeout wakes it for
    a new try. `request` (JSON) is what the person is asked; the recording side writes it."""

    def __init__(self, *, task_id: str, request: dict[str, Any]) -> None:
        super().__init__(f"task {task_id!r}: waiting for a person to answer")
        self.request = request


class TaskTimeout(BaseException):  # noqa: N818 - named like Airflow's AirflowTaskTimeout
    """Raised inside a task whose execution_timeout passed. A BaseException (as in Airflow), so that an
    `except Exception` in the task cannot swallow it."""
