"""@task.virtualenv / PythonVirtualenvOperator and @task.external_python / ExternalPythonOperator, run by
`dagrunner dags test`: the function's source runs in another interpreter, its result is the XCom."""

from __future__ import annotations

import json
import sqlite3
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from dagrunner.cli.main import cli

DAG_SOURCE = """
import pendulum
from dagrunner import DAG, task
from dagrunner.operators import ExternalPythonOperator, PythonVirtualenvOperator

CACHE = {cache!r}


def classic(x, ds=None):
    import sys
    return {{"x": x, "ds": ds, "prefix": sys.prefix}}


with DAG("interp", schedule=None, start_date=pendulum.datetime(2026, 1, 1, tz="UTC")):
    @task.external_python(python={python!r})
    def ext(a, b, logical_date=None):
        import sys
        print("running in", sys.executable)
        return [a + b, logical_date.isoformat()]

    @task.virtualenv(requirements=[], system_site_packages=False, multiple_outputs=True, venv_cache_path=CACHE)
    def in_venv(x, ds=None):
        import sys
        return {{"prefix": sys.prefix, "x": x, "ds": ds}}

    @task.virtualenv(skip_on_exit_code=3, venv_cache_path=CACHE, system_site_packages=False)
    def skipper():
        import sys
        sys.exit(3)

    @task.virtualenv(venv_cache_path=CACHE, system_site_packages=False)
    def needs_ti(ti):
        return 1

    @task.virtualenv(venv_cache_path=CACHE, system_site_packages=False)
    def raises():
        raise ValueError("boom in the venv")

    ext(1, 2) >> in_venv(5)
    skipper()
    needs_ti()
    raises()
    PythonVirtualenvOperator(
        task_id="classic", python_callable=classic, op_args=[7], venv_cache_path=CACHE, system_site_packages=False
    )
    ExternalPythonOperator(task_id="missing", python="/nope/bin/python", python_callable=classic, op_args=[1])
"""


def _run(tmp_path: Path, *args: str) -> tuple[int, str]:
    result = CliRunner().invoke(cli, list(args), catch_exceptions=False)
    return result.exit_code, result.output


def _xcoms(tmp_path: Path) -> dict[tuple[str, str], object]:
    with sqlite3.connect(tmp_path / ".dagrunner" / "dagrunner.db") as db:
        rows = db.execute("SELECT task_id, key, value FROM xcom WHERE dag_id = 'interp'").fetchall()
    return {(task_id, key): json.loads(value) if isinstance(value, str) else value for task_id, key, value in rows}


@pytest.mark.slow
def test_functions_run_in_other_interpreters_and_the_venv_is_made_once(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    cache = tmp_path / "venvs"
    (tmp_path / "dags").mkdir()
    (tmp_path / "dags" / "interp.py").write_text(DAG_SOURCE.format(cache=str(cache), python=sys.executable))
    for name in ("DAGRUNNER_DB_URL", "DAGRUNNER_DAGS_FOLDER", "DAGRUNNER_STATE_FOLDER"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("DAGRUNNER_HOME", str(tmp_path))

    code, output = _run(tmp_path, "dags", "test", "interp", "2026-01-02", "--json")
    data = json.loads(output)
    assert code == 1 and data["state"] == "failed"
    assert data["tasks"] == {
        "ext": "success",
        "in_venv": "success",
        "classic": "success",
        "skipper": "skipped",  # exit code 3 is in skip_on_exit_code
        "needs_ti": "failed",  # a TaskInstance cannot travel to another interpreter: said, not passed as None
        "raises": "failed",
        "missing": "failed",
    }
    xcoms = _xcoms(tmp_path)
    assert xcoms[("ext", "return_value")] == [3, "2026-01-02T00:00:00+00:00"]
    assert xcoms[("in_venv", "x")] == 5 and xcoms[("in_venv", "ds")] == "2026-01-02"  # multiple_outputs
    (venv,) = [p for p in cache.iterdir() if p.is_dir()]  # one venv: same requirements, same python
    assert xcoms[("in_venv", "prefix")] == xcoms[("classic", "return_value")]["prefix"] == str(venv)  # type: ignore[index]

    code, output = _run(tmp_path, "tasks", "logs", "interp", "raises", "manual__2026-01-02T00:00:00+00:00")
    assert "ValueError: boom in the venv" in output
    code, output = _run(tmp_path, "tasks", "logs", "interp", "needs_ti", "manual__2026-01-02T00:00:00+00:00")
    assert "asks for ti, which cannot be handed to another interpreter" in output
    code, output = _run(tmp_path, "tasks", "logs", "interp", "missing", "manual__2026-01-02T00:00:00+00:00")
    assert "python='/nope/bin/python' is not an executable file" in output

    # A second run reuses the cached venv: nothing is created again.
    marker = venv / "marker"
    marker.write_text("still here")
    code, output = _run(tmp_path, "dags", "test", "interp", "2026-01-03", "--json")
    assert json.loads(output)["tasks"]["in_venv"] == "success" and marker.exists()
    code, output = _run(tmp_path, "tasks", "logs", "interp", "in_venv", "manual__2026-01-03T00:00:00+00:00")
    assert "Creating a virtualenv" not in output


def test_refused_at_definition() -> None:
    import pendulum

    from dagrunner import DAG
    from dagrunner.errors import InvalidArgumentError
    from dagrunner.operators import PythonVirtualenvOperator

    with DAG("bad", schedule=None, start_date=pendulum.datetime(2026, 1, 1, tz="UTC")):
        with pytest.raises(InvalidArgumentError, match="serializer"):
            PythonVirtualenvOperator(task_id="a", python_callable=print, serializer="dill")
        with pytest.raises(InvalidArgumentError, match="defined with def"):
            PythonVirtualenvOperator(task_id="b", python_callable=lambda: 1)


INSTALL_SOURCE = """
import pendulum
from dagrunner import DAG, task

with DAG("install", schedule=None, start_date=pendulum.datetime(2026, 1, 1, tz="UTC")):
    @task.virtualenv(requirements=["six"], system_site_packages=False, venv_cache_path={cache!r})
    def uses_six():
        import six  # installed into the venv by pip, from the machine's index
        return six.__name__ + " " + six.__file__
    uses_six()
"""


@pytest.mark.slow
def test_requirements_are_installed_into_the_venv(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    cache = tmp_path / "venvs"
    (tmp_path / "dags").mkdir()
    (tmp_path / "dags" / "install.py").write_text(INSTALL_SOURCE.format(cache=str(cache)))
    monkeypatch.delenv("DAGRUNNER_DB_URL", raising=False)
    monkeypatch.setenv("DAGRUNNER_HOME", str(tmp_path))
    code, output = _run(tmp_path, "dags", "test", "install", "2026-01-02", "--json")
    assert code == 0, output
    with sqlite3.connect(tmp_path / ".dagrunner" / "dagrunner.db") as db:
        (value,) = db.execute("SELECT value FROM xcom WHERE task_id = 'uses_six'").fetchone()
    assert json.loads(value).startswith("six " + str(cache))
