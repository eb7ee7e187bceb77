"""The run context a try's templates and code see (DESIGN section 4, "Template context"), Airflow's names.

Dates are pendulum DateTimes in UTC, as Airflow gives them; `ds` is the logical date's UTC day. `params`
are the DAG's params, overridden by the task's, overridden by the run's conf (Airflow's
`dag_run_conf_overrides_params`). `conf` is the run's conf dict (Airflow's `conf` is its configuration
object; ours is the run's, as DESIGN lists it). `compensation` is set for an undo task's try (saga
compensation, `compensation_context`) and None otherwise. `var.value.NAME` / `var.json.NAME` read the environment
variable `DAGRUNNER_VAR_<NAME>`, else the metadata DB's variable; `conn.ID` reads `DAGRUNNER_CONN_<ID>`, else
the metadata DB's connection. Values of secret-looking names (variables and params) and connection passwords
are masked in the try's log.

XComs: the supervising process pre-fetches the XComs of the task's upstream tasks before the try starts,
so the common `xcom_pull` needs no database; anything else is read through `XComSource.loader` on demand.
"""

from __future__ import annotations

import json
import random
import time
import uuid
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from types import MappingProxyType, SimpleNamespace
from typing import TYPE_CHECKING, Any

import dateutil
import pendulum

from dagrunner.authoring import _secrets
from dagrunner.authoring.connection import Connection
from dagrunner.authoring.params import param_values
from dagrunner.authoring.variable import not_found_message, parse_json
from dagrunner.errors import ConnectionNotFoundError, ExecutionError, VariableNotFoundError
from dagrunner.execution.asset_context import AssetEventsRead, asset_context
from dagrunner.execution.base import RunFacts, TaskKey, XComRows
from dagrunner.execution.masking import SecretMasker, is_sensitive
from dagrunner.execution.runnable import is_mapped
from dagrunner.execution.runner import RETURN_VALUE, check_json

if TYPE_CHECKING:
    from dagrunner.authoring._secrets import SecretsBackend
    from dagrunner.execution.runnable import MappedTask, RunnableTask

_NOTSET: Any = object()


@dataclass(frozen=True)
class PrevSuccess:
    """The DAG's latest successful run before this one (None fields: there is none)."""

    data_interval_start: datetime | None = None
    data_interval_end: datetime | None = None
    start_date: datetime | None = None


@dataclass(frozen=True)
class DagRunView:
    """The run a try belongs to, read-only (Airflow's `dag_run` in the context)."""

    dag_id: str
    run_id: str
    run_type: str
    logical_date: pendulum.DateTime
    data_interval_start: pendulum.DateTime
    data_interval_end: pendulum.DateTime
    run_after: pendulum.DateTime
    conf: Mapping[str, Any] = field(default_factory=dict)
    #: Known to a DAG callback (the run has finished); a running try's view leaves them None.
    state: str | None = None
    start_date: pendulum.DateTime | None = None
    end_date: pendulum.DateTime | None = None


# --- XComs -------------------------------------------------------------------------------------------


class XComSource:
    """The XComs of one run as a try sees them: pre-fetched rows, plus a loader for other tasks'."""

    def __init__(
        self,
        rows: XComRows,
        *,
        fetched_task_ids: Iterable[str],
        loader: Callable[[list[str]], XComRows] | None = None,
    ) -> None:
        self._rows = dict(rows)
        self._fetched = set(fetched_task_ids)
        self._loader = loader

    def values(self, task_id: str, key: str) -> dict[int, Any]:
        """map_index -> value of `key` pushed by `task_id` in this run."""
        if task_id not in self._fetched:
            if self._loader is not None:
                self._rows.update(self._loader([task_id]))
            self._fetched.add(task_id)
        return {m: v for (t, m, k), v in self._rows.items() if t == task_id and k == key}


