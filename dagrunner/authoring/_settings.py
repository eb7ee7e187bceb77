"""The settings authoring needs, loaded once per process.

A DAG file may define hundreds of DAGs; reading dagrunner.toml and the environment for each would be
wasteful, so the first DAG loads `Settings` and the rest reuse it. Tests that change the environment call
`get_settings.cache_clear()`.
"""

from __future__ import annotations

from functools import cache

from dagrunner.settings import Settings


@cache
def get_settings() -> Settings:
    """The process-wide Settings (defaults -> dagrunner.toml -> DAGRUNNER_* environment)."""
    return Settings.load()
