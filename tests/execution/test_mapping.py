"""Mapped tasks run one map index per try: the index's element of each input, never re-rendered XCom."""

from __future__ import annotations

from pathlib import Path

import pytest

from dagrunner.execution.base import Executor, TaskKey
from dagrunner.execution.logs import read_log

from .conftest import Project
from .dag_sources import MAPPED_DAG, MAPPED_TASK_IDS
from .helpers import RunSpec, add_mapped_instances, create_run, finish_directly, queue_try, run_one, xcoms_of


@pytest.fixture
def mapped_file(project: Project) -> Path:
    return project.dag_file("mapped_dag.py", MAPPED_DAG)


@pytest.fixture
def run(project: Project) -> RunSpec:
    return create_run(project.engine, "mapped", MAPPED_TASK_IDS)


def _run_index(project: Project, executor: Executor, run: RunSpec, path: Path, task_id: str, index: int) -> TaskKey:
    item = queue_try(project.engine, run, task_id, path, map_index=index)
    event = run_one(executor, item)
    assert event.state == "success", event.detail
    return item.key


def test_literal_input_by_map_index(project: Project, executor: Executor, run: RunSpec, mapped_file: Path) -> None:
    add_mapped_instances(project.engine, run, "double", 3)
    key = _run_index(project, executor, run, mapped_file, "double", 1)
    assert xcoms_of(project.engine, key) == {"return_value": {"x": 4, "index": 1}}


def test_xcom_input_by_map_index(project: Project, executor: Executor, run: RunSpec, mapped_file: Path) -> None:
    finish_directly(project.engine, run, "numbers", {"return_value": [5, 6]})
    add_mapped_instances(project.engine, run, "double_xcom", 2)
    key = _run_index(project, executor, run, mapped_file, "double_xcom", 1)
    assert xcoms_of(project.engine, key) == {"return_value": {"x": 12, "index": 1}}


def test_values_from_xcom_are_data_not_templates(
    project: Project, executor: Executor, run: RunSpec, mapped_file: Path
) -> None:
    finish_directly(project.engine, run, "texts", {"return_value": ["{{ ds }}", "plain"]})
    add_mapped_instances(project.engine, run, "echo", 2)
    key = _run_index(project, executor, run, mapped_file, "echo", 0)
    assert xcoms_of(project.engine, key) == {"return_value": "{{ ds }}"}


def test_several_inputs_map_as_a_cross_product(
    project: Project, executor: Executor, run: RunSpec, mapped_file: Path
) -> None:
    add_mapped_instances(project.engine, run, "pair", 6)
    keys = [_run_index(project, executor, run, mapped_file, "pair", i) for i in (0, 4, 5)]
    assert [xcoms_of(project.engine, k)["return_value"] for k in keys] == ["p-1", "q-2", "q-3"]


def test_a_consumer_of_a_mapped_task_gets_the_list(
    project: Project, executor: Executor, run: RunSpec, mapped_file: Path
) -> None:
    add_mapped_instances(project.engine, run, "double", 3)
    for index in (2, 0, 1):
        finish_directly(project.engine, run, "double", {"return_value": {"x": index * 10}}, map_index=index)
    key = _run_index(project, executor, run, mapped_file, "total", -1)
    assert xcoms_of(project.engine, key) == {"return_value": 30}


def test_classic_operator_mapped_over_a_literal_is_rendered(
    project: Project, executor: Executor, run: RunSpec, mapped_file: Path
) -> None:
    add_mapped_instances(project.engine, run, "say", 2)
    key = _run_index(project, executor, run, mapped_file, "say", 1)
    assert "second 2026-01-05" in read_log(project.settings.logs_folder, key, 1)
    assert xcoms_of(project.engine, key) == {"return_value": "second 2026-01-05"}