class TaskInstanceView:
    """`ti` / `task_instance` in the context: who this try is, and XCom push/pull for this run."""

    state = "running"

    def __init__(
        self,
        key: TaskKey,
        try_number: int,
        max_tries: int,
        xcoms: XComSource,
        *,
        is_mapped: Callable[[str], bool] = lambda _task_id: False,
        task: RunnableTask | None = None,
        reschedule_count: int = 0,
        next_method: str | None = None,
        next_kwargs: Mapping[str, Any] | None = None,
    ) -> None:
        self.dag_id = key.dag_id
        self.run_id = key.run_id
        self.task_id = key.task_id
        self.map_index = key.map_index
        self.try_number = try_number
        self.max_tries = max_tries
        #: Earlier tries that ended in a sensor's "not yet" (`task_reschedule_count` in the context).
        self.reschedule_count = reschedule_count
        #: Why a deferred instance was woken ("resume", "escalate"; None: not woken) and with what (the
        #: answer): Airflow's deferral columns, as `execution.deferral` and the scheduler set them.
        self.next_method = next_method
        self.next_kwargs = dict(next_kwargs) if next_kwargs is not None else None
        self.task = task
        self.key = key
        #: What this try pushed (key -> value), stored with its outcome.
        self.pushed: dict[str, Any] = {}
        self._xcoms = xcoms
        self._is_mapped = is_mapped

    def xcom_push(self, key: str, value: Any) -> None:
        """Store `value` under `key` when the try ends (JSON only; checked now, so the error names this line)."""
        if not isinstance(key, str) or not key:
            raise ExecutionError(f"task {self.task_id!r}: xcom_push key must be a non-empty string, got {key!r}")
        check_json(value, task_id=self.task_id, key=key)
        self.pushed[key] = value

    def xcom_pull(
        self,
        task_ids: str | Iterable[str] | None = None,
        key: str = RETURN_VALUE,
        map_indexes: int | Iterable[int] | None = None,
        default: Any = None,
    ) -> Any:
        """Airflow 3's rules: no task_ids means this task; one task id gives one value, several a list.

        Without map_indexes, a mapped task's XComs come back as a list in map-index order (this task's
        own: its own map index); `default` stands in for a missing value.
        """
        if task_ids is None:
            task_ids = self.task_id
        if isinstance(task_ids, str):
            return self._pull_one(task_ids, key, map_indexes, default)
        return [self._pull_one(t, key, map_indexes, default) for t in task_ids]

    def pull_for_render(self, task_id: str, key: str) -> Any:
        """What an XComArg in a templated field or a @task argument stands for."""
        return self._pull_one(task_id, key, None, None)

    def _pull_one(self, task_id: str, key: str, map_indexes: int | Iterable[int] | None, default: Any) -> Any:
        found = self._xcoms.values(task_id, key)
        if task_id == self.task_id and key in self.pushed:
            found[self.map_index] = self.pushed[key]
        if map_indexes is None:
            if task_id == self.task_id:
                return found.get(self.map_index, default)
            if self._is_mapped(task_id):
                return [found[m] for m in sorted(found) if m >= 0]
            return found.get(-1, default)
        if isinstance(map_indexes, int):
            return found.get(map_indexes, default)
        return [found.get(m, default) for m in map_indexes]

    def __repr__(self) -> str:
        return f"<TaskInstance {self.key.label()} try {self.try_number}>"


# --- variables and connections ---------------------------------------------------------------------------


class _VariableValues:
    def __init__(self, masker: SecretMasker, environ: Mapping[str, str] | None, as_json: bool) -> None:
        self._masker = masker
        self._environ = environ
        self._as_json = as_json

    def get(self, name: str, default: Any = _NOTSET) -> Any:
        raw, where = _secrets.variable_text(name, self._environ)
        if raw is None:
            if default is _NOTSET:
                raise VariableNotFoundError(not_found_message(name))
            return default
        if is_sensitive(name):
            self._masker.add(raw)
        return parse_json(name, raw, where) if self._as_json else raw

    def __getattr__(self, name: str) -> Any:
        if name.startswith("__"):
            raise AttributeError(name)
        return self.get(name)

    def __getitem__(self, name: str) -> Any:
        return self.get(name)


class VariableAccessor:
    """`var` in the context: `var.value.name`, `var.value.get(name, default)`, `var.json.name`; the
    environment (`DAGRUNNER_VAR_<NAME>`) first, then the metadata DB, as `Variable.get`."""

    def __init__(self, masker: SecretMasker, environ: Mapping[str, str] | None = None) -> None:
        self.value = _VariableValues(masker, environ, as_json=False)
        self.json = _VariableValues(masker, environ, as_json=True)


