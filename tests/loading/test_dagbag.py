"""The loader against the malformed-DAG zoo: each bad file is its own import error; good DAGs still load."""

from __future__ import annotations

import os
import shutil
import time
from pathlib import Path

import pytest

from dagrunner.errors import DagNotFoundError
from dagrunner.loading.dagbag import DagBag
from dagrunner.loading.discovery import discover_dag_files

ZOO = Path(__file__).resolve().parent.parent / "fixtures" / "zoo"

# file -> (failure kind, line in the file or None, words the message must contain)
EXPECTED = {
    "zoo_syntax_error.py": ("syntax", 4, ["SyntaxError"]),
    "zoo_raises.py": ("exception", 4, ["IndexError"]),
    "zoo_sys_exit.py": ("exit", 5, ["sys.exit(3)"]),
    "zoo_os_exit.py": ("crash", None, ["code 7"]),
    "zoo_infinite_loop.py": ("timeout", None, ["dagbag_import_timeout"]),
    "zoo_cycle.py": ("exception", 9, ["a -> b -> c -> a"]),
    "zoo_duplicate_task_id.py": ("exception", 6, ["load", "zoo_duplicate_task_id.py:5"]),
    "zoo_duplicate_dag_id.py": ("duplicate", 7, ["good_simple", "good_simple.py:6"]),
    "zoo_invalid_cron.py": ("exception", 5, ["61 * * * *"]),
    "zoo_invalid_timezone.py": ("exception", 5, ["Mars/Olympus_Mons"]),
}


@pytest.fixture(scope="module")
def zoo_bag(tmp_path_factory: pytest.TempPathFactory) -> DagBag:
    folder = tmp_path_factory.mktemp("dags")
    for src in ZOO.iterdir():
        shutil.copy(src, folder / src.name)
    bag = DagBag(folder, timeout_s=1.5, parallelism=4)
    bag.refresh()
    return bag


def test_good_dags_load_beside_the_zoo(zoo_bag: DagBag) -> None:
    assert set(zoo_bag.dags) == {"good_simple", "good_second", "zoo_unique_here"}
    assert zoo_bag.get_dag("good_simple").fileloc.endswith("good_simple.py")
    assert sorted(t.task_id for t in zoo_bag.get_dag("good_second").tasks) == ["one", "two"]


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_each_zoo_file_is_an_import_error_for_that_file_only(zoo_bag: DagBag, name: str) -> None:
    kind, line, words = EXPECTED[name]
    path = next(p for p in zoo_bag.files if p.endswith("/" + name))
    failures = zoo_bag.failures_of(path)
    assert len(failures) == 1, failures
    failure = failures[0]
    assert failure.kind == kind, failure
    if kind == "timeout":
        assert failure.line in (4, 5), failure  # SIGALRM lands inside the loop
    else:
        assert failure.line == line, failure
    for word in words:
        assert word in failure.message, failure.message


def test_failing_files_are_exactly_the_zoo(zoo_bag: DagBag) -> None:
    failing = {Path(p).name for p, _ in zoo_bag.failures}
    assert failing == set(EXPECTED)


def test_files_that_never_mention_dags_are_not_imported(zoo_bag: DagBag) -> None:
    assert not any(p.endswith("helper_module.py") for p in zoo_bag.files)


def test_unknown_dag_id_names_the_known_ones(zoo_bag: DagBag) -> None:
    with pytest.raises(DagNotFoundError, match="good_simple"):
        zoo_bag.get_dag("nope")


def _write(path: Path, body: str) -> None:
    path.write_text(body)
    # make mtime differ even on coarse filesystems, so change detection is exercised honestly
    stamp = time.time() + (hash(body) % 1000) / 1000.0 + 1
    os.utime(path, (stamp, stamp))


GOOD = """
from dagrunner import DAG
from dagrunner.operators import EmptyOperator
with DAG("{dag_id}", schedule=None):
    EmptyOperator(task_id="{task_id}")
"""


