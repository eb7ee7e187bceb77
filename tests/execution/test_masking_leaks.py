"""Secrets stay out of logs and CLI output in the four ways they used to leak (issue #10 item 7)."""

from __future__ import annotations

from pathlib import Path

import pytest

from dagrunner.execution import task_test
from dagrunner.execution.dag_cache import DagCache
from dagrunner.execution.logs import read_log
from dagrunner.execution.masking import SecretMasker
from dagrunner.states import TaskInstanceState

from .conftest import ExecutorFactory, Project
from .helpers import LOGICAL, create_run, make_settings, queue_try, run_one, xcoms_of

PEM_BODY = ["MIIEowIBAAKCAQEAu1SU1LfVLPHCozMxH2Mo", "4lgOEePzNm0tRgeLezV6ffAt0gunVTLw7onL", "RnrqKPb+lRNDU0LyjOl3Qw=="]
PEM = "-----BEGIN RSA PRIVATE KEY-----\n" + "\n".join(PEM_BODY) + "\n-----END RSA PRIVATE KEY-----\n"
TOKEN = "tok-0123456789-abcdef"
DOLLAR_PASSWORD = "Sup3rS$ecretValue9"  # bash expands $ecretValue9 to nothing and prints "Sup3rS"

DAG_SOURCE = """
import os, subprocess, sys
import pendulum
from dagrunner import DAG
from dagrunner.operators import BashOperator, PythonOperator


def raw_writes(var=None):
    token = var.value.api_token
    os.write(1, f"os.write 1: {token}\\n".encode())
    os.write(2, f"os.write 2: {token}\\n".encode())
    subprocess.run(["sh", "-c", 'echo "child: $T"; echo "child err: $T" >&2'], env={"T": token}, check=True)
    print(f"print: {token}")


def give_token(var=None):
    return {"token": var.value.api_token, "nested": [var.value.api_token]}


with DAG("leaks", schedule=None, start_date=pendulum.datetime(2026, 1, 1, tz="UTC")):
    BashOperator(task_id="pem", bash_command='printf "%s\\\\n" "$KEY"', env={"KEY": "{{ var.value.private_key }}"})
    PythonOperator(task_id="pem_print", python_callable=lambda var=None: print(var.value.private_key))
    PythonOperator(task_id="xcom", python_callable=give_token)
    BashOperator(task_id="dollar", bash_command="echo pw={{ var.value.db_password }}")
    PythonOperator(task_id="raw", python_callable=raw_writes)
    PythonOperator(task_id="param", python_callable=lambda params=None: print("param:", params["api_token"]),
                   params={"api_token": "param-secret-987"})
"""


@pytest.fixture
def secrets(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DAGRUNNER_VAR_PRIVATE_KEY", PEM)
    monkeypatch.setenv("DAGRUNNER_VAR_API_TOKEN", TOKEN)
    monkeypatch.setenv("DAGRUNNER_VAR_DB_PASSWORD", DOLLAR_PASSWORD)


def _test(tmp_path: Path, task_id: str) -> str:
    dags = tmp_path / "dags"
    dags.mkdir(exist_ok=True)
    (dags / "leaks.py").write_text(DAG_SOURCE)
    dag = DagCache(dags_folder=dags, plugins_folder=None).get_dag(str(dags / "leaks.py"), "leaks")
    settings = make_settings(tmp_path, f"sqlite:///{tmp_path / 'none.db'}", dags)
    state, log = task_test.test_task(settings, dag, task_id, LOGICAL)
    assert state == TaskInstanceState.SUCCESS, log
    return log


# (a) a multi-line secret -------------------------------------------------------------------------------


def test_a_multi_line_secret_is_masked_whole_and_line_by_line() -> None:
    masker = SecretMasker([PEM])
    assert masker.mask(f"key: {PEM}") == "key: ***"
    for line in PEM_BODY:
        assert masker.mask(f"> {line}") == "> ***"


@pytest.mark.usefixtures("secrets")
@pytest.mark.parametrize("task_id", ["pem", "pem_print"])
def test_a_pem_key_printed_by_a_task_is_masked(tmp_path: Path, task_id: str) -> None:
    log = _test(tmp_path, task_id)
    assert not any(line in log for line in PEM_BODY), log
    assert "***" in log


# (b) XCom values in tasks test --------------------------------------------------------------------------


@pytest.mark.usefixtures("secrets")
def test_tasks_test_masks_the_xcom_it_prints(tmp_path: Path) -> None:
    log = _test(tmp_path, "xcom")
    assert TOKEN not in log
    assert """XCom 'return_value': {"token": "***", "nested": ["***"]}""" in log


# (c) what a shell leaves of a secret with `$` ----------------------------------------------------------


def test_the_pieces_a_shell_leaves_of_a_secret_are_masked() -> None:
    masker = SecretMasker([DOLLAR_PASSWORD, "ab$cd"])
    assert masker.mask("pw=Sup3rS") == "pw=***"
    assert masker.mask("pw=Sup3rS123 and ab") == "pw=***123 and ab"  # a short secret's pieces are not
    assert SecretMasker(["Sh0rt$a"]).mask("Sh0rt") == "Sh0rt"  # under 8 characters: only whole


@pytest.mark.usefixtures("secrets")
def test_a_secret_with_a_dollar_echoed_by_bash_is_masked(tmp_path: Path) -> None:
    log = _test(tmp_path, "dollar")
    assert "pw=***" in log and "Sup3rS" not in log


# (d) raw writes to fds 1 and 2 -------------------------------------------------------------------------


@pytest.mark.usefixtures("secrets")
def test_raw_writes_and_subprocess_output_are_masked_in_tasks_test(tmp_path: Path) -> None:
    log = _test(tmp_path, "raw")
    assert TOKEN not in log, log
    for what in ("os.write 1", "os.write 2", "child", "child err", "print"):
        assert f"{what}: ***" in log, log


@pytest.mark.usefixtures("secrets")
@pytest.mark.parametrize("name", ["inline", pytest.param("local", marks=pytest.mark.slow)])
def test_raw_writes_are_masked_in_the_try_log_on_every_executor(
    project: Project, make_executor: ExecutorFactory, name: str
) -> None:
    path = project.dag_file("leaks.py", DAG_SOURCE)
    executor = make_executor(name)  # after the secrets are set: local workers take the environment at start
    run = create_run(project.engine, "leaks", ["raw", "xcom"])
    item = queue_try(project.engine, run, "raw", path)
    assert run_one(executor, item).state == "success"
    log = read_log(project.settings.logs_folder, item.key, 1)
    assert TOKEN not in log, log
    for what in ("os.write 1", "os.write 2", "child", "child err", "print"):
        assert f"{what}: ***" in log, log
    item = queue_try(project.engine, run, "xcom", path)
    assert run_one(executor, item).state == "success"
    assert xcoms_of(project.engine, item.key)["return_value"]["token"] == TOKEN  # stored raw for downstream


@pytest.mark.usefixtures("secrets")
def test_a_param_named_like_a_secret_is_masked(tmp_path: Path) -> None:
    log = _test(tmp_path, "param")
    assert "param: ***" in log and "param-secret-987" not in log
