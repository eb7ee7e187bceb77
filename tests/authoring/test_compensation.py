"""`step.compensate_with(undo)`: the pairing on both tasks, its serialized form, and every refusal, at import."""

from __future__ import annotations

from pathlib import Path

import pendulum
import pytest

from dagrunner import DAG, task
from dagrunner.errors import CompensationError
from dagrunner.loading.dagbag import DagBag
from dagrunner.loading.serialization import SerializedDag, serialize_dag
from dagrunner.operators import EmptyOperator

START = pendulum.datetime(2026, 1, 1, tz="UTC")


def test_compensate_with_pairs_both_tasks_and_returns_the_step() -> None:
    with DAG("d", schedule=None, start_date=START) as dag:
        reserve = EmptyOperator(task_id="reserve")
        release = EmptyOperator(task_id="release")
        assert reserve.compensate_with(release) is reserve
        reserve >> EmptyOperator(task_id="ship")
    assert (reserve.compensated_by, release.compensates) == ("release", "reserve")
    spec = SerializedDag.from_dict(serialize_dag(dag))
    assert (spec.task("reserve").compensated_by, spec.task("release").compensates) == ("release", "reserve")
    assert spec.compensation_task_ids == {"release"}
    assert [t.task_id for t in spec.run_tasks] == ["reserve", "ship"]


def test_taskflow_output_compensate_with_returns_the_output() -> None:
    with DAG("d", schedule=None, start_date=START) as dag:

        @task
        def charge() -> str:
            return "ch_1"

        @task
        def refund(compensation: dict[str, object]) -> None:
            print(compensation)

        out = charge()
        assert out.compensate_with(refund()) is out
    assert dag.get_task("charge").compensated_by == "refund"


def test_saying_it_twice_is_harmless() -> None:
    with DAG("d", schedule=None, start_date=START):
        a, undo = EmptyOperator(task_id="a"), EmptyOperator(task_id="undo")
        a.compensate_with(undo)
        a.compensate_with(undo)
    assert a.compensated_by == "undo"


def test_older_serialized_tasks_without_the_fields_still_load() -> None:
    with DAG("d", schedule=None, start_date=START) as dag:
        EmptyOperator(task_id="a")
    data = serialize_dag(dag)
    for spec in data["tasks"]:
        del spec["compensated_by"], spec["compensates"]
    assert SerializedDag.from_dict(data).task("a").compensated_by is None


def _line() -> str:
    import inspect

    frame = inspect.currentframe()
    assert frame is not None and frame.f_back is not None
    return f"{__file__}:{frame.f_back.f_lineno + 2}"  # the call two lines down


def test_undo_in_another_dag_is_refused_naming_both() -> None:
    with DAG("other", schedule=None, start_date=START):
        elsewhere = EmptyOperator(task_id="refund")
    with DAG("shop", schedule=None, start_date=START):
        charge = EmptyOperator(task_id="charge")
        where = _line()
        with pytest.raises(CompensationError) as err:
            charge.compensate_with(elsewhere)
    message = str(err.value)
    assert "'refund' is in DAG 'other'" in message and "'charge' in DAG 'shop'" in message
    assert "same DAG" in message and where in message


def test_a_step_cannot_compensate_itself() -> None:
    with DAG("d", schedule=None, start_date=START):
        a = EmptyOperator(task_id="a")
        with pytest.raises(CompensationError, match=r"a\.compensate_with\(a\) at .*: a task cannot compensate itself"):
            a.compensate_with(a)


def test_an_undo_task_undoes_one_step() -> None:
    with DAG("d", schedule=None, start_date=START):
        a, b, undo = (EmptyOperator(task_id=t) for t in ("a", "b", "undo"))
        a.compensate_with(undo)
        with pytest.raises(CompensationError, match="'undo' already compensates 'a'; an undo task undoes one step"):
            b.compensate_with(undo)