def test_only_changed_files_are_reimported(tmp_path: Path) -> None:
    _write(tmp_path / "a.py", GOOD.format(dag_id="a", task_id="t1"))
    _write(tmp_path / "b.py", GOOD.format(dag_id="b", task_id="t1"))
    bag = DagBag(tmp_path, timeout_s=10)
    first = bag.refresh()
    assert sorted(Path(p).name for p in first.parsed) == ["a.py", "b.py"]

    again = bag.refresh()
    assert again.parsed == [] and not again.changed

    _write(tmp_path / "b.py", GOOD.format(dag_id="b", task_id="t2"))
    (tmp_path / "c.py").write_text(GOOD.format(dag_id="c", task_id="t1"))
    (tmp_path / "a.py").unlink()
    third = bag.refresh()
    assert sorted(Path(p).name for p in third.parsed) == ["b.py", "c.py"]
    assert [Path(p).name for p in third.removed] == ["a.py"]
    assert set(bag.dags) == {"b", "c"}
    assert [t.task_id for t in bag.get_dag("b").tasks] == ["t2"]


def test_duplicate_owner_keeps_its_dag_and_loser_recovers_when_owner_goes(tmp_path: Path) -> None:
    _write(tmp_path / "z_owner.py", GOOD.format(dag_id="shared", task_id="from_owner"))
    bag = DagBag(tmp_path, timeout_s=10)
    bag.refresh()
    # a later file that sorts first must not steal a DAG that is already owned
    _write(tmp_path / "a_copy.py", GOOD.format(dag_id="shared", task_id="from_copy"))
    bag.refresh()
    assert [t.task_id for t in bag.get_dag("shared").tasks] == ["from_owner"]
    (failure,) = bag.failures_of(str(tmp_path / "a_copy.py"))
    assert failure.kind == "duplicate" and "z_owner.py" in failure.message

    (tmp_path / "z_owner.py").unlink()
    bag.refresh()
    assert [t.task_id for t in bag.get_dag("shared").tasks] == ["from_copy"]
    assert bag.failures == []


def _bag_of_a_and_b(tmp_path: Path) -> DagBag:
    """A refreshed bag of two good files, a.py (DAG a) and b.py (DAG b)."""
    _write(tmp_path / "a.py", GOOD.format(dag_id="a", task_id="t1"))
    _write(tmp_path / "b.py", GOOD.format(dag_id="b", task_id="t1"))
    bag = DagBag(tmp_path, timeout_s=10)
    bag.refresh()
    return bag


def test_a_broken_edit_does_not_touch_other_files(tmp_path: Path) -> None:
    bag = _bag_of_a_and_b(tmp_path)
    _write(tmp_path / "b.py", "from dagrunner import DAG\nraise ValueError('half-saved file')\n")
    report = bag.refresh()
    assert [Path(p).name for p in report.parsed] == ["b.py"]
    assert set(bag.dags) == {"a"}
    (failure,) = bag.failures_of(str(tmp_path / "b.py"))
    assert failure.line == 2 and "half-saved file" in failure.message


def test_dagrunnerignore_uses_gitignore_syntax_per_folder(tmp_path: Path) -> None:
    (tmp_path / "sub" / "deeper").mkdir(parents=True)
    (tmp_path / "scratch").mkdir()
    for rel in ["keep.py", "old_dag.py", "sub/x_dag.py", "sub/deeper/y_dag.py", "scratch/s_dag.py", "notes.txt"]:
        (tmp_path / rel).write_text("# dag\n")
    (tmp_path / ".dagrunnerignore").write_text("scratch/\nold_*.py\n")
    (tmp_path / "sub" / ".dagrunnerignore").write_text("deeper/\n")
    found = [p.relative_to(tmp_path).as_posix() for p in discover_dag_files(tmp_path)]
    assert found == ["keep.py", "sub/x_dag.py"]


def test_plugins_are_importable_from_dag_files(tmp_path: Path) -> None:
    dags, plugins = tmp_path / "dags", tmp_path / "plugins"
    dags.mkdir()
    plugins.mkdir()
    (plugins / "my_ops.py").write_text(
        "from dagrunner import BaseOperator\n"
        "class HelloOperator(BaseOperator):\n"
        "    def execute(self, context):\n"
        "        return 'hello'\n"
    )
    (dags / "uses_plugin.py").write_text(
        "from dagrunner import DAG\nfrom my_ops import HelloOperator\n"
        "with DAG('uses_plugin', schedule=None):\n    HelloOperator(task_id='hi')\n"
    )
    bag = DagBag(dags, plugins_folder=plugins, timeout_s=10)
    bag.refresh()
    assert bag.failures == []
    assert bag.get_dag("uses_plugin").task("hi").operator == "HelloOperator"


