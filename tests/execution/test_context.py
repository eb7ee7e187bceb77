"""The run context a try sees (no database: pre-fetched XComs and a counting loader stand in for it)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pendulum
import pytest

from dagrunner import DAG, task
from dagrunner.errors import XComError
from dagrunner.execution.base import RunFacts, TaskKey
from dagrunner.execution.context import (
    PrevSuccess,
    TaskInstanceView,
    VariableNotFoundError,
    XComSource,
    build_context,
    resolve_task,
)
from dagrunner.execution.masking import MaskedStream, SecretMasker
from dagrunner.operators import PythonOperator

LOGICAL = datetime(2026, 1, 5, 6, 30, tzinfo=UTC)
FACTS = RunFacts(
    run_type="scheduled",
    logical_date=LOGICAL,
    data_interval_start=LOGICAL,
    data_interval_end=LOGICAL + timedelta(days=1),
    run_after=LOGICAL + timedelta(days=1),
    conf={"c": 3, "d": 4},
)


def _dag() -> DAG:
    with DAG(
        "ctx", schedule=None, start_date=pendulum.datetime(2026, 1, 1, tz="UTC"), params={"a": 1, "b": 1, "c": 1}
    ) as dag:
        up = PythonOperator(task_id="up", python_callable=lambda: 1)
        t = PythonOperator(task_id="t", python_callable=lambda: None, params={"b": 2, "c": 2})
        up >> t

        @task
        def fan(x):
            return x

        fan.expand(x=[1, 2])
    return dag


class CountingLoader:
    def __init__(self, rows: dict[tuple[str, int, str], Any]) -> None:
        self.rows = rows
        self.calls: list[list[str]] = []

    def __call__(self, task_ids: list[str]) -> dict[tuple[str, int, str], Any]:
        self.calls.append(task_ids)
        return {k: v for k, v in self.rows.items() if k[0] in task_ids}


def _context(dag: DAG, loader: CountingLoader | None = None, **kwargs: Any) -> dict[str, Any]:
    key = TaskKey("ctx", "scheduled__x", "t")
    rows = {("up", -1, "return_value"): {"n": 1}, ("up", -1, "other"): "o"}
    source = XComSource(rows, fetched_task_ids={"up"}, loader=loader)
    ti = TaskInstanceView(key, 2, 3, source, is_mapped=lambda t: dag.task_dict[t].is_mapped)
    masker = kwargs.pop("masker", SecretMasker())
    return build_context(task=dag.get_task("t"), ti=ti, run=FACTS, masker=masker, **kwargs)


def test_dates_are_pendulum_in_utc_with_airflow_formats() -> None:
    context = _context(_dag(), prev_success=None)
    assert context["ds"] == "2026-01-05" and context["ds_nodash"] == "20260105"
    assert context["ts"] == "2026-01-05T06:30:00+00:00"
    assert context["ts_nodash"] == "20260105T063000"
    assert context["ts_nodash_with_tz"] == "20260105T063000+0000"
    for name in ("logical_date", "data_interval_start", "data_interval_end"):
        assert isinstance(context[name], pendulum.DateTime) and context[name].timezone_name == "UTC"
    assert context["data_interval_end"] == LOGICAL + timedelta(days=1)
    assert context["prev_data_interval_start_success"] is None and context["prev_start_date_success"] is None
    assert context["run_id"] == "scheduled__x" and context["map_index"] == -1
    assert context["dag_run"].run_type == "scheduled" and context["dag_run"].conf["c"] == 3
    with pytest.raises(TypeError):
        context["dag_run"].conf["c"] = 5  # read-only


def test_previous_successful_run_facts() -> None:
    prev = PrevSuccess(LOGICAL - timedelta(days=1), LOGICAL, LOGICAL - timedelta(hours=1))
    context = _context(_dag(), prev_success=prev)
    assert context["prev_data_interval_start_success"] == LOGICAL - timedelta(days=1)
    assert isinstance(context["prev_start_date_success"], pendulum.DateTime)


def test_params_dag_then_task_then_run_conf() -> None:
    context = _context(_dag(), prev_success=None)
    assert context["params"] == {"a": 1, "b": 2, "c": 3, "d": 4}
    assert context["conf"] == {"c": 3, "d": 4}


def test_macros() -> None:
    macros = _context(_dag(), prev_success=None)["macros"]
    assert macros.ds_add("2026-01-05", -5) == "2025-12-31"
    assert macros.ds_format("2026-01-05", "%Y-%m-%d", "%d/%m/%Y") == "05/01/2026"
    assert macros.datetime(2026, 1, 1).year == 2026 and macros.timedelta(days=1).days == 1
    assert 0 <= macros.random() < 1 and macros.json.dumps([1]) == "[1]" and macros.uuid.uuid4()
    assert macros.time.time() > 0


def test_variables_come_from_the_environment_and_secrets_are_masked(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DAGRUNNER_VAR_REGION", "eu-west")
    monkeypatch.setenv("DAGRUNNER_VAR_LIMITS", '{"rows": 10}')
    monkeypatch.setenv("DAGRUNNER_VAR_DB_PASSWORD", "hunter2hunter2")
    masker = SecretMasker()
    var = _context(_dag(), prev_success=None, masker=masker)["var"]
    assert var.value.region == "eu-west" and var.value.get("region") == "eu-west"
    assert var.json.limits == {"rows": 10}
    assert var.value.get("missing", "fallback") == "fallback"
    with pytest.raises(VariableNotFoundError, match="DAGRUNNER_VAR_MISSING"):
        var.value.get("missing")
    assert masker.mask("pw=hunter2hunter2") == "pw=hunter2hunter2"  # not read yet
    assert var.value.db_password == "hunter2hunter2"
    assert masker.mask("pw=hunter2hunter2!") == "pw=***!"


def test_masked_stream_and_environment_secrets() -> None:
    masker = SecretMasker.from_environ({"DAGRUNNER_VAR_API_TOKEN": "tok-123456", "DAGRUNNER_VAR_NAME": "alice-x"})
    written: list[str] = []

    class Sink:
        def write(self, text: str) -> int:
            written.append(text)
            return len(text)

    MaskedStream(Sink(), masker).write("token tok-123456 for alice-x")  # type: ignore[arg-type]
    assert written == ["token *** for alice-x"]
    assert SecretMasker(["abc"]).mask("abc") == "abc", "too short to mask without garbling every line"


def test_xcom_pull_rules() -> None:
    dag = _dag()
    loader = CountingLoader({("fan", 1, "return_value"): "b", ("fan", 0, "return_value"): "a"})
    ti = _context(dag, loader, prev_success=None)["ti"]
    assert ti.xcom_pull("up") == {"n": 1}
    assert ti.xcom_pull(task_ids="up", key="other") == "o"
    assert ti.xcom_pull(["up", "up"], key="other") == ["o", "o"]
    assert loader.calls == [], "upstream XComs were pre-fetched"
    assert ti.xcom_pull("fan") == ["a", "b"], "a mapped task's values, in map-index order"
    assert ti.xcom_pull("fan", map_indexes=1) == "b" and ti.xcom_pull("fan", map_indexes=[1, 7]) == ["b", None]
    assert ti.xcom_pull("fan", key="nope", map_indexes=0, default="d") == "d"
    assert loader.calls == [["fan"]], "read once, then kept"
    ti.xcom_push("mine", {"k": [1]})
    assert ti.xcom_pull(key="mine") == {"k": [1]} and ti.pushed == {"mine": {"k": [1]}}
    with pytest.raises(XComError, match="'mine'"):
        ti.xcom_push("mine", {1, 2})
    assert (ti.try_number, ti.max_tries, ti.task_id) == (2, 3, "t")


def test_a_mapped_task_resolves_to_its_element_and_a_plain_one_to_a_copy() -> None:
    dag = _dag()
    concrete, protected = resolve_task(dag.get_task("fan"), 1, lambda t, k: None)
    assert concrete.op_kwargs == {"x": 2} and protected == {}
    plain, _ = resolve_task(dag.get_task("t"), -1, lambda t, k: None)
    assert plain is not dag.get_task("t") and plain.task_id == "t"
