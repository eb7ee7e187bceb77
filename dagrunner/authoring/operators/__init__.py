"""The built-in operators."""

from dagrunner.authoring.operators.bash import BashCommandError, BashOperator
from dagrunner.authoring.operators.empty import EmptyOperator
from dagrunner.authoring.operators.hitl import ApprovalOperator, HITLBranchOperator, HITLEntryOperator, HITLOperator
from dagrunner.authoring.operators.python import (
    BranchMixin,
    BranchPythonOperator,
    PythonOperator,
    ShortCircuitOperator,
    determine_kwargs,
)
from dagrunner.authoring.operators.python_virtualenv import ExternalPythonOperator, PythonVirtualenvOperator

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
]
