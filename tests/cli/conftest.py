from __future__ import annotations

import shutil
from collections.abc import Callable
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from dagrunner.cli.main import cli

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture
def project(tmp_path: Path) -> Path:
    """A project directory holding a copy of the example dags/ and plugins/, with its own SQLite DB."""
    shutil.copytree(REPO / "dags", tmp_path / "dags")
    shutil.copytree(REPO / "plugins", tmp_path / "plugins")
    return tmp_path


@pytest.fixture
def run_cli(project: Path, monkeypatch: pytest.MonkeyPatch) -> Callable[..., Result]:
    """Invoke the real click tree in-process against `project` (env as a user would set it)."""
    for name in ("DAGRUNNER_DB_URL", "DAGRUNNER_DAGS_FOLDER", "DAGRUNNER_CREATE_CRON_DATA_INTERVALS"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("DAGRUNNER_HOME", str(project))
    monkeypatch.setenv("DAGRUNNER_DAGBAG_IMPORT_TIMEOUT", "5")

    def invoke(*args: str, input: str | None = None) -> Result:
        return CliRunner().invoke(cli, list(args), input=input, catch_exceptions=False)

    return invoke
