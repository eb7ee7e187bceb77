"""Add `dag_file.import_output`: the end of what a DAG file printed while it was imported.

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-03

A DAG file's `print()` at import used to go to /dev/null, so the one clue a user left themselves was lost.
The loader now keeps the last 64 KB of the import's stdout/stderr with the parse result, and
`dagrunner dags errors --verbose` shows it. Nullable and additive: rows parsed before have no output.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column("dag_file", sa.Column("import_output", sa.Text()))


def downgrade() -> None:
    op.drop_column("dag_file", "import_output")
