"""Authoring: how users define DAGs and tasks (Airflow's names). Never touches the database.

The public names are re-exported by `dagrunner` itself; import from there in DAG files.
"""

from dagrunner.authoring.baseoperator import BaseOperator
from dagrunner.authoring.dag import DAG, collected_dags, dag, reset_collected_dags
from dagrunner.authoring.dependencies import chain, cross_downstream
from dagrunner.authoring.mapped import MappedOperator
from dagrunner.authoring.task_group import TaskGroup, task_group
from dagrunner.authoring.taskflow import task
from dagrunner.authoring.trigger_rule import TriggerRule, WeightRule
from dagrunner.authoring.xcom_arg import DagParam, XComArg

__all__ = [
    "DAG",
    "BaseOperator",
    "DagParam",
    "MappedOperator",
    "TaskGroup",
    "TriggerRule",
    "WeightRule",
    "XComArg",
    "chain",
    "collected_dags",
    "cross_downstream",
    "dag",
    "reset_collected_dags",
    "task",
    "task_group",
]
