"""The CLI is thin (STYLE: parse, call the library, render): no SQL is written or run in `dagrunner/cli`.

Queries that show the metadata live in `persistence/views.py`, operations in `scheduling/`. A plain AST scan
of every module under `dagrunner/cli` keeps it that way.
"""

from __future__ import annotations

import ast
from pathlib import Path

import dagrunner.cli

CLI_DIR = Path(dagrunner.cli.__file__).parent
#: What builds a statement; importing any of them into the CLI means SQL is written there.
STATEMENT_BUILDERS = {"select", "update", "delete", "insert", "text", "func", "and_", "or_"}
#: What runs a statement on a session or connection.
STATEMENT_RUNNERS = {"execute", "scalars", "scalar", "query"}


def _findings(path: Path) -> list[str]:
    tree = ast.parse(path.read_text(), filename=str(path))
    found = []
    for node in ast.walk(tree):
        where = f"{path.name}:{getattr(node, 'lineno', '?')}"
        if isinstance(node, ast.ImportFrom) and (node.module or "").split(".")[0] == "sqlalchemy":
            found += [
                f"{where} imports {a.name} from {node.module}" for a in node.names if a.name in STATEMENT_BUILDERS
            ]
        elif isinstance(node, ast.Import):
            found += [f"{where} imports {a.name}" for a in node.names if a.name in ("sqlalchemy", "sqlalchemy.sql")]
        elif (
            isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr in STATEMENT_RUNNERS
        ):
            found.append(f"{where} calls .{node.func.attr}(...)")
    return found


def test_no_module_under_cli_builds_or_runs_sql() -> None:
    modules = sorted(CLI_DIR.rglob("*.py"))
    assert len(modules) > 10  # the scan found the package
    findings = [f"dagrunner/cli/{f}" for path in modules for f in _findings(path)]
    assert findings == [], "SQL in dagrunner/cli (move it to persistence/views.py or scheduling/):\n" + "\n".join(
        findings
    )


def test_the_scan_catches_a_query_written_in_the_cli(tmp_path: Path) -> None:
    sample = tmp_path / "probe.py"
    sample.write_text("from sqlalchemy import select\n\ndef f(session):\n    return session.scalars(select(1)).all()\n")
    assert [f.split(" ", 1)[1] for f in _findings(sample)] == ["imports select from sqlalchemy", "calls .scalars(...)"]
