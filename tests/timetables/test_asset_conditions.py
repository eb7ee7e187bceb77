"""Asset conditions (#12 part A): building, evaluating, words, JSON, and DAG(schedule=...)."""

from __future__ import annotations

import pytest

from dagrunner import DAG, Asset, AssetAlias, AssetAll, AssetAny, AssetWatcher
from dagrunner.errors import InvalidArgumentError, InvalidScheduleError
from dagrunner.loading.serialization import SerializedDag
from dagrunner.timetables import deserialize_timetable
from dagrunner.timetables.assets import ALIAS_PREFIX, AssetTriggeredTimetable, deserialize_condition

a, b, c, orders = Asset("a"), Asset("b"), Asset("c"), Asset("orders.placed")


def test_name_or_uri_alone_names_the_asset() -> None:
    assert (Asset("x").uri, Asset(uri="s3://b/k").name) == ("x", "s3://b/k")
    with pytest.raises(InvalidScheduleError, match="needs a name or a uri"):
        Asset()


@pytest.mark.parametrize(
    ("condition", "satisfied", "holds"),
    [
        (a | b, {"a"}, True),
        (a & b, {"a"}, False),
        (a & b, {"a", "b"}, True),
        (a & (b | c), {"a", "c"}, True),
        (a & (b | c), {"b", "c"}, False),
        (AssetAlias("l") | a, {ALIAS_PREFIX + "l"}, True),
        (AssetAll(a, b, c), {"a", "b", "c"}, True),
        (AssetAny(a, b, c), set(), False),
    ],
)
def test_evaluate(condition: AssetAll | AssetAny, satisfied: set[str], holds: bool) -> None:
    assert condition.evaluate(satisfied) is holds
    assert deserialize_condition(condition.serialize()) == condition


def test_words_and_json_of_a_dag_schedule() -> None:
    dag = DAG("d", schedule=orders & (a | b))
    assert dag.timetable.description == "when orders.placed and (a or b) are updated"
    assert not dag.timetable.can_be_scheduled
    assert DAG("e", schedule=[a, b]).timetable.description == "when a and b are updated"
    assert DAG("f", schedule=a | b | c).timetable.description == "when a or b or c is updated"
    back = deserialize_timetable(dag.timetable.serialize())
    assert isinstance(back, AssetTriggeredTimetable) and back.condition == orders & (a | b)
    stored = SerializedDag.from_dict(SerializedDag.from_dag(dag).to_dict())
    assert stored.asset_condition == orders & (a | b)


def test_watchers_serialize_through_their_triggers() -> None:
    class Trigger:
        def serialize(self) -> dict[str, str]:
            return {"type": "redis_stream", "stream": "orders"}

    asset = Asset("orders", watchers=[AssetWatcher("w", Trigger())])
    assert asset.serialize()["watchers"] == [{"name": "w", "trigger": {"type": "redis_stream", "stream": "orders"}}]


def test_bad_schedules_and_outlets_name_the_value() -> None:
    with pytest.raises(InvalidScheduleError, match="'nope'"):
        DAG("g", schedule=[a, "nope"])
    from dagrunner.operators import EmptyOperator

    with DAG("h", schedule=None), pytest.raises(InvalidArgumentError, match="outlets"):
        EmptyOperator(task_id="t", outlets=["not-an-asset"])
