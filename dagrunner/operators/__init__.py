"""Public import path for the built-in operators: `from dagrunner.operators import BashOperator`."""

from dagrunner.authoring.operators import (
    ApprovalOperator,
    BashCommandError,
    BashOperator,
    BranchMixin,
    BranchPythonOperator,
    EmptyOperator,
    HITLBranchOperator,
    HITLEntryOperator,
    HITLOperator,
    PythonOperator,
    ShortCircuitOperator,
    determine_kwargs,
)
from dagrunner.authoring.operators.datetime_branch import BranchDateTimeOperator
from dagrunner.authoring.operators.latest_only import LatestOnlyOperator
from dagrunner.authoring.operators.python_virtualenv import ExternalPythonOperator, PythonVirtualenvOperator
from dagrunner.authoring.operators.trigger_dagrun import TriggerDagRunOperator
from dagrunner.authoring.operators.weekday import BranchDayOfWeekOperator, WeekDay

__all__ = [
    "ApprovalOperator",
    "HITLBranchOperator",
    "HITLEntryOperator",
    "HITLOperator",
    "BashCommandError",
    "BashOperator",
    "BranchMixin",
    "BranchPythonOperator",
    "EmptyOperator",
    "PythonOperator",
    "ShortCircuitOperator",
    "determine_kwargs",
    "ExternalPythonOperator",
    "PythonVirtualenvOperator",
    "LatestOnlyOperator",
    "TriggerDagRunOperator",
    "BranchDateTimeOperator",
    "BranchDayOfWeekOperator",
    "WeekDay",
]