class ConnectionAccessor:
    """`conn` in the context: `{{ conn.my_db.host }}`, `conn.get("my_db")` (Airflow's, with its
    `default_conn`); the environment (`DAGRUNNER_CONN_<ID>`) first, then the metadata DB."""

    def __init__(self, masker: SecretMasker, environ: Mapping[str, str] | None = None) -> None:
        self._masker = masker
        self._environ = environ

    def get(self, conn_id: str, default_conn: Any = None) -> Any:
        try:
            return self._read(conn_id)
        except ConnectionNotFoundError:
            if default_conn is not None:
                return default_conn
            raise

    def _read(self, conn_id: str) -> Connection:
        text, where = _secrets.connection_text(conn_id, self._environ)
        if text is None:
            return Connection.get(conn_id)  # raises the one "not defined" message
        conn = Connection.from_text(conn_id, text, where)
        for secret in conn.secrets():
            self._masker.add(secret)
        return conn

    def __getattr__(self, conn_id: str) -> Connection:
        if conn_id.startswith("__"):
            raise AttributeError(conn_id)
        return self._read(conn_id)

    def __getitem__(self, conn_id: str) -> Connection:
        return self._read(conn_id)


# --- macros --------------------------------------------------------------------------------------------


def ds_add(ds: str, days: int) -> str:
    """`ds_add("2026-01-05", -1)` -> "2026-01-04"."""
    return (datetime.strptime(ds, "%Y-%m-%d") + timedelta(days=days)).strftime("%Y-%m-%d")


def ds_format(ds: str, input_format: str, output_format: str) -> str:
    """`ds_format("2026-01-05", "%Y-%m-%d", "%d/%m/%Y")` -> "05/01/2026"."""
    return datetime.strptime(ds, input_format).strftime(output_format)


MACROS = SimpleNamespace(
    ds_add=ds_add,
    ds_format=ds_format,
    datetime=datetime,
    timedelta=timedelta,
    time=time,
    uuid=uuid,
    random=random.random,
    json=json,
    dateutil=dateutil,
)


# --- the context ---------------------------------------------------------------------------------------


def build_context(
    *,
    task: RunnableTask,
    ti: TaskInstanceView,
    run: RunFacts,
    prev_success: PrevSuccess | None,
    masker: SecretMasker,
    environ: Mapping[str, str] | None = None,
    asset_events: AssetEventsRead | None = None,
    secrets: SecretsBackend | None = None,
) -> dict[str, Any]:
    """The context dict for one try of `task` (the concrete per-try copy) as `ti`.

    `secrets` is the metadata DB's connections and variables as this executor reaches them (None: only the
    environment's); it is installed for the try's code (`Connection.get`, `Variable.get`), whose secrets
    `masker` then hides."""
    _secrets.install(secrets, masker.add, environ)
    dag = task.dag
    key = ti.key
    logical = _utc(run.logical_date)
    conf = dict(run.conf or {})
    params = {**param_values(dag.params), **param_values(task.params), **conf}
    for name, value in params.items():  # a param named like a secret is one (masked as variables are)
        if isinstance(value, str) and is_sensitive(name):
            masker.add(value)
    prev = prev_success or PrevSuccess()
    ts = logical.isoformat()
    dag_run = DagRunView(
        dag_id=key.dag_id,
        run_id=key.run_id,
        run_type=run.run_type,
        logical_date=logical,
        data_interval_start=_utc(run.data_interval_start),
        data_interval_end=_utc(run.data_interval_end),
        run_after=_utc(run.run_after),
        conf=MappingProxyType(dict(conf)),
    )
    return {
        "ds": logical.strftime("%Y-%m-%d"),
        "ds_nodash": logical.strftime("%Y%m%d"),
        "ts": ts,
        "ts_nodash": logical.strftime("%Y%m%dT%H%M%S"),
        "ts_nodash_with_tz": ts.replace("-", "").replace(":", ""),
        "logical_date": logical,
        "data_interval_start": dag_run.data_interval_start,
        "data_interval_end": dag_run.data_interval_end,
        "prev_data_interval_start_success": _utc_or_none(prev.data_interval_start),
        "prev_data_interval_end_success": _utc_or_none(prev.data_interval_end),
        "prev_start_date_success": _utc_or_none(prev.start_date),
        "run_id": key.run_id,
        "dag_run": dag_run,
        "ti": ti,
        "task_instance": ti,
        "task": task,
        "dag": dag,
        "params": params,
        "conf": conf,
        "macros": MACROS,
        "var": VariableAccessor(masker, environ),
        "conn": ConnectionAccessor(masker, environ),
        "map_index": key.map_index,
        "task_reschedule_count": ti.reschedule_count,
        "compensation": compensation_context(task, ti),
        **asset_context(getattr(task, "inlets", []), asset_events),
    }


