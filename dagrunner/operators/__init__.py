"""Public import path for the built-in operators: `from dagrunner.operators import BashOperator`."""

from dagrunner.authoring.operators import (
    BashCommandError,
    BashOperator,
    BranchMixin,
    BranchPythonOperator,
    EmptyOperator,
    PythonOperator,
    ShortCircuitOperator,
    determine_kwargs,
)

__all__ = [
    "BashCommandError",
    "BashOperator",
    "BranchMixin",
    "BranchPythonOperator",
    "EmptyOperator",
    "PythonOperator",
    "ShortCircuitOperator",
    "determine_kwargs",
]
