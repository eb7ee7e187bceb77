"""TaskGroup: id prefixes, nesting, wiring a group as one node, default_args, @task_group, duplicates."""

from __future__ import annotations

from typing import Any

import pytest
from authoring_helpers import next_line

from dagrunner import DAG, TaskGroup, task, task_group
from dagrunner.errors import DuplicateTaskIdError, InvalidArgumentError
from dagrunner.operators import EmptyOperator


def test_ids_are_prefixed_by_nested_groups() -> None:
    with DAG("etl") as d:
        with TaskGroup("outer") as outer:
            a = EmptyOperator(task_id="a")
            with TaskGroup("inner") as inner:
                b = EmptyOperator(task_id="b")
        c = EmptyOperator(task_id="c")
    assert (a.task_id, b.task_id, c.task_id) == ("outer.a", "outer.inner.b", "c")
    assert (outer.group_id, inner.group_id) == ("outer", "outer.inner")
    assert b.label == "b" and b.task_group is inner and c.task_group is d.task_group
    assert d.task_group_dict == {"outer": outer, "outer.inner": inner}


def test_prefix_group_id_false_leaves_children_unprefixed() -> None:
    with DAG("etl"), TaskGroup("outer"), TaskGroup("plain", prefix_group_id=False) as plain:
        a = EmptyOperator(task_id="a")
    assert plain.group_id == "outer.plain" and a.task_id == "a"


def test_children_listing_in_definition_order() -> None:
    with DAG("etl") as d:
        first = EmptyOperator(task_id="first")
        with TaskGroup("g") as g:
            x = EmptyOperator(task_id="x")
            with TaskGroup("sub") as sub:
                y = EmptyOperator(task_id="y")
    assert list(d.task_group.children.items()) == [("first", first), ("g", g)]
    assert list(g.children.items()) == [("g.x", x), ("g.sub", sub)]
    assert list(g.iter_tasks()) == [x, y] and list(d.task_group.iter_groups()) == [g, sub]


def test_group_wiring_uses_current_roots_and_leaves() -> None:
    with DAG("etl") as d:
        start = EmptyOperator(task_id="start")
        with TaskGroup("g") as g:
            a, b, c = (EmptyOperator(task_id=x) for x in "abc")
            a >> c
            b >> c
        end = EmptyOperator(task_id="end")
        start >> g >> end
    assert sorted(d.graph.edges) == [
        ("g.a", "g.c"),
        ("g.b", "g.c"),
        ("g.c", "end"),
        ("start", "g.a"),
        ("start", "g.b"),
    ]
    assert [t.task_id for t in g.roots] == ["g.a", "g.b"] and [t.task_id for t in g.leaves] == ["g.c"]


def test_group_to_group_and_lists_of_groups() -> None:
    with DAG("etl") as d:
        with TaskGroup("one") as one:
            EmptyOperator(task_id="a")
        with TaskGroup("two") as two:
            EmptyOperator(task_id="b")
        end = EmptyOperator(task_id="end")
        one >> two
        [one, two] >> end
    assert sorted(d.graph.edges) == [("one.a", "end"), ("one.a", "two.b"), ("two.b", "end")]


def test_empty_group_wiring_is_a_no_op_like_airflow() -> None:
    with DAG("etl") as d:
        with TaskGroup("empty") as empty:
            pass
        EmptyOperator(task_id="a") >> empty
    assert d.graph.number_of_edges() == 0


@pytest.mark.parametrize("group_id", ["", "a.b", "has space", 3])
def test_bad_group_id(group_id: Any) -> None:
    with DAG("etl"), pytest.raises(InvalidArgumentError) as info:
        where = next_line()
        TaskGroup(group_id)
    assert "group_id=" in str(info.value) and f"{__file__}:{where}" in str(info.value)


def test_group_outside_dag() -> None:
    with pytest.raises(InvalidArgumentError, match="TaskGroup 'g' .* is not in a DAG"):
        TaskGroup("g")


def test_duplicate_group_and_task_ids_name_both_lines() -> None:
    with DAG("etl"):
        first = next_line()
        TaskGroup("g")
        with pytest.raises(DuplicateTaskIdError) as info:
            second = next_line()
            TaskGroup("g")
        assert f"{__file__}:{first}" in str(info.value) and f"{__file__}:{second}" in str(info.value)
        with pytest.raises(DuplicateTaskIdError, match="already the id of the TaskGroup"):
            EmptyOperator(task_id="g")


def test_explicit_parent_group_and_task_group_argument() -> None:
    with DAG("etl") as d:
        parent = TaskGroup("parent")
        child = TaskGroup("child", parent_group=parent)
        t = EmptyOperator(task_id="t", task_group=child)
    assert t.task_id == "parent.child.t" and child.parent_group is parent
    assert d.get_task("parent.child.t") is t


def test_group_of_another_dag_is_refused() -> None:
    with DAG("one"):
        group = TaskGroup("g")
    with DAG("two"), pytest.raises(InvalidArgumentError, match="task_group="):
        EmptyOperator(task_id="t", task_group=group)


def test_task_group_decorator_ids_tooltip_and_return_value() -> None:
    @task_group
    def stage() -> None:
        """Load one stage."""
        EmptyOperator(task_id="x")

    @task
    def last() -> int:
        return 1

    @task_group(group_id="returns", default_args={"retries": 4})
    def returning() -> Any:
        return last()

    with DAG("etl") as d:
        first = stage()
        second = stage()
        result = returning()
    assert isinstance(first, TaskGroup) and first.group_id == "stage" and second.group_id == "stage__1"
    assert first.tooltip == "Load one stage."
    assert d.task_ids == ["stage.x", "stage__1.x", "returns.last"]
    assert result.operator.task_id == "returns.last" and result.operator.retries == 4
