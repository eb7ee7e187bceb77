"""Path and query parameters shared by the DAG, run and task-instance endpoints, bounded like the DB columns."""

from __future__ import annotations

from typing import Annotated

from fastapi import Path, Query

from dagrunner.persistence.models import ID_LEN

#: A dag_id, run_id or task_id in a path: at most as long as the column (longer cannot exist: 404 by 422).
Id = Annotated[str, Path(min_length=1, max_length=ID_LEN)]
#: Which mapped instance; -1 for a task that is not mapped.
MapIndex = Annotated[int, Query(ge=-1, le=10**9, description="Which mapped instance (-1: not mapped).")]
