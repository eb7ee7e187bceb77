"""How messages, logs and errors name things, in one format everywhere.

Imports nothing, so the task processes of the local executor (which never load SQLAlchemy) and the
persistence layer share it.
"""

from __future__ import annotations


def task_label(dag_id: str, task_id: str, map_index: int, run_id: str) -> str:
    """`dag.task[map_index] in run R` (no `[...]` when the task is not mapped)."""
    mapped = f"[{map_index}]" if map_index >= 0 else ""
    return f"{dag_id}.{task_id}{mapped} in run {run_id}"
