"""Path, query and body values shared by the DAG, run and task-instance endpoints, bounded like the DB columns.

Ids and free text refuse NUL: PostgreSQL cannot store or even compare text holding it (a driver error, so a
500), and no id we create can hold one, so such a request is a 422 like any other malformed value.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import Path, Query
from pydantic import Field

from dagrunner.persistence.models import ID_LEN

NO_NUL = r"^[^\x00]*$"

#: A dag_id, run_id or task_id in a path: at most as long as the column (longer cannot exist: 404 by 422).
Id = Annotated[str, Path(min_length=1, max_length=ID_LEN, pattern=NO_NUL)]
#: The same in a query string (a filter), optional.
IdFilter = Annotated[str | None, Query(max_length=ID_LEN, pattern=NO_NUL)]
#: Which mapped instance; -1 for a task that is not mapped.
MapIndex = Annotated[int, Query(ge=-1, le=10**9, description="Which mapped instance (-1: not mapped).")]
#: Why a person changed something, for the audit log.
Reason = Annotated[str, Field(min_length=1, max_length=2000, pattern=NO_NUL, description="Why, for the audit log.")]
