"""DAG file discovery against real folders: what is a DAG file, in which order, and what a rescan notices."""

from __future__ import annotations

import os
from pathlib import Path

from dagrunner.loading.discovery import IGNORE_FILE, DagFileScanner, discover_dag_files


def _tree(root: Path, files: dict[str, str]) -> None:
    for rel, text in files.items():
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_text(text)


def _found(root: Path, scanner: DagFileScanner) -> list[str]:
    return [Path(p).relative_to(root).as_posix() for p in scanner.scan()]


def test_candidates_are_the_py_files_that_mention_dags_in_path_order(tmp_path: Path) -> None:
    names = ["a.py", "a-b.py", "a/b.py", "a b/x.py", "A.py", "dir.py/in.py", "target/t.py", "sub/deep/k.py"]
    skipped = [".hidden.py", ".hidden/h.py", "__pycache__/m.py", "x.pyc", "notes.txt"]
    _tree(tmp_path, {rel: "# a DAG\n" for rel in names + skipped} | {"helper.py": "x = 1\n"})
    (tmp_path / "linked").symlink_to(tmp_path / "target")  # symlinked folders are not followed
    (tmp_path / "alias.py").symlink_to(tmp_path / "a.py")  # symlinked files are
    (tmp_path / "broken.py").symlink_to(tmp_path / "missing.py")

    found = discover_dag_files(tmp_path)

    assert found == sorted(found)  # the order of sorted Paths ("a/b.py" before "a-b.py"), not of strings
    assert [p.relative_to(tmp_path).as_posix() for p in found] == [
        "A.py",
        "a/b.py",
        "a b/x.py",
        "a-b.py",
        "a.py",
        "alias.py",
        "dir.py/in.py",
        "sub/deep/k.py",
        "target/t.py",
    ]
    assert list(DagFileScanner(tmp_path).scan()) == [str(p) for p in found]


def test_known_files_are_not_read_for_the_dag_check(tmp_path: Path) -> None:
    _tree(tmp_path, {"helper.py": "x = 1\n"})
    assert discover_dag_files(tmp_path) == []
    assert discover_dag_files(tmp_path, known={str(tmp_path / "helper.py")}) == [tmp_path / "helper.py"]


def test_a_file_whose_stat_did_not_move_is_not_read_again(tmp_path: Path) -> None:
    _tree(tmp_path, {"a.py": "# dag\n"})
    scanner = DagFileScanner(tmp_path)
    (stamp,) = scanner.scan().values()
    stat = (tmp_path / "a.py").stat()
    # same size and mtime, but no "dag" any more: only reading the file again could tell
    (tmp_path / "a.py").write_text("# xyz\n")
    os.utime(tmp_path / "a.py", ns=(stat.st_atime_ns, stat.st_mtime_ns))
    assert scanner.scan() == {str(tmp_path / "a.py"): stamp}

    os.utime(tmp_path / "a.py", ns=(stat.st_atime_ns, stat.st_mtime_ns + 1_000_000))
    assert scanner.scan() == {}


def test_rescans_notice_new_removed_and_changed_files(tmp_path: Path) -> None:
    _tree(tmp_path, {"a.py": "# dag\n", "helper.py": "x = 1\n"})
    scanner = DagFileScanner(tmp_path)
    assert _found(tmp_path, scanner) == ["a.py"]

    _tree(tmp_path, {"new/deeper/b.py": "# dag\n", "helper.py": "x = 'a dag after all'\n"})
    (tmp_path / "a.py").unlink()
    assert _found(tmp_path, scanner) == ["helper.py", "new/deeper/b.py"]

    (tmp_path / "new" / "deeper" / "b.py").write_text("# nothing here any more\n")
    assert _found(tmp_path, scanner) == ["helper.py"]


def test_ignore_files_added_changed_and_removed_take_effect_on_the_next_scan(tmp_path: Path) -> None:
    _tree(tmp_path, {"keep.py": "# dag\n", "old_a.py": "# dag\n", "sub/x.py": "# dag\n", "sub/tmp/y.py": "# dag\n"})
    scanner = DagFileScanner(tmp_path)
    assert _found(tmp_path, scanner) == ["keep.py", "old_a.py", "sub/tmp/y.py", "sub/x.py"]

    (tmp_path / IGNORE_FILE).write_text("old_*.py\n")
    assert _found(tmp_path, scanner) == ["keep.py", "sub/tmp/y.py", "sub/x.py"]

    (tmp_path / "sub" / IGNORE_FILE).write_text("tmp/\n")  # applies to its own folder and below
    assert _found(tmp_path, scanner) == ["keep.py", "sub/x.py"]

    (tmp_path / IGNORE_FILE).write_text("old_*.py\nkeep.py\n")
    assert _found(tmp_path, scanner) == ["sub/x.py"]

    (tmp_path / IGNORE_FILE).unlink()
    (tmp_path / "sub" / IGNORE_FILE).write_text("# nothing ignored\n")
    assert _found(tmp_path, scanner) == ["keep.py", "old_a.py", "sub/tmp/y.py", "sub/x.py"]


def test_an_ignore_file_saved_over_with_the_same_size_and_mtime_is_noticed(tmp_path: Path) -> None:
    _tree(tmp_path, {"a.py": "# dag\n", "b.py": "# dag\n", IGNORE_FILE: "a.py\n"})
    scanner = DagFileScanner(tmp_path)
    assert _found(tmp_path, scanner) == ["b.py"]
    # as editors save: write a copy, give it the old mtime, rename it over the original
    stat = (tmp_path / IGNORE_FILE).stat()
    (tmp_path / "copy").write_text("b.py\n")
    os.utime(tmp_path / "copy", ns=(stat.st_atime_ns, stat.st_mtime_ns))
    os.replace(tmp_path / "copy", tmp_path / IGNORE_FILE)
    assert _found(tmp_path, scanner) == ["a.py"]


def test_a_name_that_turns_from_file_into_folder_gets_a_folder_decision(tmp_path: Path) -> None:
    # a folder named x.py is ignored with all in it (a file below an ignored folder cannot be re-included,
    # as in git), a file named x.py is not
    _tree(tmp_path, {"x.py": "# dag\n", IGNORE_FILE: "x.py/\n!x.py/inner.py\n"})
    scanner = DagFileScanner(tmp_path)
    assert _found(tmp_path, scanner) == ["x.py"]
    (tmp_path / "x.py").unlink()
    _tree(tmp_path, {"x.py/inner.py": "# dag\n"})
    assert _found(tmp_path, scanner) == []
