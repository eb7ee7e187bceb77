"""A DAG file's import is contained: what it forks dies with it, what it allocates is capped, what it
prints is kept (and shown by `dagrunner dags errors --verbose`)."""

from __future__ import annotations

from pathlib import Path

import pytest

from dagrunner.loading.dagbag import DagBag

OUTPUT_LIMIT = 64 * 1024  # what the loader keeps of an import's output (isolated_import.OUTPUT_LIMIT)

GOOD = """
import pendulum
from dagrunner import DAG
from dagrunner.operators import EmptyOperator

with DAG("{dag_id}", schedule=None, start_date=pendulum.datetime(2026, 1, 1, tz="UTC")):
    EmptyOperator(task_id="only")
"""

FORKS_SLEEPERS = """
import subprocess
from pathlib import Path
from dagrunner import DAG

pids = [subprocess.Popen(["sleep", "300"]).pid for _ in range(3)]
Path({pid_file!r}).write_text(" ".join(map(str, pids)))
""" + GOOD.replace("import pendulum\nfrom dagrunner import DAG\n", "import pendulum\n")


def _alive(pid: int) -> bool:
    """Running, not a zombie waiting for a reaper that may never come (pid 1 here may not reap)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


def _pids(pid_file: Path) -> list[int]:
    pids = [int(p) for p in pid_file.read_text().split()]
    assert len(pids) == 3
    return pids


def test_processes_forked_at_import_die_with_the_import(tmp_path: Path) -> None:
    dags, pid_file = tmp_path / "dags", tmp_path / "pids.txt"
    dags.mkdir()
    (dags / "forker.py").write_text(FORKS_SLEEPERS.format(pid_file=str(pid_file), dag_id="forker"))
    bag = DagBag(dags, timeout_s=10)
    bag.refresh()
    assert "forker" in bag.dags and bag.failures == []
    assert [pid for pid in _pids(pid_file) if _alive(pid)] == []


@pytest.mark.slow
def test_processes_forked_by_an_import_that_times_out_die_too(tmp_path: Path) -> None:
    dags, pid_file = tmp_path / "dags", tmp_path / "pids.txt"
    dags.mkdir()
    body = FORKS_SLEEPERS.format(pid_file=str(pid_file), dag_id="hangs")
    (dags / "hangs.py").write_text(body + "\nimport signal\nsignal.signal(signal.SIGALRM, signal.SIG_IGN)\n"
                                   "while True:\n    pass\n")  # fmt: skip
    bag = DagBag(dags, timeout_s=1.0)
    bag.refresh()
    assert [f.kind for _, f in bag.failures] == ["timeout"]
    assert [pid for pid in _pids(pid_file) if _alive(pid)] == []


def test_an_import_over_the_memory_cap_is_a_clear_error_and_others_still_parse(tmp_path: Path) -> None:
    dags = tmp_path / "dags"
    dags.mkdir()
    (dags / "greedy.py").write_text("from dagrunner import DAG\n\nhoard = bytearray(2 * 1024**3)\n")
    (dags / "modest.py").write_text(GOOD.format(dag_id="modest"))
    bag = DagBag(dags, timeout_s=10, memory_mb=256)
    bag.refresh()
    assert list(bag.dags) == ["modest"]
    [(path, failure)] = bag.failures
    assert path.endswith("greedy.py") and failure.kind == "memory" and failure.line == 3
    assert "used more than dagbag_import_memory_mb=256 MB at import" in failure.message


def test_the_cap_leaves_room_for_an_ordinary_import(tmp_path: Path) -> None:
    (tmp_path / "numbers.py").write_text(GOOD.format(dag_id="numbers") + "\nsquares = [i * i for i in range(10**6)]\n")
    bag = DagBag(tmp_path, timeout_s=10, memory_mb=64)
    bag.refresh()
    assert list(bag.dags) == ["numbers"] and bag.failures == []


def test_what_an_import_prints_is_kept_with_the_parse_result(tmp_path: Path) -> None:
    (tmp_path / "chatty.py").write_text(
        "import os, sys\n"
        + GOOD.format(dag_id="chatty")
        + "\nprint('hello from the top level')\nprint('and stderr', file=sys.stderr)\n"
        "os.system('echo from a shell')\nprint('x' * 100_000)\nprint('the end')\n"
    )
    (tmp_path / "quiet.py").write_text(GOOD.format(dag_id="quiet"))
    bag = DagBag(tmp_path, timeout_s=10)
    bag.refresh()
    output = bag.files[str(tmp_path / "chatty.py")].output
    assert len(output) <= OUTPUT_LIMIT and output.endswith("x\nthe end\n")  # the end is what is kept
    assert bag.files[str(tmp_path / "quiet.py")].output == ""
    short = tmp_path / "chatty.py"
    short.write_text(short.read_text().replace("print('x' * 100_000)\n", ""))
    bag.refresh()
    assert bag.files[str(short)].output == "hello from the top level\nand stderr\nfrom a shell\nthe end\n"
