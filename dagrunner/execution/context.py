"""The run context a try's templates and code see (DESIGN section 4, "Template context"), Airflow's names.

Airflow 3's keys with Airflow 3's values (its task runner's `get_template_context`): dates are pendulum
DateTimes in UTC; `ds` is the logical date's UTC day; `task_instance_key_str` is `dag_id__task_id__ds_nodash`;
`prev_*_success` describe the DAG's latest successful run with an earlier logical date (None: there is none);
`expanded_ti_count` is a mapped task's number of instances in this run, None for a task that is not mapped;
`map_index_template` is the task's (None unless set). `params` are the DAG's params, overridden by the task's,
overridden by the run's conf (Airflow's `dag_run_conf_overrides_params`).

Deliberate differences from Airflow 3: `conf` is the run's conf dict (Airflow 3 dropped its `conf`, its
configuration object; ours is the run's, as DESIGN lists it); `map_index` is the try's map index (Airflow has it
on `ti` only); `compensation` is set for an undo task's try (saga compensation, `compensation_context`) and None
otherwise; `macros` lacks `ds_format_locale` (Babel) and `yaml` (PyYAML is no dependency); `test_mode`,
`start_date` and `try_number`, declared by Airflow's `Context` but not set by its task runner, are absent (the
try number is `ti.try_number`). `var.value.NAME` / `var.json.NAME` read the environment variable
`DAGRUNNER_VAR_<NAME>`, else the metadata DB's variable; `conn.ID` reads `DAGRUNNER_CONN_<ID>`, else the
metadata DB's connection. Values of secret-looking names (variables and params) and connection passwords are
masked in the try's log.

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
import dateutil.parser
import dateutil.relativedelta
import dateutil.tz
import pendulum

from dagrunner.authoring import _secrets
from dagrunner.authoring.connection import Connection
from dagrunner.authoring.params import param_values
from dagrunner.authoring.variable import not_found_message, parse_json
from dagrunner.errors import ConnectionNotFoundError, ExecutionError, VariableNotFoundError
from dagrunner.execution.asset_context import AssetEventsRead, asset_context
from dagrunner.execution.base import RunFacts, TaskKey, XComRows
from dagrunner.execution.masking import SecretMasker, is_sensitive
from dagrunner.execution.run_services import NoRunServices, RunServices, TriggeredRun
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
    end_date: datetime | None = None


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
        services: RunServices | None = None,
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
        self._services: RunServices = services or NoRunServices()

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

    # --- other DAGs' runs (Airflow 3's RuntimeTaskInstance calls; `execution.run_services`) ------------

    @property
    def runs_progress_while_waiting(self) -> bool:
        """False under the inline executor: a try that waits for another run blocks the only thread that
        could run it."""
        return bool(getattr(self._services, "runs_progress_while_waiting", True))

    def get_dagrun_state(self, dag_id: str, run_id: str) -> str:
        """The state of run `run_id` of `dag_id` (NotFoundError when there is none)."""
        return self._services.dagrun_state(dag_id=dag_id, run_id=run_id)

    def get_dr_count(
        self,
        dag_id: str,
        logical_dates: Iterable[datetime] | None = None,
        run_ids: Iterable[str] | None = None,
        states: Iterable[str] | None = None,
    ) -> int:
        """How many runs of `dag_id` match every filter given."""
        return self._services.dr_count(dag_id=dag_id, logical_dates=_list(logical_dates), run_ids=_list(run_ids),
                                       states=_list(states))  # fmt: skip

    def get_ti_count(
        self,
        dag_id: str,
        task_ids: Iterable[str] | None = None,
        logical_dates: Iterable[datetime] | None = None,
        run_ids: Iterable[str] | None = None,
        states: Iterable[str] | None = None,
    ) -> int:
        """How many task instances of `dag_id` (every map index counts) match every filter given."""
        return self._services.ti_count(dag_id=dag_id, task_ids=_list(task_ids), logical_dates=_list(logical_dates),
                                       run_ids=_list(run_ids), states=_list(states))  # fmt: skip

    def trigger_dag_run(
        self,
        dag_id: str,
        *,
        run_id: str | None = None,
        logical_date: datetime | None = None,
        conf: Mapping[str, Any] | None = None,
        reset_dag_run: bool = False,
    ) -> TriggeredRun:
        """Create a manual run of `dag_id` as `dagrunner dags trigger` does (TriggerDagRunOperator's way;
        Airflow raises DagRunTriggerException for its task runner to do this)."""
        return self._services.trigger_dag_run(dag_id=dag_id, run_id=run_id, logical_date=logical_date,
                                              conf=dict(conf or {}), reset_dag_run=reset_dag_run)  # fmt: skip

    def __repr__(self) -> str:
        return f"<TaskInstance {self.key.label()} try {self.try_number}>"


def _list(values: Iterable[Any] | None) -> list[Any] | None:
    return None if values is None else list(values)


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
    """`ds_add("2026-01-05", -1)` -> "2026-01-04" (Airflow's: 0 days gives `ds` back unparsed)."""
    if not days:
        return str(ds)
    return (datetime.strptime(str(ds), "%Y-%m-%d") + timedelta(days=days)).strftime("%Y-%m-%d")


def ds_format(ds: str, input_format: str, output_format: str) -> str:
    """`ds_format("2026-01-05", "%Y-%m-%d", "%d/%m/%Y")` -> "05/01/2026"."""
    return datetime.strptime(str(ds), input_format).strftime(output_format)


def datetime_diff_for_humans(dt: datetime, since: datetime | None = None) -> str:
    """`datetime_diff_for_humans(data_interval_start)` -> "2 days ago": pendulum's wording, from now unless
    `since` is given."""
    return pendulum.instance(dt).diff_for_humans(None if since is None else pendulum.instance(since))


#: `macros` in the context: Airflow 3's `airflow.sdk.execution_time.macros` names, minus `ds_format_locale`
#: (needs Babel) and `yaml` (PyYAML is no dependency of ours). `dateutil`'s submodules Airflow users reach
#: for (`relativedelta`, `parser`, `tz`) are imported so that `macros.dateutil.relativedelta...` works.
MACROS = SimpleNamespace(
    ds_add=ds_add,
    ds_format=ds_format,
    datetime_diff_for_humans=datetime_diff_for_humans,
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
    expanded_ti_count: int | None = None,
    secrets: SecretsBackend | None = None,
) -> dict[str, Any]:
    """The context dict for one try of `task` (the concrete per-try copy) as `ti`.

    `expanded_ti_count` is how many instances the task was expanded into when it is mapped (see
    `expanded_count`), None otherwise, as Airflow gives it. `secrets` is the metadata DB's connections and
    variables as this executor reaches them (None: only the environment's); it is installed for the try's
    code (`Connection.get`, `Variable.get`), whose secrets `masker` then hides."""
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
    ds_nodash = logical.strftime("%Y%m%d")
    return {
        "ds": logical.strftime("%Y-%m-%d"),
        "ds_nodash": ds_nodash,
        "ts": ts,
        "ts_nodash": logical.strftime("%Y%m%dT%H%M%S"),
        "ts_nodash_with_tz": ts.replace("-", "").replace(":", ""),
        "logical_date": logical,
        "data_interval_start": dag_run.data_interval_start,
        "data_interval_end": dag_run.data_interval_end,
        "prev_data_interval_start_success": _utc_or_none(prev.data_interval_start),
        "prev_data_interval_end_success": _utc_or_none(prev.data_interval_end),
        "prev_start_date_success": _utc_or_none(prev.start_date),
        "prev_end_date_success": _utc_or_none(prev.end_date),
        "run_id": key.run_id,
        "task_instance_key_str": f"{key.dag_id}__{key.task_id}__{ds_nodash}",
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
        "expanded_ti_count": expanded_ti_count,
        "map_index_template": getattr(task, "map_index_template", None),
        "outlets": list(getattr(task, "outlets", None) or []),
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
    if getattr(task, "by_kwargs", False):  # expand_kwargs: the one input is this instance's dict of arguments
        (arguments,) = values.values()  # a dict: unmap() above refused anything else
        from_xcom = set(arguments) if from_xcom else set()
        values = dict(arguments)
    for name in from_xcom:
        value = values[name]
        if task.expand_target == "op_kwargs" and (getattr(concrete, "op_kwargs", None) or {}).get(name) is value:
            protected[f"op_kwargs.{name}"] = value
        elif name in concrete.template_fields and getattr(concrete, name, None) is value:
            protected[name] = value
    return concrete, protected


def expanded_count(task: RunnableTask, pull: Callable[[str, str], Any]) -> int | None:
    """How many instances a mapped task is expanded into in this run (Airflow's `expanded_ti_count`: the
    product of its `.expand()` inputs' lengths, XCom inputs by the upstream value); None for a task that is
    not mapped, or whose XCom input is not a list or dict (its try fails on that with a clear error)."""
    if not is_mapped(task):
        return None
    from dagrunner.authoring.xcom_arg import XComArg

    count = 1
    for source in task.expand_input.values():
        if not isinstance(source, XComArg):
            count *= len(list(source))
            continue
        value = pull(source.operator.task_id, source.key)
        if not isinstance(value, list | tuple | dict):
            return None
        count *= len(value)
    return count


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