def test_an_unchanged_refresh_keeps_the_same_dag_objects(tmp_path: Path) -> None:
    _write(tmp_path / "a.py", GOOD.format(dag_id="a", task_id="t1"))
    bag = DagBag(tmp_path, timeout_s=10)
    bag.refresh()
    first = bag.get_dag("a")
    assert not bag.refresh().changed
    assert bag.get_dag("a") is first  # no rebuild of the read models when nothing changed
    _write(tmp_path / "a.py", GOOD.format(dag_id="a", task_id="t2"))
    assert bag.refresh().changed
    assert bag.get_dag("a") is not first and [t.task_id for t in bag.get_dag("a").tasks] == ["t2"]


def test_an_ignore_file_added_or_changed_between_refreshes_takes_effect(tmp_path: Path) -> None:
    for name in ["a", "b", "sub/c"]:
        (tmp_path / name).parent.mkdir(exist_ok=True)
        _write(tmp_path / f"{name}.py", GOOD.format(dag_id=name.replace("/", "_"), task_id="t1"))
    bag = DagBag(tmp_path, timeout_s=10)
    bag.refresh()
    assert set(bag.dags) == {"a", "b", "sub_c"}

    (tmp_path / ".dagrunnerignore").write_text("b.py\n")
    report = bag.refresh()
    assert [Path(p).name for p in report.removed] == ["b.py"] and set(bag.dags) == {"a", "sub_c"}

    (tmp_path / ".dagrunnerignore").write_text("sub/\n")
    report = bag.refresh()
    assert [Path(p).name for p in report.parsed] == ["b.py"] and [Path(p).name for p in report.removed] == ["c.py"]
    assert set(bag.dags) == {"a", "b"}

    (tmp_path / ".dagrunnerignore").unlink()
    (tmp_path / "sub" / ".dagrunnerignore").write_text("*.py\n")
    assert not bag.refresh().changed and set(bag.dags) == {"a", "b"}


def test_a_touched_file_is_not_reimported(tmp_path: Path) -> None:
    _write(tmp_path / "a.py", GOOD.format(dag_id="a", task_id="t1"))
    bag = DagBag(tmp_path, timeout_s=10)
    bag.refresh()
    stamp = time.time() + 5
    os.utime(tmp_path / "a.py", (stamp, stamp))
    report = bag.refresh()
    assert report.parsed == [] and report.unchanged == [str(tmp_path / "a.py")]
    assert not bag.refresh().changed


def test_new_files_in_new_folders_are_found_and_removed_folders_dropped(tmp_path: Path) -> None:
    _write(tmp_path / "a.py", GOOD.format(dag_id="a", task_id="t1"))
    bag = DagBag(tmp_path, timeout_s=10)
    bag.refresh()
    (tmp_path / "new" / "deeper").mkdir(parents=True)
    _write(tmp_path / "new" / "deeper" / "b.py", GOOD.format(dag_id="b", task_id="t1"))
    report = bag.refresh()
    assert report.parsed == [str(tmp_path / "new" / "deeper" / "b.py")] and set(bag.dags) == {"a", "b"}

    shutil.rmtree(tmp_path / "new")
    report = bag.refresh()
    assert report.removed == [str(tmp_path / "new" / "deeper" / "b.py")] and set(bag.dags) == {"a"}


def test_a_file_that_stops_mentioning_dags_leaves_the_bag(tmp_path: Path) -> None:
    bag = _bag_of_a_and_b(tmp_path)
    _write(tmp_path / "b.py", "x = 1\n")
    report = bag.refresh()
    assert report.removed == [str(tmp_path / "b.py")] and set(bag.dags) == {"a"}
    _write(tmp_path / "b.py", GOOD.format(dag_id="b", task_id="t2"))
    assert bag.refresh().parsed == [str(tmp_path / "b.py")] and set(bag.dags) == {"a", "b"}
