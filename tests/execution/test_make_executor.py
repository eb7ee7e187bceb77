"""`make_executor`: the names the settings and CLI accept."""

from __future__ import annotations

from pathlib import Path

import pytest

from dagrunner.clock import FakeClock
from dagrunner.errors import ExecutionError
from dagrunner.execution import make_executor
from dagrunner.execution.inline import InlineExecutor
from dagrunner.execution.local import LocalExecutor

from .helpers import LOGICAL, make_settings


def test_inline_and_local(tmp_path: Path) -> None:
    settings = make_settings(tmp_path, f"sqlite:///{tmp_path / 'db.sqlite'}", tmp_path / "dags", parallelism=3)
    inline = make_executor("inline", settings, actor="me", clock=FakeClock(LOGICAL))
    assert isinstance(inline, InlineExecutor) and inline.clock.now() == LOGICAL
    assert inline.slots_free == 3 and inline.running() == set() and inline.events(0) == []
    local = make_executor("local", settings, actor="me")
    assert isinstance(local, LocalExecutor) and local.parallelism == 3 and local.slots_free == 3


def test_celery_without_a_broker_and_unknown_names_are_refused(tmp_path: Path) -> None:
    settings = make_settings(tmp_path, f"sqlite:///{tmp_path / 'db.sqlite'}", tmp_path / "dags")
    with pytest.raises(ExecutionError, match="DAGRUNNER_CELERY_BROKER_URL"):
        make_executor("celery", settings, actor="me")
    with pytest.raises(ExecutionError, match="unknown executor 'threads'"):
        make_executor("threads", settings, actor="me")
