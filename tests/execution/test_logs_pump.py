"""The try's output pump: everything written reaches the log, in order, before the try's end is recorded."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from polling import wait_until

from dagrunner.execution.logs import open_log, output_to, read_log
from dagrunner.execution.masking import SecretMasker

from .conftest import ExecutorFactory, Project
from .helpers import create_run, queue_try, run_one

LOUD_DAG = """
import subprocess
import pendulum
from dagrunner import DAG
from dagrunner.operators import PythonOperator


def loud():
    print("before the child")
    subprocess.run(["sh", "-c", "seq 1 100000; printf 'no newline at the end'"], check=True)
    print("after the child")


with DAG("loud", schedule=None, start_date=pendulum.datetime(2026, 1, 1, tz="UTC")):
    PythonOperator(task_id="loud", python_callable=loud)
"""


def test_output_to_keeps_order_and_masks_every_writer(tmp_path: Path) -> None:
    path = tmp_path / "try.log"
    fd = open_log(path)
    with output_to(fd, SecretMasker(["hunter2-secret"])):
        print("one hunter2-secret")
        os.write(1, b"two hunter2-secret\n")
        subprocess.run([sys.executable, "-c", "print('three hunter2-secret')"], check=True)
        sys.stderr.write("four\n")
        os.write(2, b"five, no newline")
    os.close(fd)
    assert path.read_text() == "one ***\ntwo ***\nthree ***\nfour\nfive, no newline"


def test_a_partial_line_shows_up_while_the_task_waits(tmp_path: Path) -> None:
    path = tmp_path / "try.log"
    fd = open_log(path)
    with output_to(fd, SecretMasker(["hunter2-secret"])):
        os.write(1, b"progress 50%")
        wait_until(lambda: path.read_bytes() == b"progress 50%", timeout=5, what="the partial line in the log")
    os.close(fd)


@pytest.mark.parametrize("name", ["inline", pytest.param("local", marks=pytest.mark.slow)])
def test_the_whole_output_is_in_the_log_when_the_try_is_recorded(
    project: Project, make_executor: ExecutorFactory, name: str
) -> None:
    path = project.dag_file("loud.py", LOUD_DAG)
    executor = make_executor(name)
    run = create_run(project.engine, "loud", ["loud"])
    item = queue_try(project.engine, run, "loud", path)
    assert run_one(executor, item).state == "success"
    log = read_log(project.settings.logs_folder, item.key, 1)
    body = log[log.index("before the child") : log.index("recorded as")]
    assert body.startswith("before the child\n1\n2\n")
    assert "99999\n100000\nno newline at the endafter the child\n" in body
