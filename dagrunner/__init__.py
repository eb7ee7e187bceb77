"""dagrunner: an Airflow-style DAG scheduler. This module exports the public authoring API only.

    from dagrunner import DAG, dag, task, TaskGroup, TriggerRule, chain, cross_downstream, SkipTask, FailTask

Airflow's names for the same things are here too (`Label`, `ParamsDict`, `get_current_context`, `Context`,
`chain_linear`, `AirflowException` and friends), so a ported DAG changes its import lines only.

The names are loaded on first use (PEP 562), so `import dagrunner.settings` in the scheduler or the CLI
does not pay for Jinja, networkx and the timetables until a DAG is actually defined.
"""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

_EXPORTS = {
    "DAG": "dagrunner.authoring.dag",
    "dag": "dagrunner.authoring.dag",
    "task": "dagrunner.authoring.taskflow",
    "setup": "dagrunner.authoring.setup_teardown",
    "teardown": "dagrunner.authoring.setup_teardown",
    "TaskGroup": "dagrunner.authoring.task_group",
    "task_group": "dagrunner.authoring.task_group",
    "TriggerRule": "dagrunner.authoring.trigger_rule",
    "WeightRule": "dagrunner.authoring.trigger_rule",
    "chain": "dagrunner.authoring.dependencies",
    "cross_downstream": "dagrunner.authoring.dependencies",
    "BaseOperator": "dagrunner.authoring.baseoperator",
    "BaseNotifier": "dagrunner.authoring.notifier",
    "XComArg": "dagrunner.authoring.xcom_arg",
    "Param": "dagrunner.authoring.params",
    "SkipTask": "dagrunner.errors",
    "Asset": "dagrunner.timetables.assets",
    "AssetAlias": "dagrunner.timetables.assets",
    "AssetAll": "dagrunner.timetables.assets",
    "AssetAny": "dagrunner.timetables.assets",
    "AssetWatcher": "dagrunner.timetables.assets",
    "FailTask": "dagrunner.errors",
    "ParamsDict": "dagrunner.authoring.params",
    "Label": "dagrunner.authoring.edges",
    "EdgeModifier": "dagrunner.authoring.edges",
    "get_current_context": "dagrunner.authoring.current_context",
    "Context": "dagrunner.authoring.current_context",
    "chain_linear": "dagrunner.authoring.dependencies",
    "AirflowException": "dagrunner.exceptions",
    "AirflowSkipException": "dagrunner.exceptions",
    "AirflowFailException": "dagrunner.exceptions",
    "AirflowSensorTimeout": "dagrunner.exceptions",
    "Connection": "dagrunner.authoring.connection",  # #15
    "Variable": "dagrunner.authoring.variable",  # #15
}

__all__ = [
    "DAG",
    "Asset",
    "AssetAlias",
    "AssetAll",
    "AssetAny",
    "AssetWatcher",
    "BaseNotifier",
    "BaseOperator",
    "FailTask",
    "Param",
    "SkipTask",
    "TaskGroup",
    "TriggerRule",
    "WeightRule",
    "XComArg",
    "__version__",
    "chain",
    "cross_downstream",
    "dag",
    "setup",
    "task",
    "task_group",
    "teardown",
    "ParamsDict",
    "Label",
    "EdgeModifier",
    "get_current_context",
    "Context",
    "chain_linear",
    "AirflowException",
    "AirflowSkipException",
    "AirflowFailException",
    "AirflowSensorTimeout",
    "Connection",  # #15
    "Variable",  # #15
]

if TYPE_CHECKING:
    from dagrunner.authoring.baseoperator import BaseOperator
    from dagrunner.authoring.connection import Connection  # #15
    from dagrunner.authoring.current_context import Context, get_current_context
    from dagrunner.authoring.dag import DAG, dag
    from dagrunner.authoring.dependencies import chain, chain_linear, cross_downstream
    from dagrunner.authoring.edges import EdgeModifier, Label
    from dagrunner.authoring.notifier import BaseNotifier
    from dagrunner.authoring.params import Param, ParamsDict
    from dagrunner.authoring.setup_teardown import setup, teardown
    from dagrunner.authoring.task_group import TaskGroup, task_group
    from dagrunner.authoring.taskflow import task
    from dagrunner.authoring.trigger_rule import TriggerRule, WeightRule
    from dagrunner.authoring.variable import Variable  # #15
    from dagrunner.authoring.xcom_arg import XComArg
    from dagrunner.errors import FailTask, SkipTask
    from dagrunner.exceptions import (
        AirflowException,
        AirflowFailException,
        AirflowSensorTimeout,
        AirflowSkipException,
    )
    from dagrunner.timetables.assets import Asset, AssetAlias, AssetAll, AssetAny, AssetWatcher


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'dagrunner' has no attribute {name!r}")
    value = getattr(import_module(module), name)
    globals()[name] = value  # later look-ups skip this function
    return value


def __dir__() -> list[str]:
    return sorted(__all__)