def compensation_context(task: RunnableTask, ti: TaskInstanceView) -> dict[str, Any] | None:
    """For a try of an undo task (`step.compensate_with(undo)`): the step it undoes, that step's result in
    this run (its `return_value` XCom at the same map index) and a key that names the step's instance for
    good, to hand to external systems (a refund keyed by it is made once however often it is retried).
    None for every other task."""
    step = getattr(task, "compensates", None)
    if not step:
        return None
    key = ti.key
    return {
        "task_id": step,
        "map_index": key.map_index,
        "result": ti.xcom_pull(task_ids=step, key=RETURN_VALUE, map_indexes=key.map_index),
        "idempotency_key": f"{key.dag_id}/{key.run_id}/{step}/{key.map_index}",
    }


def resolve_task(
    task: RunnableTask, map_index: int, pull: Callable[[str, str], Any]
) -> tuple[RunnableTask, dict[str, Any]]:
    """The concrete operator to run for one try, and the values that must not be rendered as templates.

    A plain task is copied (`prepare_for_execution`); a mapped one is unmapped with its element of each
    `.expand()` input: literal lists by index, XCom inputs from the upstream value. Several inputs
    combine as a cross product with the last varying fastest (Airflow's order). Values that came from
    XCom are data, never templates: they are returned as `protected` for `runner.render_task`.
    """
    if not is_mapped(task):
        return task.prepare_for_execution(), {}
    values, from_xcom = expanded_values(task, map_index, pull)
    concrete = task.unmap(values)
    protected: dict[str, Any] = {}
    for name in from_xcom:
        value = values[name]
        if task.expand_target == "op_kwargs" and (getattr(concrete, "op_kwargs", None) or {}).get(name) is value:
            protected[f"op_kwargs.{name}"] = value
        elif name in concrete.template_fields and getattr(concrete, name, None) is value:
            protected[name] = value
    return concrete, protected


def expanded_values(
    task: MappedTask, map_index: int, pull: Callable[[str, str], Any]
) -> tuple[dict[str, Any], set[str]]:
    """name -> this map index's value for each `.expand()` input, and the names that came from XCom."""
    from dagrunner.authoring.xcom_arg import XComArg

    sequences: dict[str, list[Any]] = {}
    from_xcom: set[str] = set()
    for name, source in task.expand_input.items():
        if isinstance(source, XComArg):
            from_xcom.add(name)
            value = pull(source.operator.task_id, source.key)
            if isinstance(value, dict):
                value = list(value.items())
            if not isinstance(value, list | tuple):
                raise ExecutionError(
                    f"mapped task {task.task_id!r}: expand({name}=...) got {type(value).__name__} from task "
                    f"{source.operator.task_id!r}; it must push a list or a dict"
                )
            sequences[name] = list(value)
        else:
            sequences[name] = list(source)
    chosen: dict[str, Any] = {}
    index = map_index
    for name in reversed(list(sequences)):
        sequence = sequences[name]
        if not sequence:
            raise ExecutionError(f"mapped task {task.task_id!r}: expand({name}=...) is empty at run time")
        chosen[name] = sequence[index % len(sequence)]
        index //= len(sequence)
    if index:
        sizes = " x ".join(str(len(s)) for s in sequences.values())
        raise ExecutionError(
            f"mapped task {task.task_id!r}: map_index {map_index} is out of range for its inputs ({sizes})"
        )
    return {name: chosen[name] for name in sequences}, from_xcom


def _utc(value: datetime) -> pendulum.DateTime:
    return pendulum.instance(value).in_timezone("UTC")


def _utc_or_none(value: datetime | None) -> pendulum.DateTime | None:
    return None if value is None else _utc(value)
