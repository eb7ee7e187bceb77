from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy.engine import Engine

from .harness import Harness, make_harness


@pytest.fixture
def h(tmp_path: Path, db_url: str, migrated_engine: Engine) -> Iterator[Harness]:
    yield from make_harness(tmp_path, db_url, migrated_engine)
