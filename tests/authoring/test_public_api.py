"""The import paths DAG authors write, and the authoring layer's import boundary."""

from __future__ import annotations

import subprocess
import sys


def test_public_import_paths() -> None:
    from dagrunner import (  # noqa: F401
        DAG,
        BaseNotifier,
        BaseOperator,
        FailTask,
        SkipTask,
        TaskGroup,
        TriggerRule,
        chain,
        cross_downstream,
        dag,
        task,
        task_group,
    )
    from dagrunner.notifications import FileNotifier, LogNotifier  # noqa: F401
    from dagrunner.operators import (  # noqa: F401
        BashOperator,
        BranchPythonOperator,
        EmptyOperator,
        PythonOperator,
        ShortCircuitOperator,
    )
    from dagrunner.sensors import FileSensor, PythonSensor, TimeDeltaSensor  # noqa: F401

    assert DAG.__module__ == "dagrunner.authoring.dag"


def test_unknown_top_level_name() -> None:
    import dagrunner

    try:
        dagrunner.Nope  # noqa: B018
    except AttributeError as exc:
        assert "Nope" in str(exc)
    else:
        raise AssertionError("expected AttributeError")


def test_authoring_never_imports_the_database_or_upper_layers() -> None:
    code = (
        "import sys, dagrunner.authoring, dagrunner.operators, dagrunner.sensors, dagrunner.notifications\n"
        "from dagrunner import DAG\n"
        "bad = [m for m in sys.modules if m.split('.')[0] == 'sqlalchemy' or m.startswith(("
        "'dagrunner.persistence', 'dagrunner.loading', 'dagrunner.scheduling', 'dagrunner.execution', 'dagrunner.cli'))]\n"
        "print(bad)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


def test_settings_import_does_not_load_authoring() -> None:
    code = "import sys, dagrunner.settings; print('dagrunner.authoring' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "False"
