"""Log files (layout, refusal, reading, capture) and the worker's DAG cache."""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path

import pytest

from dagrunner.errors import ExecutionError, NotFoundError
from dagrunner.execution.base import TaskKey
from dagrunner.execution.dag_cache import DagCache
from dagrunner.execution.logs import log_path, open_log, output_to, read_log
from dagrunner.execution.masking import SecretMasker

KEY = TaskKey("etl", "scheduled__2026-01-05T00:00:00+00:00", "load")


def test_log_path_layout(tmp_path: Path) -> None:
    assert (
        log_path(tmp_path, KEY, 3)
        == (
            tmp_path / "dag_id=etl" / "run_id=scheduled__2026-01-05T00:00:00+00:00" / "task_id=load" / "attempt=3.log"
        ).resolve()
    )
    mapped = TaskKey("etl", "r", "load", 4)
    assert log_path(tmp_path, mapped, 1).parent.name == "map_index=4"


@pytest.mark.parametrize("run_id", ["../../etc", "a/../../b", "x\\y", "nul\0"])
def test_a_log_path_that_could_leave_the_root_is_refused(tmp_path: Path, run_id: str) -> None:
    with pytest.raises(ExecutionError, match="must not contain|leaves the log root"):
        log_path(tmp_path, TaskKey("etl", run_id, "load"), 1)


def test_read_log_whole_tail_and_missing(tmp_path: Path) -> None:
    with pytest.raises(NotFoundError, match="no log for try 1"):
        read_log(tmp_path, KEY, 1)
    fd = open_log(log_path(tmp_path, KEY, 1))
    os.write(fd, b"first\nsecond \xff\n")
    os.close(fd)
    assert read_log(tmp_path, KEY, 1) == "first\nsecond \ufffd\n"
    assert read_log(tmp_path, KEY, 1, tail_bytes=7) == "cond \ufffd\n"


def test_output_capture_sends_everything_to_the_log_masked_and_restores(tmp_path: Path) -> None:
    import logging

    path = tmp_path / "capture.log"
    fd = open_log(path)
    before = (sys.stdout, sys.stderr, os.fstat(1).st_ino, os.fstat(2).st_ino)
    with output_to(fd, SecretMasker(["s3cr3t-value"])):
        print("printed s3cr3t-value")
        print("to stderr", file=sys.stderr)
        logging.getLogger("user.task").info("logged at info")
        os.system("echo from a subprocess")
    os.close(fd)
    assert (sys.stdout, sys.stderr, os.fstat(1).st_ino, os.fstat(2).st_ino) == before
    text = path.read_text()
    assert "printed ***" in text and "s3cr3t" not in text
    assert "to stderr" in text and "INFO user.task: logged at info" in text
    assert "from a subprocess" in text


# --- the DAG cache ---------------------------------------------------------------------------------------

DAG_V1 = """
import pendulum
from helper_mod import VALUE
from dagrunner import DAG
from dagrunner.operators import EmptyOperator

print("printed while importing")
with DAG("cached", schedule=None, start_date=pendulum.datetime(2026, 1, 1, tz="UTC")):
    EmptyOperator(task_id=VALUE)
"""


def _cache(tmp_path: Path) -> tuple[DagCache, Path]:
    dags = tmp_path / "dags"
    dags.mkdir()
    (dags / "helper_mod.py").write_text("VALUE = 'first'\n")
    path = dags / "cached.py"
    path.write_text(DAG_V1)
    return DagCache(dags_folder=dags, plugins_folder=tmp_path / "plugins", import_timeout_s=5), path


def test_the_cache_imports_once_and_again_when_the_file_changes(tmp_path: Path) -> None:
    cache, path = _cache(tmp_path)
    first = cache.get_task(str(path), "cached", "first")
    assert cache.get_task(str(path), "cached", "first") is first
    assert cache.imports == 1
    path.write_text(DAG_V1.replace("task_id=VALUE", "task_id='second'"))
    os.utime(path, ns=(time.time_ns(), time.time_ns() + 10_000_000))
    assert cache.get_task(str(path), "cached", "second").task_id == "second"
    assert cache.imports == 2


def test_an_import_failure_is_an_error_for_the_try_not_the_process(tmp_path: Path) -> None:
    cache, path = _cache(tmp_path)
    path.write_text("import pendulum\n\nraise RuntimeError('broken file')\n")
    with pytest.raises(ExecutionError, match=r"failed at line 3: RuntimeError: broken file"):
        cache.get_task(str(path), "cached", "first")
    path.write_text("import sys\nsys.exit(3)\n")
    os.utime(path, ns=(time.time_ns(), time.time_ns() + 20_000_000))
    with pytest.raises(ExecutionError, match=r"sys.exit\(3\)"):
        cache.get_dag(str(path), "cached")


def test_an_import_that_hangs_is_cut_off(tmp_path: Path) -> None:
    cache, path = _cache(tmp_path)
    cache.import_timeout_s = 0.3
    path.write_text("while True:\n    pass\n")
    with pytest.raises(ExecutionError, match="dagbag_import_timeout=0.3s"):
        cache.get_dag(str(path), "cached")


def test_unknown_dags_tasks_and_files_are_named(tmp_path: Path) -> None:
    cache, path = _cache(tmp_path)
    with pytest.raises(ExecutionError, match="does not define DAG 'other'.*it defines: cached"):
        cache.get_dag(str(path), "other")
    with pytest.raises(Exception, match="has no task 'nope'"):
        cache.get_task(str(path), "cached", "nope")
    with pytest.raises(ExecutionError, match="cannot read DAG file"):
        cache.get_dag(str(tmp_path / "gone.py"), "cached")
