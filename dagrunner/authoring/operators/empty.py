"""EmptyOperator: a task that does nothing (a join point or a placeholder)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from dagrunner.authoring.baseoperator import BaseOperator


class EmptyOperator(BaseOperator):
    """Succeeds at once; useful to fan in/out or to mark a stage in the graph."""

    def execute(self, context: Mapping[str, Any]) -> None:  # noqa: ARG002 - the operator interface; nothing to use
        return None