def test_a_step_has_one_undo_task() -> None:
    with DAG("d", schedule=None, start_date=START):
        a, undo, other = (EmptyOperator(task_id=t) for t in ("a", "undo", "other"))
        a.compensate_with(undo)
        with pytest.raises(CompensationError, match="'a' is already compensated by 'undo'"):
            a.compensate_with(other)


@pytest.mark.parametrize("second", ["undo_of_undo", "back"])
def test_a_cycle_through_a_compensation_is_refused(second: str) -> None:
    with DAG("d", schedule=None, start_date=START):
        a, undo, undo_of_undo = (EmptyOperator(task_id=t) for t in ("a", "undo", "undo_of_undo"))
        a.compensate_with(undo)
        with pytest.raises(CompensationError, match="a cycle through a compensation"):
            if second == "back":
                undo.compensate_with(a)  # a undone by undo, undo undone by a
            else:
                undo.compensate_with(undo_of_undo)


def test_an_undo_task_that_is_compensated_itself_cannot_become_one() -> None:
    with DAG("d", schedule=None, start_date=START):
        a, b, c = (EmptyOperator(task_id=t) for t in ("a", "b", "c"))
        b.compensate_with(c)
        with pytest.raises(CompensationError, match=r"cycle through a compensation \('b' is tied to 'c'"):
            a.compensate_with(b)


def test_an_undo_task_with_edges_is_refused() -> None:
    with DAG("d", schedule=None, start_date=START):
        a, undo, after = (EmptyOperator(task_id=t) for t in ("a", "undo", "after"))
        undo >> after
        with pytest.raises(
            CompensationError, match=r"has edges \(undo >> after\).* may have no upstream or downstream"
        ):
            a.compensate_with(undo)


def test_an_edge_added_after_compensate_with_is_refused_when_the_dag_is_serialized() -> None:
    with DAG("d", schedule=None, start_date=START) as dag:
        a, undo = EmptyOperator(task_id="a"), EmptyOperator(task_id="undo")
        a.compensate_with(undo)
        a >> undo
    with pytest.raises(CompensationError, match=r"a\.compensate_with\(undo\): the undo task 'undo' .* \(a >> undo\)"):
        serialize_dag(dag)


def test_a_mapped_undo_task_is_refused() -> None:
    with DAG("d", schedule=None, start_date=START):
        a = EmptyOperator(task_id="a")

        @task
        def undo(x: int) -> None:
            print(x)

        with pytest.raises(CompensationError, match="the undo task 'undo' is mapped; use a plain task"):
            a.compensate_with(undo.expand(x=[1, 2]))


def test_anything_but_a_task_is_refused() -> None:
    with DAG("d", schedule=None, start_date=START):
        a = EmptyOperator(task_id="a")
        with pytest.raises(CompensationError, match="the undo task 'refund' is not a task"):
            a.compensate_with("refund")  # type: ignore[arg-type]


BAD_FILE = """\
from dagrunner import DAG
from dagrunner.operators import EmptyOperator
with DAG("shop", schedule=None) as shop:
    charge = EmptyOperator(task_id="charge")
    refund = EmptyOperator(task_id="refund")
    charge >> refund
    charge.compensate_with(refund)
"""

GOOD_FILE = """\
from dagrunner import DAG
from dagrunner.operators import EmptyOperator
with DAG("fine", schedule=None):
    EmptyOperator(task_id="a").compensate_with(EmptyOperator(task_id="undo_a"))
"""


def test_a_bad_compensation_is_an_import_error_of_that_file_only(tmp_path: Path) -> None:
    (tmp_path / "shop.py").write_text(BAD_FILE)
    (tmp_path / "fine.py").write_text(GOOD_FILE)
    bag = DagBag(tmp_path, timeout_s=10)
    bag.refresh()
    assert set(bag.dags) == {"fine"}
    (failure,) = bag.failures_of(str(tmp_path / "shop.py"))
    assert failure.line == 7, failure
    assert "CompensationError" in failure.message and "(charge >> refund)" in failure.message
    assert bag.get_dag("fine").task("undo_a").compensates == "a"
