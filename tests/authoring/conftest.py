"""Shared fixtures for authoring tests: a clean DAG registry and settings read from an empty project."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from dagrunner.authoring._settings import get_settings
from dagrunner.authoring.dag import reset_collected_dags


@pytest.fixture(autouse=True)
def clean_authoring_state(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Each test sees no DAGs from earlier tests and default settings (no stray dagrunner.toml)."""
    home = tmp_path_factory.mktemp("home")
    monkeypatch.setenv("DAGRUNNER_HOME", str(home))
    for name in ("DAGRUNNER_CREATE_CRON_DATA_INTERVALS", "DAGRUNNER_DEFAULT_TIMEZONE"):
        monkeypatch.delenv(name, raising=False)
    get_settings.cache_clear()
    reset_collected_dags()
    yield
    reset_collected_dags()
    get_settings.cache_clear()
